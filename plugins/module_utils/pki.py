"""PKI backend: create CAs, issue leaf certificates, keep a service-account key pair.

Idempotent in the way community.crypto's ownca is: ``needs_regeneration`` is decided first
(key, subject, SANs, usages, issuer/signature, renew window) and files are written only outside
check mode, atomically, keys 0600 and certificates 0644. An existing CA or service-account key
is never replaced: rotating one invalidates every certificate or token it signed and is an
explicit, separate operation.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

KEY_MODE = 0o600
CERT_MODE = 0o644
DIR_MODE = 0o700
KEY_TYPES = ("ecdsa", "rsa")
RSA_BITS = (2048, 3072, 4096)
KINDS = ("ca", "leaf", "keypair")
USAGES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
# Certificates start a little in the past so hosts with slightly slow clocks accept them.
BACKDATE = datetime.timedelta(minutes=5)


class PkiError(Exception):
    """A problem the operator must fix; the message names the item, field and value."""


@dataclass(frozen=True)
class KeySpec:
    """Which private key an item wants: ECDSA P-256 or RSA of a given size."""

    type: str = "ecdsa"
    rsa_bits: int = 2048

    def validate(self, where: str) -> None:
        if self.type not in KEY_TYPES:
            raise PkiError(f"{where}.key_type: {self.type!r} is not valid; use one of {KEY_TYPES}")
        if self.type == "rsa" and self.rsa_bits not in RSA_BITS:
            raise PkiError(
                f"{where}.rsa_bits: {self.rsa_bits!r} is not valid; use one of {RSA_BITS}"
            )

    def generate(self) -> PrivateKey:
        if self.type == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=self.rsa_bits)
        return ec.generate_private_key(ec.SECP256R1())

    def mismatch(self, key: PrivateKey) -> str | None:
        """Why key is not what this spec asks for, or None when it is."""
        if self.type == "rsa":
            if not isinstance(key, rsa.RSAPrivateKey):
                return "key is not RSA"
            if key.key_size != self.rsa_bits:
                return f"RSA key has {key.key_size} bits, want {self.rsa_bits}"
            return None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            return "key is not ECDSA"
        if not isinstance(key.curve, ec.SECP256R1):
            return f"ECDSA key is on {key.curve.name}, want secp256r1"
        return None


@dataclass(frozen=True)
class CertSpec:
    """One item of the PKI: a CA, a leaf certificate or a bare key pair (service accounts).

    ``path`` is relative to the PKI directory and has no extension: ``etcd/ca`` means
    ``etcd/ca.crt`` and ``etcd/ca.key`` (``.pub`` instead of ``.crt`` for a key pair).
    """

    name: str
    path: str
    kind: str = "leaf"
    common_name: str = ""
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    usages: tuple[str, ...] = ()
    ca: str = ""
    valid_days: int = 365
    renew_before_days: int = 30
    key: KeySpec = field(default_factory=KeySpec)

    def validate(self) -> None:
        where = f"certificates[{self.name}]"
        if self.kind not in KINDS:
            raise PkiError(f"{where}.kind: {self.kind!r} is not valid; use one of {KINDS}")
        relative = PurePosixPath(self.path)
        if not self.path or relative.is_absolute() or ".." in relative.parts:
            raise PkiError(
                f"{where}.path: {self.path!r} must be a relative path inside the PKI directory "
                "without '..', e.g. etcd/ca"
            )
        self.key.validate(where)
        if self.kind == "keypair":
            return
        if not self.common_name:
            raise PkiError(f"{where}.common_name: must not be empty")
        if self.valid_days <= self.renew_before_days:
            raise PkiError(
                f"{where}.valid_days: {self.valid_days} must be larger than renew_before_days "
                f"({self.renew_before_days}), or every run would reissue the certificate"
            )
        if self.kind == "ca":
            return
        if not self.ca:
            raise PkiError(f"{where}.ca: a leaf certificate needs the path of its CA, e.g. ca")
        bad = [usage for usage in self.usages if usage not in USAGES]
        if not self.usages or bad:
            raise PkiError(
                f"{where}.usages: {list(self.usages)!r} is not valid; "
                f"use a non-empty subset of {sorted(USAGES)}"
            )
        for address in self.ip_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError as exc:
                raise PkiError(
                    f"{where}.ip_addresses: {address!r} is not an IP address; "
                    "put host names in dns_names"
                ) from exc

    @property
    def sans(self) -> list[str]:
        """Subject alternative names as sorted 'DNS:x' / 'IP:y' strings (compare and diff)."""
        names = {f"DNS:{name}" for name in self.dns_names}
        names |= {f"IP:{ipaddress.ip_address(address)}" for address in self.ip_addresses}
        return sorted(names)

    def subject(self) -> x509.Name:
        attributes = [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in self.organizations
        ]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name))
        return x509.Name(attributes)


@dataclass
class Summary:
    """What a diff may show about a certificate: never key material."""

    subject: str
    issuer: str
    sans: list[str]
    not_after: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "sans": self.sans,
            "not_after": self.not_after,
        }


@dataclass
class Outcome:
    """The result for one item: what changed and why."""

    name: str
    path: str
    kind: str
    changed: bool = False
    reasons: list[str] = field(default_factory=list)
    before: Summary | None = None
    after: Summary | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "kind": self.kind,
            "changed": self.changed,
            "reasons": self.reasons,
            "before": self.before.as_dict() if self.before else None,
            "after": self.after.as_dict() if self.after else None,
        }


@dataclass
class Authority:
    """A loaded CA: what leaves need to be checked against and signed by."""

    cert: x509.Certificate
    key: PrivateKey


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def summarize(cert: x509.Certificate) -> Summary:
    return Summary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=cert_sans(cert),
        not_after=cert.not_valid_after_utc.isoformat(),
    )


def cert_sans(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names = {f"DNS:{name}" for name in extension.value.get_values_for_type(x509.DNSName)}
    names |= {f"IP:{ip}" for ip in extension.value.get_values_for_type(x509.IPAddress)}
    return sorted(names)


def cert_usages(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return []
    by_oid = {oid: name for name, oid in USAGES.items()}
    return sorted(by_oid.get(oid, oid.dotted_string) for oid in extension.value)


def public_bytes(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class PkiStore:
    """Files of one PKI directory: atomic writes with the right modes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def file(self, relative: str, suffix: str) -> Path:
        return self.root / f"{relative}{suffix}"

    def read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def write(self, path: Path, data: bytes, mode: int) -> None:
        """Write via a temporary file and rename, so a crash never leaves half a key."""
        self.make_dirs(path.parent)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(descriptor, mode)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def make_dirs(self, directory: Path) -> None:
        missing = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for created in reversed(missing):
            created.mkdir(mode=DIR_MODE)

    def wrong_mode(self, path: Path, mode: int) -> bool:
        try:
            return stat.S_IMODE(path.stat().st_mode) != mode
        except FileNotFoundError:
            return False


def load_key(data: bytes, where: str, signs: bool = True) -> PrivateKey:
    """Load a PEM key.

    RSA consistency checks cost ~0.25 s per key (seconds for 4096 bits under load), so they
    run only for keys that sign here (CAs). A leaf or SA key is compared by its public half
    with its certificate or .pub, which catches a wrong or replaced key; a key damaged only in
    its private half shows up when its component loads it.
    """
    try:
        key = serialization.load_pem_private_key(
            data, password=None, unsafe_skip_rsa_key_validation=not signs
        )
    except (ValueError, TypeError) as exc:
        raise PkiError(f"{where}: not a readable unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{where}: key type {type(key).__name__} is not supported; use ECDSA or RSA")
    return key


def load_cert(data: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PkiError(f"{where}: not a readable PEM certificate ({exc})") from exc


def build_certificate(
    spec: CertSpec,
    *,
    public_key: CertificateIssuerPublicKeyTypes,
    issuer: x509.Name,
    signing_key: PrivateKey,
    issuer_public_key: CertificateIssuerPublicKeyTypes,
    now: datetime.datetime,
    issuer_not_after: datetime.datetime | None,
) -> x509.Certificate:
    not_after = planned_not_after(spec, now, issuer_not_after)
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject())
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if spec.kind == "ca":
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([USAGES[usage] for usage in sorted(set(spec.usages))]),
            critical=False,
        )
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False
        )
        general_names: list[x509.GeneralName] = [
            x509.DNSName(name) for name in sorted(set(spec.dns_names))
        ]
        general_names += [
            x509.IPAddress(ipaddress.ip_address(address))
            for address in sorted(set(spec.ip_addresses))
        ]
        if general_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(general_names), critical=False
            )
    return builder.sign(signing_key, hashes.SHA256())


def planned_not_after(
    spec: CertSpec, now: datetime.datetime, issuer_not_after: datetime.datetime | None
) -> datetime.datetime:
    """Requested validity, capped at the CA's own expiry (a leaf cannot outlive its CA)."""
    wanted = now + datetime.timedelta(days=spec.valid_days)
    if issuer_not_after is not None and issuer_not_after < wanted:
        return issuer_not_after
    return wanted


def planned_summary(
    spec: CertSpec,
    issuer: x509.Name,
    now: datetime.datetime,
    issuer_not_after: datetime.datetime | None,
) -> Summary:
    return Summary(
        subject=spec.subject().rfc4514_string(),
        issuer=issuer.rfc4514_string(),
        sans=spec.sans,
        not_after=planned_not_after(spec, now, issuer_not_after).isoformat(),
    )


class PkiManager:
    """Brings one PKI directory in line with a list of CertSpecs."""

    def __init__(
        self, store: PkiStore, check_mode: bool, now: datetime.datetime | None = None
    ) -> None:
        self.store = store
        self.check_mode = check_mode
        # Certificates hold whole seconds; so do predictions shown in check mode.
        self.now = (now or utc_now()).replace(microsecond=0)
        self.authorities: dict[str, Authority] = {}
        # CAs that would be created in check mode: leaves under them are new too.
        self.planned_authorities: dict[str, CertSpec] = {}

    def apply(self, specs: Sequence[CertSpec]) -> list[Outcome]:
        for spec in specs:
            spec.validate()
        self.check_unique(specs)
        ordered = [s for s in specs if s.kind == "ca"] + [s for s in specs if s.kind != "ca"]
        outcomes = {spec.name: self.ensure(spec) for spec in ordered}
        return [outcomes[spec.name] for spec in specs]

    def check_unique(self, specs: Sequence[CertSpec]) -> None:
        for attribute in ("name", "path"):
            seen: set[str] = set()
            for spec in specs:
                value = getattr(spec, attribute)
                if value in seen:
                    raise PkiError(
                        f"certificates: {attribute} {value!r} appears twice; each must be unique"
                    )
                seen.add(value)

    def ensure(self, spec: CertSpec) -> Outcome:
        if spec.kind == "ca":
            return self.ensure_ca(spec)
        if spec.kind == "keypair":
            return self.ensure_keypair(spec)
        return self.ensure_leaf(spec)

    def fix_modes(self, outcome: Outcome, files: Mapping[Path, int]) -> None:
        for path, mode in files.items():
            if self.store.wrong_mode(path, mode):
                outcome.changed = True
                outcome.reasons.append(f"{path.name} mode is not {mode:04o}")
                if not self.check_mode:
                    path.chmod(mode)

    def ensure_ca(self, spec: CertSpec) -> Outcome:
        outcome = Outcome(spec.name, spec.path, spec.kind)
        cert_path = self.store.file(spec.path, ".crt")
        key_path = self.store.file(spec.path, ".key")
        cert_data, key_data = self.store.read(cert_path), self.store.read(key_path)
        if cert_data is None and key_data is None:
            return self.create_ca(spec, outcome)
        if cert_data is None or key_data is None:
            present, missing = (cert_path, key_path) if key_data is None else (key_path, cert_path)
            raise PkiError(
                f"certificates[{spec.name}]: {present} exists but {missing} does not; "
                "a CA is never regenerated automatically. Restore the missing file from backup, "
                "or remove both to create a new CA (which invalidates every certificate it signed)"
            )
        cert = load_cert(cert_data, str(cert_path))
        key = load_key(key_data, str(key_path))
        if public_bytes(cert.public_key()) != public_bytes(key.public_key()):
            raise PkiError(f"certificates[{spec.name}]: {key_path} is not the key of {cert_path}")
        self.authorities[spec.path] = Authority(cert, key)
        outcome.before = outcome.after = summarize(cert)
        for reason in self.ca_drift(spec, cert, key):
            outcome.warnings.append(
                f"CA {spec.name} {reason}; it is kept because rotating a CA is a separate, "
                "explicit step"
            )
        self.fix_modes(outcome, {cert_path: CERT_MODE, key_path: KEY_MODE})
        return outcome

    def ca_drift(self, spec: CertSpec, cert: x509.Certificate, key: PrivateKey) -> list[str]:
        drift = []
        if cert.subject != spec.subject():
            drift.append(
                f"has subject {cert.subject.rfc4514_string()}, the plan asks for "
                f"{spec.subject().rfc4514_string()}"
            )
        key_mismatch = spec.key.mismatch(key)
        if key_mismatch:
            drift.append(key_mismatch)
        days_left = (cert.not_valid_after_utc - self.now).days
        if days_left < spec.renew_before_days:
            drift.append(f"expires in {days_left} days ({cert.not_valid_after_utc.isoformat()})")
        return drift

    def create_ca(self, spec: CertSpec, outcome: Outcome) -> Outcome:
        outcome.changed = True
        outcome.reasons.append("CA does not exist")
        if self.check_mode:
            self.planned_authorities[spec.path] = spec
            outcome.after = planned_summary(spec, spec.subject(), self.now, None)
            return outcome
        key = spec.key.generate()
        cert = build_certificate(
            spec,
            public_key=key.public_key(),
            issuer=spec.subject(),
            signing_key=key,
            issuer_public_key=key.public_key(),
            now=self.now,
            issuer_not_after=None,
        )
        self.store.write(self.store.file(spec.path, ".key"), key_pem(key), KEY_MODE)
        self.store.write(
            self.store.file(spec.path, ".crt"),
            cert.public_bytes(serialization.Encoding.PEM),
            CERT_MODE,
        )
        self.authorities[spec.path] = Authority(cert, key)
        outcome.after = summarize(cert)
        return outcome

    def ensure_keypair(self, spec: CertSpec) -> Outcome:
        outcome = Outcome(spec.name, spec.path, spec.kind)
        key_path = self.store.file(spec.path, ".key")
        pub_path = self.store.file(spec.path, ".pub")
        key_data = self.store.read(key_path)
        if key_data is None:
            outcome.reasons.append("key pair does not exist")
            key = spec.key.generate()
            if not self.check_mode:
                self.store.write(key_path, key_pem(key), KEY_MODE)
        else:
            key = load_key(key_data, str(key_path), signs=False)
            mismatch = spec.key.mismatch(key)
            if mismatch:
                outcome.warnings.append(
                    f"key pair {spec.name}: {mismatch}; it is kept because replacing it "
                    "invalidates every token it signed"
                )
        wanted_pub = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if self.store.read(pub_path) != wanted_pub:
            outcome.reasons.append(
                f"{pub_path.name} does not hold the public key of {key_path.name}"
            )
            if not self.check_mode:
                self.store.write(pub_path, wanted_pub, CERT_MODE)
        outcome.changed = bool(outcome.reasons)
        self.fix_modes(outcome, {key_path: KEY_MODE, pub_path: CERT_MODE})
        return outcome

    def issuer_for(
        self, spec: CertSpec
    ) -> tuple[x509.Name, datetime.datetime | None, Authority | None]:
        authority = self.authorities.get(spec.ca)
        if authority is not None:
            return authority.cert.subject, authority.cert.not_valid_after_utc, authority
        planned = self.planned_authorities.get(spec.ca)
        if planned is not None:
            return planned.subject(), None, None
        raise PkiError(
            f"certificates[{spec.name}].ca: {spec.ca!r} is not a CA of this list; "
            f"add an item with kind 'ca' and path {spec.ca!r}"
        )

    def ensure_leaf(self, spec: CertSpec) -> Outcome:
        outcome = Outcome(spec.name, spec.path, spec.kind)
        issuer, issuer_not_after, authority = self.issuer_for(spec)
        cert_path = self.store.file(spec.path, ".crt")
        key_path = self.store.file(spec.path, ".key")
        key, key_reasons = self.existing_key(spec, key_path)
        cert, cert_reasons = self.existing_cert(cert_path)
        outcome.reasons += key_reasons + cert_reasons
        if cert is not None:
            outcome.before = summarize(cert)
            outcome.reasons += self.leaf_drift(spec, cert, key, authority)
        if not outcome.reasons:
            outcome.after = outcome.before
            self.fix_modes(outcome, {cert_path: CERT_MODE, key_path: KEY_MODE})
            return outcome
        outcome.changed = True
        if self.check_mode or authority is None:
            outcome.after = planned_summary(spec, issuer, self.now, issuer_not_after)
            return outcome
        if key is None:
            key = spec.key.generate()
            self.store.write(key_path, key_pem(key), KEY_MODE)
        new_cert = build_certificate(
            spec,
            public_key=key.public_key(),
            issuer=issuer,
            signing_key=authority.key,
            issuer_public_key=authority.key.public_key(),
            now=self.now,
            issuer_not_after=issuer_not_after,
        )
        self.store.write(cert_path, new_cert.public_bytes(serialization.Encoding.PEM), CERT_MODE)
        outcome.after = summarize(new_cert)
        self.fix_modes(outcome, {cert_path: CERT_MODE, key_path: KEY_MODE})
        return outcome

    def existing_key(self, spec: CertSpec, key_path: Path) -> tuple[PrivateKey | None, list[str]]:
        """The leaf key to keep, or None with the reason a new one is needed."""
        data = self.store.read(key_path)
        if data is None:
            return None, ["key does not exist"]
        try:
            key = load_key(data, str(key_path), signs=False)
        except PkiError:
            return None, ["key is not readable"]
        mismatch = spec.key.mismatch(key)
        if mismatch:
            return None, [mismatch]
        return key, []

    def existing_cert(self, cert_path: Path) -> tuple[x509.Certificate | None, list[str]]:
        data = self.store.read(cert_path)
        if data is None:
            return None, ["certificate does not exist"]
        try:
            return load_cert(data, str(cert_path)), []
        except PkiError:
            return None, ["certificate is not readable"]

    def leaf_drift(
        self,
        spec: CertSpec,
        cert: x509.Certificate,
        key: PrivateKey | None,
        authority: Authority | None,
    ) -> list[str]:
        """Every reason the existing leaf no longer matches its spec (empty: keep it)."""
        reasons = []
        if key is not None and public_bytes(cert.public_key()) != public_bytes(key.public_key()):
            reasons.append("certificate does not match the key")
        if cert.subject != spec.subject():
            current, wanted = cert.subject.rfc4514_string(), spec.subject().rfc4514_string()
            reasons.append(f"subject is {current}, want {wanted}")
        current_sans, wanted_sans = cert_sans(cert), spec.sans
        if current_sans != wanted_sans:
            added = sorted(set(wanted_sans) - set(current_sans))
            removed = sorted(set(current_sans) - set(wanted_sans))
            reasons.append(f"SANs differ (add {added}, remove {removed})")
        if cert_usages(cert) != sorted(set(spec.usages)):
            reasons.append(f"usages are {cert_usages(cert)}, want {sorted(set(spec.usages))}")
        if authority is None:
            reasons.append(f"CA {spec.ca} is new")
        else:
            reasons += self.issuer_drift(spec, cert, authority)
        return reasons

    def issuer_drift(
        self, spec: CertSpec, cert: x509.Certificate, authority: Authority
    ) -> list[str]:
        if cert.issuer != authority.cert.subject:
            current, wanted = cert.issuer.rfc4514_string(), authority.cert.subject.rfc4514_string()
            return [f"issuer is {current}, want {wanted}"]
        try:
            cert.verify_directly_issued_by(authority.cert)
        except (InvalidSignature, ValueError, TypeError):
            return [f"signature does not verify with CA {spec.ca} (the CA was replaced)"]
        renew_at = cert.not_valid_after_utc - datetime.timedelta(days=spec.renew_before_days)
        # Reissuing only helps when the CA allows a later expiry than the current one.
        ca_allows_later = authority.cert.not_valid_after_utc > cert.not_valid_after_utc
        if self.now >= renew_at and ca_allows_later:
            return [f"expires {cert.not_valid_after_utc.isoformat()}, inside the renew window"]
        return []


def spec_from_mapping(
    item: Mapping[str, Any], position: int, defaults: Mapping[str, Any]
) -> CertSpec:
    """A CertSpec from one certificates[] entry; missing fields come from defaults."""
    if not isinstance(item, Mapping):
        raise PkiError(f"certificates[{position}]: expected a mapping, got {item!r}")
    merged = {**defaults, **{key: value for key, value in item.items() if value is not None}}
    name = merged.get("name") or merged.get("path")
    if not isinstance(name, str) or not name:
        raise PkiError(f"certificates[{position}].name: expected a non-empty string, got {name!r}")
    return CertSpec(
        name=name,
        path=text_field(merged, "path", name),
        kind=text_field(merged, "kind", name, "leaf"),
        common_name=text_field(merged, "common_name", name, ""),
        organizations=text_list(merged, "organizations", name),
        dns_names=text_list(merged, "dns_names", name),
        ip_addresses=text_list(merged, "ip_addresses", name),
        usages=text_list(merged, "usages", name),
        ca=text_field(merged, "ca", name, ""),
        valid_days=int_field(merged, "valid_days", name, 365),
        renew_before_days=int_field(merged, "renew_before_days", name, 30),
        key=KeySpec(
            type=text_field(merged, "key_type", name, "ecdsa"),
            rsa_bits=int_field(merged, "rsa_bits", name, 2048),
        ),
    )


def text_field(item: Mapping[str, Any], key: str, name: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise PkiError(f"certificates[{name}].{key}: expected a string, got {value!r}")
    return value


def text_list(item: Mapping[str, Any], key: str, name: str) -> tuple[str, ...]:
    value = item.get(key) or []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise PkiError(f"certificates[{name}].{key}: expected a list of strings, got {value!r}")
    for entry in value:
        if not isinstance(entry, str) or not entry:
            raise PkiError(f"certificates[{name}].{key}: entry {entry!r} is not a non-empty string")
    return tuple(value)


def int_field(item: Mapping[str, Any], key: str, name: str, default: int) -> int:
    value = item.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PkiError(
            f"certificates[{name}].{key}: expected a non-negative integer, got {value!r}"
        )
    return value

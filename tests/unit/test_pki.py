"""PKI backend: creation, idempotence, every regeneration reason, modes, openssl verification."""

from __future__ import annotations

import datetime
import stat
import subprocess
from pathlib import Path

import pytest
from ansible_collections.kubesmith.cluster.plugins.module_utils.pki import (
    CertSpec,
    KeySpec,
    PkiError,
    PkiManager,
    PkiStore,
    spec_from_mapping,
)
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)

CA = CertSpec(name="ca", path="ca", kind="ca", common_name="kubernetes-ca", valid_days=3650)
ETCD_CA = CertSpec(
    name="etcd-ca", path="etcd/ca", kind="ca", common_name="etcd-ca", valid_days=3650
)
SERVER = CertSpec(
    name="apiserver",
    path="apiserver",
    common_name="kube-apiserver",
    dns_names=("kubernetes", "cp1"),
    ip_addresses=("172.30.10.21", "127.0.0.1"),
    usages=("server",),
    ca="ca",
)
CLIENT = CertSpec(
    name="admin",
    path="users/admin",
    common_name="kubernetes-admin",
    organizations=("system:masters",),
    usages=("client",),
    ca="ca",
)
SA = CertSpec(name="sa", path="sa", kind="keypair")
PLAN = [SERVER, CLIENT, CA, ETCD_CA, SA]


def run(tmp_path: Path, specs, check_mode: bool = False, now: datetime.datetime = NOW):
    return PkiManager(PkiStore(tmp_path), check_mode=check_mode, now=now).apply(specs)


def changed(outcomes) -> list[str]:
    return [outcome.name for outcome in outcomes if outcome.changed]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def test_check_apply_check_apply(tmp_path: Path) -> None:
    first_check = run(tmp_path, PLAN, check_mode=True)
    assert sorted(changed(first_check)) == ["admin", "apiserver", "ca", "etcd-ca", "sa"]
    assert list(tmp_path.iterdir()) == [], "check mode must not write"

    first_apply = run(tmp_path, PLAN)
    assert sorted(changed(first_apply)) == ["admin", "apiserver", "ca", "etcd-ca", "sa"]
    # Results come back in the order given even though CAs are handled first.
    assert [o.name for o in first_apply] == ["apiserver", "admin", "ca", "etcd-ca", "sa"]

    assert changed(run(tmp_path, PLAN, check_mode=True)) == []
    second_apply = run(tmp_path, PLAN)
    assert changed(second_apply) == []
    assert all(o.before == o.after for o in second_apply)


def test_check_mode_predicts_what_apply_writes(tmp_path: Path) -> None:
    predicted = {o.name: o.after for o in run(tmp_path, PLAN, check_mode=True)}
    written = {o.name: o.after for o in run(tmp_path, PLAN)}
    for name in ("apiserver", "admin", "ca"):
        assert predicted[name] == written[name]


def test_files_and_modes(tmp_path: Path) -> None:
    run(tmp_path, PLAN)
    for key in ("ca.key", "etcd/ca.key", "apiserver.key", "users/admin.key", "sa.key"):
        assert mode(tmp_path / key) == 0o600, key
    for cert in ("ca.crt", "etcd/ca.crt", "apiserver.crt", "users/admin.crt", "sa.pub"):
        assert mode(tmp_path / cert) == 0o644, cert
    assert mode(tmp_path / "etcd") == 0o700
    leftovers = [p.name for p in tmp_path.rglob(".*")]
    assert leftovers == [], "atomic writes must not leave temporary files"


def test_wrong_mode_is_fixed_and_reported(tmp_path: Path) -> None:
    run(tmp_path, PLAN)
    (tmp_path / "apiserver.key").chmod(0o644)
    (tmp_path / "ca.key").chmod(0o640)
    outcomes = {o.name: o for o in run(tmp_path, PLAN)}
    assert outcomes["apiserver"].changed and outcomes["ca"].changed
    assert "apiserver.key mode is not 0600" in outcomes["apiserver"].reasons
    assert mode(tmp_path / "apiserver.key") == 0o600
    assert mode(tmp_path / "ca.key") == 0o600
    assert changed(run(tmp_path, PLAN)) == []


def test_openssl_verifies_chain_purpose_and_sans(tmp_path: Path) -> None:
    run(tmp_path, PLAN, now=datetime.datetime.now(datetime.UTC))
    ca, server, client = (str(tmp_path / f) for f in ("ca.crt", "apiserver.crt", "users/admin.crt"))
    ok = openssl(
        "verify", "-CAfile", ca, "-purpose", "sslserver", "-verify_ip", "172.30.10.21", server
    )
    assert ok.returncode == 0, ok.stderr
    assert (
        openssl("verify", "-CAfile", ca, "-verify_hostname", "kubernetes", server).returncode == 0
    )
    wrong_ip = openssl("verify", "-CAfile", ca, "-verify_ip", "172.30.10.99", server)
    assert wrong_ip.returncode != 0
    assert openssl("verify", "-CAfile", ca, "-purpose", "sslclient", client).returncode == 0
    assert openssl("verify", "-CAfile", ca, "-purpose", "sslclient", server).returncode != 0
    assert openssl("verify", "-CAfile", ca, "-purpose", "sslserver", client).returncode != 0
    etcd_ca = str(tmp_path / "etcd/ca.crt")
    assert openssl("verify", "-CAfile", etcd_ca, server).returncode != 0
    subject = openssl("x509", "-in", client, "-noout", "-subject", "-nameopt", "RFC2253").stdout
    assert subject.strip() == "subject=CN=kubernetes-admin,O=system:masters"


def test_key_types(tmp_path: Path) -> None:
    rsa_server = CertSpec(**{**SERVER.__dict__, "key": KeySpec("rsa", 3072)})
    run(tmp_path, [CA, rsa_server])
    ca_key = load_pem_private_key((tmp_path / "ca.key").read_bytes(), None)
    server_key = load_pem_private_key((tmp_path / "apiserver.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey) and ca_key.curve.name == "secp256r1"
    assert isinstance(server_key, rsa.RSAPrivateKey) and server_key.key_size == 3072
    key_usage = load(tmp_path / "apiserver.crt").extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.value.key_encipherment and key_usage.value.digital_signature


def test_san_change_reissues_keeping_the_key(tmp_path: Path) -> None:
    run(tmp_path, [CA, SERVER, CLIENT])
    key_before = (tmp_path / "apiserver.key").read_bytes()
    moved = CertSpec(**{**SERVER.__dict__, "ip_addresses": ("172.30.10.24", "127.0.0.1")})
    outcomes = {o.name: o for o in run(tmp_path, [CA, moved, CLIENT])}
    assert changed(outcomes.values()) == ["apiserver"]
    reason = outcomes["apiserver"].reasons[0]
    assert "IP:172.30.10.24" in reason and "IP:172.30.10.21" in reason
    assert (tmp_path / "apiserver.key").read_bytes() == key_before
    assert "IP:172.30.10.24" in outcomes["apiserver"].after.sans
    assert "IP:172.30.10.21" in outcomes["apiserver"].before.sans


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"common_name": "other"}, "subject is CN=kube-apiserver, want CN=other"),
        ({"organizations": ("g",)}, "subject is"),
        ({"usages": ("server", "client")}, "usages are ['server'], want ['client', 'server']"),
        ({"key": KeySpec("rsa", 2048)}, "key is not RSA"),
    ],
)
def test_regeneration_reasons(tmp_path: Path, change, reason: str) -> None:
    run(tmp_path, [CA, SERVER])
    spec = CertSpec(**{**SERVER.__dict__, **change})
    outcome = run(tmp_path, [CA, spec])[1]
    assert outcome.changed
    assert any(r.startswith(reason) for r in outcome.reasons), outcome.reasons
    assert changed(run(tmp_path, [CA, spec])) == []


def test_missing_or_broken_leaf_files(tmp_path: Path) -> None:
    run(tmp_path, [CA, SERVER])
    (tmp_path / "apiserver.key").unlink()
    outcome = run(tmp_path, [CA, SERVER])[1]
    assert outcome.reasons[0] == "key does not exist"
    assert "certificate does not match the key" not in outcome.reasons
    (tmp_path / "apiserver.crt").write_text("garbage")
    assert run(tmp_path, [CA, SERVER])[1].reasons == ["certificate is not readable"]
    (tmp_path / "apiserver.key").write_text("garbage")
    assert run(tmp_path, [CA, SERVER])[1].reasons == ["key is not readable"]
    assert changed(run(tmp_path, [CA, SERVER])) == []


def test_key_swapped_under_the_certificate(tmp_path: Path) -> None:
    run(tmp_path, [CA, SERVER, CLIENT])
    (tmp_path / "apiserver.key").write_bytes((tmp_path / "users/admin.key").read_bytes())
    assert "certificate does not match the key" in run(tmp_path, [CA, SERVER])[1].reasons


def test_replaced_ca_reissues_leaves(tmp_path: Path) -> None:
    run(tmp_path, [CA, SERVER])
    (tmp_path / "ca.crt").unlink()
    (tmp_path / "ca.key").unlink()
    outcomes = run(tmp_path, [CA, SERVER])
    assert changed(outcomes) == ["ca", "apiserver"]
    assert outcomes[1].reasons == ["signature does not verify with CA ca (the CA was replaced)"]


def test_leaf_from_another_issuer(tmp_path: Path) -> None:
    run(tmp_path, [CA, ETCD_CA, SERVER])
    moved = CertSpec(**{**SERVER.__dict__, "ca": "etcd/ca"})
    outcome = run(tmp_path, [CA, ETCD_CA, moved])[2]
    assert outcome.reasons == ["issuer is CN=kubernetes-ca, want CN=etcd-ca"]


def test_renew_window(tmp_path: Path) -> None:
    run(tmp_path, [CA, SERVER])
    not_after = load(tmp_path / "apiserver.crt").not_valid_after_utc
    before_window = not_after - datetime.timedelta(days=31)
    assert changed(run(tmp_path, [CA, SERVER], now=before_window)) == []
    inside = not_after - datetime.timedelta(days=29)
    outcome = run(tmp_path, [CA, SERVER], now=inside)[1]
    assert outcome.changed and "inside the renew window" in outcome.reasons[0]
    assert load(tmp_path / "apiserver.crt").not_valid_after_utc > not_after
    assert changed(run(tmp_path, [CA, SERVER], now=inside)) == []


def test_leaf_never_outlives_its_ca_and_does_not_churn(tmp_path: Path) -> None:
    short_ca = CertSpec(**{**CA.__dict__, "valid_days": 100})
    run(tmp_path, [short_ca, SERVER])
    ca_end = load(tmp_path / "ca.crt").not_valid_after_utc
    assert load(tmp_path / "apiserver.crt").not_valid_after_utc == ca_end
    late = ca_end - datetime.timedelta(days=10)
    outcomes = run(tmp_path, [short_ca, SERVER], now=late)
    assert changed(outcomes) == [], "reissuing cannot extend past the CA: leave it"
    assert any("expires in 10 days" in w for w in outcomes[0].warnings)


def test_existing_ca_is_never_regenerated(tmp_path: Path) -> None:
    run(tmp_path, [CA])
    ca_before = (tmp_path / "ca.crt").read_bytes()
    drifted = CertSpec(**{**CA.__dict__, "common_name": "renamed", "key": KeySpec("rsa", 2048)})
    outcome = run(tmp_path, [drifted])[0]
    assert not outcome.changed
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    assert any("has subject CN=kubernetes-ca" in w for w in outcome.warnings)
    assert any("key is not RSA" in w for w in outcome.warnings)


@pytest.mark.parametrize("missing", ["ca.key", "ca.crt"])
def test_half_a_ca_is_an_error(tmp_path: Path, missing: str) -> None:
    run(tmp_path, [CA])
    (tmp_path / missing).unlink()
    with pytest.raises(PkiError, match="never regenerated automatically"):
        run(tmp_path, [CA])
    with pytest.raises(PkiError, match="never regenerated automatically"):
        run(tmp_path, [CA], check_mode=True)


def test_ca_key_that_does_not_belong_to_the_cert(tmp_path: Path) -> None:
    run(tmp_path, [CA, ETCD_CA])
    (tmp_path / "ca.key").write_bytes((tmp_path / "etcd/ca.key").read_bytes())
    with pytest.raises(PkiError, match=r"ca\.key is not the key of"):
        run(tmp_path, [CA])


def test_unreadable_ca_key(tmp_path: Path) -> None:
    run(tmp_path, [CA])
    (tmp_path / "ca.key").write_text("not a key")
    with pytest.raises(PkiError, match="not a readable unencrypted PEM private key"):
        run(tmp_path, [CA])


def test_keypair(tmp_path: Path) -> None:
    run(tmp_path, [SA])
    key_before = (tmp_path / "sa.key").read_bytes()
    (tmp_path / "sa.pub").write_text("tampered")
    outcome = run(tmp_path, [SA])[0]
    assert outcome.reasons == ["sa.pub does not hold the public key of sa.key"]
    assert (tmp_path / "sa.key").read_bytes() == key_before
    rsa_sa = CertSpec(name="sa", path="sa", kind="keypair", key=KeySpec("rsa", 2048))
    kept = run(tmp_path, [rsa_sa])[0]
    assert not kept.changed and "key is not RSA" in kept.warnings[0]


def test_check_mode_under_a_new_ca_predicts_every_leaf(tmp_path: Path) -> None:
    outcomes = run(tmp_path, [CA, SERVER], check_mode=True)
    assert outcomes[1].reasons[-1] == "certificate does not exist"
    assert outcomes[1].after.issuer == "CN=kubernetes-ca"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (CertSpec(name="x", path="x", kind="nope", common_name="x"), "x].kind: 'nope'"),
        (CertSpec(name="x", path="../x", common_name="x"), "x].path: '../x' must be a relative"),
        (CertSpec(name="x", path="/x", common_name="x"), "x].path: '/x'"),
        (CertSpec(name="x", path="x", common_name=""), "x].common_name: must not be empty"),
        (CertSpec(name="x", path="x", common_name="x", key=KeySpec("dsa")), "x].key_type: 'dsa'"),
        (
            CertSpec(name="x", path="x", common_name="x", key=KeySpec("rsa", 1024)),
            "x].rsa_bits: 1024",
        ),
        (
            CertSpec(name="x", path="x", common_name="x", valid_days=30, renew_before_days=30),
            "x].valid_days: 30 must be larger than renew_before_days",
        ),
        (CertSpec(name="x", path="x", common_name="x", usages=("server",)), "x].ca: a leaf"),
        (CertSpec(name="x", path="x", common_name="x", ca="ca"), "x].usages: []"),
        (
            CertSpec(name="x", path="x", common_name="x", ca="ca", usages=("email",)),
            "x].usages: ['email']",
        ),
        (
            CertSpec(
                name="x",
                path="x",
                common_name="x",
                ca="ca",
                usages=("server",),
                ip_addresses=("cp1",),
            ),
            "x].ip_addresses: 'cp1' is not an IP address",
        ),
        (
            CertSpec(name="x", path="x", common_name="x", ca="nope", usages=("server",)),
            "x].ca: 'nope' is not a CA of this list",
        ),
    ],
)
def test_invalid_specs(tmp_path: Path, spec: CertSpec, message: str) -> None:
    with pytest.raises(PkiError) as error:
        run(tmp_path, [CA, spec])
    assert message in str(error.value)
    assert not (tmp_path / "x.crt").exists()


def test_duplicates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="path 'apiserver' appears twice"):
        run(tmp_path, [CA, SERVER, CertSpec(**{**SERVER.__dict__, "name": "copy"})])
    with pytest.raises(PkiError, match="name 'apiserver' appears twice"):
        run(tmp_path, [CA, SERVER, CertSpec(**{**SERVER.__dict__, "path": "copy"})])


def test_spec_from_mapping_defaults_and_errors() -> None:
    defaults = {"key_type": "rsa", "rsa_bits": 4096, "valid_days": 90, "renew_before_days": 10}
    spec = spec_from_mapping(
        {
            "path": "users/x",
            "common_name": "x",
            "ca": "ca",
            "usages": ["client"],
            "valid_days": None,
        },
        0,
        defaults,
    )
    assert spec.name == "users/x" and spec.valid_days == 90 and spec.key == KeySpec("rsa", 4096)
    with pytest.raises(PkiError, match=r"certificates\[3\]: expected a mapping"):
        spec_from_mapping("x", 3, defaults)  # type: ignore[arg-type]
    with pytest.raises(PkiError, match=r"certificates\[x\].dns_names: expected a list"):
        spec_from_mapping({"path": "x", "dns_names": "a"}, 0, defaults)
    with pytest.raises(PkiError, match=r"certificates\[x\].valid_days: expected a non-negative"):
        spec_from_mapping({"path": "x", "valid_days": -1}, 0, defaults)
    with pytest.raises(PkiError, match=r"certificates\[0\].name: expected a non-empty"):
        spec_from_mapping({"path": ""}, 0, defaults)

"""Decide which kubelet serving-certificate requests are safe to approve.

Kubernetes never approves kubernetes.io/kubelet-serving CSRs by itself: anyone holding a node
identity could otherwise get a certificate for any name. A request is approved only when a node
asks, as itself, for a serving certificate that names nothing but the addresses its own Node
object reports (status.addresses).

One implementation, two callers: the Ansible filter kubesmith.cluster.serving_csr_decisions
(end of stage 70) and the approver daemon on the control-plane hosts (csr_approver.py), which
runs with Debian's python3 and nothing else. So this file uses the standard library only and
reads the PKCS#10 request with its own small DER reader; the apiserver checked the request's
signature when the CSR was created, and spec.request cannot change afterwards.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIGNER = "kubernetes.io/kubelet-serving"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
# What Kubernetes' own kubelet-serving signer accepts: with or without key encipherment (RSA).
SERVING_USAGES = (
    frozenset({"digital signature", "key encipherment", "server auth"}),
    frozenset({"digital signature", "server auth"}),
)
NODE_IP_TYPES = frozenset({"InternalIP", "ExternalIP"})
NODE_DNS_TYPES = frozenset({"Hostname", "InternalDNS", "ExternalDNS"})

PEM_BEGIN = "-----BEGIN CERTIFICATE REQUEST-----"
PEM_END = "-----END CERTIFICATE REQUEST-----"
OID_COMMON_NAME = "2.5.4.3"
OID_ORGANIZATION = "2.5.4.10"
OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
OID_SUBJECT_ALT_NAME = "2.5.29.17"

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_SEQUENCE = 0x30
TAG_SET = 0x31
TAG_ATTRIBUTES = 0xA0
STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}
# GeneralName choices (RFC 5280), context-specific tags as they appear in DER.
SAN_DNS = 0x82
SAN_IP = 0x87
SAN_KINDS = {
    0xA0: "otherName",
    0x81: "email",
    0xA3: "x400Address",
    0xA4: "directoryName",
    0xA5: "ediPartyName",
    0x86: "URI",
    0x88: "registeredID",
}


class CsrError(ValueError):
    """Bad input; the message names the field, its value and the fix."""


@dataclass(frozen=True)
class RequestedIdentity:
    """What a certificate request asks for."""

    common_names: tuple[str, ...]
    organizations: tuple[str, ...]
    other_subject: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    other_sans: tuple[str, ...]
    other_extensions: tuple[str, ...]


@dataclass(frozen=True)
class NodeAddresses:
    """The names and IPs a Node object reports for itself."""

    ips: frozenset[str]
    dns_names: frozenset[str]


def der_element(data: bytes, offset: int, field: str) -> tuple[int, bytes, int]:
    """(tag, content, next offset) of the DER element at offset."""
    if offset + 2 > len(data):
        raise CsrError(f"{field}: truncated DER element at byte {offset}")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise CsrError(f"{field}: unsupported DER length at byte {offset}")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise CsrError(f"{field}: DER element at byte {offset} runs past the end")
    return tag, data[start:end], end


def der_children(data: bytes, field: str) -> list[tuple[int, bytes]]:
    """Every (tag, content) inside a constructed element's content."""
    children: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        tag, content, offset = der_element(data, offset, field)
        children.append((tag, content))
    return children


def der_expect(element: tuple[int, bytes], tag: int, field: str) -> bytes:
    if element[0] != tag:
        raise CsrError(f"{field}: expected DER tag 0x{tag:02x}, found 0x{element[0]:02x}")
    return element[1]


def oid_text(content: bytes, field: str) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content."""
    if not content or content[-1] & 0x80:
        raise CsrError(f"{field}: malformed object identifier {content.hex()}")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


def der_string(element: tuple[int, bytes], field: str) -> str:
    encoding = STRING_TAGS.get(element[0])
    if encoding is None:
        raise CsrError(f"{field}: DER tag 0x{element[0]:02x} is not a supported string type")
    try:
        return element[1].decode(encoding)
    except UnicodeDecodeError as exc:
        raise CsrError(f"{field}: not valid {encoding} text") from exc


def subject_attributes(name: bytes) -> list[tuple[str, str]]:
    """[(OID, value)] of a Name, in order."""
    attributes = []
    for rdn in der_children(name, "subject"):
        for pair in der_children(der_expect(rdn, TAG_SET, "subject"), "subject"):
            oid, value = der_children(der_expect(pair, TAG_SEQUENCE, "subject"), "subject")
            attributes.append(
                (
                    oid_text(der_expect(oid, TAG_OID, "subject"), "subject"),
                    der_string(value, "subject"),
                )
            )
    return attributes


def requested_extensions(attributes: bytes) -> list[tuple[str, bytes]]:
    """[(OID, extnValue)] from the extensionRequest attribute; other attributes are ignored."""
    extensions: list[tuple[str, bytes]] = []
    for attribute in der_children(attributes, "attributes"):
        kind, values = der_children(der_expect(attribute, TAG_SEQUENCE, "attributes"), "attributes")
        if oid_text(der_expect(kind, TAG_OID, "attributes"), "attributes") != OID_EXTENSION_REQUEST:
            continue
        for value in der_children(der_expect(values, TAG_SET, "attributes"), "attributes"):
            for extension in der_children(der_expect(value, TAG_SEQUENCE, "extensions"), "ext"):
                parts = der_children(der_expect(extension, TAG_SEQUENCE, "extensions"), "ext")
                if len(parts) == 3:
                    der_expect(parts[1], TAG_BOOLEAN, "extensions.critical")
                elif len(parts) != 2:
                    raise CsrError(f"extensions: an extension has {len(parts)} parts, not 2 or 3")
                oid = oid_text(der_expect(parts[0], TAG_OID, "extensions"), "extensions")
                extensions.append((oid, der_expect(parts[-1], TAG_OCTET_STRING, "extensions")))
    return extensions


def alt_names(value: bytes) -> tuple[list[str], list[str], list[str]]:
    """(DNS names, IPs, descriptions of every other name) of a subjectAltName value."""
    _tag, names, end = der_element(value, 0, "subjectAltName")
    if end != len(value) or value[0] != TAG_SEQUENCE:
        raise CsrError("subjectAltName: not a single DER SEQUENCE of names")
    dns: list[str] = []
    ips: list[str] = []
    others: list[str] = []
    for tag, content in der_children(names, "subjectAltName"):
        if tag == SAN_DNS:
            dns.append(der_string((0x16, content), "subjectAltName DNS name"))
        elif tag == SAN_IP:
            if len(content) not in (4, 16):
                raise CsrError(f"subjectAltName: IP address of {len(content)} bytes")
            ips.append(str(ipaddress.ip_address(content)))
        else:
            others.append(SAN_KINDS.get(tag, f"tag 0x{tag:02x}"))
    return dns, ips, others


def request_der(request_b64: str) -> bytes:
    """The DER of spec.request (base64 of one PEM CERTIFICATE REQUEST block)."""
    try:
        pem = base64.b64decode(request_b64, validate=True).decode("ascii").strip()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise CsrError(f"spec.request: not base64 of a PEM certificate request ({exc})") from exc
    if not pem.startswith(PEM_BEGIN) or not pem.endswith(PEM_END):
        raise CsrError("spec.request: not one PEM block of type CERTIFICATE REQUEST")
    body = pem[len(PEM_BEGIN) : -len(PEM_END)]
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except binascii.Error as exc:
        raise CsrError(f"spec.request: the PEM body is not base64 ({exc})") from exc


def requested_identity(request_b64: str) -> RequestedIdentity:
    """Subject, SANs and extensions of a CSR as the API returns it (base64 of the PEM)."""
    der = request_der(request_b64)
    tag, request, end = der_element(der, 0, "spec.request")
    if tag != TAG_SEQUENCE or end != len(der):
        raise CsrError("spec.request: the PEM holds no single DER certification request")
    info = der_expect(der_children(request, "spec.request")[0], TAG_SEQUENCE, "requestInfo")
    parts = der_children(info, "requestInfo")
    if len(parts) != 4 or parts[3][0] != TAG_ATTRIBUTES:
        raise CsrError("requestInfo: expected version, subject, public key and attributes")
    der_expect(parts[0], TAG_INTEGER, "requestInfo.version")
    der_expect(parts[2], TAG_SEQUENCE, "requestInfo.subjectPKInfo")
    subject = subject_attributes(der_expect(parts[1], TAG_SEQUENCE, "requestInfo.subject"))
    extensions = requested_extensions(parts[3][1])
    sans = [value for oid, value in extensions if oid == OID_SUBJECT_ALT_NAME]
    dns, ips, other_sans = alt_names(sans[0]) if sans else ([], [], [])
    # A second subjectAltName extension counts as a foreign extension.
    other_extensions = [oid for oid, _ in extensions if oid != OID_SUBJECT_ALT_NAME]
    other_extensions += [OID_SUBJECT_ALT_NAME] * max(len(sans) - 1, 0)
    return RequestedIdentity(
        common_names=tuple(v for oid, v in subject if oid == OID_COMMON_NAME),
        organizations=tuple(v for oid, v in subject if oid == OID_ORGANIZATION),
        other_subject=tuple(
            oid for oid, _ in subject if oid not in (OID_COMMON_NAME, OID_ORGANIZATION)
        ),
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
        other_sans=tuple(other_sans),
        other_extensions=tuple(other_extensions),
    )


def node_addresses(node: Mapping[str, Any]) -> NodeAddresses:
    """IPs (InternalIP, ExternalIP) and names (Hostname, *DNS, the Node's name) of a Node."""
    addresses = (node.get("status") or {}).get("addresses") or []
    ips: set[str] = set()
    names = {str((node.get("metadata") or {}).get("name", "")).lower()} - {""}
    for address in addresses:
        kind, value = address.get("type"), str(address.get("address", ""))
        if kind in NODE_IP_TYPES:
            try:
                ips.add(str(ipaddress.ip_address(value)))
            except ValueError:
                continue
        elif kind in NODE_DNS_TYPES and value:
            names.add(value.lower())
    return NodeAddresses(ips=frozenset(ips), dns_names=frozenset(names))


def node_name(spec: Mapping[str, Any]) -> str | None:
    """The node a CSR comes from (system:node:<name>), or None when a node did not send it."""
    username = str(spec.get("username", ""))
    name = username.removeprefix(NODE_PREFIX)
    return name if username.startswith(NODE_PREFIX) and name else None


def requester_refusal(spec: Mapping[str, Any]) -> str | None:
    username = spec.get("username", "")
    if node_name(spec) is None:
        return f"requested by {username!r}, which is not a node identity system:node:<name>"
    if NODES_GROUP not in (spec.get("groups") or []):
        return f"requester {username!r} is not in group {NODES_GROUP}"
    usages = frozenset(spec.get("usages") or [])
    if usages not in SERVING_USAGES:
        return (
            f"usages {sorted(usages)} are not a kubelet serving certificate's "
            "(digital signature, server auth, optionally key encipherment)"
        )
    return None


def subject_refusal(identity: RequestedIdentity, username: str) -> str | None:
    if identity.common_names != (username,) or identity.organizations != (NODES_GROUP,):
        return (
            f"subject CN={list(identity.common_names)} O={list(identity.organizations)} is not "
            f"CN={username} O={NODES_GROUP}"
        )
    if identity.other_subject:
        return f"subject has attributes besides CN and O: {list(identity.other_subject)}"
    if identity.other_extensions:
        return f"asks for extensions besides one subjectAltName: {list(identity.other_extensions)}"
    return None


def names_refusal(identity: RequestedIdentity, name: str, node: NodeAddresses) -> str | None:
    if identity.other_sans:
        return f"asks for names other than DNS names and IPs: {list(identity.other_sans)}"
    if not identity.dns_names and not identity.ip_addresses:
        return "asks for no DNS name or IP address"
    foreign_ips = sorted(set(identity.ip_addresses) - node.ips)
    if foreign_ips:
        return (
            f"IP addresses {foreign_ips} are not among Node {name}'s InternalIP/ExternalIP "
            f"{sorted(node.ips)}"
        )
    foreign_dns = sorted({dns.lower() for dns in identity.dns_names} - node.dns_names)
    if foreign_dns:
        return (
            f"DNS names {foreign_dns} are not among Node {name}'s name and Hostname/InternalDNS/"
            f"ExternalDNS {sorted(node.dns_names)}"
        )
    return None


def refusal(csr: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why this serving CSR must not be approved, or None when it is safe.

    nodes: {name: Node object} with at least the requesting node when it exists.
    """
    spec = csr.get("spec") or {}
    reason = requester_refusal(spec)
    if reason is not None:
        return reason
    name = str(node_name(spec))
    node = nodes.get(name)
    if node is None:
        return f"Node {name} does not exist"
    try:
        identity = requested_identity(str(spec.get("request", "")))
    except CsrError as exc:
        return f"unreadable request: {exc}"
    return subject_refusal(identity, NODE_PREFIX + name) or names_refusal(
        identity, name, node_addresses(node)
    )


def is_pending(csr: Mapping[str, Any]) -> bool:
    conditions = (csr.get("status") or {}).get("conditions") or []
    return not any(c.get("type") in ("Approved", "Denied", "Failed") for c in conditions)


def pending_serving(csr_list: Any) -> list[Mapping[str, Any]]:
    """The undecided kubernetes.io/kubelet-serving CSRs of a CSR list, by name."""
    if not isinstance(csr_list, Mapping) or not isinstance(csr_list.get("items"), list):
        raise CsrError(
            "csr list: expected a CertificateSigningRequestList (`kubectl get csr -o json`, "
            f"a mapping with items), got {type(csr_list).__name__}"
        )
    found = [
        csr
        for csr in csr_list["items"]
        if isinstance(csr, Mapping)
        and (csr.get("spec") or {}).get("signerName") == SIGNER
        and is_pending(csr)
    ]
    return sorted(found, key=csr_name)


def csr_name(csr: Mapping[str, Any]) -> str:
    return str((csr.get("metadata") or {}).get("name", ""))


def node_table(node_list: Any) -> dict[str, Mapping[str, Any]]:
    """{name: Node} from a NodeList (`kubectl get nodes -o json`)."""
    if not isinstance(node_list, Mapping) or not isinstance(node_list.get("items"), list):
        raise CsrError(
            "node list: expected a NodeList (`kubectl get nodes -o json`, a mapping with "
            f"items), got {type(node_list).__name__}"
        )
    table: dict[str, Mapping[str, Any]] = {}
    for index, node in enumerate(node_list["items"]):
        name = (node.get("metadata") or {}).get("name") if isinstance(node, Mapping) else None
        if not name:
            raise CsrError(f"node list items[{index}]: {node!r} is not a Node with metadata.name")
        table[str(name)] = node
    return table


def serving_csr_decisions(csr_list: Any, node_list: Any) -> dict[str, Any]:
    """{approve: [names], refuse: [{name, reason}]} for the pending kubelet serving CSRs."""
    nodes = node_table(node_list)
    approve: list[str] = []
    refuse: list[dict[str, str]] = []
    for csr in pending_serving(csr_list):
        reason = refusal(csr, nodes)
        if reason is None:
            approve.append(csr_name(csr))
        else:
            refuse.append({"name": csr_name(csr), "reason": reason})
    return {"approve": approve, "refuse": refuse}

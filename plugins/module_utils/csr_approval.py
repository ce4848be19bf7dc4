"""Decide which kubelet serving-certificate requests are safe to approve.

Kubernetes never approves kubernetes.io/kubelet-serving CSRs by itself: anyone holding a node
identity could otherwise get a certificate for any name. A request is approved only when it
comes from an inventory node (username system:node:<name>), asks for exactly that identity
(CN system:node:<name>, O system:nodes) and its DNS names and IP addresses are that node's own
name and inventory IP.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

SIGNER = "kubernetes.io/kubelet-serving"
NODE_PREFIX = "system:node:"
REQUIRED_USAGES = {"server auth"}
ALLOWED_USAGES = {"digital signature", "key encipherment", "server auth"}


class CsrError(ValueError):
    """Bad input; the message names the field, its value and the fix."""


def node_table(nodes: Iterable[Any]) -> dict[str, str]:
    """{name: ip} from [{name, ip}], with each IP normalised."""
    table: dict[str, str] = {}
    for index, node in enumerate(nodes):
        if not isinstance(node, Mapping) or not node.get("name") or not node.get("ip"):
            raise CsrError(f"nodes[{index}]: {node!r} must be a mapping with name and ip")
        try:
            table[str(node["name"])] = str(ipaddress.ip_address(str(node["ip"])))
        except ValueError as exc:
            raise CsrError(f"nodes[{index}].ip: {node['ip']!r} is not an IP address") from exc
    return table


def requested_identity(request_b64: str) -> dict[str, Any]:
    """CN, O, DNS names and IPs of a CSR as the API returns it (base64 of the PEM)."""
    try:
        pem = base64.b64decode(request_b64, validate=True)
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise CsrError(f"spec.request: not a base64 PEM certificate request ({exc})") from exc
    subject = csr.subject
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = sorted(sans.get_values_for_type(x509.DNSName))
        ips = sorted(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
        others = [name for name in sans if not isinstance(name, x509.DNSName | x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips, others = [], [], []
    return {
        "common_name": [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
        "organizations": sorted(
            str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        ),
        "dns_names": dns,
        "ip_addresses": ips,
        "other_names": len(others),
    }


def requester_refusal(spec: Mapping[str, Any], nodes: Mapping[str, str]) -> str | None:
    username = str(spec.get("username", ""))
    if not username.startswith(NODE_PREFIX) or username.removeprefix(NODE_PREFIX) not in nodes:
        return f"requested by {username!r}, which is not an inventory node"
    usages = set(spec.get("usages") or [])
    if not usages >= REQUIRED_USAGES or not usages <= ALLOWED_USAGES:
        return f"usages {sorted(usages)} are not a kubelet serving certificate's"
    return None


def identity_refusal(identity: Mapping[str, Any], username: str, node_ip: str) -> str | None:
    node = username.removeprefix(NODE_PREFIX)
    problems = [
        (
            identity["common_name"] != [username] or identity["organizations"] != ["system:nodes"],
            f"subject CN={identity['common_name']} O={identity['organizations']} is not "
            f"CN={username} O=system:nodes",
        ),
        (
            bool(identity["other_names"]),
            "asks for subject alternative names other than DNS names and IP addresses",
        ),
        (
            not identity["dns_names"] and not identity["ip_addresses"],
            "asks for no DNS name or IP address",
        ),
        (
            not set(identity["dns_names"]) <= {node},
            f"DNS names {identity['dns_names']} are not just the node name {node!r}",
        ),
        (
            not set(identity["ip_addresses"]) <= {node_ip},
            f"IP addresses {identity['ip_addresses']} are not the node's IP {node_ip}",
        ),
    ]
    return next((reason for failed, reason in problems if failed), None)


def refusal(csr: Mapping[str, Any], nodes: Mapping[str, str]) -> str | None:
    """Why this serving CSR must not be approved, or None when it is safe."""
    spec = csr.get("spec") or {}
    reason = requester_refusal(spec, nodes)
    if reason is not None:
        return reason
    username = str(spec["username"])
    identity = requested_identity(str(spec.get("request", "")))
    return identity_refusal(identity, username, nodes[username.removeprefix(NODE_PREFIX)])


def is_pending(csr: Mapping[str, Any]) -> bool:
    conditions = (csr.get("status") or {}).get("conditions") or []
    return not any(c.get("type") in ("Approved", "Denied", "Failed") for c in conditions)


def serving_csr_decisions(csr_list: Any, nodes: Iterable[Any]) -> dict[str, Any]:
    """{approve: [names], refuse: [{name, reason}]} for the pending kubelet serving CSRs."""
    if not isinstance(csr_list, Mapping) or not isinstance(csr_list.get("items"), list):
        raise CsrError(
            f"csr list: expected the JSON of `kubectl get csr -o json` (a mapping with items), "
            f"got {type(csr_list).__name__}"
        )
    table = node_table(nodes)
    approve: list[str] = []
    refuse: list[dict[str, str]] = []
    for csr in csr_list["items"]:
        spec = csr.get("spec") or {}
        if spec.get("signerName") != SIGNER or not is_pending(csr):
            continue
        name = str((csr.get("metadata") or {}).get("name", ""))
        reason = refusal(csr, table)
        if reason is None:
            approve.append(name)
        else:
            refuse.append({"name": name, "reason": reason})
    return {"approve": sorted(approve), "refuse": refuse}

"""The serving-CSR approver approves only an inventory node asking for its own name and IP."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.kubesmith.cluster.plugins.filter.csr import FilterModule
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NODES = [{"name": "node1", "ip": "127.0.0.31"}, {"name": "node2", "ip": "127.0.0.32"}]
KEY = ec.generate_private_key(ec.SECP256R1())
decide = FilterModule().filters()["serving_csr_decisions"]


def request(cn: str, orgs: list[str], dns: list[str], ips: list[str]) -> str:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    pem = builder.sign(KEY, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return base64.b64encode(pem).decode()


def csr(
    name: str = "csr-1",
    node: str = "node1",
    cn: str | None = None,
    orgs: list[str] | None = None,
    dns: list[str] | None = None,
    ips: list[str] | None = None,
    usages: list[str] | None = None,
    signer: str = "kubernetes.io/kubelet-serving",
    conditions: list[dict[str, str]] | None = None,
    username: str | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "signerName": signer,
            "username": username or f"system:node:{node}",
            "usages": usages or ["digital signature", "server auth"],
            "request": request(
                cn or f"system:node:{node}",
                ["system:nodes"] if orgs is None else orgs,
                [node] if dns is None else dns,
                ["127.0.0.31"] if ips is None else ips,
            ),
        },
        "status": {"conditions": conditions} if conditions else {},
    }


def run(*items: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = decide({"items": list(items)}, NODES)
    return result


def test_own_name_and_ip_is_approved() -> None:
    assert run(csr()) == {"approve": ["csr-1"], "refuse": []}


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (csr(ips=["127.0.0.32"]), "not the node's IP 127.0.0.31"),
        (csr(dns=["node1", "kubernetes.default"]), "not just the node name"),
        (csr(node="node3", ips=["127.0.0.33"]), "not an inventory node"),
        (csr(username="system:serviceaccount:x:y"), "not an inventory node"),
        (csr(cn="system:node:node2"), "is not CN=system:node:node1"),
        (csr(orgs=["system:masters"]), "O=system:nodes"),
        (csr(usages=["client auth", "server auth"]), "usages"),
        (csr(dns=[], ips=[]), "no DNS name or IP address"),
    ],
)
def test_requests_beyond_the_node_are_refused_with_the_reason(
    item: dict[str, Any], reason: str
) -> None:
    result = run(item)
    assert result["approve"] == []
    assert reason in result["refuse"][0]["reason"]


def test_other_signers_and_decided_requests_are_left_alone() -> None:
    client = csr(name="client", signer="kubernetes.io/kube-apiserver-client-kubelet")
    done = csr(name="done", conditions=[{"type": "Approved"}])
    assert run(client, done) == {"approve": [], "refuse": []}


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(AnsibleFilterError, match="kubectl get csr -o json"):
        decide([], NODES)
    with pytest.raises(AnsibleFilterError, match=r"nodes\[0\].ip: 'x'"):
        decide({"items": []}, [{"name": "node1", "ip": "x"}])
    broken = csr()
    broken["spec"]["request"] = "bm90IGEgY3Ny"
    with pytest.raises(AnsibleFilterError, match=r"spec\.request"):
        decide({"items": [broken]}, NODES)

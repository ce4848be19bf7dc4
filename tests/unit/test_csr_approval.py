"""Serving CSRs are approved only for a node asking, as itself, for its own Node's addresses."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.kubesmith.cluster.plugins.filter.csr import FilterModule
from ansible_collections.kubesmith.cluster.plugins.module_utils import csr_approval
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
decide = FilterModule().filters()["serving_csr_decisions"]


def node(name: str, *addresses: tuple[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"addresses": [{"type": kind, "address": value} for kind, value in addresses]},
    }


NODES = {
    "items": [
        node(
            "node1",
            ("InternalIP", "127.0.0.31"),
            ("ExternalIP", "127.0.1.31"),
            ("InternalIP", "fd00::31"),
            ("Hostname", "node1"),
            ("InternalDNS", "node1.lab.internal"),
        ),
        node("node2", ("InternalIP", "127.0.0.32"), ("Hostname", "node2")),
    ]
}


def request(
    cn: str | None,
    orgs: list[str],
    dns: list[str],
    ips: list[str],
    *,
    others: list[x509.GeneralName] | None = None,
    extra_subject: list[x509.NameAttribute] | None = None,
    extensions: list[x509.ExtensionType] | None = None,
    key: Any = EC_KEY,
) -> str:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn is not None else []
    names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    names += extra_subject or []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    sans += others or []
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for extension in extensions or []:
        builder = builder.add_extension(extension, critical=True)
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return base64.b64encode(pem).decode()


def csr(
    name: str = "csr-1",
    node: str = "node1",
    *,
    cn: str | None = None,
    orgs: list[str] | None = None,
    dns: list[str] | None = None,
    ips: list[str] | None = None,
    usages: list[str] | None = None,
    groups: list[str] | None = None,
    signer: str = "kubernetes.io/kubelet-serving",
    conditions: list[dict[str, str]] | None = None,
    username: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "resourceVersion": "7"},
        "spec": {
            "signerName": signer,
            "username": f"system:node:{node}" if username is None else username,
            "groups": ["system:nodes", "system:authenticated"] if groups is None else groups,
            "usages": usages or ["digital signature", "server auth"],
            "request": request(
                cn or f"system:node:{node}",
                ["system:nodes"] if orgs is None else orgs,
                [node] if dns is None else dns,
                ["127.0.0.31"] if ips is None else ips,
                **extra,
            ),
        },
        "status": {"conditions": conditions} if conditions else {},
    }


def run(*items: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = decide({"items": list(items)}, NODES)
    return result


@pytest.mark.parametrize(
    "item",
    [
        csr(),
        csr(dns=["node1", "NODE1.lab.internal"], ips=["127.0.0.31", "127.0.1.31"]),
        csr(dns=[], ips=["fd00:0:0:0:0:0:0:31"]),
        csr(dns=["node1"], ips=[]),
        csr(usages=["digital signature", "key encipherment", "server auth"], key=RSA_KEY),
        csr(node="node2", ips=["127.0.0.32"]),
    ],
    ids=["name+ip", "every address kind", "ipv6 only", "dns only", "rsa usages", "node2"],
)
def test_a_node_asking_for_its_own_addresses_is_approved(item: dict[str, Any]) -> None:
    assert run(item) == {"approve": ["csr-1"], "refuse": []}


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (csr(username="system:serviceaccount:x:y"), "not a node identity"),
        (csr(username="system:node:"), "not a node identity"),
        (csr(groups=["system:authenticated"]), "is not in group system:nodes"),
        (csr(usages=["client auth", "server auth"]), "not a kubelet serving certificate's"),
        (csr(usages=["server auth"]), "not a kubelet serving certificate's"),
        (csr(node="node3", ips=["127.0.0.33"]), "Node node3 does not exist"),
        (csr(cn="system:node:node2"), "is not CN=system:node:node1 O=system:nodes"),
        (csr(orgs=["system:masters"]), "O=['system:masters']"),
        (csr(orgs=["system:nodes", "system:masters"]), "is not CN=system:node:node1"),
        (
            csr(extra_subject=[x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "x")]),
            "subject has attributes besides CN and O: ['2.5.4.11']",
        ),
        (
            csr(extensions=[x509.BasicConstraints(ca=True, path_length=None)]),
            "extensions besides one subjectAltName: ['2.5.29.19']",
        ),
        (csr(others=[x509.RFC822Name("a@example.org")]), "other than DNS names and IPs: ['email']"),
        (
            csr(others=[x509.UniformResourceIdentifier("spiffe://x/y")]),
            "other than DNS names and IPs: ['URI']",
        ),
        (csr(dns=[], ips=[]), "asks for no DNS name or IP address"),
        (csr(ips=["127.0.0.32"]), "IP addresses ['127.0.0.32'] are not among Node node1's"),
        (csr(dns=["node1", "kubernetes.default"]), "DNS names ['kubernetes.default'] are not"),
        (csr(node="node2", dns=["node2"], ips=["127.0.0.31"]), "are not among Node node2's"),
    ],
)
def test_anything_else_is_refused_with_the_reason(item: dict[str, Any], reason: str) -> None:
    result = run(item)
    assert result["approve"] == []
    assert result["refuse"] == [{"name": "csr-1", "reason": result["refuse"][0]["reason"]}]
    assert reason in result["refuse"][0]["reason"]


@pytest.mark.parametrize(
    ("request_b64", "reason"),
    [
        ("bm90IGEgY3Ny", "not one PEM block of type CERTIFICATE REQUEST"),
        ("!!", "not base64"),
        (
            base64.b64encode(
                b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----"
            ).decode(),
            "unsupported DER length at byte 0",
        ),
    ],
)
def test_an_unreadable_request_is_refused_not_an_error(request_b64: str, reason: str) -> None:
    broken = csr()
    broken["spec"]["request"] = request_b64
    refused = run(broken)["refuse"]
    assert refused[0]["reason"].startswith("unreadable request: spec.request")
    assert reason in refused[0]["reason"]


def test_a_truncated_request_body_is_refused() -> None:
    good = base64.b64decode(csr()["spec"]["request"]).decode()
    body = "".join(good.splitlines()[1:-1])
    der = base64.b64decode(body)[:-20]
    pem = "\n".join([csr_approval.PEM_BEGIN, base64.b64encode(der).decode(), csr_approval.PEM_END])
    broken = csr()
    broken["spec"]["request"] = base64.b64encode(pem.encode()).decode()
    assert "runs past the end" in run(broken)["refuse"][0]["reason"]


def test_the_der_reader_sees_what_cryptography_sees() -> None:
    item = csr(
        dns=["node1", "node1.lab.internal"],
        ips=["127.0.0.31", "fd00::31"],
        key=RSA_KEY,
        extra_subject=[x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")],
    )
    identity = csr_approval.requested_identity(item["spec"]["request"])
    parsed = x509.load_pem_x509_csr(base64.b64decode(item["spec"]["request"]))
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert identity.common_names == ("system:node:node1",)
    assert identity.organizations == ("system:nodes",)
    assert identity.other_subject == ("2.5.4.6",)
    assert list(identity.dns_names) == sans.get_values_for_type(x509.DNSName)
    assert list(identity.ip_addresses) == [
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)
    ]
    assert identity.other_sans == ()
    assert identity.other_extensions == ()


def test_node_addresses_ignore_other_kinds_and_bad_ips() -> None:
    addresses = csr_approval.node_addresses(
        node("n", ("InternalIP", "bogus"), ("Hostname", "N"), ("Other", "127.0.0.9"))
    )
    assert addresses.ips == frozenset()
    assert addresses.dns_names == frozenset({"n"})


def test_other_signers_and_decided_requests_are_left_alone() -> None:
    client = csr(name="client", signer="kubernetes.io/kube-apiserver-client-kubelet")
    done = csr(name="done", conditions=[{"type": "Approved"}])
    denied = csr(name="denied", conditions=[{"type": "Denied"}])
    assert run(client, done, denied) == {"approve": [], "refuse": []}


def test_decisions_are_sorted_by_name() -> None:
    result = run(csr(name="b"), csr(name="c", ips=["127.0.0.99"]), csr(name="a"))
    assert result["approve"] == ["a", "b"]
    assert [item["name"] for item in result["refuse"]] == ["c"]


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(AnsibleFilterError, match="kubectl get csr -o json"):
        decide([], NODES)
    with pytest.raises(AnsibleFilterError, match="kubectl get nodes -o json"):
        decide({"items": []}, [])
    with pytest.raises(AnsibleFilterError, match=r"items\[0\]: \{\} is not a Node"):
        decide({"items": []}, {"items": [{}]})

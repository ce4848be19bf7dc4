"""The approver daemon against a fake kube-apiserver on 127.0.0.1 over mutual TLS."""

from __future__ import annotations

import datetime
import json
import logging
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.kubesmith.cluster.plugins.module_utils import csr_approver, pki_plan
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.unit.test_csr_approval import NODES, csr

CSR_PATH = csr_approver.CSR_PATH
REPO = Path(__file__).resolve().parents[2]


@dataclass
class FakeCluster:
    """What the fake apiserver holds and saw."""

    csrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflict_once: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    client_names: set[str] = field(default_factory=set)
    fail_with: int = 0


class FakeApiserver(BaseHTTPRequestHandler):
    """Just the calls the approver makes, with resourceVersion checks like the real one."""

    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def remember(self) -> FakeCluster:
        cluster: FakeCluster = self.server.cluster
        subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
        cluster.client_names.add(subject["commonName"])
        cluster.requests.append((self.command, self.path))
        return cluster

    def do_GET(self) -> None:
        cluster = self.remember()
        url = urllib.parse.urlsplit(self.path)
        if cluster.fail_with:
            self.reply(cluster.fail_with, {"kind": "Status", "message": "etcd is sad"})
        elif url.path == CSR_PATH:
            selector = urllib.parse.parse_qs(url.query)["fieldSelector"][0]
            signer = selector.removeprefix("spec.signerName=")
            items = [c for c in cluster.csrs.values() if c["spec"]["signerName"] == signer]
            self.reply(200, {"kind": "CertificateSigningRequestList", "items": items})
        elif url.path.startswith("/api/v1/nodes/"):
            name = url.path.rsplit("/", 1)[1]
            if name in cluster.nodes:
                self.reply(200, cluster.nodes[name])
            else:
                self.reply(404, {"kind": "Status", "message": f'nodes "{name}" not found'})
        else:
            self.reply(404, {"kind": "Status", "message": "no such path"})

    def do_PUT(self) -> None:
        cluster = self.remember()
        name = self.path.removeprefix(CSR_PATH + "/").removesuffix("/approval")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stored = cluster.csrs[name]
        if name in cluster.conflict_once or (
            body["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]
        ):
            cluster.conflict_once.discard(name)
            self.reply(409, {"kind": "Status", "message": "the object has been modified"})
            return
        body["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        cluster.csrs[name] = body
        cluster.approvals.append(body)
        self.reply(200, body)


def issue(
    tmp: Path, name: str, ca: tuple[Any, Any] | None, server: bool = False
) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = ca if ca else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    elif ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    stem = name.replace(":", "-")
    (tmp / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@dataclass
class Fixture:
    cluster: FakeCluster
    settings: csr_approver.Settings
    args: list[str]


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[Fixture]:
    ca = issue(tmp_path, "test-ca", None)
    issue(tmp_path, "kube-apiserver", ca, server=True)
    issue(tmp_path, csr_approver.APPROVER_USER, ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "kube-apiserver.crt", tmp_path / "kube-apiserver.key")
    context.load_verify_locations(tmp_path / "test-ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiserver)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    cluster = FakeCluster(nodes={n["metadata"]["name"]: n for n in NODES["items"]})
    server.cluster = cluster  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stem = csr_approver.APPROVER_USER.replace(":", "-")
    settings = csr_approver.Settings(
        server=f"https://127.0.0.1:{server.server_address[1]}",
        ca_file=str(tmp_path / "test-ca.crt"),
        cert_file=str(tmp_path / f"{stem}.crt"),
        key_file=str(tmp_path / f"{stem}.key"),
        timeout=5,
    )
    args = [
        f"--server={settings.server}",
        f"--ca-file={settings.ca_file}",
        f"--cert-file={settings.cert_file}",
        f"--key-file={settings.key_file}",
    ]
    yield Fixture(cluster, settings, args)
    server.shutdown()
    server.server_close()


def approver(fixture: Fixture) -> csr_approver.Approver:
    settings = fixture.settings
    return csr_approver.Approver(connect=lambda: csr_approver.ApiClient(settings), host="cp1")


def test_safe_requests_are_approved_and_unsafe_ones_logged_once(
    apiserver: Fixture, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = apiserver.cluster
    cluster.csrs = {
        "good": csr("good"),
        "foreign-ip": csr("foreign-ip", ips=["127.0.0.99"]),
        "no-node": csr("no-node", node="node9", ips=["127.0.0.39"]),
        "client": csr("client", signer="kubernetes.io/kube-apiserver-client-kubelet"),
    }
    daemon = approver(apiserver)
    caplog.set_level(logging.INFO, logger=csr_approver.LOG.name)

    first = daemon.cycle()
    second = daemon.cycle()

    assert first == {"approved": ["good"], "refused": ["foreign-ip", "no-node"], "conflicts": []}
    assert second == {"approved": [], "refused": ["foreign-ip", "no-node"], "conflicts": []}
    [approval] = cluster.approvals
    condition = approval["status"]["conditions"][-1]
    assert condition["type"] == "Approved" and condition["status"] == "True"
    assert condition["reason"] == csr_approver.APPROVAL_REASON
    assert "system:kubesmith:csr-approver" in condition["message"]
    assert "on cp1" in condition["message"]
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refusals) == 2, "each refusal is logged once, not every cycle"
    assert any("foreign-ip" in m and "127.0.0.99" in m for m in refusals)
    assert any("no-node" in m and "Node node9 does not exist" in m for m in refusals)
    assert cluster.client_names == {csr_approver.APPROVER_USER}
    assert ("GET", "/api/v1/nodes/node1") in cluster.requests


def test_a_new_reason_is_logged_again_and_a_fixed_node_is_approved(
    apiserver: Fixture, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = apiserver.cluster
    cluster.csrs = {"late": csr("late", node="node9", ips=["127.0.0.39"], dns=["node9"])}
    daemon = approver(apiserver)
    caplog.set_level(logging.WARNING, logger=csr_approver.LOG.name)
    assert daemon.cycle()["refused"] == ["late"]
    cluster.nodes["node9"] = {
        "metadata": {"name": "node9"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.38"}]},
    }
    assert daemon.cycle()["refused"] == ["late"]
    cluster.nodes["node9"]["status"]["addresses"][0]["address"] = "127.0.0.39"
    assert daemon.cycle()["approved"] == ["late"]
    assert len(caplog.records) == 2
    assert daemon.logged_refusals == {}


def test_a_conflict_is_another_approver_winning_not_an_error(apiserver: Fixture) -> None:
    apiserver.cluster.csrs = {"good": csr("good")}
    apiserver.cluster.conflict_once = {"good"}
    daemon = approver(apiserver)
    assert daemon.cycle() == {"approved": [], "refused": [], "conflicts": ["good"]}
    assert daemon.cycle()["approved"] == ["good"]


def test_api_errors_are_logged_once_and_the_loop_goes_on(
    apiserver: Fixture, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = apiserver.cluster
    cluster.csrs = {"good": csr("good")}
    cluster.fail_with = 500
    daemon = approver(apiserver)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            cluster.fail_with = 0

    caplog.set_level(logging.INFO, logger=csr_approver.LOG.name)
    csr_approver.serve(daemon, 7, cycles=5, sleep=sleep)

    assert sleeps == [7, 7, 7, 7]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "HTTP 500 etcd is sad" in errors[0]
    assert [a["metadata"]["name"] for a in cluster.approvals] == ["good"]


def test_an_apiserver_signed_by_another_ca_is_not_trusted(
    apiserver: Fixture, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    issue(other, "other-ca", None)
    apiserver.cluster.csrs = {"good": csr("good")}
    settings = apiserver.settings
    untrusting = csr_approver.Settings(
        settings.server, str(other / "other-ca.crt"), settings.cert_file, settings.key_file, 5
    )
    with pytest.raises(csr_approver.ApiError, match="CERTIFICATE_VERIFY_FAILED"):
        csr_approver.Approver(connect=lambda: csr_approver.ApiClient(untrusting)).cycle()
    assert apiserver.cluster.approvals == []


def test_missing_certificate_files_name_the_files(apiserver: Fixture, tmp_path: Path) -> None:
    settings = apiserver.settings
    missing = csr_approver.Settings(
        settings.server, settings.ca_file, str(tmp_path / "gone.crt"), settings.key_file
    )
    with pytest.raises(csr_approver.ApiError, match=r"certificate .*gone\.crt"):
        csr_approver.ApiClient(missing)


def test_main_once_runs_one_cycle(apiserver: Fixture) -> None:
    apiserver.cluster.csrs = {"good": csr("good")}
    assert csr_approver.main([*apiserver.args, "--once"]) == 0
    assert len(apiserver.cluster.approvals) == 1
    apiserver.cluster.fail_with = 403
    assert csr_approver.main([*apiserver.args, "--once"]) == 1


def test_the_identity_matches_the_pki_plan_and_the_rbac() -> None:
    plan = {item["path"]: item for item in pki_plan.pki_plan(PLAN_FACTS)}
    assert plan["users/csr-approver"]["common_name"] == csr_approver.APPROVER_USER
    assert plan["users/csr-approver"]["organizations"] == []
    rbac = (
        REPO / "roles/kube_rbac_bootstrap/templates/etc/kubernetes/addons/bootstrap-rbac.yaml.j2"
    ).read_text()
    assert f"name: {csr_approver.APPROVER_USER}" in rbac


PLAN_FACTS = {
    "service_cidr": "10.96.0.0/12",
    "control_plane": [{"name": "cp1", "ip": "127.0.0.21"}],
    "etcd": [{"name": "cp1", "ip": "127.0.0.21"}],
}

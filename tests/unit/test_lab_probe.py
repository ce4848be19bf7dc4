"""The API probe's arithmetic and kubeconfig handling, and a real HTTPS round trip."""

from __future__ import annotations

import base64
import datetime
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubesmith.lab.errors import LabError
from kubesmith.lab.probe import Probe, Sample, summarize, target_from_kubeconfig


def test_quiet_window_gap_is_the_interval() -> None:
    samples = [Sample(t / 10, t / 10 + 0.01, True) for t in range(10)]
    summary = summarize(samples, 0.0, 1.0)
    assert summary.requests == 10
    assert summary.failed == 0
    assert summary.longest_outage_s == 0.0
    assert summary.longest_gap_s == pytest.approx(0.1, abs=0.02)


def test_outage_counts_from_first_failure_to_next_success() -> None:
    samples = [
        Sample(0.0, 0.1, True),
        Sample(0.2, 0.3, False, "ConnectionRefusedError"),
        Sample(0.4, 0.5, False, "HTTP 503"),
        Sample(0.6, 0.7, True),
    ]
    summary = summarize(samples, 0.0, 1.0)
    assert summary.failed == 2
    assert summary.errors == {"ConnectionRefusedError": 1, "HTTP 503": 1}
    assert summary.failed_at == ["00:00:00.0", "00:00:00.0"]
    assert summary.longest_outage_s == pytest.approx(0.5)
    assert summary.longest_gap_s == pytest.approx(0.6)


def test_failures_at_the_end_last_until_the_window_ends() -> None:
    failed = Sample(0.5, 0.6, False, "x", wall=3723.25)
    summary = summarize([Sample(0.0, 0.1, True), failed], 0.0, 2.0)
    assert summary.failed_at == ["01:02:03.2"]
    assert summary.longest_outage_s == pytest.approx(1.5)
    assert summary.longest_gap_s == pytest.approx(1.9)


def test_empty_window() -> None:
    summary = summarize([], 0.0, 3.0)
    assert (summary.requests, summary.failed, summary.longest_gap_s) == (0, 0, 3.0)


def _pem_pair(tmp: Path) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _kubeconfig(path: Path, server: str, cert: bytes, key: bytes) -> Path:
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    config = {
        "clusters": [{"cluster": {"server": server, "certificate-authority-data": b64(cert)}}],
        "users": [{"user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[int, bytes, bytes]]:
    cert, key = _pem_pair(tmp_path)
    (tmp_path / "s.crt").write_bytes(cert)
    (tmp_path / "s.key").write_bytes(key)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert, key
    server.shutdown()


def test_probe_asks_over_tls_with_the_kubeconfig(
    tmp_path: Path, https_server: tuple[int, bytes, bytes]
) -> None:
    port, cert, key = https_server
    config = _kubeconfig(tmp_path / "admin.conf", f"https://localhost:{port}", cert, key)
    target = target_from_kubeconfig(config, tmp_path)
    assert (target.host, target.port) == ("localhost", port)
    assert oct((tmp_path / "client.key").stat().st_mode & 0o777) == "0o600"
    good = Probe(target, "/ok", interval=0.05).start()
    since = time.monotonic()
    time.sleep(0.5)
    good.stop()
    summary = good.summary(since)
    assert summary.requests >= 3 and summary.failed == 0
    bad = Probe(target, "/not-ready", interval=0.05).start()
    since = time.monotonic()
    time.sleep(0.3)
    bad.stop()
    assert bad.summary(since).errors.get("HTTP 503", 0) >= 1


def test_unreachable_server_is_a_failure_not_a_crash(
    tmp_path: Path, https_server: tuple[int, bytes, bytes]
) -> None:
    _, cert, key = https_server
    config = _kubeconfig(tmp_path / "admin.conf", "https://127.0.0.1:1", cert, key)
    probe = Probe(target_from_kubeconfig(config, tmp_path), interval=0.05).start()
    since = time.monotonic()
    time.sleep(0.3)
    probe.stop()
    summary = probe.summary(since)
    assert summary.failed == summary.requests >= 1
    assert "ConnectionRefusedError" in summary.errors


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("clusters: []\n", "cannot read the kubeconfig"),
        (
            "clusters: [{cluster: {server: 'http://x'}}]\nusers: [{user: {}}]\n",
            "is not an https URL",
        ),
        (
            "clusters: [{cluster: {server: 'https://x:1'}}]\nusers: [{user: {}}]\n",
            "client-certificate-data is missing",
        ),
    ],
)
def test_bad_kubeconfig_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "admin.conf"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabError, match=message):
        target_from_kubeconfig(path, tmp_path)

"""90-verify.yml's guestbook frontend against a redis stand-in on loopback."""

import importlib.util
import io
import json
import socket
import socketserver
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SOURCE = Path(__file__).parents[2] / "playbooks/files/guestbook_frontend.py"
_spec = importlib.util.spec_from_file_location("guestbook_frontend", SOURCE)
assert _spec is not None
assert _spec.loader is not None
frontend = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(frontend)


def test_commands_are_resp_arrays_of_bulk_strings():
    assert frontend.encode_command("SET", "k", "vé") == (
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\xc3\xa9\r\n"
    )


@pytest.mark.parametrize(
    ("wire", "value"),
    [(b"+OK\r\n", "OK"), (b":3\r\n", "3"), (b"$5\r\nhello\r\n", "hello"), (b"$-1\r\n", None)],
)
def test_replies_are_read(wire, value):
    assert frontend.read_reply(io.BytesIO(wire)) == value


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"-READONLY You can't write against a read only replica.\r\n", "READONLY"),
        (b"", "connection closed before a reply"),
        (b"$5\r\nhel", "connection closed inside a reply"),
        (b"*1\r\n", "unexpected reply"),
    ],
)
def test_bad_replies_are_errors(wire, message):
    with pytest.raises(frontend.RedisError, match=message):
        frontend.read_reply(io.BytesIO(wire))


def test_addresses_default_to_the_redis_port():
    assert frontend.parse_address("redis-leader") == ("redis-leader", 6379)
    assert frontend.parse_address("10.0.0.1:6380") == ("10.0.0.1", 6380)


class _FakeRedis(socketserver.ThreadingTCPServer):
    """GET and SET on a dict, one command per connection, like the frontend uses it."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, store, read_only=False):
        super().__init__(("127.0.0.1", 0), _FakeRedisHandler)
        self.store = store
        self.read_only = read_only


class _FakeRedisHandler(socketserver.StreamRequestHandler):
    server: _FakeRedis

    def handle(self):
        count = int(self.rfile.readline()[1:])
        args = []
        for _ in range(count):
            length = int(self.rfile.readline()[1:])
            args.append(self.rfile.read(length + 2)[:-2].decode())
        if args[0] == "SET" and self.server.read_only:
            self.wfile.write(b"-READONLY You can't write against a read only replica.\r\n")
        elif args[0] == "SET":
            self.server.store[args[1]] = args[2]
            self.wfile.write(b"+OK\r\n")
        elif args[1] in self.server.store:
            data = self.server.store[args[1]].encode()
            self.wfile.write(b"$%d\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(b"$-1\r\n")


def _serve(server):
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def guestbook():
    """A frontend whose leader and follower share one store (instant replication)."""
    store: dict[str, str] = {}
    leader = _serve(_FakeRedis(store))
    follower = _serve(_FakeRedis(store, read_only=True))
    server = _serve(
        frontend.GuestbookServer(
            ("127.0.0.1", 0), leader.server_address[:2], follower.server_address[:2]
        )
    )
    yield f"http://127.0.0.1:{server.server_address[1]}", store
    for running in (server, leader, follower):
        running.shutdown()
        running.server_close()


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_set_writes_the_leader_and_get_reads_a_follower(guestbook):
    base, store = guestbook
    status, body = _get(f"{base}/guestbook?cmd=set&key=verify&value=v%201")
    assert status == 200
    assert body["value"] == "v 1"
    assert body["redis"] == "127.0.0.1"
    assert body["frontend"] == socket.gethostname()
    assert store == {"verify": "v 1"}
    assert _get(f"{base}/guestbook?cmd=get&key=verify")[1]["value"] == "v 1"
    assert _get(f"{base}/guestbook?cmd=get&key=absent")[1]["value"] is None
    assert _get(f"{base}/healthz") == (200, {"ok": True})


@pytest.mark.parametrize("query", ["cmd=set&key=k", "cmd=get", "cmd=del&key=k", "key=k&value=v"])
def test_bad_requests_are_400(guestbook, query):
    status, body = _get(f"{guestbook[0]}/guestbook?{query}")
    assert status == 400
    assert "cmd=set&key=K&value=V" in body["error"]


def test_other_pages_are_404(guestbook):
    assert _get(f"{guestbook[0]}/")[0] == 404


def test_redis_out_of_reach_is_502(guestbook):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    server = _serve(
        frontend.GuestbookServer(
            ("127.0.0.1", 0), ("127.0.0.1", closed_port), ("127.0.0.1", closed_port)
        )
    )
    try:
        status, body = _get(f"http://127.0.0.1:{server.server_address[1]}/guestbook?cmd=get&key=k")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 502
    assert f"127.0.0.1:{closed_port}" in body["error"]

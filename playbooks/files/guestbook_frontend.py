"""90-verify.yml's guestbook frontend: HTTP in front of a redis leader and its followers.

    GET /guestbook?cmd=set&key=K&value=V   SET on the leader service
    GET /guestbook?cmd=get&key=K           GET from the follower service (replicas)
    GET /healthz                           the process answers

Answers JSON: {"cmd", "key", "value", "redis", "frontend"} or {"error"} with 400/404/502.
Standard library only (Debian's python3 and the public python image both run it); speaks RESP
to redis over a socket. Settings from the environment: GUESTBOOK_LEADER, GUESTBOOK_FOLLOWER
(host or host:port), GUESTBOOK_PORT.
"""

from __future__ import annotations

import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

REDIS_PORT = 6379
TIMEOUT_S = 3.0


class RedisError(Exception):
    """redis refused the command, or could not be reached."""


def encode_command(*args: str) -> bytes:
    """A RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def read_reply(stream: BinaryIO) -> str | None:
    """One RESP reply: simple string, integer or bulk string (None when nil)."""
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise RedisError("connection closed before a reply")
    kind, body = line[:1], line[1:-2].decode()
    if kind == b"-":
        raise RedisError(body)
    if kind in (b"+", b":"):
        return body
    if kind == b"$":
        length = int(body)
        if length < 0:
            return None
        data = stream.read(length + 2)
        if len(data) != length + 2:
            raise RedisError("connection closed inside a reply")
        return data[:-2].decode()
    raise RedisError(f"unexpected reply {line[:40]!r}")


def parse_address(value: str) -> tuple[str, int]:
    host, _, port = value.partition(":")
    return host, int(port) if port else REDIS_PORT


def redis_call(address: tuple[str, int], *args: str) -> str | None:
    try:
        with socket.create_connection(address, timeout=TIMEOUT_S) as conn:
            conn.sendall(encode_command(*args))
            with conn.makefile("rb") as stream:
                return read_reply(stream)
    except OSError as error:
        raise RedisError(f"{address[0]}:{address[1]}: {error}") from error


class GuestbookServer(ThreadingHTTPServer):
    def __init__(
        self, bind: tuple[str, int], leader: tuple[str, int], follower: tuple[str, int]
    ) -> None:
        super().__init__(bind, GuestbookHandler)
        self.leader = leader
        self.follower = follower


class GuestbookHandler(BaseHTTPRequestHandler):
    server: GuestbookServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._answer(200, {"ok": True})
            return
        if url.path != "/guestbook":
            self._answer(404, {"error": f"no such page {url.path}"})
            return
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        cmd, key = query.get("cmd"), query.get("key")
        if not key or cmd not in ("get", "set") or (cmd == "set" and "value" not in query):
            self._answer(400, {"error": "use ?cmd=set&key=K&value=V or ?cmd=get&key=K"})
            return
        address = self.server.leader if cmd == "set" else self.server.follower
        try:
            if cmd == "set":
                redis_call(address, "SET", key, query["value"])
                value: str | None = query["value"]
            else:
                value = redis_call(address, "GET", key)
        except RedisError as error:
            self._answer(502, {"error": str(error)})
            return
        self._answer(
            200,
            {
                "cmd": cmd,
                "key": key,
                "value": value,
                "redis": address[0],
                "frontend": socket.gethostname(),
            },
        )

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    server = GuestbookServer(
        ("", int(os.environ.get("GUESTBOOK_PORT", "8080"))),
        parse_address(os.environ.get("GUESTBOOK_LEADER", "redis-leader")),
        parse_address(os.environ.get("GUESTBOOK_FOLLOWER", "redis-follower")),
    )
    server.serve_forever()


if __name__ == "__main__":
    main()

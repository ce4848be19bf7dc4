#!/usr/bin/python3
"""A stand-in for kube-apiserver in the vip scenario: HTTPS on the apiserver port.

Every response names the host that served it, so a client behind the VIP can tell which
backend nginx picked. Python's standard library only: lab hosts have no other packages.
"""

import argparse
import http.server
import socket
import ssl


class NameHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with this host's name."""

    # A client that vanished mid-request (its VIP moved) must not hold a thread forever.
    timeout = 5.0

    def setup(self) -> None:
        super().setup()
        # The TLS handshake runs here, in the connection's own thread: done in accept(), one
        # client that never sends its hello would stop the server accepting anyone else.
        self.request.do_handshake()

    def do_GET(self) -> None:
        body = (socket.gethostname() + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the drill makes thousands of requests."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    http.server.ThreadingHTTPServer.request_queue_size = 128
    server = http.server.ThreadingHTTPServer(("0.0.0.0", args.port), NameHandler)
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    server.serve_forever()


if __name__ == "__main__":
    main()

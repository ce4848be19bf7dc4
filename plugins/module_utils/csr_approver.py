"""kubesmith-csr-approver: approve safe kubelet serving CSRs as long as the cluster runs.

Kubelets renew their serving certificates at 70-90% of the certificate's lifetime, and Kubernetes
approves none of those requests by itself. This daemon runs on every control-plane host
(roles/csr_approver, unit kubesmith-csr-approver.service), lists the pending
kubernetes.io/kubelet-serving CSRs of its local kube-apiserver every --interval seconds and
approves the ones csr_approval.refusal finds nothing wrong with; it logs each refused request
once, with the reason, and leaves it pending.

Standard library only (Debian's python3 on the hosts). It is shipped as a package beside
csr_approval.py, hence the relative import. Its identity is a client certificate
(users/csr-approver in pki_plan) that RBAC allows nothing but reading CSRs and Nodes and
approving for the kubelet-serving signer. The certificate files are read again at every cycle,
so a renewed certificate is used without a restart. Several approvers may run at once: each
approval carries the CSR's resourceVersion, so only one wins and the others get 409 Conflict,
which only means that another approver decided first.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from . import csr_approval

APPROVER_USER = "system:kubesmith:csr-approver"
APPROVAL_REASON = "KubesmithApprover"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
NODE_PATH = "/api/v1/nodes"
LOG = logging.getLogger("kubesmith-csr-approver")


class ApiError(Exception):
    """The apiserver could not be reached or answered with an error."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Api(Protocol):
    """The three calls the approver makes."""

    def list_csrs(self) -> Mapping[str, Any]: ...

    def get_node(self, name: str) -> Mapping[str, Any] | None: ...

    def approve(self, csr: Mapping[str, Any], message: str) -> bool: ...


@dataclass(frozen=True)
class Settings:
    """Where the apiserver is and which files prove who we are."""

    server: str
    ca_file: str
    cert_file: str
    key_file: str
    timeout: float = 10.0


class ApiClient:
    """kube-apiserver over HTTPS with a client certificate; the server is verified by the CA."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            self.context = ssl.create_default_context(cafile=settings.ca_file)
            self.context.minimum_version = ssl.TLSVersion.TLSv1_2
            self.context.load_cert_chain(settings.cert_file, settings.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ApiError(
                f"loading CA {settings.ca_file}, certificate {settings.cert_file} and key "
                f"{settings.key_file}: {exc}"
            ) from exc

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.settings.server.rstrip("/") + path,
            data=data,
            method=method,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(
                request, context=self.context, timeout=self.settings.timeout
            ) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(
                f"{method} {path}: HTTP {exc.code} {status_message(exc)}", exc.code
            ) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiError(f"{method} {path}: {exc}") from exc

    def list_csrs(self) -> Mapping[str, Any]:
        query = urllib.parse.urlencode({"fieldSelector": f"spec.signerName={csr_approval.SIGNER}"})
        result: Mapping[str, Any] = self.call("GET", f"{CSR_PATH}?{query}")
        return result

    def get_node(self, name: str) -> Mapping[str, Any] | None:
        try:
            node: Mapping[str, Any] = self.call("GET", f"{NODE_PATH}/{urllib.parse.quote(name)}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return node

    def approve(self, csr: Mapping[str, Any], message: str) -> bool:
        """Add the Approved condition; False when another approver changed the CSR first."""
        name = csr_approval.csr_name(csr)
        try:
            self.call(
                "PUT", f"{CSR_PATH}/{urllib.parse.quote(name)}/approval", approved(csr, message)
            )
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True


def status_message(error: urllib.error.HTTPError) -> str:
    """The message of the Kubernetes Status in an error response, or its start."""
    body = error.read()[:2000]
    try:
        return str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")


def approved(csr: Mapping[str, Any], message: str) -> dict[str, Any]:
    """The CSR with an Approved condition; metadata.resourceVersion is kept, so a stale copy
    gets 409 Conflict."""
    status = dict(csr.get("status") or {})
    condition = {
        "type": "Approved",
        "status": "True",
        "reason": APPROVAL_REASON,
        "message": message,
        "lastUpdateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    status["conditions"] = [*(status.get("conditions") or []), condition]
    return {**csr, "status": status}


@dataclass
class Approver:
    """One decision pass per cycle; remembers what it logged so it logs each refusal once."""

    connect: Callable[[], Api]
    host: str = field(default_factory=socket.gethostname)
    logged_refusals: dict[str, str] = field(default_factory=dict)

    def cycle(self) -> dict[str, list[str]]:
        """Decide every pending serving CSR once: {approved, refused, conflicts}."""
        api = self.connect()
        pending = csr_approval.pending_serving(api.list_csrs())
        nodes = self.requested_nodes(api, pending)
        outcome: dict[str, list[str]] = {"approved": [], "refused": [], "conflicts": []}
        for csr in pending:
            name = csr_approval.csr_name(csr)
            reason = csr_approval.refusal(csr, nodes)
            if reason is not None:
                self.log_refusal(name, reason)
                outcome["refused"].append(name)
            elif api.approve(csr, self.message(csr)):
                LOG.info("approved %s for %s", name, (csr.get("spec") or {}).get("username"))
                outcome["approved"].append(name)
            else:
                LOG.info("%s changed before our approval (another approver); next cycle", name)
                outcome["conflicts"].append(name)
        self.logged_refusals = {
            name: reason
            for name, reason in self.logged_refusals.items()
            if name in outcome["refused"]
        }
        return outcome

    def requested_nodes(
        self, api: Api, pending: Sequence[Mapping[str, Any]]
    ) -> dict[str, Mapping[str, Any]]:
        """{name: Node} for the nodes named by pending requests that exist."""
        nodes: dict[str, Mapping[str, Any]] = {}
        wanted = {csr_approval.node_name(csr.get("spec") or {}) for csr in pending}
        for name in sorted(name for name in wanted if name):
            node = api.get_node(name)
            if node is not None:
                nodes[name] = node
        return nodes

    def log_refusal(self, name: str, reason: str) -> None:
        if self.logged_refusals.get(name) != reason:
            LOG.warning("not approving %s: %s", name, reason)
            self.logged_refusals[name] = reason

    def message(self, csr: Mapping[str, Any]) -> str:
        username = (csr.get("spec") or {}).get("username")
        return (
            f"Approved by kubesmith-csr-approver ({APPROVER_USER}) on {self.host}: {username} "
            "asks for its own Node's names and addresses only"
        )


def serve(
    approver: Approver,
    interval: float,
    cycles: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run cycles every interval seconds (forever unless cycles is given); errors are logged
    once each and retried at the next cycle."""
    last_error = ""
    done = 0
    while cycles is None or done < cycles:
        try:
            approver.cycle()
            if last_error:
                LOG.info("the apiserver answers again")
            last_error = ""
        except (ApiError, csr_approval.CsrError, ssl.SSLError, OSError) as exc:
            if str(exc) != last_error:
                LOG.error("cycle failed, retrying every %gs: %s", interval, exc)
            last_error = str(exc)
        done += 1
        if cycles is None or done < cycles:
            sleep(interval)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kubesmith-csr-approver", description=__doc__)
    parser.add_argument("--server", required=True, help="https://127.0.0.1:<apiserver port>")
    parser.add_argument("--ca-file", required=True, help="CA that signed the apiserver's cert")
    parser.add_argument("--cert-file", required=True, help="client certificate (PEM)")
    parser.add_argument("--key-file", required=True, help="its private key (PEM)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between cycles")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per API call")
    parser.add_argument("--once", action="store_true", help="one cycle, then exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = Settings(args.server, args.ca_file, args.cert_file, args.key_file, args.timeout)
    approver = Approver(connect=lambda: ApiClient(settings))
    LOG.info(
        "approving safe %s CSRs via %s every %gs", csr_approval.SIGNER, args.server, args.interval
    )
    if args.once:
        try:
            approver.cycle()
        except (ApiError, csr_approval.CsrError, ssl.SSLError, OSError) as exc:
            LOG.error("cycle failed: %s", exc)
            return 1
        return 0
    serve(approver, args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

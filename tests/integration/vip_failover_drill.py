"""Failover drill for the apiserver VIP (roles/apiserver_lb, molecule/vip).

A client loop opens a new TLS connection to VIP:port every few milliseconds and reads which
backend answered, while the drill breaks the VIP holder in each way the issue names:
keepalived stopped, nginx stopped (the track script), the holder frozen (`kubesmith-lab pause`),
a backend stopped, and a broken nginx or keepalived config pushed by the role. After each
failure it restores the host and checks where the VIP goes (failback per the preempt setting).

The figure for each case is the longest client-visible gap: the longest time between two
successful requests from just before the failure until the client is steady again.

    python tests/integration/vip_failover_drill.py --inventory molecule/vip/inventory \\
        --vip 172.30.21.10 --port 8443 --cafile .../backend.crt --lb viplb1 --lb viplb2 \\
        --backend vipcp1 --backend vipcp2 --backend-service molecule-vip-backend \\
        --playbook playbooks/35-apiserver-lb.yml

Prints one JSON object (the cases and their figures) on stdout; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import collections
import functools
import itertools
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUEST = b"GET / HTTP/1.0\r\nHost: apiserver\r\n\r\n"
# Enough successes after a failure to call the client steady again.
STEADY_SUCCESSES = 20


@dataclass(frozen=True)
class Sample:
    """One request of the client loop: when it ended and which backend answered (None: failed)."""

    at: float
    backend: str | None
    error: str = ""


def longest_gap(success_times: Sequence[float], start: float, end: float) -> float:
    """Longest time without a successful request over [start, end], in seconds.

    Counts from the last success before start (the client's view: its last good answer),
    and up to end, so a client that never recovers shows the whole window.
    """
    if end < start:
        raise ValueError(f"end={end} is before start={start}: pass the window in order")
    before = [t for t in success_times if t < start]
    inside = sorted(t for t in success_times if start <= t <= end)
    points = [before[-1] if before else start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(points))


def holds_address(ip_addr_output: str, address: str) -> bool:
    """Whether `ip -4 -o addr show` output lists address (exactly, not as a prefix)."""
    return any(f" {address}/" in line for line in ip_addr_output.splitlines())


def parse_backend(response: bytes) -> str | None:
    """The backend's name from an HTTP/1.0 response of the fixture, or None if not a 200."""
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        return None
    name = body.decode(errors="replace").strip()
    return name or None


class Prober(threading.Thread):
    """The client loop: a new TLS connection per request, like a client that reconnects."""

    def __init__(self, address: str, port: int, cafile: Path, pause: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.port = port
        self.pause = pause
        self.context = ssl.create_default_context(cafile=str(cafile))
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def request(self) -> tuple[str | None, str]:
        """The backend that answered, or None and why not."""
        try:
            with (
                socket.create_connection((self.address, self.port), timeout=0.5) as raw,
                self.context.wrap_socket(raw, server_hostname=self.address) as tls,
            ):
                tls.settimeout(1.0)
                tls.sendall(REQUEST)
                chunks = []
                while chunk := tls.recv(4096):
                    chunks.append(chunk)
        except OSError as error:
            return None, type(error).__name__
        backend = parse_backend(b"".join(chunks))
        return backend, "" if backend else "bad response"

    def run(self) -> None:
        while not self.stopping.is_set():
            backend, error = self.request()
            with self.lock:
                self.samples.append(Sample(time.monotonic(), backend, error))
            # Without a pause a refused connection would spin the CPU the lab shares.
            time.sleep(self.pause)

    def since(self, start: float) -> list[Sample]:
        with self.lock:
            return [s for s in self.samples if s.at >= start]

    def success_times(self) -> list[float]:
        with self.lock:
            return [s.at for s in self.samples if s.backend is not None]

    def wait_steady(self, start: float, timeout: float) -> bool:
        """Wait for STEADY_SUCCESSES successes in a row after start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tail = self.since(start)[-STEADY_SUCCESSES:]
            if len(tail) == STEADY_SUCCESSES and all(s.backend for s in tail):
                return True
            time.sleep(0.1)
        return False


class Lab:
    """The lab hosts, reached only through kubesmith-lab (as an operator would)."""

    def __init__(self, lab_command: str, inventory: Path) -> None:
        self.base = [lab_command, "--inventory", str(inventory)]
        self.paused: set[str] = set()

    def ssh(self, host: str, *command: str, check: bool = True) -> str:
        result = subprocess.run(
            [*self.base, "ssh", host, "sudo", *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{host}: {' '.join(command)!r} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result.stdout

    def host_action(self, action: str, host: str) -> None:
        subprocess.run([*self.base, action, host], check=True, capture_output=True, timeout=120)
        if action == "pause":
            self.paused.add(host)
        elif action == "unpause":
            self.paused.discard(host)

    def holders(self, hosts: Sequence[str], address: str) -> list[str]:
        """Hosts that have address on an interface; a paused host cannot answer and is left out."""
        return [
            host
            for host in hosts
            if host not in self.paused
            and holds_address(self.ssh(host, "ip", "-4", "-o", "addr", "show"), address)
        ]


@dataclass
class Case:
    """One failure and what the client saw."""

    name: str
    longest_gap_ms: int = 0
    failed_requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    holder_before: str = ""
    holder_after: str = ""
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, what: str) -> None:
        (self.checks if ok else self.problems).append(what)


class Drill:
    """Runs the cases in order against one lab; each case leaves the lab healthy again."""

    def __init__(self, args: argparse.Namespace, lab: Lab, prober: Prober) -> None:
        self.args = args
        self.lab = lab
        self.prober = prober
        self.lbs: list[str] = args.lb
        self.primary = self.lbs[0]
        self.cases: list[Case] = []

    def holder(self) -> str:
        holders = self.lab.holders(self.lbs, self.args.vip)
        if len(holders) != 1:
            raise RuntimeError(f"expected exactly one VIP holder among {self.lbs}, got {holders}")
        return holders[0]

    def wait_holder(self, wanted: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.lab.holders(self.lbs, self.args.vip) == [wanted]:
                return True
            time.sleep(0.2)
        return False

    def measure(self, case: Case, start: float, recovered: bool) -> None:
        """Close the case's window: wait for the client to be steady, then take the figures."""
        steady = self.prober.wait_steady(start, timeout=30.0)
        end = time.monotonic()
        gap = longest_gap(self.prober.success_times(), start, end)
        case.longest_gap_ms = round(gap * 1000)
        failed = [s.error for s in self.prober.since(start) if s.backend is None]
        case.failed_requests = len(failed)
        case.errors = dict(collections.Counter(failed))
        case.expect(recovered, "the VIP is where it should be")
        case.expect(steady, f"the client got {STEADY_SUCCESSES} answers in a row afterwards")
        case.expect(
            gap <= self.args.max_gap,
            f"longest gap {case.longest_gap_ms} ms within {self.args.max_gap * 1000:.0f} ms",
        )
        self.cases.append(case)

    def peer_of(self, host: str) -> str:
        return next(h for h in self.lbs if h != host)

    def baseline(self) -> None:
        case = Case("baseline (no failure, 3 s)")
        start = time.monotonic()
        case.holder_before = case.holder_after = self.holder()
        time.sleep(3)
        seen = {s.backend for s in self.prober.since(start) if s.backend}
        case.expect(case.holder_before == self.primary, f"{self.primary} holds the VIP first")
        case.expect(
            seen == set(self.args.backend), f"answers from every backend (saw {sorted(seen)})"
        )
        self.measure(case, start, recovered=True)

    def fail_holder(self, name: str, fail: Callable[[str], None]) -> str:
        """Break the holder with fail(host); the VIP must move to the peer. Returns the holder."""
        case = Case(name)
        holder = case.holder_before = self.holder()
        peer = self.peer_of(holder)
        start = time.monotonic()
        fail(holder)
        moved = self.wait_holder(peer)
        case.holder_after = peer if moved else ",".join(self.lab.holders(self.lbs, self.args.vip))
        self.measure(case, start, recovered=moved)
        return holder

    def restore(self, name: str, broken: str, restore: Callable[[str], None]) -> None:
        """Repair the broken host; with preempt the VIP comes back to it, without it stays."""
        case = Case(name)
        case.holder_before = self.holder()
        wanted = broken if self.args.preempt else case.holder_before
        start = time.monotonic()
        restore(broken)
        if self.args.preempt:
            placed = self.wait_holder(wanted)
        else:
            # Long enough for a wrong preemption to happen: a few advert intervals.
            time.sleep(5)
            placed = self.lab.holders(self.lbs, self.args.vip) == [wanted]
        case.holder_after = ",".join(self.lab.holders(self.lbs, self.args.vip))
        case.expect(placed, f"the VIP is on {wanted} (preempt={self.args.preempt})")
        self.measure(case, start, recovered=placed)

    def systemctl(self, verb: str, unit: str, host: str) -> None:
        self.lab.ssh(host, "systemctl", verb, unit)

    def service_cases(self) -> None:
        for service, why in (("keepalived", "keepalived stopped"), ("nginx", "nginx stopped")):
            broken = self.fail_holder(
                f"{why} on the holder", functools.partial(self.systemctl, "stop", service)
            )
            self.restore(
                f"failback after {service} starts again",
                broken,
                functools.partial(self.systemctl, "start", service),
            )

    def pause_case(self) -> None:
        broken = self.fail_holder(
            "holder paused (kubesmith-lab pause)", lambda h: self.lab.host_action("pause", h)
        )
        case = Case("failback after unpause")
        case.holder_before = self.holder()
        start = time.monotonic()
        self.lab.host_action("unpause", broken)
        # A frozen master wakes up still MASTER at a higher priority, so it wins the
        # election back whatever the preempt setting; what matters is one holder again.
        time.sleep(5)
        holders = self.lab.holders(self.lbs, self.args.vip)
        case.holder_after = ",".join(holders)
        case.expect(len(holders) == 1, f"exactly one holder after unpause ({holders})")
        self.measure(case, start, recovered=len(holders) == 1)

    def backend_case(self) -> None:
        stopped, remaining = self.args.backend[0], self.args.backend[1:]
        case = Case(f"backend stopped ({stopped})")
        case.holder_before = self.holder()
        start = time.monotonic()
        self.lab.ssh(stopped, "systemctl", "stop", self.args.backend_service)
        # Requests that began before the stop returned may still have reached it.
        stopped_at = time.monotonic() + 1.5
        time.sleep(3)
        after = {s.backend for s in self.prober.since(stopped_at) if s.backend}
        case.expect(after <= set(remaining), f"only {remaining} answer (saw {sorted(after)})")
        case.holder_after = self.holder()
        self.measure(case, start, recovered=case.holder_after == case.holder_before)
        self.lab.ssh(stopped, "systemctl", "start", self.args.backend_service)

    def broken_config_case(self, name: str, extra_vars: dict[str, str], marker: str) -> None:
        case = Case(name)
        case.holder_before = self.holder()
        start = time.monotonic()
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "--inventory",
                str(self.args.inventory),
                "--extra-vars",
                json.dumps(extra_vars),
                "--limit",
                ",".join(self.lbs),
                str(self.args.playbook),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            cwd=REPO_ROOT,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")},
        )
        case.expect(result.returncode != 0, f"the run failed (rc={result.returncode})")
        case.holder_after = self.holder()
        for host in self.lbs:
            on_disk = self.lab.ssh(
                host, "grep", "-rc", marker, "/etc/nginx/", "/etc/keepalived/", check=False
            )
            case.expect(
                all(line.endswith(":0") for line in on_disk.splitlines()),
                f"{host} kept its last good config",
            )
        self.measure(case, start, recovered=case.holder_after == case.holder_before)

    def run(self) -> None:
        self.baseline()
        self.service_cases()
        self.pause_case()
        self.backend_case()
        if self.args.playbook:
            self.broken_config_case(
                "broken nginx config pushed by the role",
                {"apiserver_lb_nginx_extra_stream_config": "drill_broken_directive on;"},
                "drill_broken_directive",
            )
            self.broken_config_case(
                "broken keepalived config pushed by the role",
                {"apiserver_lb_keepalived_extra_config": "drill_broken_block {"},
                "drill_broken_block",
            )


def lab_is_up(address: str) -> bool:
    """The VIP's subnet routes to a lab bridge; with the lab down it hits the blackhole."""
    result = subprocess.run(
        ["ip", "-4", "route", "get", address], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and " dev " in result.stdout


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--vip", required=True)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cafile", type=Path, required=True, help="CA of the backends' cert")
    parser.add_argument("--lb", action="append", required=True, help="lb hosts, primary first")
    parser.add_argument("--backend", action="append", required=True, help="backend hosts")
    parser.add_argument("--backend-service", required=True, help="unit serving on a backend")
    parser.add_argument("--playbook", type=Path, help="playbook that pushes the broken configs")
    parser.add_argument("--preempt", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--max-gap", type=float, default=10.0, help="seconds allowed per case")
    parser.add_argument(
        "--lab-command",
        default=shutil.which("kubesmith-lab") or str(Path(sys.executable).parent / "kubesmith-lab"),
    )
    args = parser.parse_args(argv)
    if len(args.lb) != 2 or len(args.backend) < 2:
        parser.error(f"--lb {args.lb} --backend {args.backend}: give two lb and 2+ backend hosts")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not lab_is_up(args.vip):
        print(f"{args.vip} does not route to a lab network: run kubesmith-lab up", file=sys.stderr)
        return 2
    lab = Lab(args.lab_command, args.inventory)
    prober = Prober(args.vip, args.port, args.cafile)
    prober.start()
    drill = Drill(args, lab, prober)
    try:
        drill.run()
    finally:
        prober.stopping.set()
        for host in sorted(lab.paused):
            lab.host_action("unpause", host)
    for case in drill.cases:
        status = "ok" if not case.problems else "FAILED: " + "; ".join(case.problems)
        print(
            f"{case.name:<45} {case.longest_gap_ms:>6} ms  {case.failed_requests:>4} failed  "
            f"{case.holder_before} -> {case.holder_after}  {status}  {case.errors or ''}",
            file=sys.stderr,
        )
    print(json.dumps({"cases": [asdict(c) for c in drill.cases]}, indent=2))
    return 1 if any(c.problems for c in drill.cases) else 0


if __name__ == "__main__":
    sys.exit(main())

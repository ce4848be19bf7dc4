"""An API availability probe: a client asking the apiserver through the VIP, several times a
second, each time on a new TCP and TLS connection (so every request goes through the load
balancer's choice of backend), and what it saw: requests, failures and the longest gap.

Used by the day-2 drill (kubesmith.lab.drill) around each operation; also on its own:
    kubesmith-probe --kubeconfig admin.conf --seconds 60
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kubesmith.lab.errors import LabError

# A read that goes through authentication, authorization and storage (not just /readyz).
DEFAULT_PATH = "/api/v1/namespaces/kube-system"
MAX_FAILED_AT = 20


@dataclass(frozen=True)
class Sample:
    """One request: when it started and ended (monotonic seconds) and how it went."""

    start: float
    end: float
    ok: bool
    detail: str = ""
    # Wall-clock time of the start, to match a failure with the hosts' logs.
    wall: float = 0.0


@dataclass(frozen=True)
class Summary:
    requests: int
    failed: int
    # The longest time between two successful answers (a quiet run shows the interval).
    longest_gap_s: float
    # The longest run of failures: from the first failed request's start to the next success.
    longest_outage_s: float
    slowest_s: float
    errors: dict[str, int] = field(default_factory=dict)
    # UTC times (HH:MM:SS.s) of the first failed requests.
    failed_at: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "longest_gap_s": round(self.longest_gap_s, 3),
            "longest_outage_s": round(self.longest_outage_s, 3),
            "slowest_s": round(self.slowest_s, 3),
            "errors": dict(self.errors),
            "failed_at": list(self.failed_at),
        }


def summarize(samples: list[Sample], window_start: float, window_end: float) -> Summary:
    """Figures for the samples of one window; gaps count from the window's edges too."""
    ordered = sorted(samples, key=lambda s: s.start)
    successes = [s.end for s in ordered if s.ok]
    edges = [window_start, *successes, window_end]
    longest_gap = max((b - a for a, b in itertools.pairwise(edges)), default=0.0)
    errors: dict[str, int] = {}
    longest_outage = 0.0
    outage_start: float | None = None
    for sample in ordered:
        if sample.ok:
            if outage_start is not None:
                longest_outage = max(longest_outage, sample.end - outage_start)
                outage_start = None
            continue
        errors[sample.detail] = errors.get(sample.detail, 0) + 1
        if outage_start is None:
            outage_start = sample.start
    if outage_start is not None:
        longest_outage = max(longest_outage, window_end - outage_start)
    return Summary(
        requests=len(ordered),
        failed=sum(1 for s in ordered if not s.ok),
        longest_gap_s=longest_gap,
        longest_outage_s=longest_outage,
        slowest_s=max((s.end - s.start for s in ordered), default=0.0),
        errors=errors,
        failed_at=[
            time.strftime("%H:%M:%S", time.gmtime(s.wall)) + f".{int(s.wall * 10) % 10}"
            for s in ordered
            if not s.ok
        ][:MAX_FAILED_AT],
    )


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    context: ssl.SSLContext


def _data(entry: dict[str, Any], key: str, where: str) -> bytes:
    value = entry.get(f"{key}-data")
    if not isinstance(value, str):
        raise LabError(f"{where}: {key}-data is missing; the probe needs embedded credentials")
    return base64.b64decode(value)


def target_from_kubeconfig(path: Path, workdir: Path) -> Target:
    """The server and an SSL context with the kubeconfig's CA and client certificate."""
    try:
        config: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise LabError(f"cannot read the kubeconfig {path}: {exc}") from exc
    url = urlsplit(str(cluster.get("server", "")))
    if url.scheme != "https" or not url.hostname:
        raise LabError(f"{path}: server {cluster.get('server')!r} is not an https URL")
    cert, key = workdir / "client.crt", workdir / "client.key"
    for target, name in ((cert, "client-certificate"), (key, "client-key")):
        target.touch(mode=0o600)
        target.write_bytes(_data(user, name, str(path)))
    context = ssl.create_default_context(
        cadata=_data(cluster, "certificate-authority", str(path)).decode()
    )
    context.load_cert_chain(cert, key)
    return Target(host=url.hostname, port=url.port or 443, context=context)


def ask(target: Target, path: str, timeout: float) -> tuple[bool, str]:
    """One GET on a fresh connection: (ok, what went wrong)."""
    connection = http.client.HTTPSConnection(
        target.host, target.port, context=target.context, timeout=timeout
    )
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            return True, ""
        return False, f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        return False, type(exc).__name__
    finally:
        connection.close()


class Probe:
    """Asks in a background thread; mark() and summary() cut the record into windows."""

    def __init__(self, target: Target, path: str = DEFAULT_PATH, interval: float = 0.1) -> None:
        self.target, self.path, self.interval = target, path, interval
        self.timeout = 2.0
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            start, wall = time.monotonic(), time.time()
            ok, detail = ask(self.target, self.path, self.timeout)
            with self._lock:
                self._samples.append(Sample(start, time.monotonic(), ok, detail, wall))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - start)))

    def start(self) -> Probe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 1)

    def summary(self, since: float, until: float | None = None) -> Summary:
        end = time.monotonic() if until is None else until
        with self._lock:
            window = [s for s in self._samples if since <= s.start and s.end <= end]
        return summarize(window, since, end)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubesmith-probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--path", default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kubesmith-probe-") as workdir:
        try:
            target = target_from_kubeconfig(args.kubeconfig, Path(workdir))
        except LabError as exc:
            parser.error(str(exc))
        probe = Probe(target, args.path, args.interval).start()
        since = time.monotonic()
        time.sleep(args.seconds)
        probe.stop()
        print(json.dumps(probe.summary(since).as_dict(), indent=2))
    return 0

"""The day-2 drill: a lab cluster taken through every day-2 playbook while a client asks the
API through the VIP (kubesmith.lab.probe); each step's wall time, API gaps, idempotent rerun
and checks go into a report. docs/day2.md describes the steps; `make drills` runs it.

    kubesmith-drill [--steps remove-worker,add-worker] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubesmith.lab.errors import LabError
from kubesmith.lab.probe import Probe, target_from_kubeconfig
from kubesmith.lab.runs import (
    CLUSTERS,
    MIRROR,
    REPO,
    SERVICES,
    LabRun,
    Recap,
    parse_recap,
    table,
    tools_on_path,
    write_report,
)

__all__ = ["SERVICES", "Drill", "Recap", "StepResult", "main", "parse_recap", "report"]

SOURCE_INVENTORY = REPO / "tests" / "drills" / "day2" / "inventory"
STATE = CLUSTERS / "drill"


@dataclass
class StepResult:
    key: str
    title: str
    seconds: float = 0.0
    api: dict[str, Any] = field(default_factory=dict)
    zero_failures_goal: bool = True
    rerun_changed: int | None = None
    rerun_seconds: float | None = None
    checks: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        if self.error or self.rerun_changed not in (None, 0):
            return False
        return not (self.zero_failures_goal and self.api.get("failed", 0) > 0)


class Drill(LabRun):
    """The drill's lab (runs.LabRun: inventory copy, logs, commands) and what only it needs."""

    def __init__(self, state: Path, kubernetes_from: str, kubernetes_to: str) -> None:
        super().__init__(state, logs="drill-logs", state_file="drill-state.yml")
        self.kubernetes_from, self.kubernetes_to = kubernetes_from, kubernetes_to
        self.kubectl_path = MIRROR / f"dl.k8s.io/release/{kubernetes_to}/bin/linux/amd64/kubectl"

    def copy_inventory(self, source: Path = SOURCE_INVENTORY) -> None:
        super().copy_inventory(source)

    def kubectl(self, *args: str) -> str:
        kubeconfig = self.state / "pki" / "kubeconfigs" / "admin.conf"
        argv = [str(self.kubectl_path), f"--kubeconfig={kubeconfig}", *args]
        # Not through run(): its output is parsed, and warnings on stderr must stay out of it.
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LabError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def nodes(self) -> dict[str, dict[str, str]]:
        """Node name -> {ready, version, unschedulable}."""
        data = json.loads(self.kubectl("get", "nodes", "-o", "json"))
        nodes: dict[str, dict[str, str]] = {}
        for item in data["items"]:
            ready = [c["status"] for c in item["status"]["conditions"] if c["type"] == "Ready"]
            nodes[item["metadata"]["name"]] = {
                "ready": ready[0] if ready else "Unknown",
                "version": item["status"]["nodeInfo"]["kubeletVersion"],
                "unschedulable": str(item["spec"].get("unschedulable", False)),
            }
        return nodes


def expect(condition: bool, message: str, result: StepResult) -> None:
    if not condition:
        raise LabError(f"check failed: {message}")
    result.checks.append(message)


# --- the steps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    key: str
    title: str
    action: Callable[[Drill], None]
    checks: Callable[[Drill, StepResult, Any], None]
    prepare: Callable[[Drill], Any] | None = None
    rerun: Callable[[Drill], Recap] | None = None
    zero_failures_goal: bool = True


def _remove_worker(d: Drill) -> None:
    d.playbook("playbooks/remove-node.yml", "-l", "node2", log_name="remove-worker")


def _remove_worker_checks(d: Drill, r: StepResult, before: Any) -> None:
    expect("node2" not in d.nodes(), "the Node node2 is deleted", r)
    left = d.adhoc(
        "node2",
        "systemctl is-active kubelet kube-proxy containerd flanneld; ip -o link show flannel.1;"
        " ip -o link show cni0; ls /opt/kubesmith /etc/kubernetes 2>&1 | head -3; true",
        "remove-worker-left",
    )
    text = left.get("node2", "")
    expect(
        " active" not in f" {text}" and "flannel.1:" not in text,
        "node2 runs no unit and has no flannel.1",
        r,
    )


def _add_worker_prepare(d: Drill) -> dict[str, str]:
    return d.service_pids("all:!node2:!drill_spare")


def _add_worker(d: Drill) -> None:
    d.playbook("setup.yml", "-l", "node2", log_name="add-worker")


def _add_worker_checks(d: Drill, r: StepResult, before: Any) -> None:
    node = d.nodes().get("node2", {})
    expect(node.get("ready") == "True", "node2 is back and Ready", r)
    after = d.service_pids("all:!node2:!drill_spare")
    moved = sorted(h for h in before if after.get(h) != before[h])
    expect(not moved, f"no service restarted on any other host (changed: {moved})", r)


def _add_control_plane(d: Drill) -> None:
    def move_cp4(groups: dict[str, Any]) -> None:
        groups["kube_control_plane"]["hosts"]["cp4"] = groups["drill_spare"]["hosts"].pop("cp4")

    d.edit_hosts(move_cp4)
    # Stage 90 (90-verify.yml) pauses the VIP holder on purpose; the verify step measures that.
    d.playbook("setup.yml", "-e", "verify_freeze_vip_holder=false", log_name="add-control-plane")


def _add_control_plane_checks(d: Drill, r: StepResult, before: Any) -> None:
    upstreams = d.adhoc("lb", "grep -c ':6443 ' /etc/nginx/nginx.conf", "lb-upstreams")
    expect(
        all(v.strip() == "4" for v in upstreams.values()) and len(upstreams) == 2,
        f"both lb hosts proxy to 4 apiservers ({upstreams})",
        r,
    )
    ready = d.adhoc(
        "cp4",
        "cd /etc/kubernetes/pki && curl -s --cacert ca.crt --cert apiserver-kubelet-client.crt"
        " --key apiserver-kubelet-client.key https://127.0.0.1:6443/readyz",
        "cp4-readyz",
    )
    expect(ready.get("cp4", "").strip() == "ok", "cp4's kube-apiserver /readyz is ok", r)
    sans = d.run(
        [
            "openssl",
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            str(d.state / "pki" / "apiserver.crt"),
        ],
        "apiserver-sans",
    )
    expect("172.30.27.24" in sans, "the apiserver certificate names cp4's address", r)


def _break_cp3(d: Drill) -> None:
    d.adhoc(
        "cp3", "systemctl stop etcd && mv /var/lib/etcd /var/lib/etcd.lost-by-drill", "break-cp3"
    )


def _replace_member(d: Drill) -> None:
    d.playbook(
        "playbooks/etcd-replace-member.yml",
        "-e",
        "etcd_replace_member=cp3",
        log_name="replace-etcd-member",
    )


def _replace_member_rerun(d: Drill) -> Recap:
    return d.playbook(
        "playbooks/etcd-replace-member.yml",
        "-e",
        "etcd_replace_member=cp3",
        log_name="replace-etcd-member-rerun",
    )


def _etcd_members(d: Drill) -> list[dict[str, Any]]:
    out = d.adhoc(
        "cp1",
        "ETCDCTL_CACERT=/etc/kubernetes/pki/etcd/ca.crt"
        " ETCDCTL_CERT=/etc/kubernetes/pki/etcd/healthcheck-client.crt"
        " ETCDCTL_KEY=/etc/kubernetes/pki/etcd/healthcheck-client.key"
        " etcdctl --endpoints=https://127.0.0.1:2379 member list -w json",
        "etcd-members",
    )
    members: list[dict[str, Any]] = json.loads(out.get("cp1", "") or "{}").get("members", [])
    return members


def _replace_member_checks(d: Drill, r: StepResult, before: Any) -> None:
    members = _etcd_members(d)
    names = sorted(m.get("name", "") for m in members)
    expect(names == ["cp1", "cp2", "cp3"], f"etcd members are cp1, cp2, cp3 ({names})", r)
    expect(not any(m.get("isLearner") for m in members), "no member is left a learner", r)


def _renew_prepare(d: Drill) -> str:
    return d.run(
        ["openssl", "x509", "-noout", "-serial", "-in", str(d.state / "pki" / "apiserver.crt")],
        "serial-before",
    )


def _renew(d: Drill) -> None:
    d.playbook(
        "playbooks/renew-certs.yml",
        # Everything due now: a window above every certificate's days left, and a validity
        # above the window (pki_set refuses a window that is not below the validity).
        "-e",
        "kubesmith_pki_renew_before_days=1000",
        "-e",
        "kubesmith_pki_cert_valid_days=1001",
        log_name="renew-certs",
    )


def _renew_rerun(d: Drill) -> Recap:
    return d.playbook("playbooks/renew-certs.yml", log_name="renew-certs-rerun")


def _renew_checks(d: Drill, r: StepResult, before: Any) -> None:
    served = d.adhoc(
        "cp1",
        "openssl s_client -connect 127.0.0.1:6443 </dev/null 2>/dev/null"
        " | openssl x509 -noout -serial",
        "serial-served",
    )
    local = _renew_prepare(d)
    expect(
        local != before,
        f"the apiserver certificate was renewed ({before.strip()} -> {local.strip()})",
        r,
    )
    expect(
        served.get("cp1", "").strip() == local.strip(),
        "cp1 serves the renewed apiserver certificate",
        r,
    )


def _upgrade(d: Drill) -> None:
    d.set_var("kubesmith_kubernetes_version", d.kubernetes_to)
    d.playbook("playbooks/upgrade.yml", log_name="upgrade")


def _upgrade_rerun(d: Drill) -> Recap:
    return d.playbook("playbooks/upgrade.yml", log_name="upgrade-rerun")


def _upgrade_checks(d: Drill, r: StepResult, before: Any) -> None:
    versions = {name: n["version"] for name, n in d.nodes().items()}
    expect(
        set(versions.values()) == {d.kubernetes_to},
        f"every node runs {d.kubernetes_to} ({versions})",
        r,
    )
    server = json.loads(d.kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
    expect(server == d.kubernetes_to, f"the API reports {server}", r)


def _write_before(d: Drill) -> None:
    d.kubectl(
        "delete",
        "configmap",
        "drill-before-snapshot",
        "drill-after-snapshot",
        "-n",
        "default",
        "--ignore-not-found",
    )
    d.kubectl("create", "configmap", "drill-before-snapshot", "-n", "default", "--from-literal=k=v")


def _backup(d: Drill) -> None:
    d.playbook("playbooks/etcd-backup.yml", log_name="etcd-backup")


def _backup_checks(d: Drill, r: StepResult, before: Any) -> None:
    del before
    snapshot = _newest_snapshot(d)
    sums = Path(f"{snapshot}.sha256").read_text(encoding="utf-8").split()
    digest = d.run(["sha256sum", str(snapshot)], "snapshot-sha256").split()[0]
    expect(sums[:1] == [digest], f"{snapshot.name} matches its .sha256", r)


def _write_after(d: Drill) -> None:
    d.kubectl("create", "configmap", "drill-after-snapshot", "-n", "default", "--from-literal=k=v")


def _newest_snapshot(d: Drill) -> Path:
    snapshots = sorted((d.state / "etcd-backups").glob("*.db"), key=lambda p: p.stat().st_mtime)
    if not snapshots:
        raise LabError(f"no snapshot in {d.state / 'etcd-backups'}")
    return snapshots[-1]


def _restore(d: Drill) -> None:
    d.playbook(
        "playbooks/etcd-restore.yml",
        "-e",
        f"etcd_restore_snapshot={_newest_snapshot(d)}",
        log_name="etcd-restore",
    )


def _restore_rerun(d: Drill) -> Recap:
    return d.playbook(
        "playbooks/etcd-restore.yml",
        "-e",
        f"etcd_restore_snapshot={_newest_snapshot(d)}",
        log_name="etcd-restore-rerun",
    )


def _restore_checks(d: Drill, r: StepResult, before: Any) -> None:
    names = d.kubectl("get", "configmaps", "-n", "default", "-o", "name")
    expect("drill-before-snapshot" in names, "the ConfigMap written before the snapshot is back", r)
    expect("drill-after-snapshot" not in names, "the one written after it is gone", r)


def _verify(d: Drill) -> None:
    d.playbook("playbooks/90-verify.yml", log_name="verify")


def _no_checks(d: Drill, r: StepResult, before: Any) -> None:
    del d, r, before


STEPS = (
    Step(
        "remove-worker",
        "Remove a worker (node2)",
        _remove_worker,
        _remove_worker_checks,
        rerun=lambda d: d.playbook(
            "playbooks/remove-node.yml", "-l", "node2", log_name="remove-worker-rerun"
        ),
    ),
    Step(
        "add-worker",
        "Add a worker (setup.yml -l node2)",
        _add_worker,
        _add_worker_checks,
        prepare=_add_worker_prepare,
        rerun=lambda d: d.playbook("setup.yml", "-l", "node2", log_name="add-worker-rerun"),
    ),
    Step(
        "add-control-plane",
        "Add a control-plane host (cp4)",
        _add_control_plane,
        _add_control_plane_checks,
    ),
    Step(
        "replace-etcd-member",
        "Replace a lost etcd member (cp3)",
        _replace_member,
        _replace_member_checks,
        prepare=_break_cp3,
        rerun=_replace_member_rerun,
    ),
    Step(
        "renew-certs",
        "Renew every leaf certificate",
        _renew,
        _renew_checks,
        prepare=_renew_prepare,
        rerun=_renew_rerun,
    ),
    Step("upgrade", "Rolling upgrade", _upgrade, _upgrade_checks, rerun=_upgrade_rerun),
    Step(
        "etcd-backup",
        "etcd snapshot to the deploy host",
        _backup,
        _backup_checks,
        prepare=_write_before,
    ),
    Step(
        "etcd-restore",
        "etcd restore of that snapshot",
        _restore,
        _restore_checks,
        prepare=_write_after,
        rerun=_restore_rerun,
        zero_failures_goal=False,
    ),
    # 90-verify.yml pauses the VIP holder (keepalived failover): its gap is the failover's.
    Step(
        "verify",
        "90-verify.yml on the result (includes a VIP failover)",
        _verify,
        _no_checks,
        zero_failures_goal=False,
    ),
)


# --- the run ------------------------------------------------------------------------------
def run_step(d: Drill, step: Step, probe: Probe | None) -> StepResult:
    result = StepResult(step.key, step.title, zero_failures_goal=step.zero_failures_goal)
    print(f"[drill] {step.title} ...", flush=True)
    try:
        before = step.prepare(d) if step.prepare else None
        since = time.monotonic()
        step.action(d)
        result.seconds = time.monotonic() - since
        if probe is not None:
            result.api = probe.summary(since).as_dict()
        if step.rerun is not None:
            since = time.monotonic()
            result.rerun_changed = step.rerun(d).changed
            result.rerun_seconds = time.monotonic() - since
        step.checks(d, result, before)
    except LabError as exc:
        result.error = str(exc)
    # A bug in one step must not lose the figures of the others.
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    print(
        f"[drill] {step.title}: {'PASS' if result.passed else 'FAIL'} {describe(result)}",
        flush=True,
    )
    return result


def describe(result: StepResult) -> str:
    api = result.api
    parts = [f"{result.seconds:.0f} s"]
    if api:
        parts.append(
            f"API {api['requests']} requests, {api['failed']} failed,"
            f" longest gap {api['longest_gap_s']} s"
        )
    if result.rerun_changed is not None:
        parts.append(f"rerun changed={result.rerun_changed} in {result.rerun_seconds:.0f} s")
    if result.error:
        parts.append(result.error.splitlines()[0])
    return "; ".join(parts)


def _outcome(r: StepResult) -> str:
    if r.passed:
        return "PASS"
    return "FAIL: " + r.error.splitlines()[0] if r.error else "FAIL"


def report(results: list[StepResult], path: Path) -> str:
    """The drill's table, written as <path>.md with the results as <path>.json beside it."""
    rows = []
    for r in results:
        api = r.api or {}
        rerun = (
            ""
            if r.rerun_changed is None
            else f"changed={r.rerun_changed} ({r.rerun_seconds:.0f} s)"
        )
        rows.append(
            (
                r.title,
                f"{r.seconds:.0f} s",
                api.get("requests", ""),
                api.get("failed", ""),
                f"{api.get('longest_gap_s', '')} s",
                f"{api.get('longest_outage_s', '')} s",
                rerun,
                _outcome(r),
            )
        )
    head = ("step", "wall time", "API requests", "failed", "longest gap", "longest outage")
    text = "\n".join(table((*head, "rerun", "result"), rows))
    write_report(path.with_suffix(""), [r.__dict__ | {"passed": r.passed} for r in results], text)
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubesmith-drill", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--steps",
        default=",".join(s.key for s in STEPS),
        help="comma-separated step keys, in order (default: all)",
    )
    p.add_argument(
        "--reuse", action="store_true", help="keep the drill's hosts and inventory; skip setup.yml"
    )
    p.add_argument("--keep", action="store_true", help="leave the hosts up at the end")
    p.add_argument("--state", type=Path, default=STATE)
    p.add_argument("--from-version", default=None, help="Kubernetes version deployed first")
    p.add_argument(
        "--to-version", default=None, help="Kubernetes version the upgrade step moves to"
    )
    return p


def default_versions() -> tuple[str, str]:
    start = yaml.safe_load(
        (SOURCE_INVENTORY / "group_vars/all/cluster.yml").read_text(encoding="utf-8")
    )
    target = yaml.safe_load(
        (REPO / "roles/kubesmith/defaults/main.yml").read_text(encoding="utf-8")
    )
    return str(start["kubesmith_kubernetes_version"]), str(target["kubesmith_kubernetes_version"])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    tools_on_path()
    start, target = default_versions()
    d = Drill(args.state, args.from_version or start, args.to_version or target)
    chosen = [key for key in args.steps.split(",") if key]
    unknown = sorted(set(chosen) - {s.key for s in STEPS})
    if unknown:
        parser().error(f"unknown steps {unknown}; choose from {[s.key for s in STEPS]}")
    results: list[StepResult] = []
    try:
        if not args.reuse:
            # A fresh drill: the hosts, PKI and backups of an earlier run go first.
            if d.inventory.exists():
                d.lab("down")
            if d.state.exists():
                shutil.rmtree(d.state)
            d.copy_inventory()
            if args.from_version:
                d.set_var("kubesmith_kubernetes_version", args.from_version)
            d.lab("up")
            since = time.monotonic()
            print(f"[drill] setup.yml at {d.kubernetes_from} from bare hosts ...", flush=True)
            d.playbook("setup.yml", log_name="setup")
            results.append(
                StepResult(
                    "setup", f"setup.yml ({d.kubernetes_from})", seconds=time.monotonic() - since
                )
            )
        with tempfile.TemporaryDirectory(prefix="kubesmith-drill-") as workdir:
            target_api = target_from_kubeconfig(
                d.state / "pki/kubeconfigs/admin.conf", Path(workdir)
            )
            probe = Probe(target_api).start()
            try:
                for step in STEPS:
                    if step.key in chosen:
                        results.append(run_step(d, step, probe))
                        # Failed requests are a finding, not a broken cluster: go on.
                        if results[-1].error:
                            break
            finally:
                probe.stop()
    except LabError as exc:
        print(f"[drill] ERROR: {exc}", file=sys.stderr)
        results.append(StepResult("error", "drill", error=str(exc)))
    finally:
        print(report(results, d.state / "drill-report.md"))
        if not args.keep and not any(not r.passed for r in results):
            d.lab("down")
    return 0 if results and all(r.passed for r in results) else 1

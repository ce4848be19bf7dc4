"""The bench (issue 16): how long kubesmith takes on the lab topology, on fresh lab hosts:
(a) setup.yml from bare hosts, with seconds per stage and the 20 slowest tasks; (b) the no-op
rerun, which must change nothing and restart no service (MainPIDs read on every host before
and after); (c) adding one worker (`setup.yml -l <spare>`). docs/performance.md describes it;
`make bench` runs it.

    kubesmith-bench [--workers 2] [--label before|after] [--compare old.json]
                    [--report-to docs/performance.md] [--keep] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubesmith.lab.errors import LabError
from kubesmith.lab.runs import (
    CLUSTERS,
    LabNetworks,
    LabRun,
    PlaybookRun,
    dry_run_status,
    finish_report,
    header_lines,
    load_average,
    minutes,
    pid_changes,
    report_data,
    table,
    tools_on_path,
    write_rebased_inventory,
    write_report,
)
from kubesmith.lab.spec import spec_from_inventory

STATE = CLUSTERS / "bench"
# Apart from the lab (.10), molecule (.20-.26), the drill (.27) and the soak (.28).
NETWORKS = LabNetworks(
    name="bench",
    subnet="172.30.29.0/24",
    pod_cidr="172.30.48.0/20",
    service_cidr="172.30.184.0/21",
)
SPARE_GROUP = "bench_spare"
FIRST_WORKER = 31  # node1 is .31, as in inventory/lab
MAX_WORKERS = 12  # pod network /20: 15 flannel leases for 3 control-plane hosts + workers
PHASES = ("from-bare", "rerun", "add-worker")


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- the inventory ----------------------------------------------------------------------------
def worker_name(number: int) -> str:
    return f"node{number}"


def worker_address(number: int) -> str:
    prefix = NETWORKS.subnet.rsplit(".", 1)[0]
    return f"{prefix}.{FIRST_WORKER + number - 1}"


def with_workers(workers: int) -> Callable[[dict[str, Any]], None]:
    """An edit of all.children: kube_node holds node1..nodeN and the spare node(N+1) waits in
    its own group (kubesmith-lab makes it a host; no stage touches it until it joins)."""

    def edit(groups: dict[str, Any]) -> None:
        groups["kube_node"]["hosts"] = {
            worker_name(n): {"ansible_host": worker_address(n)} for n in range(1, workers + 1)
        }
        spare = workers + 1
        groups[SPARE_GROUP] = {
            "hosts": {worker_name(spare): {"ansible_host": worker_address(spare)}}
        }

    return edit


def promote_spare(groups: dict[str, Any]) -> None:
    """The spare worker into kube_node (k8s_cluster follows)."""
    spare = groups.pop(SPARE_GROUP)["hosts"]
    groups["kube_node"]["hosts"].update(spare)


def spare_name(workers: int) -> str:
    return worker_name(workers + 1)


# --- the phases -------------------------------------------------------------------------------
@dataclass
class Bench:
    """The bench's results as they come in."""

    workers: int
    label: str
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, phase: str, run: PlaybookRun) -> None:
        self.phases[phase] = run.as_dict()
        say(f"{phase}: {'green' if run.green else 'RED'} in {minutes(run.seconds)}")
        if not run.green:
            self.errors.append(f"{phase}: {run.first_failure()}")

    def check(self, condition: bool, message: str) -> None:
        (self.checks if condition else self.errors).append(message)
        say(f"{'ok' if condition else 'FAILED'}: {message}")

    @property
    def passed(self) -> bool:
        return not self.errors and all(p in self.phases for p in PHASES)


def cluster_hosts() -> str:
    return f"all:!{SPARE_GROUP}"


def run_phases(lab: LabRun, bench: Bench) -> None:
    """(a) from bare hosts, (b) the no-op rerun, (c) one more worker; stops at a red phase."""
    say("from-bare: setup.yml on bare hosts ...")
    bench.record("from-bare", lab.timed_playbook("setup.yml", log_name="from-bare"))
    if bench.errors:
        return
    before = lab.service_pids(cluster_hosts())
    say("rerun: setup.yml again ...")
    rerun = lab.timed_playbook("setup.yml", log_name="rerun")
    bench.record("rerun", rerun)
    after = lab.service_pids(cluster_hosts())
    bench.check(rerun.changed == 0, f"the rerun reports changed={rerun.changed} (0 expected)")
    moved = pid_changes(before, after)
    bench.check(not moved, f"no service restarted on {len(before)} hosts ({moved or 'none'})")
    if bench.errors:
        return
    spare = spare_name(bench.workers)
    lab.edit_hosts(promote_spare)
    say(f"add-worker: setup.yml -l {spare} ...")
    bench.record("add-worker", lab.timed_playbook("setup.yml", "-l", spare, log_name="add-worker"))
    moved = pid_changes(after, lab.service_pids(f"all:!{spare}"))
    bench.check(not moved, f"adding {spare} restarted nothing elsewhere ({moved or 'none'})")


# --- the report -------------------------------------------------------------------------------
def phase_seconds(data: dict[str, Any]) -> dict[str, float]:
    return {p: float(v["seconds"]) for p, v in data.get("phases", {}).items() if "seconds" in v}


def stage_seconds(data: dict[str, Any], phase: str) -> dict[str, float]:
    return {label: float(s) for label, s in data.get("phases", {}).get(phase, {}).get("stages", [])}


def render(data: dict[str, Any]) -> str:
    """The bench report in markdown (docs/performance.md keeps the latest)."""
    label = f" ({data['label']})" if data.get("label") else ""
    lines = [
        f"### Bench{label}: {data['workers']} workers + 1 added",
        "",
        *header_lines(data),
        f"Hosts: lab `{data['lab']}` on {data['subnet']}. "
        f"Result: **{'PASS' if data.get('passed') else 'FAIL'}**.",
        "",
    ]
    phases = data.get("phases", {})
    rows = [
        (
            phase,
            f"{phases[phase]['seconds']:.0f}",
            minutes(phases[phase]["seconds"]),
            phases[phase].get("changed", ""),
            "green" if phases[phase].get("green") else "RED",
        )
        for phase in PHASES
        if phase in phases
    ]
    lines += table(("phase", "seconds", "wall time", "changed", "result"), rows)
    lines += ["", *stages_table(data), "", *top_tasks_table(data)]
    if data.get("checks") or data.get("errors"):
        lines += ["", "Checks:", ""]
        lines += [f"- ok: {c}" for c in data.get("checks", [])]
        lines += [f"- FAILED: {e}" for e in data.get("errors", [])]
    if data.get("compare"):
        lines += ["", *compare_lines(data["compare"], data)]
    return "\n".join(lines) + "\n"


def stages_table(data: dict[str, Any]) -> list[str]:
    bare, rerun = stage_seconds(data, "from-bare"), stage_seconds(data, "rerun")
    labels = list(bare) + [label for label in rerun if label not in bare]
    if not labels:
        return []

    def cell(values: dict[str, float], label: str) -> str:
        return f"{values[label]:.0f}" if label in values else ""

    rows = [(label, cell(bare, label), cell(rerun, label)) for label in labels]
    return [
        "Seconds per stage (profile_tasks timestamps):",
        "",
        *table(("stage", "from bare", "rerun"), rows),
    ]


def top_tasks_table(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for phase in ("from-bare", "rerun"):
        tasks = data.get("phases", {}).get(phase, {}).get("top_tasks", [])
        if tasks:
            rows = [(i, name, f"{s:.1f}") for i, (name, s) in enumerate(tasks, 1)]
            lines += [f"Slowest tasks, {phase}:", "", *table(("#", "task", "seconds"), rows), ""]
    return lines[:-1] if lines else []


def ratio(old: float | None, new: float | None) -> str:
    if not old or new is None:
        return ""
    return f"{new / old:.2f}"


def compare_rows(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, old s, new s, new/old) for each phase and each stage of both runs."""
    rows: list[tuple[str, str, str, str]] = []

    def add(what: str, a: float | None, b: float | None) -> None:
        rows.append(
            (
                what,
                "" if a is None else f"{a:.0f}",
                "" if b is None else f"{b:.0f}",
                ratio(a, b),
            )
        )

    old_phases, new_phases = phase_seconds(old), phase_seconds(new)
    for phase in PHASES:
        add(phase, old_phases.get(phase), new_phases.get(phase))
    for phase in ("from-bare", "rerun"):
        a, b = stage_seconds(old, phase), stage_seconds(new, phase)
        for label in list(a) + [x for x in b if x not in a]:
            add(f"{phase}: {label}", a.get(label), b.get(label))
    return rows


def compare_lines(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    head = (
        "seconds",
        f"{old.get('label') or 'old'} ({old.get('commit', '?')})",
        f"{new.get('label') or 'new'} ({new.get('commit', '?')})",
        "ratio",
    )
    return [
        f"Compared with the run of {old.get('date', '?')} (load before {old.get('load_before')}):",
        "",
        *table(head, compare_rows(old, new)),
    ]


# --- the command ------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubesmith-bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help=f"workers deployed from bare hosts (default 2, as inventory/lab; 1-{MAX_WORKERS})",
    )
    p.add_argument("--label", default="", help="a name for this run, e.g. before or after")
    p.add_argument("--compare", type=Path, help="an earlier report's JSON: print ratios")
    p.add_argument("--report-to", type=Path, help="also write the markdown here (docs/...)")
    p.add_argument("--keep", action="store_true", help="leave the hosts up at the end")
    p.add_argument("--state", type=Path, default=STATE, help=f"state directory ({STATE})")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="write the inventory, check it, print the plan; create no host",
    )
    return p


def dry_run(lab: LabRun, workers: int) -> int:
    write_rebased_inventory(lab.inventory, NETWORKS, lab.state, edit=with_workers(workers))
    spec = spec_from_inventory(lab.inventory)
    say(f"inventory {lab.inventory} (lab {spec.name}, {spec.subnet}):")
    for host in spec.hosts:
        say(f"  {host.name:<8} {host.ip}")
    spare = spare_name(workers)
    say("kubesmith-lab down; up (every host, the spare too)")
    say(
        f"(a) setup.yml from bare hosts; (b) setup.yml again: changed=0, MainPIDs of "
        f"{cluster_hosts()} unchanged; (c) {spare} into kube_node, setup.yml -l {spare}"
    )
    say(f"report: {lab.state / 'bench-report.md'} and .json")
    return 0


def report_base(lab: LabRun, label: str) -> Path:
    return lab.state / (f"bench-report-{label}" if label else "bench-report")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    tools_on_path()
    if not 1 <= args.workers <= MAX_WORKERS:
        parser().error(f"--workers must be between 1 and {MAX_WORKERS}")
    old = json.loads(args.compare.read_text(encoding="utf-8")) if args.compare else None
    lab = LabRun(args.state, logs="logs")
    if args.dry_run:
        return dry_run_status(lambda: dry_run(lab, args.workers), say)
    data = report_data("bench", NETWORKS, label=args.label, workers=args.workers)
    bench = Bench(args.workers, args.label)
    try:
        lab.fresh_hosts(NETWORKS, "artifacts", "logs", edit=with_workers(args.workers))
        run_phases(lab, bench)
    except LabError as exc:
        bench.errors.append(str(exc))
    data |= {
        "load_after": load_average(),
        "phases": bench.phases,
        "checks": bench.checks,
        "errors": bench.errors,
        "passed": bench.passed,
    }
    if not args.keep and bench.passed:
        lab.lab("down")
    if old is not None:
        data["compare"] = {k: v for k, v in old.items() if k != "compare"}
    markdown = render(data)
    if args.label:
        write_report(report_base(lab, ""), data, markdown)
    finish_report(report_base(lab, args.label), data, markdown, args.report_to, say)
    return 0 if bench.passed else 1


if __name__ == "__main__":
    sys.exit(main())

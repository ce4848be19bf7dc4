"""The soak (issue 15): N fresh deploys of inventory/lab's topology in a row, each on new lab
hosts with a new PKI; a run is green when setup.yml exits 0 with failed=0 and unreachable=0.
The report gives each run's wall time, exit code, failing task and host, and per-stage seconds.
docs/cluster.md ("Soak: fresh deploys in a row") describes it; `make lab-soak` runs it.

    kubesmith-soak [--runs 3] [--report-to docs/soak-report.md] [--keep-failed] [--dry-run]
"""

from __future__ import annotations

import argparse
import shutil
import sys
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
    report_data,
    table,
    tools_on_path,
    write_rebased_inventory,
)
from kubesmith.lab.spec import spec_from_inventory

STATE = CLUSTERS / "soak"
# Apart from the lab (.10), molecule (.20-.26), the drill (.27) and the bench (.29).
NETWORKS = LabNetworks(
    name="soak",
    subnet="172.30.28.0/24",
    pod_cidr="172.30.32.0/20",
    service_cidr="172.30.176.0/21",
)


def say(message: str) -> None:
    print(f"[soak] {message}", flush=True)


def keep_verify_report(lab: LabRun, index: int) -> None:
    report = lab.state / "artifacts" / "verify-report.json"
    if report.is_file():
        shutil.copyfile(report, lab.logs / f"run-{index:02d}-verify-report.json")


def soak_run(lab: LabRun, index: int, keep: bool) -> dict[str, Any]:
    """One run: fresh hosts, setup.yml timed, hosts removed (unless keep and red)."""
    record: dict[str, Any] = {"run": index, "error": ""}
    try:
        lab.fresh_hosts(NETWORKS, "artifacts")
        say(f"run {index}: setup.yml from bare hosts ...")
        run = lab.timed_playbook("setup.yml", log_name=f"run-{index:02d}-setup")
        record |= run.as_dict()
        keep_verify_report(lab, index)
    except LabError as exc:
        record |= {"green": False, "error": str(exc)}
    if not record["green"] and keep:
        return record
    try:
        lab.lab("down")
    except LabError as exc:
        record["error"] = record["error"] or f"kubesmith-lab down: {exc}"
    return record


def outcome(record: dict[str, Any]) -> str:
    """'' for a green run, else the failing task and host (or what else went wrong)."""
    if record.get("green") and not record.get("error"):
        return ""
    if record.get("error"):
        return str(record["error"]).splitlines()[0]
    run = PlaybookRun(
        argv=record.get("argv", []),
        log=record.get("log", ""),
        returncode=record.get("returncode", -1),
        seconds=record.get("seconds", 0.0),
        failed=record.get("failed"),
        unreachable=record.get("unreachable"),
        failures=record.get("failures", []),
    )
    return run.first_failure()


def is_green(record: dict[str, Any]) -> bool:
    return bool(record.get("green")) and not record.get("error")


def render(data: dict[str, Any]) -> str:
    """The soak report in markdown."""
    runs: list[dict[str, Any]] = data["runs"]
    green = sum(1 for r in runs if is_green(r))
    lines = [
        f"# Soak: {len(runs)} fresh deploys of inventory/lab's topology",
        "",
        *header_lines(data),
        f"Hosts: lab `{data['lab']}` on {data['subnet']}; each run: `kubesmith-lab down`, "
        "`up`, `ansible-playbook setup.yml` (fresh PKI), `down`.",
        "",
        f"**{green}/{len(runs)} green.**",
        "",
    ]
    rows = []
    for r in runs:
        recap = (
            ""
            if r.get("failed") is None
            else f"changed={r.get('changed')} failed={r['failed']} unreachable={r['unreachable']}"
        )
        rows.append(
            (
                r["run"],
                "green" if is_green(r) else "RED",
                minutes(r.get("seconds")),
                r.get("returncode", ""),
                recap,
                outcome(r),
            )
        )
    lines += table(("run", "result", "wall time", "exit", "recap", "failing task"), rows)
    lines += ["", *stage_table(runs)]
    logs = sorted({str(Path(r["log"]).parent) for r in runs if r.get("log")})
    if logs:
        lines += ["", f"Logs: {', '.join(logs)}"]
    return "\n".join(lines) + "\n"


def stage_table(runs: list[dict[str, Any]]) -> list[str]:
    """Seconds per stage (rows) and run (columns); nothing when no run has stages."""
    labels: list[str] = []
    for r in runs:
        labels += [label for label, _ in r.get("stages", []) if label not in labels]
    if not labels:
        return []
    per_run = [dict(r.get("stages", [])) for r in runs]
    rows = [
        (label, *(f"{s[label]:.0f}" if label in s else "" for s in per_run)) for label in labels
    ]
    head = ("stage (seconds)", *(f"run {r['run']}" for r in runs))
    return ["Per stage (profile_tasks timestamps):", "", *table(head, rows)]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubesmith-soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="fresh deploys in a row (default 3)")
    p.add_argument("--state", type=Path, default=STATE, help=f"state directory ({STATE})")
    p.add_argument(
        "--report-to",
        type=Path,
        default=None,
        help="also copy the markdown report here (e.g. docs/soak-report.md)",
    )
    p.add_argument(
        "--keep-failed",
        action="store_true",
        help="stop at the first red run and leave its hosts up to look at",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="write the inventory, check it, print the plan; create no host",
    )
    return p


def dry_run(lab: LabRun, runs: int) -> int:
    write_rebased_inventory(lab.inventory, NETWORKS, lab.state)
    spec = spec_from_inventory(lab.inventory)
    say(f"inventory {lab.inventory} (lab {spec.name}, {spec.subnet}):")
    for host in spec.hosts:
        say(f"  {host.name:<8} {host.ip}")
    say(f"{runs} x: kubesmith-lab down; rm -r {lab.state / 'artifacts'}; kubesmith-lab up;")
    say(f"      ansible-playbook -i {lab.inventory} setup.yml (timed); kubesmith-lab down")
    say(f"report: {lab.state / 'soak-report.md'} and .json; logs in {lab.logs}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    tools_on_path()
    if args.runs < 1:
        parser().error("--runs must be at least 1")
    lab = LabRun(args.state, logs="logs")
    if args.dry_run:
        return dry_run_status(lambda: dry_run(lab, args.runs), say)
    data = report_data("soak", NETWORKS, runs=[])
    lab.clear("logs")
    for index in range(1, args.runs + 1):
        record = soak_run(lab, index, args.keep_failed)
        data["runs"].append(record)
        say(
            f"run {index}: {'green' if is_green(record) else 'RED'} in "
            f"{minutes(record.get('seconds'))} {outcome(record)}"
        )
        if args.keep_failed and not is_green(record):
            say(f"hosts of run {index} left up: kubesmith-lab -i {lab.inventory} status")
            break
    data["load_after"] = load_average()
    data["green"] = sum(1 for r in data["runs"] if is_green(r))
    markdown = render(data)
    finish_report(lab.state / "soak-report", data, markdown, args.report_to, say)
    return 0 if data["green"] == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())

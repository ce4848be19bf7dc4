"""What the lab's report-writing runners share: the day-2 drill (drill.py), the soak (soak.py)
and the bench (bench.py).

- reading ansible-playbook's output: the PLAY RECAP, the failing task and host, the tasks that
  changed something, the per-stage times and the slowest tasks (ansible.posix.profile_tasks,
  enabled in ansible.cfg and forced on for every run made here);
- a lab of its own: an inventory copied into a state directory (as is, or inventory/lab's
  topology rebased onto another subnet), its hosts made real and removed by kubesmith-lab;
- running commands with a log each, timed; MainPIDs of kubesmith's services per host;
- the report: JSON and markdown side by side, the date, commit and load average it was made
  under, and a copy into the repository's docs.
"""

from __future__ import annotations

import configparser
import datetime as dt
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubesmith.lab.errors import LabError

REPO = Path(__file__).resolve().parents[3]
CLUSTERS = Path("/var/lib/kubesmith-lab/clusters")
MIRROR = Path("/var/cache/kubesmith/mirror")
LAB_INVENTORY = REPO / "inventory" / "lab"
SETUP = REPO / "setup.yml"
SERVICES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "flanneld",
    "containerd",
    "kubelet",
    "kube-proxy",
    "nginx",
    "keepalived",
)
PROFILE_TASKS = "ansible.posix.profile_tasks"
# Every run made here uses the repository's ansible.cfg and prints profile_tasks' timestamps
# and its summary of the 20 slowest tasks, whatever the caller's environment says.
ANSIBLE_ENV = {
    "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "20",
    "PROFILE_TASKS_SORT_ORDER": "descending",
    "ANSIBLE_FORCE_COLOR": "0",
    "PYTHONUNBUFFERED": "1",
}


def callbacks_enabled(config: Path = REPO / "ansible.cfg") -> str:
    """ansible.cfg's callbacks_enabled with profile_tasks added if it is missing."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config, encoding="utf-8")
    names = [n.strip() for n in parser.get("defaults", "callbacks_enabled", fallback="").split(",")]
    names = [n for n in names if n]
    return ",".join(names if PROFILE_TASKS in names else [*names, PROFILE_TASKS])


def tools_on_path() -> None:
    """Put this Python's bin directory (the venv: ansible-playbook, kubesmith-lab) first on
    PATH, so a runner called by its full path finds the tools it runs."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(p for p in (bin_dir, path) if p)


# --- ansible-playbook output ------------------------------------------------------------------
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
TASK_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\] \**\s*$")
PLAY_HEADER = re.compile(r"^PLAY \[(?P<name>.*)\] \**\s*$")
FATAL = re.compile(r"^fatal: \[(?P<host>[^\]]+)\]: (?P<kind>FAILED|UNREACHABLE)! => (?P<body>.*)$")
CHANGED = re.compile(r"^changed: \[(?P<host>[^\]]+)\]")
ERROR = re.compile(r"^(?:ERROR! |\[ERROR\]: )(?P<message>.*)$")
# profile_tasks at every task start: "<date>  <time> <tz> (0:00:01.234)       0:00:12.345 ****"
TIMESTAMP = re.compile(
    r"\(\d+:\d{2}:\d{2}\.\d{3}\)\s+(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2}\.\d{3}) \*+\s*$"
)
# profile_tasks' summary: "<task name> ----------- 12.34s" (no dashes left for long names)
TASK_TIME = re.compile(r"^(?P<name>.+?) -*\s*(?P<seconds>\d+\.\d{2})s$")
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class Recap:
    """The PLAY RECAP of one run, summed over its hosts."""

    changed: int
    failed: int
    unreachable: int
    changed_hosts: tuple[str, ...] = ()
    bad_hosts: tuple[str, ...] = ()

    @property
    def green(self) -> bool:
        return self.failed == 0 and self.unreachable == 0


def find_recap(output: str) -> Recap | None:
    """Sum of the last PLAY RECAP's lines, or None when the run printed none."""
    start = output.rfind("PLAY RECAP")
    if start < 0:
        return None
    rows = list(RECAP.finditer(output, start))
    return Recap(
        changed=sum(int(r["changed"]) for r in rows),
        failed=sum(int(r["failed"]) for r in rows),
        unreachable=sum(int(r["unreachable"]) for r in rows),
        changed_hosts=tuple(r["host"] for r in rows if int(r["changed"])),
        bad_hosts=tuple(r["host"] for r in rows if int(r["failed"]) or int(r["unreachable"])),
    )


def parse_recap(output: str) -> Recap:
    """Sum of the PLAY RECAP lines of one ansible-playbook run."""
    recap = find_recap(output)
    if recap is None:
        raise LabError("ansible-playbook printed no PLAY RECAP (see the step's log)")
    return recap


@dataclass(frozen=True)
class Failure:
    """A task that failed on a host (or an ERROR of ansible-playbook itself: host '')."""

    task: str
    host: str
    message: str

    def describe(self) -> str:
        where = f" on {self.host}" if self.host else ""
        return f"{self.task or 'ansible-playbook'}{where}: {self.message}"


def _message(body: str) -> str:
    """The msg of a failed result printed as JSON, else the body itself; shortened."""
    try:
        result = json.loads(body)
    except ValueError:
        result = None
    text = body
    if isinstance(result, dict):
        text = str(result.get("msg") or result.get("stderr") or result.get("reason") or body)
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def parse_failures(output: str) -> list[Failure]:
    """Every failure that counted, in order: `fatal:` lines not followed by `...ignoring`
    (on hosts the recap counts as failed or unreachable, when there is a recap: a failure a
    `rescue:` handled does not count), and ERROR lines of ansible-playbook itself."""
    lines = output.splitlines()
    recap = find_recap(output)
    task = ""
    found: list[Failure] = []
    for index, line in enumerate(lines):
        header = TASK_HEADER.match(line)
        if header:
            task = header["name"]
            continue
        error = ERROR.match(line)
        # ansible-core 2.19 also prints "[ERROR]: Task failed: ..." before each fatal: line
        # (ignored ones too): the fatal: line tells host and result.
        if error and not error["message"].startswith("Task failed"):
            found.append(Failure("", "", _message(error["message"])))
            continue
        fatal = FATAL.match(line)
        if not fatal:
            continue
        following = next((rest for rest in lines[index + 1 :] if rest.strip()), "")
        if following.strip() == "...ignoring":
            continue
        host = fatal["host"].split(" -> ")[0]
        if recap is not None and host not in recap.bad_hosts:
            continue
        found.append(Failure(task, host, _message(fatal["body"])))
    return found


def parse_changed(output: str) -> list[tuple[str, str]]:
    """(task, host) for every `changed:` result line."""
    task = ""
    found: list[tuple[str, str]] = []
    for line in output.splitlines():
        header = TASK_HEADER.match(line)
        if header:
            task = header["name"]
            continue
        changed = CHANGED.match(line)
        if changed:
            found.append((task, changed["host"].split(" -> ")[0]))
    return found


@dataclass(frozen=True)
class TaskTime:
    name: str
    seconds: float


def parse_task_times(output: str) -> list[TaskTime]:
    """profile_tasks' summary at the end of a run: the slowest tasks, slowest first."""
    start = output.rfind("TASKS RECAP")
    if start < 0:
        return []
    lines = output[start:].splitlines()
    rule = next((i for i, line in enumerate(lines) if line.startswith("=====")), None)
    if rule is None:
        return []
    times: list[TaskTime] = []
    for line in lines[rule + 1 :]:
        match = TASK_TIME.match(line.rstrip())
        if match:
            times.append(TaskTime(match["name"], float(match["seconds"])))
        elif not line.strip() or line.startswith(("PLAY RECAP", "TASKS RECAP")):
            break
    return times


# --- stages of setup.yml ----------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One import of setup.yml: its label ("60 control plane"), playbook and play names."""

    label: str
    playbook: str
    plays: tuple[str, ...]


STARTUP = "(before the first task)"
OVERHEAD = "(ansible-playbook start-up and exit)"
OTHER = "(outside any stage)"


def _play_names(path: Path) -> list[str]:
    """Play names of a playbook, following import_playbook."""
    names: list[str] = []
    for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
        imported = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
        if imported:
            names.extend(_play_names(path.parent / str(imported)))
        elif entry.get("name"):
            names.append(str(entry["name"]))
    return names


def _stage_label(import_name: str, playbook: str) -> str:
    """'Stage 30 - host preparation (kernel ...); ...' -> '30 host preparation'."""
    match = re.match(r"Stage (?P<number>\S+) - (?P<title>.*)", import_name)
    if not match:
        return import_name or playbook
    title = re.split(r"[(,;]", match["title"])[0].strip()
    return f"{match['number']} {title}"


def setup_stages(setup: Path = SETUP) -> list[Stage]:
    """The stages of setup.yml in order, each with the play names of its playbook."""
    stages: list[Stage] = []
    for entry in yaml.safe_load(setup.read_text(encoding="utf-8")) or []:
        imported = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
        if not imported:
            continue
        label = _stage_label(str(entry.get("name", "")), str(imported))
        names = tuple(_play_names(setup.parent / str(imported)))
        stages.append(Stage(label, str(imported), names))
    return stages


def _next_stage(stages: Sequence[Stage], current: int, play: str) -> int:
    """The first stage from the current one on that has this play; else the current one."""
    for index in range(max(current, 0), len(stages)):
        if play in stages[index].plays:
            return index
    return current


def stage_times(output: str, stages: Sequence[Stage]) -> list[tuple[str, float]]:
    """Seconds per stage, in setup.yml's order, from profile_tasks' timestamps: the time from
    one task's start to the next one's belongs to the stage of the play the first one is in.
    Plays are matched to stages by name, in order (the first stage from the current one on that
    has the play, should two stages share a play name).
    Time before the first task is the start-up; stages that ran nothing get 0."""
    current = -1
    events: list[tuple[int, float]] = []
    for line in output.splitlines():
        play = PLAY_HEADER.match(line)
        if play:
            current = _next_stage(stages, current, play["name"])
            continue
        stamp = TIMESTAMP.search(line)
        if stamp:
            total = int(stamp["h"]) * 3600 + int(stamp["m"]) * 60 + float(stamp["s"])
            events.append((current, total))
    if not events:
        return []
    seconds = [0.0] * len(stages)
    other = 0.0
    for (index, start), (_, end) in itertools.pairwise(events):
        if index < 0:
            other += end - start
        else:
            seconds[index] += end - start
    rows = [(STARTUP, events[0][1])]
    rows.extend((stage.label, round(s, 3)) for stage, s in zip(stages, seconds, strict=True))
    if other:
        rows.append((OTHER, round(other, 3)))
    return rows


# --- one ansible-playbook run, kept -----------------------------------------------------------
@dataclass
class PlaybookRun:
    """What one timed ansible-playbook run left: exit code, wall time, recap, failures, the
    per-stage seconds and the slowest tasks. Green: exit 0, failed=0 and unreachable=0."""

    argv: list[str]
    log: str
    returncode: int
    seconds: float
    changed: int | None = None
    failed: int | None = None
    unreachable: int | None = None
    changed_hosts: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    changed_tasks: list[list[str]] = field(default_factory=list)
    stages: list[list[Any]] = field(default_factory=list)
    top_tasks: list[list[Any]] = field(default_factory=list)

    @property
    def green(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.unreachable == 0

    def first_failure(self) -> str:
        """The failing task and host of a red run, for a table cell."""
        if self.green:
            return ""
        if self.failures:
            first = self.failures[0]
            return Failure(first["task"], first["host"], first["message"]).describe()
        if self.failed is None:
            return f"no PLAY RECAP, exit {self.returncode} (see {self.log})"
        return f"exit {self.returncode}, failed={self.failed}, unreachable={self.unreachable}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"green": self.green}


def summarize(
    argv: Sequence[str], log: Path, returncode: int, seconds: float, output: str
) -> PlaybookRun:
    """A PlaybookRun from the output of one run (stages only when it ran setup.yml)."""
    run = PlaybookRun(list(argv), str(log), returncode, round(seconds, 1))
    recap = find_recap(output)
    if recap is not None:
        run.changed, run.failed, run.unreachable = recap.changed, recap.failed, recap.unreachable
        run.changed_hosts = list(recap.changed_hosts)
    run.failures = [asdict(f) for f in parse_failures(output)]
    run.changed_tasks = [[task, host] for task, host in parse_changed(output)]
    if any(Path(a).name == "setup.yml" for a in argv):
        stages = stage_times(output, setup_stages())
        if stages:
            # profile_tasks starts counting once loaded: the rest of the wall time is
            # ansible-playbook's own (inventory, plugins, exit).
            stages.append((OVERHEAD, round(max(seconds - sum(s for _, s in stages), 0.0), 1)))
        run.stages = [[label, s] for label, s in stages]
    run.top_tasks = [[t.name, t.seconds] for t in parse_task_times(output)]
    return run


# --- MainPIDs ---------------------------------------------------------------------------------
def parse_pids(line: str) -> dict[str, str]:
    """'123,0,456,...,' as printed for SERVICES (in order) -> service -> MainPID."""
    values = [v.strip() for v in line.strip().split(",")]
    return dict(zip(SERVICES, values, strict=False))


def pid_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Hosts whose services restarted (or that could not be read), one line per difference."""
    changes: list[str] = []
    for host in sorted(set(before) | set(after)):
        old, new = before.get(host, ""), after.get(host, "")
        if not old.strip() or not new.strip():
            changes.append(f"{host}: MainPIDs not read (before {old!r}, after {new!r})")
            continue
        old_pids, new_pids = parse_pids(old), parse_pids(new)
        changes.extend(
            f"{host}: {service} {old_pids.get(service)} -> {new_pids.get(service)}"
            for service in SERVICES
            if old_pids.get(service) != new_pids.get(service)
        )
    return changes


# --- a lab of its own -------------------------------------------------------------------------
@dataclass(frozen=True)
class LabNetworks:
    """Where a runner's lab lives: its lab name, host subnet, pod and service networks, all in
    the blackholed 172.30.0.0/15 and apart from the others' (docs/lab.md lists them)."""

    name: str
    subnet: str
    pod_cidr: str
    service_cidr: str


def rebase_address(address: str, source: str, target: str) -> str:
    """The same host number in another subnet: 172.30.10.21 from .10.0/24 -> 172.30.28.21."""
    old, new = ipaddress.IPv4Network(source), ipaddress.IPv4Network(target)
    ip = ipaddress.IPv4Address(address)
    if ip not in old:
        raise LabError(f"{address} is not inside {source}; cannot move it to {target}")
    moved = new.network_address + (int(ip) - int(old.network_address))
    if moved not in new:
        raise LabError(f"{address} has no place in {target} (host part too large)")
    return str(moved)


def rebase_hosts(hosts: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    """hosts.yml's data with every ansible_host moved from one subnet to another."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: (
                    rebase_address(str(value), source, target)
                    if key == "ansible_host" and value
                    else walk(value)
                )
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    rebased: dict[str, Any] = walk(hosts)
    return rebased


def _yaml_files(directory: Path) -> Iterable[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def lab_overrides(
    source_vars: Mapping[str, Any], source_subnet: str, networks: LabNetworks, state: Path
) -> dict[str, Any]:
    """What a rebased copy of inventory/lab sets over the lab's own group_vars: its lab name
    and subnet, every address of the lab's subnet moved into its own (the VIP), its own pod
    and service networks, cluster name, artifacts (PKI) and inventory paths."""
    overrides: dict[str, Any] = {}
    for key, value in source_vars.items():
        if isinstance(value, str):
            try:
                inside = ipaddress.IPv4Address(value) in ipaddress.IPv4Network(source_subnet)
            except ValueError:
                continue
            if inside:
                overrides[key] = rebase_address(value, source_subnet, networks.subnet)
    overrides |= {
        "kubesmith_lab_name": networks.name,
        "kubesmith_lab_subnet": networks.subnet,
        "kubesmith_cluster_name": networks.name,
        "kubesmith_pod_cidr": networks.pod_cidr,
        "kubesmith_service_cidr": networks.service_cidr,
        "kubesmith_artifacts_dir": str(state / "artifacts"),
        "kubesmith_lab_inventory": str(state / "inventory"),
    }
    return overrides


def write_rebased_inventory(
    destination: Path,
    networks: LabNetworks,
    state: Path,
    source: Path = LAB_INVENTORY,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """A copy of an inventory (inventory/lab) moved onto networks: hosts.yml rebased (then
    edited by `edit`, which gets all.children), group_vars/all copied as they are (links
    resolved) and a last file, zz-<name>.yml, that overrides what must differ. Ansible reads a
    group's var files in name order, the later winning."""
    source_files = list(_yaml_files(source / "group_vars" / "all"))
    source_vars: dict[str, Any] = {}
    for path in source_files:
        source_vars |= yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    source_subnet = str(source_vars.get("kubesmith_lab_subnet", ""))
    if not source_subnet:
        raise LabError(f"{source} sets no kubesmith_lab_subnet: nothing to rebase from")
    hosts = yaml.safe_load((source / "hosts.yml").read_text(encoding="utf-8"))
    hosts = rebase_hosts(hosts, source_subnet, networks.subnet)
    if edit is not None:
        edit(hosts["all"]["children"])
    if destination.exists():
        shutil.rmtree(destination)
    group_vars = destination / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    header = (
        f"# Written by kubesmith ({networks.name}) from {source}: its topology on "
        f"{networks.subnet}.\n"
    )
    (destination / "hosts.yml").write_text(
        "---\n" + header + yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8"
    )
    for path in source_files:
        shutil.copyfile(path, group_vars / path.name)
    overrides = lab_overrides(source_vars, source_subnet, networks, state)
    (group_vars / f"zz-{networks.name}.yml").write_text(
        "---\n" + header + yaml.safe_dump(overrides, sort_keys=False), encoding="utf-8"
    )
    return destination


class LabRun:
    """A runner's state directory: its inventory copy, logs, and the commands it runs."""

    def __init__(self, state: Path, logs: str = "logs", state_file: str = "run-state.yml") -> None:
        self.state = state
        self.inventory = state / "inventory"
        self.logs = state / logs
        self.state_file = state_file
        self.counter = 0

    # --- commands ---------------------------------------------------------------------
    def _log_path(self, log_name: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.counter += 1
        return self.logs / f"{self.counter:02d}-{log_name}.log"

    def execute(self, argv: Sequence[str], log_name: str) -> tuple[int, str, Path, float]:
        """Run a command, its output streamed into a log of its own: (rc, output, log, s)."""
        log = self._log_path(log_name)
        env = os.environ | ANSIBLE_ENV | {"ANSIBLE_CALLBACKS_ENABLED": callbacks_enabled()}
        since = time.monotonic()
        with log.open("w", encoding="utf-8") as handle:
            handle.write(f"$ {' '.join(argv)}\n")
            handle.flush()
            result = subprocess.run(
                list(argv), cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False
            )
        seconds = time.monotonic() - since
        output = log.read_text(encoding="utf-8", errors="replace").split("\n", 1)[1]
        return result.returncode, output, log, seconds

    def run(self, argv: Sequence[str], log_name: str, check: bool = True) -> str:
        """Run a command with a log; return the output; raise (with its tail) if it failed."""
        returncode, output, log, _ = self.execute(argv, log_name)
        if check and returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise LabError(f"{' '.join(argv[:4])} ... failed (rc {returncode}, {log}):\n{tail}")
        return output

    def playbook(self, playbook: str, *args: str, log_name: str) -> Recap:
        """Run a playbook that must succeed; its recap."""
        argv = ["ansible-playbook", "-i", str(self.inventory), playbook, *args]
        return parse_recap(self.run(argv, log_name))

    def timed_playbook(self, playbook: str, *args: str, log_name: str) -> PlaybookRun:
        """Run a playbook, never raising: what it did, how long it took, where it failed."""
        argv = ["ansible-playbook", "-i", str(self.inventory), playbook, *args]
        returncode, output, log, seconds = self.execute(argv, log_name)
        return summarize(argv, log, returncode, seconds, output)

    def adhoc(self, pattern: str, command: str, log_name: str) -> dict[str, str]:
        """stdout per host of a shell command run as root (hosts that fail map to '')."""
        argv = ["ansible", "-i", str(self.inventory), pattern, "-b", "-o", "-m", "shell"]
        out = self.run([*argv, "-a", command], log_name, check=False)
        results: dict[str, str] = {}
        for line in out.splitlines():
            host, sep, rest = line.partition(" | ")
            if sep:
                results[host] = rest.split("(stdout) ", 1)[1] if "(stdout) " in rest else ""
        return results

    def service_pids(self, pattern: str) -> dict[str, str]:
        """host -> 'pid,pid,...,' of SERVICES' MainPIDs (0: not running), one ad-hoc run."""
        units = " ".join(f"{s}.service" for s in SERVICES)
        return self.adhoc(
            pattern, f"systemctl show -p MainPID --value {units} | tr '\\n' ,", "pids"
        )

    def lab(self, action: str) -> str:
        """kubesmith-lab up/down/... on this run's inventory."""
        tool = str(Path(sys.executable).parent / "kubesmith-lab")
        return self.run([tool, "--inventory", str(self.inventory), action], f"lab-{action}")

    def fresh_hosts(
        self,
        networks: LabNetworks,
        *stale: str,
        edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """No host or state (`stale`: e.g. artifacts, the PKI) of an earlier run: down, a new
        rebased inventory, up."""
        if self.inventory.exists():
            self.lab("down")
        self.clear(*stale)
        write_rebased_inventory(self.inventory, networks, self.state, edit=edit)
        self.lab("up")

    # --- inventory edits ----------------------------------------------------------------
    def copy_inventory(self, source: Path) -> None:
        if self.inventory.exists():
            shutil.rmtree(self.inventory)
        shutil.copytree(source, self.inventory, symlinks=False)

    def edit_hosts(self, edit: Callable[[dict[str, Any]], None]) -> None:
        path = self.inventory / "hosts.yml"
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        edit(data["all"]["children"])
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def set_var(self, name: str, value: str) -> None:
        path = self.inventory / "group_vars" / "all" / self.state_file
        data: dict[str, Any] = {}
        if path.exists():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data[name] = value
        path.write_text("---\n" + yaml.safe_dump(data), encoding="utf-8")

    def clear(self, *names: str) -> None:
        """Remove what an earlier run left in the state directory (reports stay)."""
        for name in names:
            path = self.state / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


# --- the report -------------------------------------------------------------------------------
def git_commit() -> str:
    """HEAD's short hash, '+' when the work tree differs from it (read-only git commands)."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if head.returncode != 0:
        return "unknown"
    clean = subprocess.run(
        ["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--"], capture_output=True, check=False
    )
    return head.stdout.strip() + ("" if clean.returncode == 0 else "+")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def kubernetes_version() -> str:
    defaults = yaml.safe_load(
        (REPO / "roles/kubesmith/defaults/main.yml").read_text(encoding="utf-8")
    )
    return str(defaults.get("kubesmith_kubernetes_version", "unknown"))


def environment() -> dict[str, Any]:
    """When and on what a report was made; load_after is added when the run ends."""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "kubernetes_version": kubernetes_version(),
        "cpus": os.cpu_count() or 0,
        "load_before": load_average(),
    }


def report_data(kind: str, networks: LabNetworks, **fields: Any) -> dict[str, Any]:
    """A runner's report as it starts: its kind, its own fields, the environment, its hosts."""
    return {
        "kind": kind,
        **fields,
        **environment(),
        "lab": networks.name,
        "subnet": networks.subnet,
    }


def minutes(seconds: float | None) -> str:
    """42 s, 11 min 30 s; '' for nothing."""
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    return f"{whole // 60} min {whole % 60:02d} s"


def header_lines(env: Mapping[str, Any]) -> list[str]:
    """The report's first lines: date, commit, machine and load."""

    def load(values: Any) -> str:
        return " / ".join(str(v) for v in values) if values else "?"

    return [
        f"Date: {env.get('date', '?')}. Commit: `{env.get('commit', '?')}`"
        " (a `+`: uncommitted changes). Kubernetes "
        f"{env.get('kubernetes_version', '?')}. Machine: {env.get('cpus', '?')} CPUs.",
        f"Load average (1/5/15 min) before: {load(env.get('load_before'))}; "
        f"after: {load(env.get('load_after'))}.",
    ]


def table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table; '|' inside a cell is escaped."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return lines


def write_report(base: Path, data: Any, markdown: str) -> tuple[Path, Path]:
    """<base>.json and <base>.md side by side."""
    base.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown if markdown.endswith("\n") else markdown + "\n", encoding="utf-8")
    return json_path, md_path


def dry_run_status(plan: Callable[[], int], say: Callable[[str], None]) -> int:
    """A runner's --dry-run: the plan's status, or 2 with the error said."""
    try:
        return plan()
    except LabError as exc:
        say(f"ERROR: {exc}")
        return 2


def finish_report(
    base: Path,
    data: Any,
    markdown: str,
    report_to: Path | None,
    say: Callable[[str], None],
) -> None:
    """Write <base>.json/.md, copy the markdown into the docs when asked, show it."""
    json_path, md_path = write_report(base, data, markdown)
    if report_to is not None:
        publish(markdown, report_to)
    print(markdown)
    say(f"report: {md_path} and {json_path}")


BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"


def publish(markdown: str, path: Path) -> Path:
    """Copy a report into the repository's docs: between the markers of an existing file
    (the text around them stays), or as the whole file."""
    body = markdown.rstrip("\n") + "\n"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        start, end = text.find(BEGIN), text.find(END)
        if 0 <= start < end:
            body = text[: start + len(BEGIN)] + "\n" + body + text[end:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path

"""The soak and the bench end to end with the lab and ansible-playbook faked: what they run,
what their reports say, and that a red run fails them."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesmith.lab import bench, runs, soak
from kubesmith.lab.runs import LabRun, PlaybookRun

PIDS = "10,11,12,13,14,15,16,17,0,0,"


def green_run(playbook: str, *args: str, log_name: str) -> PlaybookRun:
    return PlaybookRun(
        argv=["ansible-playbook", playbook, *args],
        log=f"/logs/{log_name}.log",
        returncode=0,
        seconds=100.0 if log_name != "rerun" else 50.0,
        changed=0 if log_name == "rerun" else 7,
        failed=0,
        unreachable=0,
        stages=[[runs.STARTUP, 2.0], ["00 preflight", 3.0], ["60 control plane", 40.0]],
        top_tasks=[["kube_apiserver : Wait for readyz", 30.0]],
    )


def red_run(playbook: str, *args: str, log_name: str) -> PlaybookRun:
    run = green_run(playbook, *args, log_name=log_name)
    run.returncode, run.failed = 2, 1
    run.failures = [{"task": "etcd : Wait for health", "host": "cp2", "message": "timeout"}]
    return run


def as_method(run: Any) -> Any:
    """LabRun.timed_playbook's signature for one of the fakes above."""

    def method(self: LabRun, playbook: str, *args: str, log_name: str) -> PlaybookRun:
        result: PlaybookRun = run(playbook, *args, log_name=log_name)
        return result

    return method


@pytest.fixture
def fake_lab(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """kubesmith-lab and the ad-hoc MainPID reads, recorded instead of run."""
    calls: list[str] = []

    def lab(self: LabRun, action: str) -> str:
        calls.append(f"lab {action}")
        return ""

    def pids(self: LabRun, pattern: str) -> dict[str, str]:
        calls.append(f"pids {pattern}")
        return {"cp1": PIDS, "node1": PIDS}

    monkeypatch.setattr(LabRun, "lab", lab)
    monkeypatch.setattr(LabRun, "service_pids", pids)
    return calls


def test_soak_all_green(tmp_path: Path, fake_lab: list[str], monkeypatch) -> None:
    monkeypatch.setattr(LabRun, "timed_playbook", as_method(green_run))
    published = tmp_path / "docs" / "soak-report.md"
    code = soak.main(["--runs", "2", "--state", str(tmp_path), "--report-to", str(published)])
    assert code == 0
    assert fake_lab == ["lab up", "lab down", "lab down", "lab up", "lab down"]
    data = json.loads((tmp_path / "soak-report.json").read_text(encoding="utf-8"))
    assert data["green"] == 2 and len(data["runs"]) == 2
    assert data["commit"] and len(data["load_after"]) == 3
    text = published.read_text(encoding="utf-8")
    assert "**2/2 green.**" in text
    assert "| 1 | green | 1 min 40 s | 0 | changed=7 failed=0 unreachable=0 |  |" in text
    assert "| 60 control plane | 40 | 40 |" in text
    inventory = yaml.safe_load((tmp_path / "inventory/hosts.yml").read_text(encoding="utf-8"))
    cp1 = inventory["all"]["children"]["kube_control_plane"]["hosts"]["cp1"]
    assert cp1["ansible_host"].startswith("172.30.28.")


def test_soak_red_run_fails_and_names_the_task(tmp_path: Path, fake_lab, monkeypatch) -> None:
    results = iter([green_run, red_run, green_run])

    def playbook(self: LabRun, playbook: str, *args: str, log_name: str) -> PlaybookRun:
        return next(results)(playbook, *args, log_name=log_name)

    monkeypatch.setattr(LabRun, "timed_playbook", playbook)
    assert soak.main(["--runs", "3", "--state", str(tmp_path)]) == 1
    text = (tmp_path / "soak-report.md").read_text(encoding="utf-8")
    assert "**2/3 green.**" in text
    assert "| 2 | RED | 1 min 40 s | 2 |" in text
    assert "etcd : Wait for health on cp2: timeout |" in text


def test_soak_keep_failed_stops_with_hosts_up(tmp_path: Path, fake_lab, monkeypatch) -> None:
    monkeypatch.setattr(LabRun, "timed_playbook", as_method(red_run))
    assert soak.main(["--runs", "3", "--state", str(tmp_path), "--keep-failed"]) == 1
    assert fake_lab == ["lab up"]


def test_soak_refuses_zero_runs(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        soak.main(["--runs", "0", "--state", str(tmp_path)])


def test_bench_phases_and_report(tmp_path: Path, fake_lab: list[str], monkeypatch) -> None:
    seen: list[list[str]] = []

    def playbook(self: LabRun, playbook: str, *args: str, log_name: str) -> PlaybookRun:
        seen.append([playbook, *args])
        if log_name == "add-worker":
            hosts = yaml.safe_load((self.inventory / "hosts.yml").read_text(encoding="utf-8"))
            assert "node3" in hosts["all"]["children"]["kube_node"]["hosts"]
            assert bench.SPARE_GROUP not in hosts["all"]["children"]
        return green_run(playbook, *args, log_name=log_name)

    monkeypatch.setattr(LabRun, "timed_playbook", playbook)
    published = tmp_path / "performance.md"
    published.write_text(f"# Method\n{runs.BEGIN}\n{runs.END}\n", encoding="utf-8")
    code = bench.main(
        ["--state", str(tmp_path), "--label", "before", "--report-to", str(published)]
    )
    assert code == 0
    assert seen == [["setup.yml"], ["setup.yml"], ["setup.yml", "-l", "node3"]]
    assert fake_lab == [
        "lab up",
        "pids all:!bench_spare",
        "pids all:!bench_spare",
        "pids all:!node3",
        "lab down",
    ]
    data = json.loads((tmp_path / "bench-report-before.json").read_text(encoding="utf-8"))
    assert data["passed"] and set(data["phases"]) == set(bench.PHASES)
    assert (tmp_path / "bench-report.json").is_file()
    text = published.read_text(encoding="utf-8")
    assert text.startswith("# Method\n")
    assert "| rerun | 50 | 50 s | 0 | green |" in text
    assert "| 60 control plane | 40 | 40 |" in text
    assert "| 1 | kube_apiserver : Wait for readyz | 30.0 |" in text


def test_bench_rerun_that_changes_or_restarts_fails(tmp_path: Path, fake_lab, monkeypatch):
    def playbook(self: LabRun, playbook: str, *args: str, log_name: str) -> PlaybookRun:
        run = green_run(playbook, *args, log_name=log_name)
        if log_name == "rerun":
            run.changed = 2
        return run

    reads = iter([{"cp1": PIDS}, {"cp1": PIDS.replace("16", "99")}])
    monkeypatch.setattr(LabRun, "timed_playbook", playbook)
    monkeypatch.setattr(LabRun, "service_pids", lambda self, pattern: next(reads))
    assert bench.main(["--state", str(tmp_path)]) == 1
    data = json.loads((tmp_path / "bench-report.json").read_text(encoding="utf-8"))
    assert "add-worker" not in data["phases"]
    assert data["errors"][0] == "the rerun reports changed=2 (0 expected)"
    assert "cp1: kubelet 16 -> 99" in data["errors"][1]
    assert "lab down" not in fake_lab  # a failed bench leaves its hosts up


def test_bench_red_setup_names_the_task(tmp_path: Path, fake_lab, monkeypatch) -> None:
    monkeypatch.setattr(LabRun, "timed_playbook", as_method(red_run))
    assert bench.main(["--state", str(tmp_path)]) == 1
    text = (tmp_path / "bench-report.md").read_text(encoding="utf-8")
    assert "FAILED: from-bare: etcd : Wait for health on cp2: timeout" in text


def test_bench_compare_ratios() -> None:
    def report(seconds: float, label: str) -> dict[str, Any]:
        return {
            "label": label,
            "commit": label[0],
            "phases": {
                "from-bare": {"seconds": seconds, "stages": [["00 preflight", seconds / 10]]},
                "rerun": {"seconds": seconds / 2, "stages": []},
            },
        }

    rows = bench.compare_rows(report(600, "before"), report(300, "after"))
    assert rows[:3] == [
        ("from-bare", "600", "300", "0.50"),
        ("rerun", "300", "150", "0.50"),
        ("add-worker", "", "", ""),
    ]
    assert ("from-bare: 00 preflight", "60", "30", "0.50") in rows
    lines = bench.compare_lines(report(600, "before"), report(300, "after"))
    assert "| seconds | before (b) | after (a) | ratio |" in lines


def test_bench_workers_and_spare() -> None:
    groups: dict[str, Any] = {"kube_node": {"hosts": {}}}
    bench.with_workers(6)(groups)
    assert list(groups["kube_node"]["hosts"]) == [f"node{n}" for n in range(1, 7)]
    assert groups["kube_node"]["hosts"]["node6"] == {"ansible_host": "172.30.29.36"}
    assert groups[bench.SPARE_GROUP]["hosts"] == {"node7": {"ansible_host": "172.30.29.37"}}
    bench.promote_spare(groups)
    assert "node7" in groups["kube_node"]["hosts"] and bench.SPARE_GROUP not in groups


def test_bench_refuses_too_many_workers(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--workers", "40", "--state", str(tmp_path)])


def test_networks_are_apart() -> None:
    blocks = [
        ipaddress.IPv4Network(n)
        for x in (soak.NETWORKS, bench.NETWORKS)
        for n in (x.subnet, x.pod_cidr, x.service_cidr)
    ]
    # the lab, molecule, the drill; their pod and service networks (docs/lab.md)
    taken = [f"172.30.{n}.0/24" for n in (10, 20, 21, 22, 23, 24, 25, 26, 27)]
    taken += ["172.30.64.0/18", "172.30.128.0/20", "172.30.144.0/20", "172.30.160.0/20"]
    taken += ["172.30.192.0/18", "172.31.0.0/16"]
    for i, block in enumerate(blocks):
        assert block.subnet_of(ipaddress.IPv4Network("172.30.0.0/15"))
        assert not any(block.overlaps(ipaddress.ip_network(t)) for t in taken), block
        assert not any(block.overlaps(other) for other in blocks[i + 1 :]), block

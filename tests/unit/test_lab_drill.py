"""The day-2 drill's bookkeeping: PLAY RECAP sums, inventory edits and what counts as a pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubesmith.lab import drill
from kubesmith.lab.drill import Drill, StepResult, parse_recap, report
from kubesmith.lab.errors import LabError

RECAP_OUTPUT = """
PLAY [x] ***********
TASK [y] ***********
changed: [cp1]

PLAY RECAP *********************************************************************
cp1                        : ok=12   changed=2    unreachable=0    failed=0    skipped=3
node2                      : ok=7    changed=0    unreachable=1    failed=1    skipped=0
localhost                  : ok=3    changed=1    unreachable=0    failed=0    skipped=0
"""


def test_recap_sums_every_host() -> None:
    recap = parse_recap(RECAP_OUTPUT)
    assert (recap.changed, recap.failed, recap.unreachable) == (3, 1, 1)


def test_recap_reads_only_the_last_recap() -> None:
    earlier = "PLAY RECAP ***\ncp1 : ok=1 changed=9 unreachable=0 failed=0\n"
    assert parse_recap(earlier + RECAP_OUTPUT).changed == 3


def test_missing_recap_is_an_error() -> None:
    with pytest.raises(LabError, match="no PLAY RECAP"):
        parse_recap("ERROR! the playbook could not be found")


def test_a_step_passes_only_clean() -> None:
    assert StepResult("a", "A", api={"failed": 0}, rerun_changed=0).passed
    assert not StepResult("a", "A", api={"failed": 2}).passed
    assert StepResult("a", "A", api={"failed": 2}, zero_failures_goal=False).passed
    assert not StepResult("a", "A", rerun_changed=1).passed
    assert not StepResult("a", "A", error="boom").passed


def test_report_table_and_json(tmp_path: Path) -> None:
    results = [
        StepResult(
            "x",
            "Upgrade",
            seconds=61.4,
            api={"requests": 600, "failed": 0, "longest_gap_s": 0.4, "longest_outage_s": 0.0},
            rerun_changed=0,
            rerun_seconds=30.0,
        ),
        StepResult("y", "Restore", error="check failed: gone\nmore"),
    ]
    table = report(results, tmp_path / "r.md")
    assert "| Upgrade | 61 s | 600 | 0 | 0.4 s | 0.0 s | changed=0 (30 s) | PASS |" in table
    assert "FAIL: check failed: gone |" in table
    assert (tmp_path / "r.json").is_file()


def test_inventory_copy_and_edits(tmp_path: Path) -> None:
    d = Drill(tmp_path, "v1.36.3", "v1.37.2")
    d.copy_inventory()
    assert not (d.inventory / "group_vars/all/nodes.yml").is_symlink()

    def promote(groups: dict[str, object]) -> None:
        spare = groups["drill_spare"]
        assert isinstance(spare, dict)
        plane = groups["kube_control_plane"]
        assert isinstance(plane, dict)
        plane["hosts"]["cp4"] = spare["hosts"].pop("cp4")

    d.edit_hosts(promote)
    hosts = yaml.safe_load((d.inventory / "hosts.yml").read_text(encoding="utf-8"))
    assert "cp4" in hosts["all"]["children"]["kube_control_plane"]["hosts"]
    d.set_var("kubesmith_kubernetes_version", "v1.37.2")
    d.set_var("other", "x")
    state = yaml.safe_load((d.inventory / "group_vars/all/drill-state.yml").read_text("utf-8"))
    assert state == {"kubesmith_kubernetes_version": "v1.37.2", "other": "x"}


def test_failing_command_names_its_log(tmp_path: Path) -> None:
    d = Drill(tmp_path, "a", "b")
    with pytest.raises(LabError, match=r"failed \(rc 3, .*01-boom.log\)"):
        d.run(["sh", "-c", "echo out; exit 3"], "boom")
    assert "out" in (tmp_path / "drill-logs/01-boom.log").read_text(encoding="utf-8")


def test_unknown_step_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        drill.main(["--steps", "no-such-step", "--reuse"])
    assert "unknown steps ['no-such-step']" in capsys.readouterr().err


def test_default_versions_come_from_the_repository() -> None:
    start, target = drill.default_versions()
    assert start != target and start.startswith("v1.") and target.startswith("v1.")

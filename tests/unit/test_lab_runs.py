"""What the drill, the soak and the bench share (kubesmith.lab.runs): reading ansible-playbook's
output, stage times, the rebased inventory and the report files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubesmith.lab import runs
from kubesmith.lab.errors import LabError
from kubesmith.lab.runs import (
    LabNetworks,
    LabRun,
    Stage,
    parse_changed,
    parse_failures,
    parse_task_times,
    pid_changes,
    rebase_address,
    setup_stages,
    stage_times,
    summarize,
)

STAMP = "Monday 07 December 2026  10:00:00 +0000 ({prev})       {total} " + "*" * 20 + " "
STAGES = [
    Stage("00 preflight", "playbooks/00-preflight.yml", ("Preflight",)),
    Stage("35 the API endpoint", "playbooks/35-apiserver-lb.yml", ("Lb",)),
    Stage("60 control plane", "playbooks/60-control-plane.yml", ("Control plane",)),
    # a play name two stages share (matched in order)
    Stage("65 the API endpoint again", "playbooks/65-apiserver-lb-rotation.yml", ("Lb",)),
]


def stamp(prev: str, total: str) -> str:
    return STAMP.format(prev=prev, total=total)


# A red run as the default callback and profile_tasks print it (made up for these tests).
RED = "\n".join(
    [
        "PLAY [Preflight] ***",
        "",
        "TASK [Gathering Facts] ***",
        stamp("0:00:00.010", "0:00:02.000"),
        "ok: [cp1]",
        "",
        "PLAY [Lb] ***",
        "",
        "TASK [apiserver_lb : Render nginx.conf] ***",
        stamp("0:00:03.000", "0:00:05.000"),
        "changed: [lb1]",
        "changed: [lb2 -> localhost]",
        "",
        "TASK [apiserver_lb : Probe optional thing] ***",
        stamp("0:00:01.000", "0:00:06.000"),
        "[ERROR]: Task failed: Module failed: not there",
        "Origin: /work/main/roles/apiserver_lb/tasks/main.yml:12:3",
        "",
        'fatal: [lb1]: FAILED! => {"changed": false, "msg": "not there"}',
        "...ignoring",
        "",
        "PLAY [Control plane] ***",
        "",
        "TASK [kube_apiserver : Wait for readyz] ***",
        stamp("0:00:01.500", "0:00:07.500"),
        "[ERROR]: Task failed: Action failed: readyz: connection refused",
        'fatal: [cp2]: FAILED! => {"changed": false, "msg": "readyz: connection refused"}',
        'fatal: [cp3]: UNREACHABLE! => {"changed": false, "msg": "ssh: timed out"}',
        "",
        "RUNNING HANDLER [kube_apiserver : Restart] ***",
        stamp("0:00:30.000", "0:00:37.500"),
        'fatal: [cp1]: FAILED! => {"msg": "rescued later"}',
        "",
        "PLAY [Lb] ***",
        "",
        "TASK [apiserver_lb : Rotation] ***",
        stamp("0:00:02.000", "0:00:39.500"),
        "ok: [lb1]",
        "",
        "PLAY RECAP ***",
        "cp1 : ok=3 changed=0 unreachable=0 failed=0 skipped=0 rescued=1",
        "cp2 : ok=3 changed=0 unreachable=0 failed=1 skipped=0",
        "cp3 : ok=3 changed=0 unreachable=1 failed=0 skipped=0",
        "lb1 : ok=3 changed=1 unreachable=0 failed=0 skipped=0",
        "",
        "TASKS RECAP ***",
        stamp("0:00:01.000", "0:00:40.500"),
        "=" * 79,
        "kube_apiserver : Wait for readyz " + "-" * 38 + " 30.00s",
        "apiserver_lb : Render nginx.conf " + "-" * 38 + " 3.00s",
        "a task whose name is very long indeed and fills the whole line to the end  1234.50s",
        "",
    ]
)


def test_failures_name_task_and_host_and_skip_ignored_and_rescued() -> None:
    failures = parse_failures(RED)
    assert [(f.task, f.host, f.message) for f in failures] == [
        ("kube_apiserver : Wait for readyz", "cp2", "readyz: connection refused"),
        ("kube_apiserver : Wait for readyz", "cp3", "ssh: timed out"),
    ]
    assert failures[0].describe() == (
        "kube_apiserver : Wait for readyz on cp2: readyz: connection refused"
    )


def test_errors_without_recap_are_failures() -> None:
    failures = parse_failures("ERROR! the role 'x' was not found\n")
    assert [(f.task, f.host, f.message) for f in failures] == [
        ("", "", "the role 'x' was not found")
    ]
    assert failures[0].describe().startswith("ansible-playbook: the role")


def test_changed_tasks_and_delegated_hosts() -> None:
    assert parse_changed(RED) == [
        ("apiserver_lb : Render nginx.conf", "lb1"),
        ("apiserver_lb : Render nginx.conf", "lb2"),
    ]


def test_profile_tasks_summary() -> None:
    times = parse_task_times(RED)
    assert [(t.name, t.seconds) for t in times] == [
        ("kube_apiserver : Wait for readyz", 30.0),
        ("apiserver_lb : Render nginx.conf", 3.0),
        ("a task whose name is very long indeed and fills the whole line to the end", 1234.5),
    ]
    assert parse_task_times("PLAY RECAP ***\n") == []


def test_stage_times_follow_plays_in_order() -> None:
    times = dict(stage_times(RED, STAGES))
    assert times == {
        runs.STARTUP: 2.0,
        "00 preflight": 3.0,
        "35 the API endpoint": 2.5,
        "60 control plane": 32.0,
        # the same play again, after the control plane: stage 65
        "65 the API endpoint again": 1.0,
    }
    assert sum(times.values()) == 40.5
    assert stage_times("no timestamps\n", STAGES) == []


def test_setup_yml_stages_are_read_from_the_repository() -> None:
    stages = setup_stages()
    labels = [s.label for s in stages]
    assert labels[0].startswith("00 ") and labels[-1].startswith("90 ")
    assert any(label.startswith("65 ") for label in labels)
    assert labels == sorted(labels), "stage numbers follow the order setup.yml runs them in"
    playbooks = [s.playbook for s in stages]
    assert len(set(playbooks)) == len(playbooks), "no playbook is imported twice"
    for stage in stages:
        number = stage.label.split()[0]
        assert stage.playbook.startswith(f"playbooks/{number}-"), (stage.label, stage.playbook)
    plays = [play for s in stages for play in s.plays]
    assert len(set(plays)) == len(plays), "every play of setup.yml has a name of its own"


def test_summarize_a_red_run() -> None:
    run = summarize(["ansible-playbook", "setup.yml"], Path("/l"), 2, 41.04, RED)
    assert not run.green
    assert (run.failed, run.unreachable, run.changed) == (1, 1, 1)
    assert run.first_failure().startswith("kube_apiserver : Wait for readyz on cp2")
    # setup.yml's real stages have other play names: the time is left outside any stage
    assert run.stages[0] == [runs.STARTUP, 2.0]
    assert run.stages[-2] == [runs.OTHER, 38.5]
    assert run.stages[-1] == [runs.OVERHEAD, 0.5]
    assert run.top_tasks[0] == ["kube_apiserver : Wait for readyz", 30.0]
    assert run.as_dict()["green"] is False
    no_recap = summarize(["ansible-playbook", "x.yml"], Path("/l"), 4, 1.0, "boom\n")
    assert "no PLAY RECAP, exit 4" in no_recap.first_failure()
    assert no_recap.stages == []


def test_pid_changes() -> None:
    before = {"cp1": "10,11,12,13,14,0,0,0,0,0,", "node1": "0,0,0,0,20,21,22,23,0,0,"}
    assert pid_changes(before, dict(before)) == []
    after = before | {"node1": "0,0,0,0,20,21,99,23,0,0,", "cp1": ""}
    assert pid_changes(before, after) == [
        "cp1: MainPIDs not read (before '10,11,12,13,14,0,0,0,0,0,', after '')",
        "node1: kubelet 22 -> 99",
    ]


def test_rebase_address() -> None:
    assert rebase_address("172.30.10.21", "172.30.10.0/24", "172.30.28.0/24") == "172.30.28.21"
    with pytest.raises(LabError, match="not inside"):
        rebase_address("127.0.0.1", "172.30.10.0/24", "172.30.28.0/24")


def test_rebased_lab_inventory(tmp_path: Path) -> None:
    networks = LabNetworks("t", "172.30.28.0/24", "172.30.32.0/20", "172.30.176.0/21")

    def spare(groups: dict[str, object]) -> None:
        groups["spare"] = {"hosts": {"node3": {"ansible_host": "172.30.28.33"}}}

    inventory = runs.write_rebased_inventory(tmp_path / "inv", networks, tmp_path, edit=spare)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text(encoding="utf-8"))
    children = hosts["all"]["children"]
    assert children["kube_control_plane"]["hosts"]["cp1"]["ansible_host"] == "172.30.28.21"
    assert children["lb"]["hosts"]["lb2"]["ansible_host"] == "172.30.28.12"
    assert children["spare"]["hosts"]["node3"]["ansible_host"] == "172.30.28.33"
    group_vars = inventory / "group_vars" / "all"
    assert not (group_vars / "nodes.yml").is_symlink()
    lab_vars = runs.LAB_INVENTORY / "group_vars" / "all" / "nodes.yml"
    assert (group_vars / "nodes.yml").read_bytes() == lab_vars.read_bytes()
    # the override file sorts last, so Ansible reads it last and it wins
    assert sorted(p.name for p in group_vars.iterdir())[-1] == "zz-t.yml"
    overrides = yaml.safe_load((group_vars / "zz-t.yml").read_text(encoding="utf-8"))
    assert overrides == {
        "kubesmith_apiserver_vip": "172.30.28.10",
        "kubesmith_lab_name": "t",
        "kubesmith_lab_subnet": "172.30.28.0/24",
        "kubesmith_cluster_name": "t",
        "kubesmith_pod_cidr": "172.30.32.0/20",
        "kubesmith_service_cidr": "172.30.176.0/21",
        "kubesmith_artifacts_dir": str(tmp_path / "artifacts"),
        "kubesmith_lab_inventory": str(tmp_path / "inventory"),
    }


def test_execute_logs_and_times(tmp_path: Path) -> None:
    lab = LabRun(tmp_path)
    rc, output, log, seconds = lab.execute(["sh", "-c", "echo hello; exit 3"], "x")
    assert (rc, output) == (3, "hello\n")
    assert log == tmp_path / "logs" / "01-x.log" and seconds >= 0
    with pytest.raises(LabError, match=r"rc 3, .*02-y.log"):
        lab.run(["sh", "-c", "exit 3"], "y")


def test_report_files_and_publish(tmp_path: Path) -> None:
    json_path, md_path = runs.write_report(tmp_path / "r" / "x-report", {"a": 1}, "# hi")
    assert json_path.read_text(encoding="utf-8").startswith("{")
    assert md_path.read_text(encoding="utf-8") == "# hi\n"
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Method\n\n{runs.BEGIN}\nold figures\n{runs.END}\n\ntail\n", "utf-8")
    runs.publish("new figures", doc)
    assert doc.read_text(encoding="utf-8") == (
        f"# Method\n\n{runs.BEGIN}\nnew figures\n{runs.END}\n\ntail\n"
    )
    runs.publish("whole", tmp_path / "new.md")
    assert (tmp_path / "new.md").read_text(encoding="utf-8") == "whole\n"


def test_minutes_table_and_header() -> None:
    assert runs.minutes(None) == ""
    assert runs.minutes(42.4) == "42 s"
    assert runs.minutes(690) == "11 min 30 s"
    assert runs.table(("a", "b"), [("x|y", 1)]) == ["| a | b |", "| --- | --- |", "| x\\|y | 1 |"]
    header = runs.header_lines({"date": "D", "commit": "abc+", "load_before": [1.0, 2.0, 3.0]})
    assert "Commit: `abc+`" in header[0]
    assert "before: 1.0 / 2.0 / 3.0; after: ?" in header[1]


def test_environment_facts() -> None:
    env = runs.environment()
    assert env["kubernetes_version"].startswith("v1.")
    assert len(env["load_before"]) == 3 and env["cpus"] >= 1
    assert env["commit"]


def test_profile_tasks_is_always_enabled(tmp_path: Path) -> None:
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\ncallbacks_enabled = a.b.c, ansible.posix.profile_tasks\n")
    assert runs.callbacks_enabled(config) == "a.b.c,ansible.posix.profile_tasks"
    config.write_text("[defaults]\nforks = 5\n")
    assert runs.callbacks_enabled(config) == "ansible.posix.profile_tasks"
    assert runs.PROFILE_TASKS in runs.callbacks_enabled()

"""roles/kubelet/files/kubelet-cgroup-root: lab kubelets on one machine share a cgroup tree and
start in the same second, so the helper must tolerate a concurrent creator of every parent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HELPER = Path(__file__).resolve().parents[2] / "roles" / "kubelet" / "files" / "kubelet-cgroup-root"
HIERARCHIES = ("cpu", "memory", "pids")


def _tree(tmp_path: Path) -> Path:
    """A scratch cgroup v1 mount: hierarchies with cgroup.procs; one file that is not one."""
    for name in HIERARCHIES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "cgroup.procs").write_text("")
    (tmp_path / "unified-not-v1").mkdir()
    return tmp_path


def _start(mount: Path, root: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sh", str(HELPER), root],
        env={"KUBESMITH_CGROUP_MOUNT": str(mount), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_creates_the_root_in_every_hierarchy(tmp_path: Path) -> None:
    mount = _tree(tmp_path)
    proc = _start(mount, "/kubesmith-lab/node1")
    assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
    for name in HIERARCHIES:
        assert (mount / name / "kubesmith-lab" / "node1").is_dir()
    assert not (mount / "unified-not-v1" / "kubesmith-lab").exists()


def test_existing_root_is_success(tmp_path: Path) -> None:
    mount = _tree(tmp_path)
    for name in HIERARCHIES:
        (mount / name / "kubesmith-lab" / "node1").mkdir(parents=True)
    assert _start(mount, "/kubesmith-lab/node1").wait(10) == 0


@pytest.mark.parametrize("round_", range(20))
def test_many_hosts_at_once_all_succeed(tmp_path: Path, round_: int) -> None:
    """Eight kubelets starting together race to create /kubesmith-lab in every hierarchy."""
    mount = _tree(tmp_path)
    procs = [_start(mount, f"/kubesmith-lab/{round_}/node{i}") for i in range(8)]
    failures = [p.stderr.read().decode() for p in procs if p.wait(10) != 0 and p.stderr]
    assert failures == []
    for name in HIERARCHIES:
        assert len(list((mount / name / "kubesmith-lab" / str(round_)).iterdir())) == 8


def test_cpuset_is_seeded_from_the_parent(tmp_path: Path) -> None:
    """A new cpuset cgroup starts empty (the kernel makes the files): copy cpus and mems down."""
    mount = tmp_path
    cpuset = mount / "cpuset"
    (cpuset / "kubesmith-lab" / "node1").mkdir(parents=True)
    (cpuset / "cgroup.procs").write_text("")
    for directory, cpus, mems in (
        (cpuset, "0-1\n", "0\n"),
        (cpuset / "kubesmith-lab", "", ""),
        (cpuset / "kubesmith-lab" / "node1", "", ""),
    ):
        (directory / "cpuset.cpus").write_text(cpus)
        (directory / "cpuset.mems").write_text(mems)
    assert _start(mount, "/kubesmith-lab/node1").wait(10) == 0
    assert (cpuset / "kubesmith-lab" / "node1" / "cpuset.cpus").read_text() == "0-1\n"
    assert (cpuset / "kubesmith-lab" / "node1" / "cpuset.mems").read_text() == "0\n"


def test_a_file_in_the_way_fails_with_its_path(tmp_path: Path) -> None:
    mount = _tree(tmp_path)
    (mount / "cpu" / "kubesmith-lab").write_text("not a directory")
    proc = _start(mount, "/kubesmith-lab/node1")
    assert proc.wait(10) == 1
    assert proc.stderr is not None
    assert "cannot create" in proc.stderr.read().decode()

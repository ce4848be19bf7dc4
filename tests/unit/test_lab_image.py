"""debootstrap for the lab's images: the command it runs and the failure it reports."""

import subprocess
from types import SimpleNamespace

import pytest

from kubesmith.lab import image
from kubesmith.lab.errors import LabError


@pytest.fixture
def debootstrap_runs(monkeypatch):
    """Record debootstrap's argv instead of running it; answer with the exit code set."""
    calls = []
    outcome = SimpleNamespace(returncode=0, stdout="")

    def fake_run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, outcome.returncode, outcome.stdout, "")

    monkeypatch.setattr(image, "ensure_tool", lambda command, package: None)
    monkeypatch.setattr(subprocess, "run", fake_run)
    return calls, outcome


def test_debootstrap_includes_and_excludes_packages(tmp_path, debootstrap_runs):
    calls, _ = debootstrap_runs
    image.debootstrap(tmp_path / "root", ["redis-server", "python3-minimal"], exclude=["apt"])
    image.debootstrap(tmp_path / "host", ["systemd"])
    assert calls == [
        [
            "debootstrap",
            "--variant=minbase",
            "--include=redis-server,python3-minimal",
            "--exclude=apt",
            "bookworm",
            str(tmp_path / "root"),
            "http://deb.debian.org/debian",
        ],
        [
            "debootstrap",
            "--variant=minbase",
            "--include=systemd",
            "bookworm",
            str(tmp_path / "host"),
            "http://deb.debian.org/debian",
        ],
    ]


def test_a_failed_debootstrap_reports_the_end_of_its_log(tmp_path, debootstrap_runs):
    _, outcome = debootstrap_runs
    outcome.returncode = 1
    outcome.stdout = "\n".join(f"I: line {n}" for n in range(40)) + "\nE: Couldn't find: no-such"
    with pytest.raises(LabError, match=r"debootstrap failed \(exit 1\)") as failure:
        image.debootstrap(tmp_path / "root", ["no-such"], suite="trixie")
    assert "E: Couldn't find: no-such" in str(failure.value)
    assert "I: line 10\n" not in str(failure.value)

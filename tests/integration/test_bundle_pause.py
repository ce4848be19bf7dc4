"""Our pause program, taken from the built image archive, run as PID 1 of a PID namespace."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from kubesmith.bundle import layout

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUILD_CACHE = Path(os.environ.get("KUBESMITH_BUNDLE_CACHE", "/var/cache/kubesmith"))

pytestmark = pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0,
    reason="needs root and util-linux unshare/nsenter for a PID namespace",
)


def _blob(tar: tarfile.TarFile, digest: str) -> bytes:
    member = tar.extractfile(f"blobs/sha256/{digest.split(':')[1]}")
    assert member is not None
    return member.read()


@pytest.fixture(scope="module")
def pause_binary(tmp_path_factory) -> Path:
    subprocess.run(
        [
            str(BIN / "kubesmith-bundle"),
            "--cache-dir",
            str(BUILD_CACHE),
            "build",
            "--components",
            "pause",
        ],
        cwd=ROOT,
        check=True,
    )
    versions = layout.load_versions(ROOT / layout.DEFAULTS_FILE)
    (artifact,) = layout.artifacts("pause", versions, "amd64")
    with tarfile.open(BUILD_CACHE / "mirror" / artifact.mirror_file) as image:
        index = json.loads(image.extractfile("index.json").read())
        manifest = json.loads(_blob(image, index["manifests"][0]["digest"]))
        layer = _blob(image, manifest["layers"][0]["digest"])
    with tarfile.open(fileobj=io.BytesIO(layer)) as files:
        content = files.extractfile("pause").read()
    binary = tmp_path_factory.mktemp("pause") / "pause"
    binary.write_bytes(content)
    binary.chmod(0o755)
    return binary


def _children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, comm, state) of every process whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == pid:
            found.append((int(entry.name), comm, state))
    return found


def _wait_for(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    return check()


def test_pause_reaps_orphans_and_stops_on_sigterm(pause_binary):
    outer = subprocess.Popen(["unshare", "--pid", "--fork", str(pause_binary)])
    try:
        pause = _wait_for(lambda: _children(outer.pid))
        assert pause, "unshare did not start pause"
        pause_pid = pause[0][0]
        # sh starts a sleep and exits: the sleep is orphaned and re-parented to PID 1 (pause)
        subprocess.run(
            [
                "nsenter",
                "--target",
                str(pause_pid),
                "--pid",
                "--",
                "sh",
                "-c",
                "sleep 0.5 & exit 0",
            ],
            check=True,
        )
        adopted = _wait_for(lambda: [c for c in _children(pause_pid) if c[1] == "sleep"])
        assert adopted, "the orphan was not re-parented to pause"
        # once the sleep exits, pause must reap it: no zombie child remains
        assert _wait_for(lambda: _children(pause_pid) == [], timeout=5.0)

        started = time.monotonic()
        os.kill(pause_pid, signal.SIGTERM)
        assert outer.wait(timeout=5) == 0
        assert time.monotonic() - started < 2
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait()


def test_pause_reports_its_version(pause_binary):
    versions = layout.load_versions(ROOT / layout.DEFAULTS_FILE)
    result = subprocess.run(
        [str(pause_binary), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"pause {versions.pause} (kubesmith)"

"""The pause image archive imports into a real containerd and runs under runc.

A private containerd (own root, state and socket under tmp, the native snapshotter because
overlayfs cannot stack on this machine's overlay root) stands in for a node's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubesmith.bundle import layout

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUILD_CACHE = Path(os.environ.get("KUBESMITH_BUNDLE_CACHE", "/var/cache/kubesmith"))

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("containerd", "ctr", "runc")),
    reason="needs root, containerd, ctr and runc",
)


@pytest.fixture
def containerd(tmp_path):
    socket = tmp_path / "containerd.sock"
    config = tmp_path / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{tmp_path / "root"}"\n'
        f'state = "{tmp_path / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n'
    )
    log = (tmp_path / "containerd.log").open("w")
    daemon = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while not socket.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert socket.exists(), (tmp_path / "containerd.log").read_text()
    yield ["ctr", "--address", str(socket), "-n", "k8s.io"]
    daemon.terminate()
    daemon.wait(timeout=15)
    log.close()


def test_pause_image_imports_once_and_runs(containerd, tmp_path):
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
    ref = f"registry.k8s.io/pause:{versions.pause}"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "kube_node": {"hosts": {"localhost": local}},
                        "k8s_cluster": {"children": {"kube_node": {}}},
                    }
                }
            }
        )
    )
    extra = {
        "binaries_components": ["images"],
        "binaries_images_dir": str(tmp_path / "images"),
        "binaries_ctr": "env CONTAINERD_SNAPSHOTTER=native " + " ".join(containerd[:3]),
        "binaries_images": [
            {"ref": ref, "archive": str(BUILD_CACHE / "mirror" / artifact.mirror_file)}
        ],
    }
    command = [
        str(BIN / "ansible-playbook"),
        "playbooks/25-binaries.yml",
        "-i",
        str(inventory),
        "-e",
        json.dumps(extra),
    ]
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0"}
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    listed = subprocess.run(
        [*containerd, "images", "ls", "-q"], capture_output=True, text=True, check=True
    )
    assert ref in listed.stdout.split()

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    recap = [line for line in second.stdout.splitlines() if line.startswith("localhost ")]
    assert "changed=0" in recap[-1]

    subprocess.run(
        [*containerd, "run", "--snapshotter", "native", "-d", ref, "pause-test"],
        check=True,
        capture_output=True,
    )
    try:
        tasks = subprocess.run(
            [*containerd, "tasks", "ls"], capture_output=True, text=True, check=True
        ).stdout
        assert "pause-test" in tasks and "RUNNING" in tasks
        subprocess.run([*containerd, "tasks", "kill", "-s", "SIGTERM", "pause-test"], check=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            tasks = subprocess.run(
                [*containerd, "tasks", "ls"], capture_output=True, text=True, check=True
            ).stdout
            if "STOPPED" in tasks:
                break
            time.sleep(0.1)
        assert "STOPPED" in tasks
    finally:
        subprocess.run(
            [*containerd, "tasks", "rm", "-f", "pause-test"], check=False, capture_output=True
        )
        subprocess.run(
            [*containerd, "containers", "rm", "pause-test"], check=False, capture_output=True
        )

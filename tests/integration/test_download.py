"""The download stage (playbooks/10-download.yml) against a real lab mirror on loopback.

The mirror holds components that build from the Go module proxy in minutes (etcd, flannel,
the CNI plugins, pause); `kubesmith-bundle build` makes them once and caches them under
/var/cache/kubesmith. Each test serves its own copy of the mirror, so corrupting it harms
nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from kubesmith.bundle import cli, layout, mirror

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPONENTS = ["etcd", "flannel", "cni_plugins", "flannel_cni_plugin", "pause"]
BUILD_CACHE = Path(os.environ.get("KUBESMITH_BUNDLE_CACHE", "/var/cache/kubesmith"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def built_mirror() -> Path:
    """Build (or find cached) the small components; progress goes to the terminal."""
    components = ",".join(COMPONENTS)
    result = subprocess.run(
        [
            str(BIN / "kubesmith-bundle"),
            "--cache-dir",
            str(BUILD_CACHE),
            "build",
            "--components",
            components,
        ],
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, "kubesmith-bundle build failed; see its output above"
    return BUILD_CACHE / "mirror"


@pytest.fixture(scope="session")
def versions() -> layout.Versions:
    return layout.load_versions(ROOT / layout.DEFAULTS_FILE)


def _artifact_files(versions: layout.Versions) -> list[str]:
    names = []
    for component in COMPONENTS:
        for artifact in layout.artifacts(component, versions, "amd64"):
            names.append(artifact.mirror_file)
            if artifact.mirror_checksum_file:
                names.append(artifact.mirror_checksum_file)
    return names


@pytest.fixture
def mirror_copy(built_mirror, versions, tmp_path) -> Path:
    root = tmp_path / "mirror"
    for name in _artifact_files(versions):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built_mirror / name, root / name)
    mirror.write_index(root, versions, {})
    return root


class Served:
    def __init__(self, root: Path):
        self.server = cli.make_server(root, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list[str]:
        return list(self.server.request_log)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(mirror_copy):
    running = Served(mirror_copy)
    yield running
    running.stop()


def run_download(cache: Path, mirror_url: str, components=COMPONENTS, **overrides):
    extra = {
        "kubesmith_download_mirror_url": mirror_url,
        "download_components": components,
        "ansible_python_interpreter": sys.executable,
        **overrides,
    }
    env = {
        **os.environ,
        "KUBESMITH_CACHE_DIR": str(cache),
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "playbooks/10-download.yml",
            "-i",
            "localhost,",
            "-e",
            json.dumps(extra),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def _recap(output: str) -> str:
    return next(
        line for line in output.splitlines() if line.startswith("localhost ") and "ok=" in line
    )


def _assert_cache_matches(cache: Path, source: Path, versions) -> None:
    for component in COMPONENTS:
        for artifact in layout.artifacts(component, versions, "amd64"):
            assert _sha256(cache / artifact.mirror_file) == _sha256(source / artifact.mirror_file)
    leftovers = [
        p for p in cache.rglob("*") if p.is_file() and not _is_expected(cache, p, versions)
    ]
    assert leftovers == []


def _is_expected(cache: Path, path: Path, versions) -> bool:
    relative = path.relative_to(cache).as_posix()
    if relative in _artifact_files(versions):
        return True
    # flannel publishes no checksum file: the stage records the digest it verified
    (flannel,) = layout.artifacts("flannel", versions, "amd64")
    return relative == flannel.mirror_file + ".sha256"


def test_good_run_then_cached_rerun_downloads_nothing(served, mirror_copy, versions, tmp_path):
    cache = tmp_path / "cache"
    code, output = run_download(cache, served.url)
    assert code == 0, output
    assert "changed=0" not in _recap(output)
    _assert_cache_matches(cache, mirror_copy, versions)
    fetched = [r for r in served.requests if r.startswith("GET ")]
    assert len(fetched) >= len(_artifact_files(versions))

    before = len(served.requests)
    code, output = run_download(cache, served.url)
    assert code == 0, output
    assert "changed=0" in _recap(output)
    assert served.requests[before:] == []


def test_corrupt_artifact_is_rejected_and_nothing_kept(served, mirror_copy, versions, tmp_path):
    (cni,) = layout.artifacts("cni_plugins", versions, "amd64")
    tarball = mirror_copy / cni.mirror_file
    expected = _sha256(tarball)
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    actual = _sha256(tarball)

    cache = tmp_path / "cache"
    code, output = run_download(cache, served.url, ["cni_plugins"])
    assert code != 0
    assert f"sha256 mismatch for {served.url}/{cni.mirror_file}" in output
    assert f"expected {expected}, got {actual}" in output
    assert not (cache / cni.mirror_file).exists()
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_unreachable_mirror_is_reported(tmp_path, versions):
    closed = Served(tmp_path)  # bind a port, then free it: nothing listens there
    url = closed.url
    closed.stop()
    cache = tmp_path / "cache"
    code, output = run_download(cache, url, ["etcd"])
    assert code != 0
    (etcd,) = layout.artifacts("etcd", versions, "amd64")
    assert f"cannot fetch {url}/{etcd.mirror_checksum_file}" in output
    assert "Connection refused" in output
    assert "kubesmith_etcd_base_url (or kubesmith_download_mirror_url)" in output
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_offline_bundle_round_trip(served, mirror_copy, versions, tmp_path):
    cache = tmp_path / "cache"
    code, output = run_download(cache, served.url)
    assert code == 0, output
    served.stop()

    bundle = tmp_path / "bundle.tar"
    subprocess.run(
        [str(BIN / "kubesmith-bundle"), "pack", "--source", str(cache), "--output", str(bundle)],
        cwd=ROOT,
        check=True,
    )
    unpacked = tmp_path / "unpacked"
    with tarfile.open(bundle) as tar:
        tar.extractall(unpacked, filter="data")
    assert mirror.verify_tree(unpacked) == []

    offline_cache = tmp_path / "offline-cache"
    code, output = run_download(offline_cache, f"file://{unpacked}")
    assert code == 0, output
    _assert_cache_matches(offline_cache, mirror_copy, versions)


def test_hosts_get_versioned_binaries_from_the_cache(served, versions, tmp_path):
    cache = tmp_path / "cache"
    code, output = run_download(cache, served.url)
    assert code == 0, output
    target = tmp_path / "host"
    inventory = tmp_path / "hosts.yml"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "etcd": {"hosts": {"localhost": local}},
                        "kube_node": {"hosts": {"localhost": local}},
                        "k8s_cluster": {"children": {"kube_node": {}}},
                    }
                }
            }
        )
    )
    extra = {
        "binaries_components": ["etcd", "flannel", "cni_plugins", "flannel_cni_plugin"],
        "binaries_install_dir": str(target / "opt/kubesmith/bin"),
        "binaries_link_dir": str(target / "usr/local/bin"),
        "binaries_cni_bin_dir": str(target / "opt/cni/bin"),
    }
    env = {**os.environ, "KUBESMITH_CACHE_DIR": str(cache), "ANSIBLE_FORCE_COLOR": "0"}
    command = [
        str(BIN / "ansible-playbook"),
        "playbooks/25-binaries.yml",
        "-i",
        str(inventory),
        "-e",
        json.dumps(extra),
    ]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stdout + first.stderr

    etcd = target / "usr/local/bin/etcd"
    assert etcd.resolve() == target / f"opt/kubesmith/bin/etcd/{versions.etcd}/etcd"
    assert etcd.stat().st_mode & 0o777 == 0o755
    reported = subprocess.run(
        [str(etcd), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"etcd Version: {versions.etcd.lstrip('v')}" in reported
    flanneld = subprocess.run(
        [str(target / "usr/local/bin/flanneld"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert versions.flannel in flanneld.stdout + flanneld.stderr
    for plugin in ("bridge", "host-local", "loopback", "portmap", "flannel"):
        link = target / "opt/cni/bin" / plugin
        assert link.is_symlink() and link.resolve().is_file(), plugin
    bridge = subprocess.run(
        [str(target / "opt/cni/bin/bridge")],
        env={},  # without CNI_COMMAND a plugin prints its name and version
        capture_output=True,
        text=True,
        check=False,
    )
    assert versions.cni_plugins in bridge.stdout + bridge.stderr

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "changed=0" in _recap(second.stdout)


def _install(cache: Path, target: Path, components: list[str], **overrides):
    """Run playbooks/25-binaries.yml for localhost (in etcd and k8s_cluster) into target."""
    inventory = target.parent / "hosts.yml"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "etcd": {"hosts": {"localhost": local}},
                        "kube_node": {"hosts": {"localhost": local}},
                        "k8s_cluster": {"children": {"kube_node": {}}},
                    }
                }
            }
        )
    )
    extra = {
        "binaries_components": components,
        "binaries_install_dir": str(target / "opt/kubesmith/bin"),
        "binaries_link_dir": str(target / "usr/local/bin"),
        "binaries_cni_bin_dir": str(target / "opt/cni/bin"),
        **overrides,
    }
    env = {**os.environ, "KUBESMITH_CACHE_DIR": str(cache), "ANSIBLE_FORCE_COLOR": "0"}
    command = [str(BIN / "ansible-playbook"), "playbooks/25-binaries.yml", "-i", str(inventory)]
    result = subprocess.run(
        [*command, "-e", json.dumps(extra)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _bridge_version(target: Path) -> str:
    about = subprocess.run(
        [str(target / "opt/cni/bin/bridge")], env={}, capture_output=True, text=True, check=False
    )
    return (about.stdout + about.stderr).splitlines()[0]


def test_upgrade_and_rollback_switch_the_links(built_mirror, versions, tmp_path):
    older = "v1.9.0"
    manifest = yaml.safe_load((ROOT / layout.DEFAULTS_FILE).read_text())
    manifest["kubesmith_cni_plugins_version"] = older
    older_versions = tmp_path / "older.yml"
    older_versions.write_text(yaml.safe_dump(manifest))
    subprocess.run(
        [
            str(BIN / "kubesmith-bundle"),
            "--cache-dir",
            str(BUILD_CACHE),
            "--versions",
            str(older_versions),
            "build",
            "--components",
            "cni-plugins",
        ],
        cwd=ROOT,
        check=True,
    )
    served = Served(built_mirror)  # read only: this test corrupts nothing
    try:
        cache, target = tmp_path / "cache", tmp_path / "host"
        for version in (versions.cni_plugins, older):
            code, output = run_download(
                cache, served.url, ["cni_plugins"], kubesmith_cni_plugins_version=version
            )
            assert code == 0, output
    finally:
        served.stop()
    link = target / "opt/cni/bin/bridge"
    pinned = {"kubesmith_cni_plugins_version": versions.cni_plugins}

    _install(cache, target, ["cni_plugins"], **pinned)
    assert _bridge_version(target) == f"CNI bridge plugin {versions.cni_plugins}"
    _install(cache, target, ["cni_plugins"], kubesmith_cni_plugins_version=older)
    assert _bridge_version(target) == f"CNI bridge plugin {older}"
    assert link.resolve() == target / f"opt/kubesmith/bin/cni_plugins/{older}/bridge"
    _install(cache, target, ["cni_plugins"], **pinned)  # roll back
    assert _bridge_version(target) == f"CNI bridge plugin {versions.cni_plugins}"
    assert (target / f"opt/kubesmith/bin/cni_plugins/{older}/bridge").is_file()

"""The builder's layout, the version manifest and roles/download agree."""

from pathlib import Path

import jinja2
import pytest
import yaml

from kubesmith.bundle import layout
from kubesmith.bundle.errors import BundleError

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = ROOT / layout.DEFAULTS_FILE
DOWNLOAD_DEFAULTS = ROOT / "roles/download/defaults/main.yml"


def _render_download_artifacts(versions: layout.Versions, arch: str) -> list[dict[str, str]]:
    """Render roles/download's artifact list with plain Jinja, resolving its own variables."""
    context: dict[str, object] = {
        f"kubesmith_{c}_version": versions.of(c) for c in layout.COMPONENTS
    }
    context["kubesmith_arch"] = arch
    raw = yaml.safe_load(DOWNLOAD_DEFAULTS.read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def render(value: object) -> object:
        if isinstance(value, str):
            return env.from_string(value).render(context)
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v) for v in value]
        return value

    for name in (
        "download_kubernetes_dir",
        "download_etcd_tarball",
        "download_flannel_tarball",
        "download_flannel_cni_plugin_tarball",
        "download_cni_plugins_tarball",
    ):
        context[name] = render(raw[name])
    context["download_images"] = render(raw["download_images"])
    rendered = render(raw["download_artifacts"])
    assert isinstance(rendered, list)
    return rendered


def test_versions_come_from_the_manifest():
    versions = layout.load_versions(DEFAULTS)
    data = yaml.safe_load(DEFAULTS.read_text())
    assert versions.kubernetes == data["kubesmith_kubernetes_version"]
    assert versions.pause == str(data["kubesmith_pause_version"])


def test_download_role_layout_matches_the_builder():
    versions = layout.load_versions(DEFAULTS)
    expected = [
        {"component": a.component, "path": a.path, "checksum_path": a.checksum_path or ""}
        for c in layout.COMPONENTS
        for a in layout.artifacts(c, versions, "amd64")
    ]
    assert _render_download_artifacts(versions, "amd64") == expected


def test_download_role_mirror_paths_match_the_builder():
    raw = yaml.safe_load(DOWNLOAD_DEFAULTS.read_text())
    assert {c: s["mirror_path"] for c, s in raw["download_sources"].items()} == layout.MIRROR_PATHS


def test_upstream_layouts():
    versions = layout.load_versions(DEFAULTS)
    (etcd,) = layout.artifacts("etcd", versions, "arm64")
    assert etcd.mirror_file == (
        f"github.com/etcd-io/etcd/releases/download/{versions.etcd}/"
        f"etcd-{versions.etcd}-linux-arm64.tar.gz"
    )
    assert etcd.mirror_checksum_file == (
        f"github.com/etcd-io/etcd/releases/download/{versions.etcd}/SHA256SUMS"
    )
    kubelet = next(
        a for a in layout.artifacts("kubernetes", versions, "amd64") if a.path.endswith("/kubelet")
    )
    assert kubelet.mirror_file == f"dl.k8s.io/release/{versions.kubernetes}/bin/linux/amd64/kubelet"
    assert kubelet.checksum_path == f"{kubelet.path}.sha256"
    (flannel,) = layout.artifacts("flannel", versions, "amd64")
    assert flannel.mirror_checksum_file is None


def test_missing_version_is_named(tmp_path):
    data = yaml.safe_load(DEFAULTS.read_text())
    del data["kubesmith_etcd_version"]
    broken = tmp_path / "main.yml"
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(BundleError, match="kubesmith_etcd_version is None"):
        layout.load_versions(broken)


def test_components_parse_and_reject_unknown():
    assert layout.parse_components("etcd, cni-plugins,pause") == ["etcd", "cni_plugins", "pause"]
    with pytest.raises(BundleError, match="unknown kubeadm; known: kubernetes"):
        layout.parse_components("etcd,kubeadm")

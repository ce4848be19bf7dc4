"""Where each artifact lives: the upstream release layouts, rooted under one mirror tree.

A mirror (and the deploy host's download cache, and an unpacked offline bundle) is one directory
tree: `<mirror_path>/<path>` per artifact, where mirror_path names the upstream release location
(dl.k8s.io/release, github.com/etcd-io/etcd/releases/download, ...) and path is the file's place
below it upstream. roles/download/defaults/main.yml describes the same layout for Ansible; a unit
test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubesmith.bundle.errors import BundleError

KUBERNETES_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
)
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")

MIRROR_PATHS = {
    "kubernetes": "dl.k8s.io/release",
    "etcd": "github.com/etcd-io/etcd/releases/download",
    "flannel": "github.com/flannel-io/flannel/releases/download",
    "flannel_cni_plugin": "github.com/flannel-io/cni-plugin/releases/download",
    "cni_plugins": "github.com/containernetworking/plugins/releases/download",
    "pause": "images",
    "coredns": "images",
    "metrics_server": "images",
}
COMPONENTS = tuple(MIRROR_PATHS)
IMAGE_REFS = {
    "pause": "registry.k8s.io/pause",
    "coredns": "registry.k8s.io/coredns/coredns",
    "metrics_server": "registry.k8s.io/metrics-server/metrics-server",
}
# The file at the mirror root that lists every file's digest (for artifacts whose upstream
# publishes no checksum file, flannel's tarball) and the bundle manifest.
MIRROR_SUMS = "SHA256SUMS"
MIRROR_MANIFEST = "kubesmith-bundle.json"
DEFAULTS_FILE = Path("roles/kubesmith/defaults/main.yml")


@dataclass(frozen=True)
class Artifact:
    """One downloadable file and the file upstream publishes its checksum in (if any)."""

    component: str
    path: str
    checksum_path: str | None

    @property
    def mirror_file(self) -> str:
        return f"{MIRROR_PATHS[self.component]}/{self.path}"

    @property
    def mirror_checksum_file(self) -> str | None:
        if self.checksum_path is None:
            return None
        return f"{MIRROR_PATHS[self.component]}/{self.checksum_path}"


@dataclass(frozen=True)
class Versions:
    """The pinned versions, as in roles/kubesmith/defaults/main.yml."""

    kubernetes: str
    etcd: str
    flannel: str
    flannel_cni_plugin: str
    cni_plugins: str
    pause: str
    coredns: str
    metrics_server: str

    def of(self, component: str) -> str:
        value: str = getattr(self, component)
        return value


def load_versions(defaults_file: Path) -> Versions:
    """Read kubesmith_<component>_version from the defaults file (the one version manifest)."""
    try:
        data: Any = yaml.safe_load(defaults_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BundleError(f"cannot read versions from {defaults_file}: {exc}") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{defaults_file} is not a YAML mapping of variables")
    values: dict[str, str] = {}
    for component in COMPONENTS:
        key = f"kubesmith_{component}_version"
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise BundleError(f"{defaults_file}: {key} is {value!r}; set it to a release tag")
        values[component] = value
    return Versions(**values)


def image_archive(component: str, version: str, arch: str) -> str:
    name = IMAGE_REFS[component].rsplit("/", 1)[1]
    return f"{name}/{version}/{name}-{version}-linux-{arch}.oci.tar"


def artifacts(component: str, versions: Versions, arch: str) -> list[Artifact]:
    """The files of one component in its upstream layout."""
    version = versions.of(component)
    if component == "kubernetes":
        base = f"{version}/bin/linux/{arch}"
        return [
            Artifact(component, f"{base}/{name}", f"{base}/{name}.sha256")
            for name in KUBERNETES_COMMANDS
        ]
    if component == "etcd":
        return [
            Artifact(
                component, f"{version}/etcd-{version}-linux-{arch}.tar.gz", f"{version}/SHA256SUMS"
            )
        ]
    if component == "flannel":
        return [Artifact(component, f"{version}/flannel-{version}-linux-{arch}.tar.gz", None)]
    if component == "flannel_cni_plugin":
        tarball = f"{version}/cni-plugin-flannel-linux-{arch}-{version}.tgz"
        return [Artifact(component, tarball, f"{tarball}.sha256")]
    if component == "cni_plugins":
        tarball = f"{version}/cni-plugins-linux-{arch}-{version}.tgz"
        return [Artifact(component, tarball, f"{tarball}.sha256")]
    if component in IMAGE_REFS:
        archive = image_archive(component, version, arch)
        return [Artifact(component, archive, f"{archive}.sha256")]
    raise BundleError(f"unknown component {component!r}; known: {', '.join(COMPONENTS)}")


def parse_components(text: str) -> list[str]:
    """`etcd,cni-plugins` -> ['etcd', 'cni_plugins']; dashes and underscores are equivalent."""
    wanted = [part.strip().replace("-", "_") for part in text.split(",") if part.strip()]
    unknown = [name for name in wanted if name not in MIRROR_PATHS]
    if unknown:
        known = ", ".join(name.replace("_", "-") for name in COMPONENTS)
        raise BundleError(f"--components: unknown {', '.join(unknown)}; known: {known}")
    return wanted

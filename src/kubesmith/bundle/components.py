"""Build each component from its Go module and lay it out as its upstream release does."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kubesmith.bundle import layout, oci
from kubesmith.bundle.errors import BundleError
from kubesmith.bundle.gobuild import BuildEnv, ModuleBuild, ModuleInfo, Target, build_module

# flannel-io/cni-plugin is not on the Go module proxy; this release of the CNI project still
# carried the same flannel plugin (plugins/meta/flannel), from which flannel-io forked it.
FLANNEL_CNI_SOURCE = ("github.com/containernetworking/plugins", "v0.9.1")
# The Tencent Cloud VPC backend needs an SDK the module proxy does not serve; the lab uses vxlan.
FLANNEL_DROPPED_BACKENDS = ("github.com/flannel-io/flannel/pkg/backend/tencentvpc",)
STRIP = ("-s", "-w")


@dataclass(frozen=True)
class BuildContext:
    env: BuildEnv
    mirror: Path
    versions: layout.Versions


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, content: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    partial.chmod(mode)
    partial.replace(path)


def epoch_of(module: ModuleInfo) -> int:
    if not module.time:
        return 0
    return int(datetime.fromisoformat(module.time.replace("Z", "+00:00")).timestamp())


def tarball(members: dict[str, tuple[bytes, int]], epoch: int, directories: list[str]) -> bytes:
    """A gzip'd tar with fixed owners and times, so equal inputs give equal bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
            tar.addfile(info)
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, epoch
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _publish(ctx: BuildContext, artifact: layout.Artifact, content: bytes, mode: int) -> None:
    """Write the artifact, then its checksum file in the upstream format."""
    target = ctx.mirror / artifact.mirror_file
    write_atomic(target, content, mode)
    if artifact.mirror_checksum_file is None:
        return
    digest = sha256_file(target)
    checksum = ctx.mirror / artifact.mirror_checksum_file
    if artifact.component in ("kubernetes", *layout.IMAGE_REFS):
        text = digest
    elif checksum.name == "SHA256SUMS":
        kept = []
        if checksum.exists():
            kept = [
                line
                for line in checksum.read_text(encoding="utf-8").splitlines()
                if not line.endswith(f"  {target.name}")
            ]
        text = "\n".join(sorted([*kept, f"{digest}  {target.name}"])) + "\n"
    else:
        text = f"{digest}  {target.name}\n"
    write_atomic(checksum, text.encode())


def build_kubernetes(ctx: BuildContext) -> None:
    version = ctx.versions.kubernetes
    major, minor = version.lstrip("v").split(".")[:2]
    flags = list(STRIP)
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            # The proxy's zip carries no commit id; the module hash names the exact source.
            f"-X {package}.gitCommit={{sum}}",
            f"-X {package}.gitTreeState=archive",
            f"-X {package}.buildDate={{time}}",
        ]
    packages = tuple(f"k8s.io/kubernetes/cmd/{name}" for name in layout.KUBERNETES_COMMANDS)
    spec = ModuleBuild(
        name="kubernetes",
        upstream="k8s.io/kubernetes",
        version=version,
        targets=(Target(packages),),
        ldflags=tuple(flags),
        staging_replaces=True,
    )
    out, _ = build_module(spec, ctx.env, "kubernetes")
    for artifact in layout.artifacts("kubernetes", ctx.versions, ctx.env.arch):
        name = artifact.path.rsplit("/", 1)[1]
        _publish(ctx, artifact, (out / name).read_bytes(), 0o755)


def build_etcd(ctx: BuildContext) -> None:
    version = ctx.versions.etcd
    spec = ModuleBuild(
        name="etcd",
        upstream="go.etcd.io/etcd/server/v3",
        version=version,
        targets=(
            Target((".",), "etcd"),
            Target(("go.etcd.io/etcd/etcdctl/v3",), "etcdctl"),
            Target(("go.etcd.io/etcd/etcdutl/v3",), "etcdutl"),
        ),
        ldflags=(*STRIP, "-X go.etcd.io/etcd/api/v3/version.GitSHA={sum}"),
        also_require={
            "go.etcd.io/etcd/etcdctl/v3": version,
            "go.etcd.io/etcd/etcdutl/v3": version,
        },
        local_sources="etcd",
    )
    out, module = build_module(spec, ctx.env, "etcd")
    top = f"etcd-{version}-linux-{ctx.env.arch}"
    members = {
        f"{top}/{n}": ((out / n).read_bytes(), 0o755) for n in ("etcd", "etcdctl", "etcdutl")
    }
    (artifact,) = layout.artifacts("etcd", ctx.versions, ctx.env.arch)
    _publish(ctx, artifact, tarball(members, epoch_of(module), [top]), 0o644)


def build_flannel(ctx: BuildContext) -> None:
    version = ctx.versions.flannel
    cgo = ctx.env.arch == "amd64"  # upstream builds the UDP backend (cgo) on amd64 only
    spec = ModuleBuild(
        name="flannel",
        upstream="github.com/flannel-io/flannel",
        version=version,
        targets=(
            Target(
                (".",),
                "flanneld",
                cgo=cgo,
                extldflags="-static" if cgo else "",
            ),
        ),
        ldflags=(*STRIP, f"-X github.com/flannel-io/flannel/pkg/version.Version={version}"),
        drop_imports=FLANNEL_DROPPED_BACKENDS,
    )
    out, module = build_module(spec, ctx.env, "flannel")
    members = {
        "flanneld": ((out / "flanneld").read_bytes(), 0o755),
        "mk-docker-opts.sh": ((module.directory / "dist/mk-docker-opts.sh").read_bytes(), 0o755),
        "README.md": ((module.directory / "README.md").read_bytes(), 0o644),
    }
    (artifact,) = layout.artifacts("flannel", ctx.versions, ctx.env.arch)
    _publish(ctx, artifact, tarball(members, epoch_of(module), []), 0o644)


def _cni_build(name: str, module: str, version: str, plugins: dict[str, str]) -> ModuleBuild:
    return ModuleBuild(
        name=name,
        upstream=module,
        version=version,
        targets=tuple(Target((f"{module}/{path}",), out) for out, path in plugins.items()),
        ldflags=(
            *STRIP,
            f"-X {module}/pkg/utils/buildversion.BuildVersion={version}",
        ),
    )


def build_cni_plugins(ctx: BuildContext) -> None:
    version = ctx.versions.cni_plugins
    where = {"bridge": "main", "host-local": "ipam", "loopback": "main", "portmap": "meta"}
    plugins = {name: f"plugins/{kind}/{name}" for name, kind in where.items()}
    spec = _cni_build("cni-plugins", "github.com/containernetworking/plugins", version, plugins)
    out, module = build_module(spec, ctx.env, "cni_plugins")
    members = {f"./{name}": ((out / name).read_bytes(), 0o755) for name in plugins}
    (artifact,) = layout.artifacts("cni_plugins", ctx.versions, ctx.env.arch)
    _publish(ctx, artifact, tarball(members, epoch_of(module), ["./"]), 0o644)


def build_flannel_cni_plugin(ctx: BuildContext) -> None:
    module_path, source_version = FLANNEL_CNI_SOURCE
    binary = f"flannel-{ctx.env.arch}"
    spec = _cni_build(
        "flannel-cni-plugin", module_path, source_version, {binary: "plugins/meta/flannel"}
    )
    out, module = build_module(spec, ctx.env, "flannel_cni_plugin")
    members = {binary: ((out / binary).read_bytes(), 0o755)}
    (artifact,) = layout.artifacts("flannel_cni_plugin", ctx.versions, ctx.env.arch)
    _publish(ctx, artifact, tarball(members, epoch_of(module), []), 0o644)


def _publish_image(ctx: BuildContext, component: str, image: oci.ImageSpec) -> None:
    (artifact,) = layout.artifacts(component, ctx.versions, ctx.env.arch)
    staged = ctx.env.work_dir / "images" / Path(artifact.path).name
    oci.write_image_archive(image, staged)
    _publish(ctx, artifact, staged.read_bytes(), 0o644)


def build_pause(ctx: BuildContext) -> None:
    version = ctx.versions.pause
    spec = ModuleBuild(
        name="pause",
        upstream="",
        version=version,
        targets=(Target((".",), "pause"),),
        ldflags=(*STRIP, f"-X main.version={version}"),
        local_sources="pause",
    )
    out, _ = build_module(spec, ctx.env, "pause")
    ref = f"{layout.IMAGE_REFS['pause']}:{version}"
    image = oci.ImageSpec(
        ref=ref,
        files={"/pause": out / "pause"},
        entrypoint=["/pause"],
        arch=ctx.env.arch,
        created=0,
        user="65535:65535",
    )
    _publish_image(ctx, "pause", image)


def build_coredns(ctx: BuildContext) -> None:
    version = ctx.versions.coredns
    spec = ModuleBuild(
        name="coredns",
        upstream="github.com/coredns/coredns",
        version=version,
        targets=(Target(("github.com/coredns/coredns",), "coredns"),),
        ldflags=(*STRIP, "-X github.com/coredns/coredns/coremain.GitCommit={sum}"),
    )
    out, module = build_module(spec, ctx.env, "coredns")
    image = oci.ImageSpec(
        ref=f"{layout.IMAGE_REFS['coredns']}:{version}",
        files={"/coredns": out / "coredns"},
        entrypoint=["/coredns"],
        arch=ctx.env.arch,
        created=epoch_of(module),
        exposed_ports=("53/tcp", "53/udp"),
    )
    _publish_image(ctx, "coredns", image)


def build_metrics_server(ctx: BuildContext) -> None:
    version = ctx.versions.metrics_server
    spec = ModuleBuild(
        name="metrics-server",
        upstream="sigs.k8s.io/metrics-server",
        version=version,
        targets=(Target(("sigs.k8s.io/metrics-server/cmd/metrics-server",), "metrics-server"),),
        ldflags=(
            *STRIP,
            f"-X k8s.io/client-go/pkg/version.gitVersion={version}",
            "-X k8s.io/client-go/pkg/version.gitCommit={sum}",
            "-X k8s.io/client-go/pkg/version.buildDate={time}",
        ),
    )
    out, module = build_module(spec, ctx.env, "metrics_server")
    image = oci.ImageSpec(
        ref=f"{layout.IMAGE_REFS['metrics_server']}:{version}",
        files={"/metrics-server": out / "metrics-server"},
        entrypoint=["/metrics-server"],
        arch=ctx.env.arch,
        created=epoch_of(module),
        user="65534:65534",
        empty_dirs={"/tmp": 0o1777},
    )
    _publish_image(ctx, "metrics_server", image)


BUILDERS: dict[str, Callable[[BuildContext], None]] = {
    "kubernetes": build_kubernetes,
    "etcd": build_etcd,
    "flannel": build_flannel,
    "flannel_cni_plugin": build_flannel_cni_plugin,
    "cni_plugins": build_cni_plugins,
    "pause": build_pause,
    "coredns": build_coredns,
    "metrics_server": build_metrics_server,
}


def builder(component: str) -> Callable[[BuildContext], None]:
    try:
        return BUILDERS[component]
    except KeyError:
        raise BundleError(f"no builder for component {component!r}") from None

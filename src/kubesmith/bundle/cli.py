"""kubesmith-bundle: build the lab mirror from Go modules, serve it, pack an offline bundle."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import functools
import http.server
import ipaddress
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from kubesmith.bundle import layout, mirror
from kubesmith.bundle.components import FLANNEL_CNI_SOURCE, BuildContext, builder
from kubesmith.bundle.errors import BundleError
from kubesmith.bundle.gobuild import BuildEnv

DEFAULT_CACHE = Path(os.environ.get("KUBESMITH_BUNDLE_CACHE", "/var/cache/kubesmith"))
DEFAULT_PORT = 8089
SOURCES = {
    "kubernetes": "k8s.io/kubernetes (wrapper module, staging modules at v0.Y.Z)",
    "etcd": "go.etcd.io/etcd/{server,etcdctl,etcdutl}/v3",
    "flannel": "github.com/flannel-io/flannel (cgo on amd64; without the tencentvpc backend)",
    "flannel_cni_plugin": "{}@{} plugins/meta/flannel".format(*FLANNEL_CNI_SOURCE),
    "cni_plugins": "github.com/containernetworking/plugins (bridge, host-local, loopback, portmap)",
    "pause": "kubesmith's own pause (src/kubesmith/bundle/go/pause)",
    "coredns": "github.com/coredns/coredns",
    "metrics_server": "sigs.k8s.io/metrics-server/cmd/metrics-server",
}


def _versions(args: argparse.Namespace) -> layout.Versions:
    """The versions file's pins, with --version-override COMPONENT=VERSION applied."""
    versions = layout.load_versions(Path(args.versions))
    overrides: dict[str, str] = {}
    for item in args.version_override or []:
        component, sep, version = item.partition("=")
        if not sep or component not in layout.COMPONENTS or not version:
            raise BundleError(
                f"--version-override {item!r}: write COMPONENT=VERSION with COMPONENT one of "
                f"{', '.join(layout.COMPONENTS)} (e.g. kubernetes=v1.36.3)"
            )
        overrides[component] = version
    return dataclasses.replace(versions, **overrides)


def _mirror(args: argparse.Namespace) -> Path:
    return Path(args.mirror) if args.mirror else Path(args.cache_dir) / "mirror"


@contextlib.contextmanager
def _build_lock(cache: Path) -> Iterator[None]:
    """One build at a time per cache: two would share work directories and stamps."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "build.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"waiting for another kubesmith-bundle build ({cache / 'build.lock'})", flush=True
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _all_current(args: argparse.Namespace) -> bool:
    versions = _versions(args)
    root = _mirror(args)
    wanted = layout.parse_components(args.components) if args.components else layout.COMPONENTS
    current = [
        mirror.is_current(
            cache_dir=Path(args.cache_dir),
            mirror=root,
            component=component,
            versions=versions,
            arch=args.arch,
        )
        for component in wanted
    ]
    return all(current) and (root / layout.MIRROR_SUMS).is_file()


def cmd_build(args: argparse.Namespace) -> int:
    # Reading needs no lock: a test that finds its components built does not wait for an
    # unrelated build (e.g. the lab's) of other components.
    if not args.force and _all_current(args):
        print(f"mirror {_mirror(args)}: requested components up to date", flush=True)
        return 0
    with _build_lock(Path(args.cache_dir)):
        return _build(args)


def _build(args: argparse.Namespace) -> int:
    versions = _versions(args)
    cache = Path(args.cache_dir)
    root = _mirror(args)
    env = BuildEnv(cache_dir=cache, go=Path(args.go), arch=args.arch)
    wanted = layout.parse_components(args.components) if args.components else layout.COMPONENTS
    context = BuildContext(env=env, mirror=root, versions=versions)
    total = time.monotonic()
    for component in wanted:
        version = versions.of(component)
        current = mirror.is_current(
            cache_dir=cache, mirror=root, component=component, versions=versions, arch=args.arch
        )
        if current and not args.force:
            print(f"[{component}] {version} up to date in {root}", flush=True)
            continue
        started = time.monotonic()
        print(f"[{component}] building {version} for linux/{args.arch}", flush=True)
        builder(component)(context)
        seconds = time.monotonic() - started
        mirror.record_built(
            cache_dir=cache,
            mirror=root,
            component=component,
            versions=versions,
            arch=args.arch,
            seconds=seconds,
        )
        print(f"[{component}] {version} built in {seconds:.0f} s", flush=True)
    # The manifest lists the versions file's pins; an overridden build (the day-2 drill's
    # older Kubernetes) only adds files, which SHA256SUMS covers like every other.
    pinned = layout.load_versions(Path(args.versions))
    mirror.write_index(root, pinned, {c: SOURCES[c] for c in layout.COMPONENTS})
    print(f"mirror {root} ready in {time.monotonic() - total:.0f} s", flush=True)
    return 0


class MirrorServer(http.server.ThreadingHTTPServer):
    """Serves a mirror tree and remembers every request (tests count downloads)."""

    request_log: list[str]


class _LoggingHandler(http.server.SimpleHTTPRequestHandler):
    server: MirrorServer

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.request_log.append(f"{self.command} {self.path} {code}")
        super().log_request(code, size)


def make_server(root: Path, bind: str, port: int) -> MirrorServer:
    """An HTTP server for root, on an IP address (default loopback) rather than a name."""
    if not root.is_dir():
        raise BundleError(f"serve: {root} does not exist; run `kubesmith-bundle build` first")
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise BundleError(
            f"serve: --bind {bind!r} is not an IP address; give one (127.0.0.1 for loopback)"
        ) from None
    handler = functools.partial(_LoggingHandler, directory=str(root))
    server = MirrorServer((bind, port), handler)
    server.request_log = []
    return server


def cmd_serve(args: argparse.Namespace) -> int:
    server = make_server(_mirror(args), args.bind, args.port)
    host, port = server.server_address[:2]
    print(f"serving {_mirror(args)} at http://{host!s}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    source = Path(args.source) if args.source else _mirror(args)
    output = Path(args.output)
    count = mirror.pack(source, output, _versions(args), SOURCES)
    size = output.stat().st_size
    print(f"packed {count} files from {source} into {output} ({size / 2**20:.1f} MiB)")
    print(f"unpack with `tar -xf {output.name} -C DIR`, then set kubesmith_download_mirror_url")
    print("to file://DIR, or run `kubesmith-bundle serve --mirror DIR`")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    root = _mirror(args)
    bad = mirror.verify_tree(root)
    for name in bad:
        print(f"MISMATCH {name}")
    print(f"{root}: {'all files match SHA256SUMS' if not bad else f'{len(bad)} bad files'}")
    return 1 if bad else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubesmith-bundle", description=__doc__)
    top.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="Go caches, work, logs")
    top.add_argument("--mirror", help="mirror tree (default CACHE_DIR/mirror)")
    top.add_argument(
        "--versions", default=str(layout.DEFAULTS_FILE), help="YAML with kubesmith_*_version"
    )
    top.add_argument(
        "--version-override",
        action="append",
        metavar="COMPONENT=VERSION",
        help="build another version of a component too (e.g. kubernetes=v1.36.3)",
    )
    sub = top.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build components into the mirror (cached)")
    build.add_argument("--components", help="comma list: " + ",".join(layout.COMPONENTS))
    build.add_argument("--arch", default="amd64")
    build.add_argument("--go", default="/usr/local/go/bin/go")
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.set_defaults(func=cmd_build)
    serve = sub.add_parser("serve", help="serve the mirror over HTTP")
    serve.add_argument("--bind", default="127.0.0.1", help="IP address (default loopback)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.set_defaults(func=cmd_serve)
    pack = sub.add_parser("pack", help="pack a mirror or download cache into one archive")
    pack.add_argument("--source", help="directory to pack (default: the mirror)")
    pack.add_argument("--output", required=True, help="archive to write (.tar)")
    pack.set_defaults(func=cmd_pack)
    verify = sub.add_parser("verify", help="check every file of a mirror against SHA256SUMS")
    verify.set_defaults(func=cmd_verify)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except BundleError as exc:
        print(f"kubesmith-bundle: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())

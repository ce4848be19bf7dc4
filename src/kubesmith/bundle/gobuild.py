"""Run the Go toolchain for one wrapper module: write go.mod, tidy, build, show progress.

Each component is its own module so that etcd, flannel or the CNI plugins never shift
Kubernetes' dependency versions. Go's module and build caches live outside the repository
(see `BuildEnv`), so a second build only links.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from kubesmith.bundle import gomod
from kubesmith.bundle.errors import BundleError

GO_SOURCES = Path(__file__).resolve().parent / "go"


@dataclass(frozen=True)
class BuildEnv:
    """Where Go and its caches are; every path is outside the repository."""

    cache_dir: Path
    go: Path = Path("/usr/local/go/bin/go")
    arch: str = "amd64"
    nice: bool = True

    @property
    def work_dir(self) -> Path:
        return self.cache_dir / "work"

    @property
    def log_dir(self) -> Path:
        return self.cache_dir / "logs"

    def environ(self, cgo: bool) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            GOMODCACHE=str(self.cache_dir / "go" / "mod"),
            GOCACHE=str(self.cache_dir / "go" / "build"),
            GOFLAGS="-modcacherw -buildvcs=false",
            GOTOOLCHAIN="local",
            GOOS="linux",
            GOARCH=self.arch,
            CGO_ENABLED="1" if cgo else "0",
            PATH=f"{self.go.parent}{os.pathsep}{env.get('PATH', '')}",
        )
        return env


@dataclass(frozen=True)
class Target:
    """Commands built by one `go build`: packages, output (a file, or "" for the out dir
    with Go's default names), and whether they need cgo."""

    packages: tuple[str, ...]
    output: str = ""
    cgo: bool = False
    extldflags: str = ""


@dataclass(frozen=True)
class ModuleBuild:
    """A wrapper module around one upstream module (plus siblings it needs)."""

    name: str
    upstream: str
    version: str
    targets: tuple[Target, ...]
    # `{sum}` and `{time}` are replaced with the upstream module's hash and release time.
    ldflags: tuple[str, ...] = ()
    also_require: dict[str, str] = field(default_factory=dict)
    local_sources: str = ""
    staging_replaces: bool = False
    # Build inside a copy of the upstream module (its own go.mod and go.sum, so upstream's
    # replaces hold) with these blank imports removed from main.go: for optional parts whose
    # dependencies the module proxy does not serve.
    drop_imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModuleInfo:
    """What the module proxy says about the upstream module version."""

    gomod: gomod.GoMod
    directory: Path
    time: str
    sum: str


def _run(
    command: list[str], *, env: dict[str, str], cwd: Path, log: TextIO, label: str, nice: bool
) -> None:
    """Run a go command, copying its output to the log and a progress line to stdout."""
    full = ["nice", "-n", "19", *command] if nice else command
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    started = time.monotonic()
    last_report = started
    compiled = 0
    tail: list[str] = []
    with subprocess.Popen(
        full, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            compiled += 1
            tail = [*tail[-19:], line.rstrip()]
            now = time.monotonic()
            if now - last_report >= 15:
                last_report = now
                print(
                    f"  [{label}] {now - started:6.0f} s, {compiled} packages, at {line.strip()}",
                    flush=True,
                )
        returncode = process.wait()
    log.flush()
    if returncode != 0:
        detail = "\n".join(tail)
        raise BundleError(
            f"[{label}] `{' '.join(command)}` failed with exit code {returncode} in {cwd}; "
            f"full log: {log.name}\n{detail}"
        )


def module_info(env: BuildEnv, module: str, version: str) -> ModuleInfo:
    """Download one module version through the proxy and read its go.mod."""
    result = subprocess.run(
        [str(env.go), "mod", "download", "-json", f"{module}@{version}"],
        env=env.environ(cgo=False),
        cwd=env.cache_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {"Error": result.stderr.strip() or result.stdout.strip()}
    if result.returncode != 0 or "Error" in info:
        raise BundleError(
            f"cannot fetch {module}@{version} from the Go module proxy: {info.get('Error')}; "
            f"check the version exists (`go list -m -versions {module}`)"
        )
    parsed = gomod.parse_gomod(Path(info["GoMod"]).read_text(encoding="utf-8"))
    stamp = json.loads(Path(info["Info"]).read_text(encoding="utf-8"))
    return ModuleInfo(parsed, Path(info["Dir"]), str(stamp.get("Time", "")), str(info["Sum"]))


def write_module(spec: ModuleBuild, upstream: ModuleInfo, directory: Path) -> bool:
    """Lay out the wrapper module; return True when go.mod changed (and needs a tidy)."""
    directory.mkdir(parents=True, exist_ok=True)
    replaces = dict(upstream.gomod.module_replaces)
    if spec.staging_replaces:
        replaces.update(gomod.staging_replaces(upstream.gomod, spec.version))
    requires = {spec.upstream: spec.version, **spec.also_require}
    text = gomod.render_wrapper_gomod(
        f"kubesmith.local/build/{spec.name}", upstream.gomod, requires, replaces
    )
    if spec.local_sources:
        for source in sorted((GO_SOURCES / spec.local_sources).glob("*.go")):
            shutil.copyfile(source, directory / source.name)
    imported = [p for t in spec.targets for p in t.packages if not p.startswith(".")]
    if imported:
        (directory / "tools.go").write_text(gomod.render_imports_go(imported), encoding="utf-8")
    module_file = directory / "go.mod"
    recorded = directory / "go.mod.wanted"
    if recorded.exists() and recorded.read_text(encoding="utf-8") == text:
        return not (directory / "go.sum").exists()
    module_file.write_text(text, encoding="utf-8")
    recorded.write_text(text, encoding="utf-8")
    return True


def _local_module(spec: ModuleBuild, directory: Path) -> ModuleInfo:
    """A module of our own (no upstream): copy its sources, go.mod included."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = GO_SOURCES / spec.local_sources
    for source in sorted(sources.iterdir()):
        shutil.copyfile(source, directory / source.name)
    parsed = gomod.parse_gomod((sources / "go.mod").read_text(encoding="utf-8"))
    return ModuleInfo(parsed, sources, "", "")


def _patched_copy(spec: ModuleBuild, upstream: ModuleInfo, directory: Path) -> None:
    """Copy the upstream module and drop the blank imports spec names from main.go."""
    if directory.exists():
        shutil.rmtree(directory)
    shutil.copytree(upstream.directory, directory)
    main = directory / "main.go"
    lines = main.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.strip() not in {f'_ "{i}"' for i in spec.drop_imports}]
    if len(lines) - len(kept) != len(spec.drop_imports):
        raise BundleError(
            f"{spec.upstream}@{spec.version}: main.go does not import all of "
            f"{', '.join(spec.drop_imports)}; update drop_imports for this version"
        )
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    main.write_text("".join(kept), encoding="utf-8")


def build_module(spec: ModuleBuild, env: BuildEnv, label: str) -> tuple[Path, ModuleInfo]:
    """Build every target of spec into <work>/<name>-<version>/out; return that dir."""
    directory = env.work_dir / f"{spec.name}-{spec.version}"
    if not spec.upstream:
        upstream = _local_module(spec, directory)
    else:
        upstream = module_info(env, spec.upstream, spec.version)
    out = directory / "out"
    env.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = env.log_dir / f"build-{spec.name}-{spec.version}.log"
    with log_path.open("a", encoding="utf-8") as log:
        print(f"[{label}] building in {directory} (log {log_path})", flush=True)
        if spec.drop_imports:
            _patched_copy(spec, upstream, directory / "src")
        elif spec.upstream and write_module(spec, upstream, directory):
            print(f"[{label}] resolving dependencies (go mod tidy)", flush=True)
            _run(
                [str(env.go), "mod", "tidy"],
                env=env.environ(cgo=False),
                cwd=directory,
                log=log,
                label=label,
                nice=env.nice,
            )
        ldflags = " ".join(spec.ldflags).format(sum=upstream.sum, time=upstream.time)
        for target in spec.targets:
            flags = ldflags
            if target.extldflags:
                flags += f' -extldflags "{target.extldflags}"'
            destination = out / target.output if target.output else out
            out.mkdir(parents=True, exist_ok=True)
            print(f"[{label}] go build {' '.join(target.packages)}", flush=True)
            _run(
                [
                    str(env.go),
                    "build",
                    "-v",
                    "-trimpath",
                    "-ldflags",
                    flags,
                    "-o",
                    f"{destination}/" if not target.output else str(destination),
                    *target.packages,
                ],
                env=env.environ(cgo=target.cgo),
                cwd=directory / "src" if spec.drop_imports else directory,
                log=log,
                label=label,
                nice=env.nice,
            )
    return out, upstream

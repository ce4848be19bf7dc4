"""The mirror tree: what is built, the root SHA256SUMS and manifest, and the offline bundle."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubesmith.bundle import layout
from kubesmith.bundle.components import sha256_file, write_atomic
from kubesmith.bundle.errors import BundleError

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT_FILES = (layout.MIRROR_SUMS, layout.MIRROR_MANIFEST)


def recipe_digest() -> str:
    """Digest of this package's build code: a change to it invalidates the built mirror."""
    digest = hashlib.sha256()
    recipe = [PACKAGE_DIR / n for n in ("components.py", "gobuild.py", "gomod.py", "oci.py")]
    for source in sorted([*recipe, *(PACKAGE_DIR / "go").rglob("*")]):
        if source.is_file():
            digest.update(str(source.relative_to(PACKAGE_DIR)).encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


def _stamp_path(cache_dir: Path, component: str, versions: layout.Versions, arch: str) -> Path:
    # One stamp per version, so building an older version (a rollback test) keeps the newer.
    return cache_dir / "stamps" / f"{component}-{versions.of(component)}-{arch}.json"


def _wanted_stamp(component: str, versions: layout.Versions, arch: str) -> dict[str, Any]:
    return {"component": component, "version": versions.of(component), "arch": arch}


def is_current(
    *, cache_dir: Path, mirror: Path, component: str, versions: layout.Versions, arch: str
) -> bool:
    """True when the mirror holds this component's files exactly as last built."""
    stamp_file = _stamp_path(cache_dir, component, versions, arch)
    if not stamp_file.exists():
        return False
    stamp = json.loads(stamp_file.read_text(encoding="utf-8"))
    if stamp.get("build") != _wanted_stamp(component, versions, arch):
        return False
    if stamp.get("recipe") != recipe_digest():
        return False
    files: dict[str, str] = stamp.get("files", {})
    return bool(files) and all(
        (mirror / name).is_file() and sha256_file(mirror / name) == digest
        for name, digest in files.items()
    )


def record_built(
    *,
    cache_dir: Path,
    mirror: Path,
    component: str,
    versions: layout.Versions,
    arch: str,
    seconds: float,
) -> None:
    names: list[str] = []
    for artifact in layout.artifacts(component, versions, arch):
        names.append(artifact.mirror_file)
        if artifact.mirror_checksum_file:
            names.append(artifact.mirror_checksum_file)
    stamp = {
        "build": _wanted_stamp(component, versions, arch),
        "recipe": recipe_digest(),
        "seconds": round(seconds, 1),
        "files": {name: sha256_file(mirror / name) for name in names},
    }
    stamp_path = _stamp_path(cache_dir, component, versions, arch)
    write_atomic(stamp_path, json.dumps(stamp, indent=2).encode())


def tree_files(root: Path) -> Iterator[Path]:
    """Every regular file below root except the root's index files, partials and dot
    directories (the download stage's unpacked tarballs and mirror scratch live there)."""
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
        for name in sorted(names):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if relative in ROOT_FILES or name.endswith(".partial"):
                continue
            yield path


def write_index(root: Path, versions: layout.Versions, sources: dict[str, str]) -> None:
    """Write SHA256SUMS (every file) and the manifest (versions, sources, sizes) at root."""
    entries = {
        path.relative_to(root).as_posix(): (sha256_file(path), path.stat().st_size)
        for path in sorted(tree_files(root))
    }
    sums = "".join(f"{digest}  {name}\n" for name, (digest, _) in entries.items())
    write_atomic(root / layout.MIRROR_SUMS, sums.encode())
    manifest = {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {c: versions.of(c) for c in layout.COMPONENTS},
        "sources": sources,
        "files": {name: {"sha256": d, "size": s} for name, (d, s) in entries.items()},
    }
    write_atomic(root / layout.MIRROR_MANIFEST, json.dumps(manifest, indent=2).encode())


def verify_tree(root: Path) -> list[str]:
    """Names of files whose digest differs from SHA256SUMS (or that are missing)."""
    sums = root / layout.MIRROR_SUMS
    if not sums.is_file():
        raise BundleError(f"{sums} is missing: not a kubesmith mirror or bundle")
    bad: list[str] = []
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        path = root / name
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(name)
    return bad


def pack(source: Path, output: Path, versions: layout.Versions, sources: dict[str, str]) -> int:
    """Pack source (a mirror or download cache) into one tar with SHA256SUMS and manifest."""
    if not source.is_dir():
        raise BundleError(f"pack: source {source} is not a directory; pass --source DIR")
    write_index(source, versions, sources)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    count = 0
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ROOT_FILES:
            tar.add(source / name, arcname=name)
        for path in sorted(tree_files(source)):
            tar.add(path, arcname=path.relative_to(source).as_posix())
            count += 1
    partial.replace(output)
    return count

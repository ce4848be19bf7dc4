"""Workload images for the lab made from Debian packages: the lab pulls nothing.

    python -m kubesmith.lab.debian_image REF OUTPUT PACKAGE... [--suite S] [--mirror URL]

debootstraps a minimal Debian with the packages (and without apt), trims what a container never
reads, and packs the tree as a one-layer OCI archive (kubesmith.bundle.oci) that
`ctr images import` takes.
A stamp beside the archive records the recipe and the archive's sha256: the same recipe is not
built twice. Prints what it did as JSON (built, seconds, bytes, digest).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubesmith.bundle.components import sha256_file
from kubesmith.bundle.errors import BundleError
from kubesmith.bundle.oci import ImageSpec, write_image_archive
from kubesmith.lab.engine import run
from kubesmith.lab.errors import LabError
from kubesmith.lab.image import MIRROR, SUITE, debootstrap

# What a container never reads; Debian's own slim images leave out the same. The licences
# (usr/share/doc/*/copyright) stay with the binaries.
TRIMMED_DIRS = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/groff",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/log",
    # The runtime gives every container its own /dev.
    "dev",
)
KEPT_NAMES = frozenset({"copyright"})
# A workload image never installs packages: without apt, its libraries stay out too (11 MB).
EXCLUDED = ("apt",)
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
# Bump when the way a tree becomes an image changes: it invalidates every stamp.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class BuildResult:
    """What build() did: built or found current, how long, the archive's size and digest."""

    built: bool
    seconds: float
    bytes: int
    digest: str


def trim(root: Path) -> int:
    """Empty TRIMMED_DIRS in root (their directories and the licences stay); return the bytes
    freed."""
    freed = 0
    for rel_dir in TRIMMED_DIRS:
        top = root / rel_dir
        if not top.is_dir() or top.is_symlink():
            continue
        for path in sorted(top.rglob("*")):
            if (path.is_dir() and not path.is_symlink()) or path.name in KEPT_NAMES:
                continue
            freed += path.lstat().st_size
            path.unlink()
    return freed


def recipe(ref: str, packages: Sequence[str], suite: str, mirror: str) -> dict[str, Any]:
    """Everything that shapes the image; a stamp holding another recipe means rebuild."""
    return {
        "version": RECIPE_VERSION,
        "ref": ref,
        "packages": sorted(packages),
        "excluded": list(EXCLUDED),
        "suite": suite,
        "mirror": mirror,
        "trimmed": list(TRIMMED_DIRS),
        "env": list(ENV),
    }


def _stamp_path(output: Path) -> Path:
    return output.with_name(output.name + ".stamp.json")


def current(output: Path, wanted: dict[str, Any]) -> BuildResult | None:
    """The stamped result when output is the archive this recipe built, else None."""
    stamp_file = _stamp_path(output)
    if not output.is_file() or not stamp_file.is_file():
        return None
    try:
        stamp = json.loads(stamp_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    digest = stamp.get("digest")
    if stamp.get("recipe") != wanted or not digest or stamp.get("sha256") != sha256_file(output):
        return None
    return BuildResult(built=False, seconds=0.0, bytes=output.stat().st_size, digest=str(digest))


def build(
    ref: str,
    output: Path,
    packages: Sequence[str],
    *,
    suite: str = SUITE,
    mirror: str = MIRROR,
) -> BuildResult:
    """Build the archive unless the stamp says this recipe already did."""
    if not packages:
        raise LabError(f"image {ref}: name at least one Debian package to install")
    wanted = recipe(ref, packages, suite, mirror)
    found = current(output, wanted)
    if found is not None:
        return found
    started = time.monotonic()
    output.parent.mkdir(parents=True, exist_ok=True)
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    with tempfile.TemporaryDirectory(dir=output.parent, prefix="rootfs-") as tmp:
        root = Path(tmp) / "root"
        debootstrap(root, packages, exclude=EXCLUDED, suite=suite, mirror=mirror)
        trim(root)
        spec = ImageSpec(
            ref=ref,
            files={},
            entrypoint=[],
            arch=arch,
            created=int(time.time()),
            tree=root,
            env=ENV,
        )
        try:
            digest = write_image_archive(spec, output)
        except BundleError as error:
            raise LabError(f"image {ref}: {error}") from error
        shutil.rmtree(root)
    stamp = {"recipe": wanted, "digest": digest, "sha256": sha256_file(output)}
    _stamp_path(output).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    seconds = round(time.monotonic() - started, 1)
    return BuildResult(built=True, seconds=seconds, bytes=output.stat().st_size, digest=digest)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubesmith.lab.debian_image",
        description="Build a workload image from Debian packages as an OCI archive (cached).",
    )
    parser.add_argument("ref", help="image name, e.g. kubesmith.local/verify/guestbook:bookworm")
    parser.add_argument("output", type=Path, help="the OCI archive to write")
    parser.add_argument("packages", nargs="+", help="Debian packages to install")
    parser.add_argument("--suite", default=SUITE)
    parser.add_argument("--mirror", default=MIRROR)
    args = parser.parse_args(argv)
    try:
        result = build(args.ref, args.output, args.packages, suite=args.suite, mirror=args.mirror)
    except LabError as error:
        print(f"debian_image: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

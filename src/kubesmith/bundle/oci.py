"""Write a single-layer OCI image archive without a registry or a container engine.

The layer holds chosen files (a static binary), or a whole root tree (a debootstrap) with its
owners, modes and links, or both.

The archive is an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/...) plus the
manifest.json that `docker load` reads, so `ctr images import` and `docker load` both take it.
The image name travels in the io.containerd.image.name annotation. Every timestamp is the
source's release time, so the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubesmith.bundle.errors import BundleError

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class ImageSpec:
    """What goes into the image: a root tree and/or files (path in image -> host file), and
    the config (entrypoint, user, environment). Files and empty_dirs are laid over the tree."""

    ref: str
    files: dict[str, Path]
    entrypoint: list[str]
    arch: str
    created: int
    user: str = ""
    empty_dirs: dict[str, int] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    tree: Path | None = None
    env: tuple[str, ...] = ()


def _tar_info(name: str, size: int, mode: int, mtime: int, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.type = kind
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _tree_paths(directory: Path) -> Iterator[Path]:
    """Every path under directory, sorted, each directory before its contents."""
    for entry in sorted(directory.iterdir()):
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from _tree_paths(entry)


def _add_tree(tar: tarfile.TarFile, root: Path, mtime: int) -> None:
    """Lay a root tree into the layer as it is: owners, modes, symlinks and hard links."""
    if not root.is_dir():
        raise BundleError(f"image tree {root} is not a directory")
    for path in _tree_paths(root):
        # gettarinfo turns a second name of an inode into a hard link to the first.
        info = tar.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
        if info is None or not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
            raise BundleError(
                f"{path}: only files, directories and links can go into an image layer "
                "(a container gets its own /dev); remove it from the tree"
            )
        info.mtime = mtime
        info.uname = info.gname = ""
        if info.isreg():
            with path.open("rb") as content:
                tar.addfile(info, content)
        else:
            tar.addfile(info)


def _layer(spec: ImageSpec) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if spec.tree is not None:
            _add_tree(tar, spec.tree, spec.created)
        for path, mode in sorted(spec.empty_dirs.items()):
            tar.addfile(_tar_info(path.lstrip("/"), 0, mode, spec.created, tarfile.DIRTYPE))
        for path, source in sorted(spec.files.items()):
            data = source.read_bytes()
            info = _tar_info(path.lstrip("/"), len(data), 0o755, spec.created, tarfile.REGTYPE)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _blob(content: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(content).hexdigest(), content


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def write_image_archive(spec: ImageSpec, output: Path) -> str:
    """Write the archive atomically; return the manifest digest."""
    layer_digest, layer = _blob(_layer(spec))
    created = _iso(spec.created)
    config: dict[str, Any] = {
        "architecture": spec.arch,
        "os": "linux",
        "created": created,
        "config": {"Entrypoint": spec.entrypoint},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": "kubesmith-bundle"}],
    }
    if spec.user:
        config["config"]["User"] = spec.user
    if spec.env:
        config["config"]["Env"] = list(spec.env)
    if spec.exposed_ports:
        config["config"]["ExposedPorts"] = {port: {} for port in spec.exposed_ports}
    config_digest, config_bytes = _blob(_json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": len(layer)}],
    }
    manifest_digest, manifest_bytes = _blob(_json(manifest))
    tag = spec.ref.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": spec.arch, "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": spec.ref,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    docker_manifest = [
        {
            "Config": _blob_path(config_digest),
            "RepoTags": [spec.ref],
            "Layers": [_blob_path(layer_digest)],
        }
    ]
    members = [
        ("oci-layout", _json({"imageLayoutVersion": "1.0.0"})),
        ("index.json", _json(index)),
        ("manifest.json", _json(docker_manifest)),
        (_blob_path(config_digest), config_bytes),
        (_blob_path(manifest_digest), manifest_bytes),
        (_blob_path(layer_digest), layer),
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            tar.addfile(_tar_info(directory, 0, 0o755, spec.created, tarfile.DIRTYPE))
        for name, content in members:
            info = _tar_info(name, len(content), 0o644, spec.created, tarfile.REGTYPE)
            tar.addfile(info, io.BytesIO(content))
    partial.replace(output)
    return manifest_digest


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

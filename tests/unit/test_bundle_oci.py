"""Image archives are valid OCI layouts that ctr and docker can import."""

import hashlib
import io
import json
import os
import tarfile

import pytest

from kubesmith.bundle import oci
from kubesmith.bundle.errors import BundleError


def _members(path):
    with tarfile.open(path) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar}


def _spec(tmp_path, created=1_700_000_000):
    binary = tmp_path / "pause"
    binary.write_bytes(b"\x7fELF not really, but bytes")
    return oci.ImageSpec(
        ref="registry.k8s.io/pause:3.10",
        files={"/pause": binary},
        entrypoint=["/pause"],
        arch="amd64",
        created=created,
        user="65535:65535",
        empty_dirs={"/tmp": 0o1777},
    )


def test_archive_is_an_oci_layout_with_the_image_name(tmp_path):
    archive = tmp_path / "pause.oci.tar"
    digest = oci.write_image_archive(_spec(tmp_path), archive)
    members = _members(archive)
    assert json.loads(members["oci-layout"][1]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(members["index.json"][1])
    (entry,) = index["manifests"]
    assert entry["digest"] == digest
    assert entry["annotations"]["io.containerd.image.name"] == "registry.k8s.io/pause:3.10"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "3.10"
    # every blob is stored under its own digest
    for name, (_, content) in members.items():
        if name.startswith("blobs/sha256/") and content:
            assert name.endswith(hashlib.sha256(content).hexdigest())
    manifest = json.loads(members[f"blobs/sha256/{digest.split(':')[1]}"][1])
    config = json.loads(members[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"][1])
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["config"]["User"] == "65535:65535"
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    docker = json.loads(members["manifest.json"][1])
    assert docker[0]["RepoTags"] == ["registry.k8s.io/pause:3.10"]


def test_layer_holds_the_files_with_modes(tmp_path):
    archive = tmp_path / "pause.oci.tar"
    digest = oci.write_image_archive(_spec(tmp_path), archive)
    members = _members(archive)
    manifest = json.loads(members[f"blobs/sha256/{digest.split(':')[1]}"][1])
    layer = members[f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"][1]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        pause = tar.getmember("pause")
        assert pause.mode == 0o755
        assert pause.uid == 0
        assert tar.extractfile(pause).read() == b"\x7fELF not really, but bytes"
        assert tar.getmember("tmp").mode == 0o1777


def test_same_inputs_give_same_bytes(tmp_path):
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    oci.write_image_archive(_spec(tmp_path), first)
    oci.write_image_archive(_spec(tmp_path), second)
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def _layer_of(archive):
    members = _members(archive)
    index = json.loads(members["index.json"][1])
    manifest_blob = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(members[f"blobs/sha256/{manifest_blob}"][1])
    config = json.loads(members[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"][1])
    layer = members[f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"][1]
    return config, tarfile.open(fileobj=io.BytesIO(layer))


def _tree(tmp_path):
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    server = root / "usr/bin/redis-server"
    server.write_bytes(b"redis")
    server.chmod(0o4755)
    os.link(server, root / "usr/bin/redis-check-rdb")
    (root / "bin").symlink_to("usr/bin")
    (root / "var/lib/redis").mkdir(parents=True)
    (root / "var/lib/redis").chmod(0o750)
    return root


def test_a_root_tree_goes_in_with_links_and_modes(tmp_path):
    archive = tmp_path / "tree.oci.tar"
    spec = oci.ImageSpec(
        ref="kubesmith.local/verify/guestbook:bookworm",
        files={},
        entrypoint=[],
        arch="amd64",
        created=1_700_000_000,
        tree=_tree(tmp_path),
        env=("PATH=/usr/bin:/bin",),
    )
    oci.write_image_archive(spec, archive)
    config, layer = _layer_of(archive)
    assert config["config"]["Env"] == ["PATH=/usr/bin:/bin"]
    with layer:
        names = layer.getnames()
        assert names == sorted(names)
        assert layer.getmember("bin").issym()
        assert layer.getmember("bin").linkname == "usr/bin"
        assert layer.getmember("var/lib/redis").mode == 0o750
        # the first name of an inode (in sorted order) holds the bytes, the second links to it
        check = layer.getmember("usr/bin/redis-check-rdb")
        assert check.isreg()
        assert check.mode == 0o4755
        assert check.mtime == 1_700_000_000
        assert layer.extractfile(check).read() == b"redis"
        server = layer.getmember("usr/bin/redis-server")
        assert server.islnk()
        assert server.linkname == "usr/bin/redis-check-rdb"


def test_a_tree_with_a_device_or_fifo_is_refused(tmp_path):
    root = _tree(tmp_path)
    (root / "dev").mkdir()
    os.mkfifo(root / "dev/initctl")
    spec = oci.ImageSpec(ref="x/y:1", files={}, entrypoint=[], arch="amd64", created=0, tree=root)
    with pytest.raises(BundleError, match="dev/initctl: only files, directories and links"):
        oci.write_image_archive(spec, tmp_path / "out.tar")
    assert not (tmp_path / "out.tar").exists()


def test_a_tree_that_is_not_a_directory_is_refused(tmp_path):
    spec = oci.ImageSpec(
        ref="x/y:1", files={}, entrypoint=[], arch="amd64", created=0, tree=tmp_path / "missing"
    )
    with pytest.raises(BundleError, match="missing is not a directory"):
        oci.write_image_archive(spec, tmp_path / "out.tar")

"""Image archives are valid OCI layouts that ctr and docker can import."""

import hashlib
import io
import json
import tarfile

from kubesmith.bundle import oci


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

"""Mirror index, verification and the offline bundle archive."""

import json
import tarfile
from pathlib import Path

import pytest

from kubesmith.bundle import cli, layout, mirror
from kubesmith.bundle.errors import BundleError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def versions():
    return layout.load_versions(ROOT / layout.DEFAULTS_FILE)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "mirror"
    (root / "dl.k8s.io/release/v1/bin").mkdir(parents=True)
    (root / "dl.k8s.io/release/v1/bin/kubectl").write_bytes(b"kubectl bytes")
    (root / "images/pause").mkdir(parents=True)
    (root / "images/pause/p.oci.tar").write_bytes(b"image bytes")
    (root / ".extracted/etcd").mkdir(parents=True)
    (root / ".extracted/etcd/etcd").write_bytes(b"unpacked, not part of the tree")
    return root


def test_index_lists_every_file_and_verify_finds_corruption(tree, versions):
    mirror.write_index(tree, versions, {"pause": "ours"})
    sums = (tree / layout.MIRROR_SUMS).read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == [
        "dl.k8s.io/release/v1/bin/kubectl",
        "images/pause/p.oci.tar",
    ]
    manifest = json.loads((tree / layout.MIRROR_MANIFEST).read_text())
    assert manifest["versions"]["kubernetes"] == versions.kubernetes
    assert manifest["files"]["images/pause/p.oci.tar"]["size"] == len(b"image bytes")
    assert mirror.verify_tree(tree) == []
    (tree / "images/pause/p.oci.tar").write_bytes(b"tampered")
    assert mirror.verify_tree(tree) == ["images/pause/p.oci.tar"]


def test_pack_holds_the_tree_and_its_index(tree, versions, tmp_path):
    output = tmp_path / "out" / "bundle.tar"
    assert mirror.pack(tree, output, versions, {}) == 2
    with tarfile.open(output) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert names[:2] == [layout.MIRROR_SUMS, layout.MIRROR_MANIFEST]
    assert mirror.verify_tree(tmp_path / "unpacked") == []
    assert not list(output.parent.glob("*.partial"))


def test_pack_of_a_missing_directory_is_named(tmp_path, versions):
    with pytest.raises(BundleError, match="is not a directory; pass --source DIR"):
        mirror.pack(tmp_path / "nope", tmp_path / "b.tar", versions, {})


def test_verify_without_sums_is_named(tmp_path):
    with pytest.raises(BundleError, match="SHA256SUMS is missing"):
        mirror.verify_tree(tmp_path)


def test_serve_refuses_host_names(tree):
    with pytest.raises(BundleError, match="'localhost' is not an IP address"):
        cli.make_server(tree, "localhost", 0)


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    code = cli.main(["--mirror", str(tmp_path / "absent"), "serve", "--port", "0"])
    assert code == 2
    assert "run `kubesmith-bundle build` first" in capsys.readouterr().err

"""Workload images from Debian packages: trimmed, packed, built once per recipe."""

import json
import os
import subprocess
import tarfile

import pytest

from kubesmith.lab import debian_image
from kubesmith.lab.errors import LabError

REF = "kubesmith.local/verify/guestbook:bookworm"
PACKAGES = ["redis-server", "python3-minimal"]


def _debian_tree(root):
    """What debootstrap leaves, in miniature."""
    for directory in ("usr/bin", "usr/share/doc/redis-server", "usr/share/man/man1", "dev/pts"):
        (root / directory).mkdir(parents=True)
    (root / "usr/bin/redis-server").write_bytes(b"redis" * 100)
    (root / "usr/share/doc/redis-server/copyright").write_text("BSD-3-Clause\n")
    (root / "usr/share/doc/redis-server/changelog.Debian.gz").write_bytes(b"x" * 1000)
    (root / "usr/share/doc/python3").symlink_to("python3-minimal")
    (root / "usr/share/man/man1/redis-server.1.gz").write_bytes(b"x" * 500)
    (root / "var/lib/apt/lists").mkdir(parents=True)
    (root / "var/lib/apt/lists/deb.debian.org_bookworm_main_Packages").write_bytes(b"x" * 2000)
    (root / "var/log").mkdir()
    (root / "var/log/bootstrap.log").write_text("log\n")
    (root / "dev/null").write_text("")


def test_trim_keeps_directories_and_licences(tmp_path):
    _debian_tree(tmp_path)
    freed = debian_image.trim(tmp_path)
    assert freed == 1000 + 500 + 2000 + 4 + len("python3-minimal")
    assert (tmp_path / "usr/share/doc/redis-server/copyright").read_text() == "BSD-3-Clause\n"
    assert not (tmp_path / "usr/share/doc/redis-server/changelog.Debian.gz").exists()
    assert not (tmp_path / "usr/share/doc/python3").is_symlink()
    assert (tmp_path / "usr/share/man/man1").is_dir()
    assert (tmp_path / "dev/pts").is_dir()
    assert not (tmp_path / "dev/null").exists()
    assert (tmp_path / "usr/bin/redis-server").stat().st_size == 500


def test_trim_of_a_tree_without_those_directories_frees_nothing(tmp_path):
    assert debian_image.trim(tmp_path) == 0


@pytest.fixture
def fake_debootstrap(monkeypatch):
    """debootstrap that makes a small tree without the network; records its calls."""
    calls = []

    def debootstrap(root, packages, *, exclude, suite, mirror):
        calls.append((list(packages), list(exclude), suite, mirror))
        _debian_tree(root)

    def run(argv, *, check=True):
        assert argv == ["dpkg", "--print-architecture"]
        return subprocess.CompletedProcess(argv, 0, "amd64\n", "")

    monkeypatch.setattr(debian_image, "debootstrap", debootstrap)
    monkeypatch.setattr(debian_image, "run", run)
    return calls


def test_build_packs_the_trimmed_tree_then_reuses_it(tmp_path, fake_debootstrap):
    output = tmp_path / "images/guestbook.oci.tar"
    first = debian_image.build(REF, output, PACKAGES)
    assert first.built
    assert first.bytes == output.stat().st_size
    assert fake_debootstrap == [(PACKAGES, ["apt"], "bookworm", "http://deb.debian.org/debian")]
    with tarfile.open(output) as archive:
        index = json.loads(archive.extractfile("index.json").read())
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == REF
    assert index["manifests"][0]["digest"] == first.digest
    # the work tree is gone; only the archive and its stamp remain
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "guestbook.oci.tar",
        "guestbook.oci.tar.stamp.json",
    ]

    second = debian_image.build(REF, output, list(reversed(PACKAGES)))
    assert not second.built
    assert second.digest == first.digest
    assert len(fake_debootstrap) == 1


def test_a_changed_recipe_or_archive_is_rebuilt(tmp_path, fake_debootstrap):
    output = tmp_path / "guestbook.oci.tar"
    debian_image.build(REF, output, PACKAGES)
    assert debian_image.build(REF, output, [*PACKAGES, "redis-tools"]).built
    with output.open("ab") as archive:
        archive.write(b"\0")
    assert debian_image.build(REF, output, [*PACKAGES, "redis-tools"]).built
    debian_image._stamp_path(output).write_text("{not json")
    assert debian_image.build(REF, output, [*PACKAGES, "redis-tools"]).built
    assert len(fake_debootstrap) == 4


def test_build_without_packages_is_refused(tmp_path):
    with pytest.raises(LabError, match="name at least one Debian package"):
        debian_image.build(REF, tmp_path / "x.tar", [])


def test_a_tree_the_layer_cannot_hold_is_a_lab_error(tmp_path, monkeypatch, fake_debootstrap):
    def debootstrap_with_fifo(root, packages, *, exclude, suite, mirror):
        _debian_tree(root)
        os.mkfifo(root / "run-initctl")

    monkeypatch.setattr(debian_image, "debootstrap", debootstrap_with_fifo)
    with pytest.raises(LabError, match="run-initctl: only files, directories and links"):
        debian_image.build(REF, tmp_path / "guestbook.oci.tar", PACKAGES)
    assert list(tmp_path.iterdir()) == []


def test_main_prints_the_result_and_reports_failure(tmp_path, capsys, monkeypatch):
    def failing_debootstrap(root, packages, *, exclude, suite, mirror):
        raise LabError("debootstrap failed (exit 1):\nE: Couldn't find these debs: no-such")

    monkeypatch.setattr(debian_image, "debootstrap", failing_debootstrap)
    monkeypatch.setattr(
        debian_image, "run", lambda argv, check=True: subprocess.CompletedProcess(argv, 0, "amd64")
    )
    output = tmp_path / "x.tar"
    assert debian_image.main([REF, str(output), "no-such", "--suite", "trixie"]) == 1
    assert "Couldn't find these debs: no-such" in capsys.readouterr().err
    assert not output.exists()


def test_main_prints_json(tmp_path, capsys, fake_debootstrap):
    output = tmp_path / "x.tar"
    assert debian_image.main([REF, str(output), *PACKAGES]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["built"] is True
    assert result["bytes"] == output.stat().st_size
    assert fake_debootstrap[0][2] == "bookworm"

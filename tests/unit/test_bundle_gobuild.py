"""Wrapper modules are laid out from the upstream go.mod; patched copies fail loudly."""

import pytest

from kubesmith.bundle import gobuild, gomod
from kubesmith.bundle.errors import BundleError

UPSTREAM = """module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/klog/v2 v2.130.1
)

replace k8s.io/api => ./staging/src/k8s.io/api
"""


def _info(tmp_path, text=UPSTREAM):
    return gobuild.ModuleInfo(gomod.parse_gomod(text), tmp_path, "2026-10-27T12:01:04Z", "h1:x")


def _spec(**extra):
    return gobuild.ModuleBuild(
        name="kubernetes",
        upstream="k8s.io/kubernetes",
        version="v1.37.2",
        targets=(gobuild.Target(("k8s.io/kubernetes/cmd/kubelet",)),),
        **extra,
    )


def test_wrapper_module_requires_upstream_and_replaces_staging(tmp_path):
    work = tmp_path / "work"
    assert gobuild.write_module(_spec(staging_replaces=True), _info(tmp_path), work)
    text = (work / "go.mod").read_text()
    assert "\tk8s.io/kubernetes v1.37.2\n" in text
    assert "\tk8s.io/api => k8s.io/api v0.37.2\n" in text
    assert '_ "k8s.io/kubernetes/cmd/kubelet"' in (work / "tools.go").read_text()


def test_unchanged_wrapper_needs_no_tidy_once_go_sum_exists(tmp_path):
    work = tmp_path / "work"
    gobuild.write_module(_spec(staging_replaces=True), _info(tmp_path), work)
    assert gobuild.write_module(_spec(staging_replaces=True), _info(tmp_path), work)
    (work / "go.sum").write_text("")
    assert not gobuild.write_module(_spec(staging_replaces=True), _info(tmp_path), work)


def test_patched_copy_names_imports_it_cannot_find(tmp_path):
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    (upstream / "main.go").write_text('package main\n\nimport (\n\t_ "a/b/kept"\n)\n')
    spec = _spec(drop_imports=("a/b/gone",))
    with pytest.raises(BundleError, match=r"main\.go does not import all of a/b/gone"):
        gobuild._patched_copy(spec, _info(upstream), tmp_path / "copy")


def test_patched_copy_drops_only_the_named_import(tmp_path):
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    (upstream / "main.go").write_text('package main\n\nimport (\n\t_ "a/kept"\n\t_ "a/gone"\n)\n')
    gobuild._patched_copy(_spec(drop_imports=("a/gone",)), _info(upstream), tmp_path / "copy")
    text = (tmp_path / "copy" / "main.go").read_text()
    assert '"a/kept"' in text
    assert '"a/gone"' not in text


def test_go_runs_with_caches_outside_the_repository(tmp_path):
    env = gobuild.BuildEnv(cache_dir=tmp_path).environ(cgo=True)
    assert env["GOMODCACHE"] == str(tmp_path / "go" / "mod")
    assert env["GOCACHE"] == str(tmp_path / "go" / "build")
    assert env["CGO_ENABLED"] == "1"
    assert env["GOTOOLCHAIN"] == "local"

"""The wrapper go.mod for k8s.io/kubernetes is derived from the upstream go.mod."""

import pytest

from kubesmith.bundle import gomod
from kubesmith.bundle.errors import BundleError

UPSTREAM = """// generated
module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0 // indirect
\tk8s.io/klog/v2 v2.130.1
\tk8s.io/not-staged v0.0.0
)

require k8s.io/kubectl v0.0.0

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl
\tk8s.io/sample-apiserver => ./staging/src/k8s.io/sample-apiserver
)

replace github.com/old/thing => github.com/new/thing v1.2.3
"""


def test_parse_reads_directives_blocks_and_comments():
    parsed = gomod.parse_gomod(UPSTREAM)
    assert parsed.module == "k8s.io/kubernetes"
    assert parsed.go_version == "1.26.0"
    assert parsed.godebug == ("default=go1.26",)
    assert parsed.requires["k8s.io/client-go"] == "v0.0.0"
    assert parsed.requires["k8s.io/kubectl"] == "v0.0.0"
    assert parsed.local_replaces["k8s.io/api"] == "./staging/src/k8s.io/api"
    assert parsed.module_replaces == {"github.com/old/thing": "github.com/new/thing v1.2.3"}


def test_staging_replaces_are_required_at_v0_and_replaced_locally():
    parsed = gomod.parse_gomod(UPSTREAM)
    replaces = gomod.staging_replaces(parsed, "v1.37.2")
    # not-staged is v0.0.0 but not replaced; sample-apiserver is replaced but not required.
    assert replaces == {
        "k8s.io/api": "v0.37.2",
        "k8s.io/client-go": "v0.37.2",
        "k8s.io/kubectl": "v0.37.2",
    }


def test_wrapper_gomod_pins_and_replaces():
    parsed = gomod.parse_gomod(UPSTREAM)
    text = gomod.render_wrapper_gomod(
        "kubesmith.local/build/kubernetes",
        parsed,
        {"k8s.io/kubernetes": "v1.37.2"},
        {**gomod.staging_replaces(parsed, "v1.37.2"), **parsed.module_replaces},
    )
    reparsed = gomod.parse_gomod(text)
    assert reparsed.go_version == "1.26.0"
    assert reparsed.godebug == ("default=go1.26",)
    assert reparsed.requires == {"k8s.io/kubernetes": "v1.37.2"}
    assert "\tk8s.io/api => k8s.io/api v0.37.2\n" in text
    assert "\tgithub.com/old/thing => github.com/new/thing v1.2.3\n" in text


@pytest.mark.parametrize("version", ["1.37.2", "v2.0.0", "v1.37", "v1.37.2-rc.0", ""])
def test_staging_version_rejects_non_releases(version):
    with pytest.raises(BundleError, match="kubesmith_kubernetes_version"):
        gomod.staging_version(version)


def test_no_staging_modules_is_an_error():
    parsed = gomod.parse_gomod("module example.com/x\n\ngo 1.22\n\nrequire a.b/c v1.0.0\n")
    with pytest.raises(BundleError, match=r"requires no module at v0\.0\.0"):
        gomod.staging_replaces(parsed, "v1.37.2")


@pytest.mark.parametrize(
    ("text", "message"),
    [("go 1.22\n", "no module directive"), ("module a.b/c\n", "has no go directive")],
)
def test_incomplete_gomod_is_named(text, message):
    with pytest.raises(BundleError, match=message):
        gomod.parse_gomod(text)


def test_imports_file_is_excluded_from_builds():
    text = gomod.render_imports_go(["k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/a"])
    assert text.startswith("//go:build tools\n")
    assert text.index('"k8s.io/kubernetes/cmd/a"') < text.index('"k8s.io/kubernetes/cmd/kubelet"')

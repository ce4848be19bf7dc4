"""binary_version_checks and binary_versions_report: which binaries to ask, and the verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.kubesmith.cluster.plugins.filter.binaries import FilterModule

FILTERS = FilterModule().filters()
CATALOG: list[dict[str, Any]] = [
    {"name": "kube-apiserver", "component": "kubernetes", "groups": ["kube_control_plane"]},
    {"name": "kubectl", "component": "kubernetes", "groups": ["kube_control_plane"]},
    {"name": "kubelet", "component": "kubernetes", "groups": ["k8s_cluster"]},
    {"name": "etcdctl", "component": "etcd", "groups": ["etcd"]},
    {"name": "flannel", "component": "flannel_cni_plugin", "groups": ["k8s_cluster"], "cni": True},
    {"name": "bridge", "component": "cni_plugins", "groups": ["k8s_cluster"], "cni": True},
]
PINNED = {
    "kubernetes": "v1.37.2",
    "etcd": "v3.7.3",
    "flannel_cni_plugin": "v1.8.0-flannel1",
    "cni_plugins": "v1.9.1",
}
BIN = "/opt/kubesmith/bin"


def checks(components: list[str], groups: list[str]) -> list[dict[str, str]]:
    result: list[dict[str, str]] = FILTERS["binary_version_checks"](
        CATALOG, components, groups, "/usr/local/bin", "/opt/cni/bin"
    )
    return result


def test_a_worker_asks_only_its_own_binaries() -> None:
    got = checks(["kubernetes", "cni_plugins", "etcd"], ["kube_node", "k8s_cluster"])
    assert [c["name"] for c in got] == ["kubelet", "bridge"]
    assert got[0]["command"] == "/usr/local/bin/kubelet --version"
    # CNI plugins print "CNI bridge plugin v1.9.1" when run bare.
    assert got[1]["command"] == "/opt/cni/bin/bridge"


def test_each_binary_is_asked_the_way_it_answers() -> None:
    got = checks(["kubernetes", "etcd"], ["kube_control_plane", "etcd"])
    commands = {c["name"]: c["command"] for c in got}
    assert commands == {
        "kube-apiserver": "/usr/local/bin/kube-apiserver --version",
        "kubectl": "/usr/local/bin/kubectl version --client",
        "etcdctl": "/usr/local/bin/etcdctl version",
    }


def test_components_not_installed_are_not_asked() -> None:
    assert checks(["etcd"], ["k8s_cluster"]) == []


def test_a_catalog_entry_without_groups_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="missing groups"):
        FILTERS["binary_version_checks"](
            [{"name": "x", "component": "kubernetes"}], ["kubernetes"], [], "/a", "/b"
        )


def report(lines: list[str], says: dict[str, str] | None = None) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = FILTERS["binary_versions_report"](
        lines, CATALOG, PINNED, BIN, says
    )
    return result


def test_binaries_in_their_pinned_directory_saying_the_pin_pass() -> None:
    rows = report(
        [
            f"kubelet\t{BIN}/kubernetes/v1.37.2/kubelet\tKubernetes v1.37.2",
            f"etcdctl\t{BIN}/etcd/v3.7.3/etcdctl\tetcdctl version: 3.7.3",
            f"bridge\t{BIN}/cni_plugins/v1.9.1/bridge\tCNI bridge plugin v1.9.1",
            "",
        ]
    )
    assert [r["ok"] for r in rows] == [True, True, True]
    assert rows[1] == {
        "name": "etcdctl",
        "component": "etcd",
        "pinned": "v3.7.3",
        "link": f"{BIN}/etcd/v3.7.3/etcdctl",
        "says": "etcdctl version: 3.7.3",
        "ok": True,
    }


def test_a_binary_saying_another_version_fails() -> None:
    (row,) = report([f"kubelet\t{BIN}/kubernetes/v1.37.2/kubelet\tKubernetes v1.36.4"])
    assert row["ok"] is False


def test_a_link_into_another_version_fails() -> None:
    (row,) = report([f"kubelet\t{BIN}/kubernetes/v1.36.4/kubelet\tKubernetes v1.37.2"])
    assert row["ok"] is False


def test_a_missing_binary_fails() -> None:
    (row,) = report(["kubelet\tmissing\tbash: /usr/local/bin/kubelet: No such file"])
    assert row["ok"] is False


def test_a_recorded_build_version_is_accepted_only_for_that_binary() -> None:
    line = f"flannel\t{BIN}/flannel_cni_plugin/v1.8.0-flannel1/flannel\tCNI flannel plugin v0.9.1"
    assert report([line])[0]["ok"] is False
    assert report([line], {"flannel": "v0.9.1"})[0]["ok"] is True
    assert report([line], {"bridge": "v0.9.1"})[0]["ok"] is False


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("kubelet Kubernetes v1.37.2", "expected NAME<TAB>LINK<TAB>OUTPUT"),
        ("kube-foo\t/x\tv1", "not in the catalog"),
    ],
)
def test_answers_the_role_cannot_produce_are_refused(line: str, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        report([line])


def test_a_component_without_a_pin_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="no pinned version for component 'etcd'"):
        FILTERS["binary_versions_report"](
            [f"etcdctl\t{BIN}/etcd/v3.7.3/etcdctl\t3.7.3"], CATALOG, {}, BIN
        )


# --- install plan and what differs -------------------------------------------------------

SOURCES = FILTERS["binary_sources"](
    {"etcd": {"version": "v3.7.3", "archive": "/c/etcd.tgz"}},
    "/c/.extracted",
    "v1.37.2",
    "/c/k8s",
)
PLAN_CATALOG = [
    {"name": "kubelet", "component": "kubernetes", "groups": ["k8s_cluster"]},
    {"name": "etcd", "component": "etcd", "groups": ["etcd"], "file": "etcd-v3.7.3/etcd"},
    {"name": "bridge", "component": "cni_plugins", "groups": ["k8s_cluster"], "cni": True},
]
SUM_A, SUM_B = "a" * 64, "b" * 64
DIRS = {"install": BIN, "link": "/usr/local/bin", "cni": "/opt/cni/bin"}


def plan(groups: list[str]) -> list[dict[str, str]]:
    result: list[dict[str, str]] = FILTERS["binary_install_plan"](
        PLAN_CATALOG, ["kubernetes", "etcd"], groups, SOURCES, DIRS
    )
    return result


def test_sources_name_each_components_files() -> None:
    assert SOURCES == {
        "kubernetes": {"version": "v1.37.2", "dir": "/c/k8s"},
        "etcd": {"version": "v3.7.3", "dir": "/c/.extracted/etcd/v3.7.3"},
    }


def test_the_plan_puts_each_binary_in_its_versioned_directory() -> None:
    assert plan(["etcd", "k8s_cluster"]) == [
        {
            "name": "kubelet",
            "src": "/c/k8s/kubelet",
            "dir": f"{BIN}/kubernetes/v1.37.2",
            "dest": f"{BIN}/kubernetes/v1.37.2/kubelet",
            "link": "/usr/local/bin/kubelet",
        },
        {
            "name": "etcd",
            "src": "/c/.extracted/etcd/v3.7.3/etcd-v3.7.3/etcd",
            "dir": f"{BIN}/etcd/v3.7.3",
            "dest": f"{BIN}/etcd/v3.7.3/etcd",
            "link": "/usr/local/bin/etcd",
        },
    ]
    assert plan(["lb"]) == []


def test_a_component_without_sources_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="sources has no"):
        FILTERS["binary_install_plan"](
            PLAN_CATALOG, ["cni_plugins"], ["k8s_cluster"], SOURCES, DIRS
        )


def test_dirs_without_the_cni_directory_are_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="dirs: missing cni"):
        FILTERS["binary_install_plan"](
            PLAN_CATALOG, ["kubernetes"], ["k8s_cluster"], SOURCES, {"install": BIN, "link": "/l"}
        )


def todo(installed: list[str], sums: list[str]) -> dict[str, list[Any]]:
    result: dict[str, list[Any]] = FILTERS["binary_install_todo"](
        plan(["etcd", "k8s_cluster"]), installed, sums
    )
    return result


SUMS = [f"{SUM_A}  /c/k8s/kubelet", f"{SUM_B}  /c/.extracted/etcd/v3.7.3/etcd-v3.7.3/etcd"]
KUBELET = f"{BIN}/kubernetes/v1.37.2/kubelet"
ETCD = f"{BIN}/etcd/v3.7.3/etcd"


def test_an_installed_host_needs_nothing() -> None:
    installed = [
        f"kubelet\t{SUM_A}\t755:root:root\t{KUBELET}",
        f"etcd\t{SUM_B}\t755:root:root\t{ETCD}",
    ]
    assert todo(installed, SUMS) == {"copy": [], "dirs": [], "link": [], "link_dirs": []}


def test_a_bare_host_gets_everything() -> None:
    got = todo(["kubelet\t\t\t", "etcd\t\t\t"], SUMS)
    assert [i["name"] for i in got["copy"]] == ["kubelet", "etcd"]
    assert got["dirs"] == [f"{BIN}/etcd/v3.7.3", f"{BIN}/kubernetes/v1.37.2"]
    assert [i["name"] for i in got["link"]] == ["kubelet", "etcd"]
    assert got["link_dirs"] == ["/usr/local/bin"]


def test_a_changed_file_a_wrong_mode_and_an_old_link_are_each_fixed() -> None:
    installed = [
        f"kubelet\t{SUM_B}\t755:root:root\t{KUBELET}",  # content differs
        f"etcd\t{SUM_B}\t777:root:root\t{BIN}/etcd/v3.6.0/etcd",  # mode, and the old version
    ]
    got = todo(installed, SUMS)
    assert [i["name"] for i in got["copy"]] == ["kubelet", "etcd"]
    assert [i["name"] for i in got["link"]] == ["etcd"]


@pytest.mark.parametrize(
    ("installed", "sums", "message"),
    [
        ([], ["nonsense"], "expected '<sha256>  <path>'"),
        (["kubelet\tonly-two"], SUMS, "expected NAME<TAB>SHA256<TAB>MODE<TAB>LINK"),
        ([], SUMS[:1], "no checksum for source"),
    ],
)
def test_answers_that_cannot_be_compared_are_refused(
    installed: list[str], sums: list[str], message: str
) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        todo(installed, sums)

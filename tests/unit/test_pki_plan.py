"""The certificate list derived from inventory facts, and the pki_set module around it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.testing import patch_module_args
from ansible_collections.kubesmith.cluster.plugins.filter.pki import FilterModule
from ansible_collections.kubesmith.cluster.plugins.modules import pki_set

FILTERS = FilterModule().filters()

LAB_FACTS: dict[str, Any] = {
    "cluster_domain": "cluster.local",
    "service_cidr": "172.30.128.0/20",
    "vip": "172.30.10.10",
    "extra_sans": ["api.lab.example", "192.0.2.1"],
    "etcd": [
        {"name": "cp1", "ip": "172.30.10.21"},
        {"name": "cp2", "ip": "172.30.10.22"},
        {"name": "cp3", "ip": "172.30.10.23"},
    ],
    "control_plane": [
        {"name": "cp1", "ip": "172.30.10.21"},
        {"name": "cp2", "ip": "172.30.10.22"},
        {"name": "cp3", "ip": "172.30.10.23"},
    ],
    "lb": [{"name": "lb1", "ip": "172.30.10.11"}, {"name": "lb2", "ip": "172.30.10.12"}],
}


def by_path(plan: list[dict]) -> dict[str, dict]:
    return {item["path"]: item for item in plan}


def test_plan_contains_the_layered_pki() -> None:
    plan = by_path(FILTERS["pki_plan"](LAB_FACTS))
    assert {p for p, item in plan.items() if item["kind"] == "ca"} == {
        "ca",
        "etcd/ca",
        "front-proxy-ca",
    }
    assert plan["sa"]["kind"] == "keypair"
    expected_ca = {
        "apiserver": "ca",
        "apiserver-kubelet-client": "ca",
        "apiserver-etcd-client": "etcd/ca",
        "front-proxy-client": "front-proxy-ca",
        "etcd/healthcheck-client": "etcd/ca",
        "etcd/flanneld-client": "etcd/ca",
        "users/admin": "ca",
        "users/controller-manager": "ca",
        "users/scheduler": "ca",
        "users/kube-proxy": "ca",
        "users/csr-approver": "ca",
        "etcd/members/cp1/server": "etcd/ca",
        "etcd/members/cp3/peer": "etcd/ca",
    }
    for path, ca in expected_ca.items():
        assert plan[path]["ca"] == ca, path
    assert len(plan) == 4 + 11 + 2 * 3
    assert plan["users/controller-manager"]["common_name"] == "system:kube-controller-manager"
    assert plan["users/admin"]["organizations"] == ["system:masters"]
    assert plan["users/kube-proxy"]["organizations"] == []


def test_apiserver_sans() -> None:
    sans = FILTERS["apiserver_sans"](LAB_FACTS)
    assert sans["dns"] == sorted(
        [
            "api.lab.example",
            "cp1",
            "cp2",
            "cp3",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "lb1",
            "lb2",
            "localhost",
        ]
    )
    assert set(sans["ip"]) == {
        "127.0.0.1",
        "172.30.128.1",
        "172.30.10.10",
        "172.30.10.11",
        "172.30.10.12",
        "172.30.10.21",
        "172.30.10.22",
        "172.30.10.23",
        "192.0.2.1",
    }


def test_etcd_member_sans() -> None:
    server = by_path(FILTERS["pki_plan"](LAB_FACTS))["etcd/members/cp2/server"]
    assert server["dns_names"] == ["cp2", "localhost"]
    assert server["ip_addresses"] == ["127.0.0.1", "172.30.10.22", "::1"]
    assert server["usages"] == ["client", "server"]


def test_local_lb_mode_without_vip_or_lb_hosts() -> None:
    facts = {**LAB_FACTS, "vip": "", "lb": [], "extra_sans": []}
    sans = FILTERS["apiserver_sans"](facts)
    assert "172.30.10.10" not in sans["ip"] and "lb1" not in sans["dns"]


def test_ipv6_service_cidr() -> None:
    facts = {**LAB_FACTS, "service_cidr": "fd00:10:96::/112"}
    assert "fd00:10:96::1" in FILTERS["apiserver_sans"](facts)["ip"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"service_cidr": "10.96.0.1/12"}, "service_cidr: '10.96.0.1/12' is not a valid network"),
        ({"control_plane": []}, "control_plane: empty"),
        ({"etcd": []}, "etcd: empty"),
        ({"vip": "vip.example"}, "vip: 'vip.example' is not an IP address"),
        ({"extra_sans": "a,b"}, "extra_sans: expected a list"),
        ({"extra_sans": [""]}, "extra_sans: entry '' is not"),
        ({"lb": [{"name": "lb1"}]}, "lb[0].ip: expected an IP address"),
        ({"etcd": [{"ip": "127.0.0.1"}]}, "etcd[0].name: expected a host name"),
        ({"etcd": "cp1"}, "etcd: expected a list"),
    ],
)
def test_plan_errors_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["pki_plan"]({**LAB_FACTS, **change})
    assert message in str(error.value)


def test_plan_of_non_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match="facts: expected a mapping"):
        FILTERS["pki_plan"](["cp1"])


def test_host_addresses() -> None:
    hostvars = {
        "cp1": {"ansible_host": "172.30.10.21"},
        "cp2": {"ansible_host": "cp2.example", "kubesmith_node_ip": "10.0.0.2"},
        "cp3": {},
        "cp4": {"ansible_host": "cp4.example"},
    }
    assert FILTERS["host_addresses"](["cp1", "cp2"], hostvars) == [
        {"name": "cp1", "ip": "172.30.10.21"},
        {"name": "cp2", "ip": "10.0.0.2"},
    ]
    with pytest.raises(AnsibleFilterError, match="cp3: neither kubesmith_node_ip nor ansible_host"):
        FILTERS["host_addresses"](["cp3"], hostvars)
    with pytest.raises(AnsibleFilterError, match=r"'cp4\.example' is not an IP address"):
        FILTERS["host_addresses"](["cp4"], hostvars)
    with pytest.raises(AnsibleFilterError, match="host 'cp9' is not in the inventory"):
        FILTERS["host_addresses"](["cp9"], hostvars)
    with pytest.raises(AnsibleFilterError, match="got the string 'cp1'"):
        FILTERS["host_addresses"]("cp1", hostvars)


def run_module(capsys: pytest.CaptureFixture[str], args: dict, check_mode: bool = False) -> dict:
    module_args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": True}
    with patch_module_args(module_args), pytest.raises(SystemExit):
        pki_set.main()
    return json.loads(capsys.readouterr().out)


def test_module_check_apply_check_apply(tmp_path: Path, capsys) -> None:
    args = {"dir": str(tmp_path / "pki"), "certificates": FILTERS["pki_plan"](LAB_FACTS)}
    first_check = run_module(capsys, args, check_mode=True)
    assert first_check["changed"] and len(first_check["changed_names"]) == 21
    assert not (tmp_path / "pki").exists()
    first_apply = run_module(capsys, args)
    assert first_apply["changed"] and len(first_apply["changed_names"]) == 21
    assert (tmp_path / "pki/etcd/members/cp1/peer.crt").is_file()
    assert not run_module(capsys, args, check_mode=True)["changed"]
    second_apply = run_module(capsys, args)
    assert not second_apply["changed"] and second_apply["diff"] == []


def test_module_diff_shows_sans_never_keys(tmp_path: Path, capsys) -> None:
    args = {"dir": str(tmp_path), "certificates": FILTERS["pki_plan"](LAB_FACTS)}
    run_module(capsys, args)
    moved = copy.deepcopy(LAB_FACTS)
    moved["control_plane"][0]["ip"] = "172.30.10.24"
    moved["etcd"][0]["ip"] = "172.30.10.24"
    result = run_module(capsys, {**args, "certificates": FILTERS["pki_plan"](moved)}, True)
    assert sorted(result["changed_names"]) == [
        "apiserver",
        "etcd-members-cp1-peer",
        "etcd-members-cp1-server",
    ]
    apiserver_diff = next(d for d in result["diff"] if d["before_header"] == "apiserver.crt")
    assert "  - IP:172.30.10.21" in apiserver_diff["before"]
    assert "  - IP:172.30.10.24" in apiserver_diff["after"]
    assert "not_after:" in apiserver_diff["after"]
    assert "PRIVATE KEY" not in json.dumps(result)


def test_module_defaults_and_errors(tmp_path: Path, capsys) -> None:
    certificates = [
        {"path": "ca", "kind": "ca", "common_name": "ca", "valid_days": 3650},
        {"path": "client", "ca": "ca", "common_name": "c", "usages": ["client"]},
    ]
    args = {"dir": str(tmp_path), "certificates": certificates, "key_type": "rsa"}
    result = run_module(capsys, args)
    assert "BEGIN PRIVATE KEY" in (tmp_path / "client.key").read_text()
    assert result["certificates"][1]["name"] == "client"
    bad = [*certificates, {"path": "x", "ca": "nope", "common_name": "x", "usages": ["server"]}]
    failed = run_module(capsys, {**args, "certificates": bad})
    assert failed["failed"]
    assert "certificates[x].ca: 'nope' is not a CA of this list" in failed["msg"]


KUBECONFIGS = [
    {
        "path": "kubeconfigs/admin.conf",
        "cluster_name": "lab",
        "server": "https://172.30.10.10:8443",
        "user": "kubernetes-admin",
        "cert": "users/admin",
    },
    {
        "path": "kubeconfigs/kube-proxy.conf",
        "cluster_name": "lab",
        "server": "https://172.30.10.10:8443",
        "user": "system:kube-proxy",
        "cert": "users/kube-proxy",
    },
]


def test_module_kubeconfigs_follow_their_certificates(tmp_path: Path, capsys) -> None:
    args = {
        "dir": str(tmp_path),
        "certificates": FILTERS["pki_plan"](LAB_FACTS),
        "kubeconfigs": KUBECONFIGS,
    }
    check = run_module(capsys, args, check_mode=True)
    assert [k["reasons"] for k in check["kubeconfigs"]] == [
        ["embeds reissued ['ca', 'users/admin']"],
        ["embeds reissued ['ca', 'users/kube-proxy']"],
    ]
    first = run_module(capsys, args)
    assert [k["changed"] for k in first["kubeconfigs"]] == [True, True]
    admin = tmp_path / "kubeconfigs/admin.conf"
    assert oct(admin.stat().st_mode & 0o777) == "0o600"
    assert "client-key-data" in admin.read_text()
    assert not run_module(capsys, args)["changed"]

    (tmp_path / "users/admin.crt").unlink()
    reissued = run_module(capsys, args)
    assert reissued["changed_names"] == ["users-admin", "kubeconfigs/admin.conf"]
    assert "client-key-data" not in json.dumps(reissued)

    admin.chmod(0o644)
    fixed = run_module(capsys, args)
    assert fixed["kubeconfigs"][0]["reasons"] == ["admin.conf mode is not 0600"]
    admin.write_text("edited by hand")
    assert run_module(capsys, args)["kubeconfigs"][0]["reasons"] == ["content differs"]


def test_module_kubeconfig_path_must_stay_inside(tmp_path: Path, capsys) -> None:
    bad = [{**KUBECONFIGS[0], "path": "../admin.conf"}]
    args = {
        "dir": str(tmp_path),
        "certificates": FILTERS["pki_plan"](LAB_FACTS),
        "kubeconfigs": bad,
    }
    failed = run_module(capsys, args)
    assert failed["failed"]
    assert (
        "kubeconfigs[0].path: '../admin.conf' must stay inside the PKI directory" in failed["msg"]
    )


def dests(groups: list[str], host: str = "cp1", flanneld: bool = True) -> dict[str, dict]:
    files = FILTERS["pki_host_files"](groups, host, flanneld)
    return {entry["dest"]: entry for entry in files}


def test_host_files_follow_kubeadm_layout() -> None:
    node = dests(["kube_node", "k8s_cluster"], "node1")
    assert sorted(node) == [
        "kube-proxy.conf",
        "pki/ca.crt",
        "pki/etcd/ca.crt",
        "pki/etcd/flanneld-client.crt",
        "pki/etcd/flanneld-client.key",
    ]
    assert sorted(dests(["kube_node"], "node1", flanneld=False)) == [
        "kube-proxy.conf",
        "pki/ca.crt",
    ]
    cp = dests(["etcd", "kube_control_plane", "k8s_cluster"])
    assert cp["pki/etcd/server.key"]["src"] == "etcd/members/cp1/server.key"
    assert cp["pki/etcd/peer.crt"]["src"] == "etcd/members/cp1/peer.crt"
    assert cp["pki/ca.key"] == {
        "src": "ca.key",
        "dest": "pki/ca.key",
        "mode": "0600",
        "secret": True,
    }
    assert cp["admin.conf"]["secret"] and cp["admin.conf"]["mode"] == "0600"
    assert cp["pki/apiserver.crt"]["mode"] == "0644" and not cp["pki/apiserver.crt"]["secret"]
    approver_key = cp["pki/csr-approver/client.key"]
    assert approver_key["src"] == "users/csr-approver.key"
    assert approver_key["secret"] and approver_key["mode"] == "0600"
    assert cp["pki/csr-approver/ca.crt"]["src"] == "ca.crt"
    sources = {entry["src"] for entry in cp.values()}
    assert "etcd/ca.key" not in sources and "front-proxy-ca.key" not in sources
    etcd_only = dests(["etcd"], "e1")
    assert "pki/ca.key" not in etcd_only and "pki/ca.crt" not in etcd_only
    assert dests(["lb"], "lb1") == {}


def test_host_files_errors() -> None:
    with pytest.raises(AnsibleFilterError, match="group_names: expected the host's list"):
        FILTERS["pki_host_files"]("etcd", "cp1")
    with pytest.raises(AnsibleFilterError, match="hostname: expected the inventory host name"):
        FILTERS["pki_host_files"](["etcd"], "")

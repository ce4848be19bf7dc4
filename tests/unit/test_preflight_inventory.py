"""Preflight layer 1: each bad inventory gives exactly its one-line message; good ones pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight import Report
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_inventory import (
    CLUSTER_SPEC,
    HOST_VARIABLES,
    InventoryData,
    RoleSpec,
    check_inventory,
    plan_cluster,
    play_roles,
    resolve_hosts,
)

from tests.unit.preflight_fixtures import (
    DEFAULTS,
    KNOWN,
    REPO,
    Inventory,
    is_template,
    repo_role_spec,
)


@dataclass
class Case:
    name: str
    mutate: Callable[[Inventory], object]
    # Every fragment must appear in the one error line: host/variable=value, why, fix.
    fragments: tuple[str, ...]


def _remove(group: str, host: str) -> Callable[[Inventory], object]:
    return lambda inv: inv.groups[group].remove(host)


def _empty(group: str) -> Callable[[Inventory], object]:
    return lambda inv: inv.groups[group].clear()


def _all(name: str, value: object) -> Callable[[Inventory], object]:
    return lambda inv: inv.set_all(name, value)


def _host(host: str, name: str, value: object) -> Callable[[Inventory], object]:
    return lambda inv: inv.set_host(host, name, value)


def _group(group: str, name: str, value: object) -> Callable[[Inventory], object]:
    return lambda inv: [inv.set_host(host, name, value) for host in inv.groups[group]]


def _role_option(role: str, name: str, value: object) -> Callable[[Inventory], object]:
    """The role's real argument spec, and the option set on every host."""

    def add(inv: Inventory) -> None:
        inv.role_specs.append(repo_role_spec(role))
        inv.set_all(name, value)

    return add


def _steps(*steps: Callable[[Inventory], object]) -> Callable[[Inventory], object]:
    return lambda inv: [step(inv) for step in steps]


def _rename(old: str, new: str) -> Callable[[Inventory], object]:
    def rename(inv: Inventory) -> None:
        inv.hostvars[new] = inv.hostvars.pop(old)
        for members in inv.groups.values():
            if old in members:
                members[members.index(old)] = new

    return rename


def _etcd(*hosts: str) -> Callable[[Inventory], object]:
    return lambda inv: inv.groups.__setitem__("etcd", list(hosts))


def _role_spec(required: bool) -> Callable[[Inventory], object]:
    def add(inv: Inventory) -> None:
        options: dict[str, dict[str, object]] = {
            "etcd_quota_bytes": {"type": "int"},
            "etcd_election_ms": {"type": "int", "required": required},
        }
        inv.role_specs.append(RoleSpec("etcd", options, frozenset(), ["cp1", "cp2", "cp3"]))
        if not required:
            inv.set_host("cp2", "etcd_quota_bytes", "eight gigabytes")

    return add


CASES = [
    Case(
        "etcd group empty",
        _empty("etcd"),
        ("groups['etcd']=[]", "is empty", "fix: add hosts to group etcd"),
    ),
    Case(
        "control plane empty",
        _steps(
            _empty("kube_control_plane"),
            lambda inv: inv.groups.__setitem__("k8s_cluster", ["node1", "node2"]),
        ),
        ("groups['kube_control_plane']=[]", "is empty", "fix: add hosts"),
    ),
    Case(
        "control plane host outside k8s_cluster",
        _remove("k8s_cluster", "cp3"),
        (
            "groups['k8s_cluster']=",
            "lacks kube_control_plane host(s) ['cp3']",
            "fix: make kube_control_plane",
        ),
    ),
    Case(
        "two etcd members",
        _etcd("cp1", "cp2"),
        ("groups['etcd']=['cp1', 'cp2']", "even number of members (2)", "fix: use an odd number"),
    ),
    Case(
        "four etcd members",
        _etcd("cp1", "cp2", "cp3", "node1"),
        (
            "groups['etcd']=['cp1', 'cp2', 'cp3', 'node1']",
            "even number of members (4)",
            "fix: use an odd",
        ),
    ),
    Case(
        "upper-case host name",
        _rename("node2", "Node2"),
        (
            "Node2: inventory_hostname='Node2'",
            "not a valid Kubernetes node name",
            "fix: rename the host",
        ),
    ),
    Case(
        "underscore in host name",
        _rename("node2", "node_2"),
        ("node_2: inventory_hostname='node_2'", "not a valid Kubernetes node name", "fix: rename"),
    ),
    Case(
        "two hosts one IP",
        _host("node2", "ansible_host", "172.30.10.31"),
        (
            "node2: ansible_host='172.30.10.31'",
            "is also the IP of node1",
            "fix: give every host its own IP",
        ),
    ),
    Case(
        "ansible_host is a DNS name",
        _host("node1", "ansible_host", "node1.example.test"),
        (
            "node1: ansible_host='node1.example.test'",
            "is not an IP address",
            "fix: set ansible_host",
        ),
    ),
    Case(
        "bad kubesmith_node_ip",
        _host("cp2", "kubesmith_node_ip", "172.30.10.300"),
        (
            "cp2: kubesmith_node_ip='172.30.10.300'",
            "is not an IP address",
            "fix: set ansible_host (or",
        ),
    ),
    Case(
        "pod CIDR does not parse",
        _all("kubesmith_pod_cidr", "172.31.0.0/33"),
        (
            "kubesmith_pod_cidr='172.31.0.0/33'",
            "is not a network CIDR",
            "fix: set kubesmith_pod_cidr to",
        ),
    ),
    Case(
        "service CIDR with host bits",
        _all("kubesmith_service_cidr", "172.30.128.1/20"),
        (
            "kubesmith_service_cidr='172.30.128.1/20'",
            "has host bits set",
            "fix: set kubesmith_service_cidr",
        ),
    ),
    Case(
        "pod and service overlap",
        _all("kubesmith_pod_cidr", "172.30.128.0/17"),
        (
            "kubesmith_pod_cidr='172.30.128.0/17'",
            "overlaps kubesmith_service_cidr='172.30.128.0/20'",
            "fix: choose",
        ),
    ),
    Case(
        "host inside pod CIDR",
        _host("node2", "ansible_host", "172.31.5.5"),
        (
            "node2: ansible_host='172.31.5.5'",
            "lies inside kubesmith_pod_cidr='172.31.0.0/16'",
            "fix: choose a",
        ),
    ),
    Case(
        "host inside service CIDR",
        _host("node2", "ansible_host", "172.30.130.5"),
        (
            "node2: ansible_host='172.30.130.5'",
            "inside kubesmith_service_cidr='172.30.128.0/20'",
            "fix: choose",
        ),
    ),
    Case(
        "pod network holds several hosts",
        _steps(
            _host("node1", "ansible_host", "172.31.1.1"),
            _host("node2", "ansible_host", "172.31.1.2"),
        ),
        (
            "kubesmith_pod_cidr='172.31.0.0/16'",
            "contains the IPs of hosts node1, node2",
            "fix: choose a",
        ),
    ),
    Case(
        "service CIDR too small",
        _all("kubesmith_service_cidr", "172.30.128.0/26"),
        (
            "kubesmith_service_cidr='172.30.128.0/26'",
            "has only 64 addresses",
            "fix: use a prefix of /24",
        ),
    ),
    Case(
        "service CIDR too large",
        _steps(_all("kubesmith_service_cidr", "10.0.0.0/8")),
        (
            "kubesmith_service_cidr='10.0.0.0/8'",
            "larger than the apiserver accepts",
            "fix: use a prefix of /12",
        ),
    ),
    Case(
        "DNS IP outside the service range",
        _all("kubesmith_cluster_dns_ip", "10.96.0.10"),
        (
            "kubesmith_cluster_dns_ip='10.96.0.10'",
            "not a usable address inside",
            "fix: pick an address",
        ),
    ),
    Case(
        "DNS IP is the kubernetes Service IP",
        _all("kubesmith_cluster_dns_ip", "172.30.128.1"),
        (
            "kubesmith_cluster_dns_ip='172.30.128.1'",
            "is the kubernetes Service's IP",
            "fix: pick another",
        ),
    ),
    Case(
        "API service IP is the network address",
        _all("kubesmith_apiserver_service_ip", "172.30.128.0"),
        (
            "kubesmith_apiserver_service_ip='172.30.128.0'",
            "not a usable address",
            "fix: pick an address",
        ),
    ),
    Case(
        "flannel subnet not inside the pod network",
        _all("kubesmith_flannel_subnet_len", 16),
        (
            "kubesmith_flannel_subnet_len=16",
            "must be longer than kubesmith_pod_cidr's /16",
            "fix: set",
        ),
    ),
    Case(
        "pod network too small for the hosts",
        _all("kubesmith_pod_cidr", "172.31.0.0/22"),
        (
            "kubesmith_pod_cidr='172.31.0.0/22'",
            "holds 3 flannel subnets of /24 but k8s_cluster has 5",
            "fix: use",
        ),
    ),
    Case(
        "vip mode without lb hosts",
        _steps(_empty("lb"), lambda inv: [inv.hostvars.pop(h) for h in ("lb1", "lb2")]),
        ("groups['lb']=[]", "nothing would hold the VIP", "fix: add hosts to group lb, or set"),
    ),
    Case(
        "vip mode without a VIP",
        _all("kubesmith_apiserver_vip", ""),
        (
            "kubesmith_apiserver_vip=''",
            "is empty but kubesmith_apiserver_lb_mode is 'vip'",
            "fix: set",
        ),
    ),
    Case(
        "VIP is not an address",
        _all("kubesmith_apiserver_vip", "vip.example.test"),
        (
            "kubesmith_apiserver_vip='vip.example.test'",
            "is not an IP address",
            "fix: set kubesmith_apiserver_vip",
        ),
    ),
    Case(
        "VIP is a host's IP",
        _all("kubesmith_apiserver_vip", "172.30.10.21"),
        (
            "kubesmith_apiserver_vip='172.30.10.21'",
            "is the IP of host cp1",
            "fix: set kubesmith_apiserver_vip",
        ),
    ),
    Case(
        "VIP inside the service range",
        _all("kubesmith_apiserver_vip", "172.30.128.10"),
        (
            "kubesmith_apiserver_vip='172.30.128.10'",
            "lies inside kubesmith_service_cidr",
            "fix: set",
        ),
    ),
    Case(
        "IPv6 VIP for IPv4 lb hosts",
        _all("kubesmith_apiserver_vip", "fd00::10"),
        ("kubesmith_apiserver_vip='fd00::10'", "is IPv6 but the lb hosts have IPv4", "fix: set"),
    ),
    Case(
        "VIP port is the apiserver port on a shared host",
        _steps(
            lambda inv: inv.groups["lb"].append("cp1"), _all("kubesmith_apiserver_vip_port", 6443)
        ),
        (
            "cp1: kubesmith_apiserver_vip_port=6443",
            "is also the port of kube-apiserver",
            "fix: change",
        ),
    ),
    Case(
        "local proxy port is kubelet's port",
        _steps(
            _all("kubesmith_apiserver_lb_mode", "local"),
            _empty("lb"),
            _all("kubesmith_apiserver_vip_port", 10250),
        ),
        (
            "cp1, cp2, cp3, node1, node2: kubesmith_apiserver_vip_port=10250",
            "port of kubelet",
            "fix: change",
        ),
    ),
    Case(
        "apiserver port inside the NodePort range",
        _all("kubesmith_apiserver_port", 30443),
        (
            "kubesmith_apiserver_port=30443",
            "lies in kubesmith_node_port_range 30000-32767",
            "fix: move",
        ),
    ),
    Case(
        "malformed NodePort range",
        _all("kubesmith_node_port_range", "32767-30000"),
        (
            "kubesmith_node_port_range='32767-30000'",
            "is not a port range",
            "fix: set kubesmith_node_port_range",
        ),
    ),
    Case(
        "unknown lb mode",
        _all("kubesmith_apiserver_lb_mode", "haproxy"),
        ("kubesmith_apiserver_lb_mode='haproxy'", "is not one of ['vip', 'local']", "fix: set"),
    ),
    Case(
        "unknown kube-proxy mode",
        _all("kubesmith_kube_proxy_mode", "userspace"),
        (
            "kubesmith_kube_proxy_mode='userspace'",
            "is not one of ['iptables', 'ipvs', 'nftables']",
            "fix: set",
        ),
    ),
    Case(
        "apiserver port is not a number",
        _all("kubesmith_apiserver_port", "https"),
        (
            "kubesmith_apiserver_port='https'",
            "is a str, not an int",
            "fix: set kubesmith_apiserver_port to an int",
        ),
    ),
    Case(
        "apiserver port out of range",
        _all("kubesmith_apiserver_port", 70000),
        (
            "kubesmith_apiserver_port=70000",
            "is outside 1..65535",
            "fix: set kubesmith_apiserver_port",
        ),
    ),
    Case(
        "apiserver port is a bool",
        _all("kubesmith_apiserver_port", True),
        ("kubesmith_apiserver_port=True", "is a bool, not an int", "fix: set"),
    ),
    Case(
        "cluster setting differs between hosts",
        _host("node2", "kubesmith_pod_cidr", "10.244.0.0/16"),
        (
            "kubesmith_pod_cidr='172.31.0.0/16'",
            "differs between hosts",
            "node2='10.244.0.0/16'",
            "fix: set",
        ),
    ),
    Case(
        "kubernetes version does not parse",
        _all("kubesmith_kubernetes_version", "1.37"),
        ("kubesmith_kubernetes_version='1.37'", "is not a release version", "fix: set"),
    ),
    Case(
        "kubelet newer than the apiserver",
        _host("node1", "kubesmith_kubernetes_version", "v1.38.0"),
        (
            "node1: kubesmith_kubernetes_version='v1.38.0'",
            "kubelet newer than the apiserver",
            "fix: upgrade",
        ),
    ),
    Case(
        "kubelet four minors older",
        _host("node1", "kubesmith_kubernetes_version", "v1.33.0"),
        (
            "node1: kubesmith_kubernetes_version='v1.33.0'",
            "more than 3 minors older",
            "fix: upgrade",
        ),
    ),
    Case(
        "apiservers two minors apart",
        _host("cp1", "kubesmith_kubernetes_version", "v1.39.0"),
        (
            "cp1: kubesmith_kubernetes_version='v1.39.0'",
            "more than one minor newer than the apiserver on cp2",
            "fix",
        ),
    ),
    Case(
        "etcd too old",
        _all("kubesmith_etcd_version", "v3.4.23"),
        (
            "kubesmith_etcd_version='v3.4.23'",
            "is older than v3.5.0",
            "fix: set kubesmith_etcd_version",
        ),
    ),
    Case(
        "flannel without etcd v3",
        _all("kubesmith_flannel_version", "v0.13.0"),
        ("kubesmith_flannel_version='v0.13.0'", "speaks only etcd's v2 API", "fix: set"),
    ),
    Case(
        "nftables on an old Kubernetes",
        _steps(
            _all("kubesmith_kube_proxy_mode", "nftables"),
            _all("kubesmith_kubernetes_version", "v1.30.4"),
        ),
        ("kubesmith_kube_proxy_mode='nftables'", "needs Kubernetes v1.31.0 or newer", "fix: use"),
    ),
    Case(
        "renewal window longer than the certificate",
        _all("kubesmith_pki_renew_before_days", 365),
        ("kubesmith_pki_renew_before_days=365", "every run would renew", "fix: make"),
    ),
    Case(
        "certificate outlives the CA",
        _all("kubesmith_pki_cert_valid_days", 4000),
        ("kubesmith_pki_cert_valid_days=4000", "outlives the CA", "fix: make certificates expire"),
    ),
    Case(
        "bad cluster domain",
        _all("kubesmith_cluster_domain", "Cluster_Local"),
        ("kubesmith_cluster_domain='Cluster_Local'", "is not a lower-case DNS name", "fix: set"),
    ),
    Case(
        "bad extra SAN",
        _all("kubesmith_apiserver_extra_sans", ["api.example.test", "not a name"]),
        (
            "kubesmith_apiserver_extra_sans='not a name'",
            "neither an IP address nor a DNS name",
            "fix: list",
        ),
    ),
    Case(
        "unknown key type",
        _all("kubesmith_pki_key_type", "dsa"),
        ("kubesmith_pki_key_type='dsa'", "is not one of ['ecdsa', 'rsa']", "fix: set"),
    ),
    Case(
        "weak RSA key",
        _all("kubesmith_pki_rsa_bits", 1024),
        ("kubesmith_pki_rsa_bits=1024", "is not one of [2048, 3072, 4096]", "fix: set"),
    ),
    Case(
        "unknown flannel backend",
        _all("kubesmith_flannel_backend", "udp"),
        ("kubesmith_flannel_backend='udp'", "is not one of ['vxlan', 'host-gw']", "fix: set"),
    ),
    Case(
        "misspelt cgroup driver",
        _all("kubesmith_cgroup_driver", "sytemd"),
        (
            "kubesmith_cgroup_driver='sytemd' is not one of ['cgroupfs', 'systemd'] "
            "(did you mean 'systemd'?)",
            "fix: set kubesmith_cgroup_driver to one of ['cgroupfs', 'systemd'] "
            "in the inventory's group_vars/all",
        ),
    ),
    Case(
        "kube-proxy mode in capitals",
        _all("kubesmith_kube_proxy_mode", "IPVS"),
        ("kubesmith_kube_proxy_mode='IPVS'", "(did you mean 'ipvs'?)", "fix: set"),
    ),
    Case(
        "unknown architecture",
        _all("kubesmith_arch", "x86_64"),
        (
            "kubesmith_arch='x86_64' is not one of ['amd64', 'arm64', 'ppc64le', 's390x']",
            "fix: set kubesmith_arch to one of",
        ),
    ),
    Case(
        "misspelt mode of the kube_proxy role",
        _role_option("kube_proxy", "kube_proxy_mode", "ipvss"),
        (
            "kube_proxy_mode='ipvss' is not one of ['iptables', 'ipvs', 'nftables'] "
            "(did you mean 'ipvs'?) (role kube_proxy)",
            "fix: set kube_proxy_mode to one of ['iptables', 'ipvs', 'nftables'] "
            "(roles/kube_proxy/meta/argument_specs.yml)",
        ),
    ),
    Case(
        "misspelt kubesmith variable name",
        _all("kubesmith_cgroup_drivr", "cgroupfs"),
        (
            "kubesmith_cgroup_drivr is not a kubesmith variable",
            "would be silently ignored",
            "fix: did you mean kubesmith_cgroup_driver?",
        ),
    ),
    Case(
        "misspelt kubelet variable on the workers",
        _group("kube_node", "kubelet_cgroup_rot", "/kubesmith"),
        (
            "node1, node2: kubelet_cgroup_rot is not a variable of role kubelet",
            "fix: did you mean kubelet_cgroup_root?",
        ),
    ),
    Case(
        "unknown kubesmith variable",
        _all("kubesmith_colour", "blue"),
        (
            "kubesmith_colour is not a kubesmith variable",
            "fix: remove it, or use a name from roles/kubesmith/defaults/main.yml",
            "preflight_inventory_only_variables",
        ),
    ),
    Case(
        "misspelt variable of the role with the longer prefix",
        _host("cp1", "pki_distribute_flannel", False),
        (
            "cp1: pki_distribute_flannel is not a variable of role pki_distribute",
            "fix: did you mean pki_distribute_flanneld?",
        ),
    ),
    Case(
        "role option of the wrong type",
        _role_spec(required=False),
        (
            "cp2: etcd_quota_bytes='eight gigabytes'",
            "(role etcd)",
            "fix: set etcd_quota_bytes to an int",
        ),
    ),
    Case(
        "required role option missing",
        _role_spec(required=True),
        (
            "cp1, cp2, cp3: etcd_election_ms=None",
            "is required by role etcd",
            "fix: set etcd_election_ms",
        ),
    ),
]


def _errors(inventory: Inventory) -> list[str]:
    return check_inventory(inventory.data()).errors


def test_lab_like_inventory_passes() -> None:
    report = check_inventory(Inventory().data())
    assert report.errors == []
    assert report.warnings == []


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_inventory_gives_its_one_line(case: Case) -> None:
    inventory = Inventory()
    case.mutate(inventory)
    errors = _errors(inventory)
    matching = [line for line in errors if all(fragment in line for fragment in case.fragments)]
    assert matching, f"no line has {case.fragments}; got {errors}"
    assert all("\n" not in line for line in errors)
    assert len(errors) == 1, errors


def test_enough_distinct_bad_inventories() -> None:
    assert len({case.name for case in CASES}) >= 30


TOGETHER = (
    "two etcd members",
    "upper-case host name",
    "bad kubesmith_node_ip",
    "service CIDR too small",
    "unknown kube-proxy mode",
    "etcd too old",
    "bad extra SAN",
    "weak RSA key",
)


def test_every_problem_is_reported_together() -> None:
    inventory = Inventory()
    chosen = [case for case in CASES if case.name in TOGETHER]
    for case in chosen:
        case.mutate(inventory)
    errors = _errors(inventory)
    for case in chosen:
        assert any(all(f in line for f in case.fragments) for line in errors), case.name
    assert len(errors) == len(TOGETHER)


def test_duplicate_node_names_are_case_insensitive() -> None:
    inventory = Inventory().add_host("NODE1", "172.30.10.33", "kube_node", "k8s_cluster")
    errors = _errors(inventory)
    assert "NODE1: inventory_hostname='NODE1' names the same node as 'node1'" in "\n".join(errors)


def test_exact_line_format() -> None:
    inventory = Inventory()
    inventory.set_host("node1", "ansible_host", "300.1.2.3")
    assert _errors(inventory) == [
        "node1: ansible_host='300.1.2.3' is not an IP address: kubesmith uses it as the node's IP "
        "everywhere; fix: set ansible_host (or kubesmith_node_ip) to the host's IP address"
    ]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (_etcd("cp1"), "has a single member"),
        (_empty("kube_node"), "groups['kube_node']=[] is empty"),
        (_host("node1", "ansible_host", "127.0.0.31"), "is not an address other hosts can reach"),
        (_all("kubesmith_flannel_subnet_len", 26), "gives each node 64 pod addresses"),
        (_all("kubesmith_apiserver_lb_mode", "local"), "leaves the lb group ['lb1', 'lb2'] unused"),
    ],
)
def test_warnings_do_not_fail(mutate: Callable[[Inventory], object], fragment: str) -> None:
    inventory = Inventory()
    mutate(inventory)
    if fragment.startswith("groups['kube_node']"):
        inventory.groups["k8s_cluster"] = list(inventory.groups["kube_control_plane"])
    report = check_inventory(inventory.data())
    assert report.errors == []
    assert any(fragment in line for line in report.warnings), report.warnings


def test_unresolved_variables_are_not_reported_twice() -> None:
    inventory = Inventory().set_all("kubesmith_apiserver_vip", None)
    data = inventory.data()
    data.unresolved = frozenset({"kubesmith_apiserver_vip"})
    report = Report()
    check_inventory(data, report)
    assert report.errors == []


def _load_inventory(path: str) -> InventoryData:
    """The inventory as Ansible reads it, over the kubesmith role's defaults."""
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(REPO / path)])
    variables = VariableManager(loader=loader, inventory=inventory)
    wanted = set(CLUSTER_SPEC) | set(HOST_VARIABLES)
    groups = {name: [h.name for h in group.get_hosts()] for name, group in inventory.groups.items()}
    hostvars = {}
    inventory_names = {}
    for host in inventory.get_hosts():
        inventory_vars = variables.get_vars(host=host, include_hostvars=False)
        inventory_names[host.name] = set(inventory_vars)
        merged = {**DEFAULTS, **inventory_vars}
        hostvars[host.name] = {
            k: v for k, v in merged.items() if k in wanted and not is_template(v)
        }
    return InventoryData(groups, hostvars, known=KNOWN, inventory_names=inventory_names)


@pytest.mark.parametrize("path", ["inventory/lab", "inventory/example"])
def test_shipped_inventories_pass(path: str) -> None:
    if not (REPO / path).exists():
        pytest.skip(f"{path} does not exist yet")
    report = check_inventory(_load_inventory(path))
    assert report.errors == []


LAB_INVENTORIES = sorted(
    str(path.relative_to(REPO))
    for pattern in (
        "inventory/*/hosts.yml",
        "molecule/*/inventory/hosts.yml",
        "tests/*/*/inventory/hosts.yml",
    )
    for path in REPO.glob(pattern)
)


@pytest.mark.parametrize("hosts_file", LAB_INVENTORIES)
def test_shipped_inventories_use_only_known_names(hosts_file: str) -> None:
    # Some scenarios are deliberately partial clusters: only the names are judged here.
    report = check_inventory(_load_inventory(str(Path(hosts_file).parent)))
    unknown = [line for line in report.errors if "would be silently ignored" in line]
    assert unknown == []


def test_every_lab_inventory_is_judged() -> None:
    assert {"inventory/lab/hosts.yml", "tests/drills/day2/inventory/hosts.yml"} <= set(
        LAB_INVENTORIES
    )
    assert len([path for path in LAB_INVENTORIES if path.startswith("molecule/")]) >= 5


def test_exact_lines_of_a_bad_choice_and_a_misspelt_name() -> None:
    inventory = Inventory().set_all("kubesmith_cgroup_driver", "sytemd")
    inventory.set_all("kubesmith_cgroup_drivr", "cgroupfs")
    assert _errors(inventory) == [
        "kubesmith_cgroup_driver='sytemd' is not one of ['cgroupfs', 'systemd'] "
        "(did you mean 'systemd'?); fix: set kubesmith_cgroup_driver to one of "
        "['cgroupfs', 'systemd'] in the inventory's group_vars/all",
        "kubesmith_cgroup_drivr is not a kubesmith variable: nothing reads it, so it "
        "would be silently ignored; fix: did you mean kubesmith_cgroup_driver? "
        "Rename it in the inventory",
    ]


def test_bad_choice_on_one_host_names_the_host() -> None:
    errors = _errors(Inventory().set_host("node1", "kubesmith_cgroup_driver", "sytemd"))
    assert errors[0] == (
        "node1: kubesmith_cgroup_driver='sytemd' is not one of ['cgroupfs', 'systemd'] "
        "(did you mean 'systemd'?); fix: set kubesmith_cgroup_driver to one of "
        "['cgroupfs', 'systemd']"
    )
    assert errors[1].startswith(
        "kubesmith_cgroup_driver='systemd' differs between hosts (cp1='systemd', node1='sytemd')"
    )
    assert len(errors) == 2


def test_bad_role_choice_on_some_hosts_names_them() -> None:
    inventory = Inventory()
    inventory.role_specs.append(repo_role_spec("kubelet"))
    _group("kube_node", "kubelet_cgroup_driver", "cgroup")(inventory)
    assert _errors(inventory) == [
        "node1, node2: kubelet_cgroup_driver='cgroup' is not one of ['systemd', 'cgroupfs'] "
        "(did you mean 'cgroupfs'?) (role kubelet); fix: set kubelet_cgroup_driver to one of "
        "['systemd', 'cgroupfs'] (roles/kubelet/meta/argument_specs.yml)"
    ]


def test_names_are_not_judged_without_the_known_names() -> None:
    data = Inventory().set_all("kubesmith_colour", "blue").data()
    data.known = None
    assert check_inventory(data).errors == []


@pytest.mark.parametrize(
    "name",
    [
        "verify_build_image",  # a playbook's, not a role's namespace
        "my_site_setting",
        "kubesmith_lab_name",  # preflight_inventory_only_variables
        "kubelet_cgroup_root",
        "kube_apiserver_tls_cipher_suites",  # kube_ is no role's prefix, kube_apiserver_ is
    ],
)
def test_names_outside_a_role_or_known_pass(name: str) -> None:
    assert _errors(Inventory().set_all(name, "x")) == []


def test_names_only_on_hosts_outside_the_cluster_are_left_alone() -> None:
    inventory = Inventory()
    inventory.groups["all"].append("jumphost")
    inventory.set_host("jumphost", "kubesmith_colour", "blue")
    assert _errors(inventory) == []


def test_plan_of_the_lab() -> None:
    plan = plan_cluster(_load_inventory("inventory/lab"))
    assert plan.host_ips["cp1"] == "172.30.10.21"
    ports = {(item.port, item.component) for item in plan.listeners("cp1")}
    assert {(2379, "etcd"), (6443, "kube-apiserver"), (10250, "kubelet")} <= ports
    assert (8443, "nginx") in {(item.port, item.component) for item in plan.listeners("lb1")}
    assert plan.kernel_features("lb1") == []
    assert plan.kernel_features("node1") == [
        "overlay",
        "br_netfilter",
        "nf_conntrack",
        "vxlan",
        "iptable_nat",
        "xt_statistic",
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("etcd", ["cp1", "cp2", "cp3"]),
        ("etcd:kube_node", ["cp1", "cp2", "cp3", "node1", "node2"]),
        ("k8s_cluster:!kube_node", ["cp1", "cp2", "cp3"]),
        ("lb,etcd:&kube_control_plane", ["cp1", "cp2", "cp3"]),
        ("all", ["lb1", "lb2", "cp1", "cp2", "cp3", "node1", "node2"]),
        ("node2", ["node2"]),
        ("localhost", []),
        ("{{ target }}", None),
    ],
)
def test_resolve_hosts(pattern: str, expected: list[str] | None) -> None:
    assert resolve_hosts(pattern, Inventory().groups) == expected


def test_play_roles() -> None:
    play = {
        "hosts": "etcd",
        "roles": ["kubesmith", {"role": "kubesmith.cluster.etcd"}],
        "tasks": [
            {"name": "x", "ansible.builtin.import_role": {"name": "preflight", "tasks_from": "x"}},
            {"name": "y", "ansible.builtin.debug": {"msg": "z"}},
        ],
    }
    assert play_roles(play) == ["kubesmith", "etcd", "preflight"]


def test_an_unknown_name_never_shows_its_value() -> None:
    inventory = Inventory().set_all("apiserver_lb_keepalived_auth_pas", "s3cret")
    assert _errors(inventory) == [
        "apiserver_lb_keepalived_auth_pas is not a variable of role apiserver_lb: nothing reads "
        "it, so it would be silently ignored; fix: did you mean "
        "apiserver_lb_keepalived_auth_pass? Rename it in the inventory"
    ]

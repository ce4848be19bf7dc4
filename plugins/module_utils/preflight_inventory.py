"""Preflight layer 1: the inventory and variables, judged on the deploy host alone.

Input is plain data (groups and each host's variable values, already templated); output is a
Report with every problem at once. No host is contacted and nothing here imports Ansible's
controller code, so unit tests feed it inventories as dicts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight import (
    NO_VALUE,
    Report,
    format_version,
    parse_version,
    show,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_names import (
    CLUSTER_ROLE,
    KnownVariables,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_spec import (
    SpecError,
    convert,
    with_article,
)

ETCD = "etcd"
CONTROL_PLANE = "kube_control_plane"
NODE = "kube_node"
K8S = "k8s_cluster"
LB = "lb"
CLUSTER_GROUPS = (ETCD, CONTROL_PLANE, NODE, LB)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PORT = {"type": "int", "range": (1, 65535)}
_VERSION = {"type": "str", "version": True}

# Types and choices of the cluster-wide variables of roles/kubesmith/defaults/main.yml
# that preflight reads. "range" and "version" are preflight's own additions to the format.
CLUSTER_SPEC: dict[str, dict[str, Any]] = {
    "kubesmith_cluster_name": {"type": "str"},
    "kubesmith_cluster_domain": {"type": "str"},
    "kubesmith_service_cidr": {"type": "str"},
    "kubesmith_pod_cidr": {"type": "str"},
    "kubesmith_flannel_subnet_len": {"type": "int", "range": (1, 128)},
    "kubesmith_flannel_backend": {"type": "str", "choices": ["vxlan", "host-gw"]},
    "kubesmith_flannel_vxlan_vni": {"type": "int", "range": (1, 16777215)},
    "kubesmith_flannel_vxlan_port": _PORT,
    "kubesmith_node_port_range": {"type": "str"},
    "kubesmith_apiserver_port": _PORT,
    "kubesmith_apiserver_lb_mode": {"type": "str", "choices": ["vip", "local"]},
    "kubesmith_apiserver_vip": {"type": "str"},
    "kubesmith_apiserver_vip_port": _PORT,
    "kubesmith_apiserver_extra_sans": {"type": "list", "elements": "str"},
    "kubesmith_pki_key_type": {"type": "str", "choices": ["ecdsa", "rsa"]},
    "kubesmith_pki_rsa_bits": {"type": "int", "choices": [2048, 3072, 4096]},
    "kubesmith_pki_ca_valid_days": {"type": "int", "range": (1, 36500)},
    "kubesmith_pki_cert_valid_days": {"type": "int", "range": (1, 36500)},
    "kubesmith_pki_renew_before_days": {"type": "int", "range": (0, 36500)},
    "kubesmith_kube_proxy_mode": {"type": "str", "choices": ["iptables", "ipvs", "nftables"]},
    "kubesmith_cgroup_driver": {"type": "str", "choices": ["cgroupfs", "systemd"]},
    # The architectures every artifact kubesmith downloads is published for.
    "kubesmith_arch": {"type": "str", "choices": ["amd64", "arm64", "ppc64le", "s390x"]},
    "kubesmith_kubernetes_version": _VERSION,
    "kubesmith_etcd_version": _VERSION,
    "kubesmith_flannel_version": _VERSION,
    "kubesmith_cni_plugins_version": _VERSION,
    # Optional: set by the roles that derive them; checked only when defined.
    "kubesmith_cluster_dns_ip": {"type": "str"},
    "kubesmith_apiserver_service_ip": {"type": "str"},
}
# May differ between hosts: a rolling upgrade moves one host at a time.
PER_HOST_VARIABLES = frozenset({"kubesmith_kubernetes_version"})
HOST_VARIABLES = ("ansible_host", "kubesmith_node_ip")


@dataclass(frozen=True)
class PlannedListener:
    """A socket one of kubesmith's components will open; programs that may already hold it."""

    proto: str
    port: int
    component: str
    bind: str
    programs: frozenset[str]
    # The variable that sets the port; empty for the components' fixed ports.
    variable: str = ""


def _listener(
    port: int, component: str, bind: str = "0.0.0.0", variable: str = ""
) -> PlannedListener:
    return PlannedListener("tcp", port, component, bind, frozenset({component}), variable)


# Sockets of kubesmith's own components by the group whose hosts run them.
COMPONENT_LISTENERS: dict[str, tuple[PlannedListener, ...]] = {
    ETCD: (_listener(2379, "etcd"), _listener(2380, "etcd")),
    CONTROL_PLANE: (
        _listener(10257, "kube-controller-manager", "127.0.0.1"),
        _listener(10259, "kube-scheduler", "127.0.0.1"),
    ),
    K8S: (
        _listener(10248, "kubelet", "127.0.0.1"),
        _listener(10250, "kubelet"),
        _listener(10249, "kube-proxy", "127.0.0.1"),
        _listener(10256, "kube-proxy"),
    ),
}
# Kernel features every Kubernetes host needs, and those of each kube-proxy mode.
K8S_KERNEL_FEATURES = ("overlay", "br_netfilter", "nf_conntrack")
PROXY_KERNEL_FEATURES = {
    "iptables": ("iptable_nat", "xt_statistic"),
    "ipvs": ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"),
    "nftables": ("nf_tables",),
}

# kube-proxy's nftables mode is beta (on by default) from Kubernetes 1.31.
NFTABLES_MIN_KUBERNETES = (1, 31, 0)
# flannel talks the etcd v3 API from v0.14.0; etcd 3.6 has no v2 API left.
FLANNEL_ETCD_V3_MIN = (0, 14, 0)
ETCD_MIN = (3, 5, 0)
# Kubernetes' version skew policy: kubelet up to 3 minors older than the apiserver, never newer.
KUBELET_MAX_MINOR_SKEW = 3
# The apiserver refuses IPv4 service ranges of more than 2^20 addresses.
SERVICE_CIDR_MIN_PREFIX_V4 = 12
SERVICE_CIDR_MIN_PREFIX_V6 = 108
# flannel's SubnetMin defaults to the second subnet of Network: the first is never leased.
FLANNEL_UNUSED_SUBNETS = 1

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class RoleSpec:
    """A role's argument spec (entry point main) and the hosts that run the role."""

    name: str
    options: Mapping[str, Mapping[str, Any]]
    defaults: frozenset[str] = frozenset()
    hosts: Sequence[str] | None = None


@dataclass(frozen=True)
class InventorySettings:
    """Thresholds operators may tune (role preflight's defaults)."""

    service_cidr_max_prefix: int = 24
    pod_subnet_min_addresses: int = 128
    warn_single_etcd: bool = True


@dataclass
class InventoryData:
    """groups as Ansible's `groups`; hostvars: each host's templated variable values."""

    groups: Mapping[str, Sequence[str]]
    hostvars: Mapping[str, Mapping[str, Any]]
    role_specs: Sequence[RoleSpec] = ()
    settings: InventorySettings = field(default_factory=InventorySettings)
    # Variables whose expressions failed to evaluate (already reported): checks skip them.
    unresolved: frozenset[str] = frozenset()
    # The names the project knows (None: names are not checked) and, per host, the names of
    # the variables the inventory sets: one in a role's namespace that no role knows is a typo.
    known: KnownVariables | None = None
    inventory_names: Mapping[str, Collection[str]] = field(default_factory=dict)


@dataclass
class ClusterPlan:
    """What kubesmith will run where: the input of the host checks (layer 2)."""

    groups: Mapping[str, Sequence[str]]
    host_ips: Mapping[str, str]
    cluster: Mapping[str, Any]

    @property
    def hosts(self) -> list[str]:
        seen: dict[str, None] = {}
        for members in self.groups.values():
            for host in members:
                seen.setdefault(host)
        return list(seen)

    def host_groups(self, host: str) -> list[str]:
        return [group for group, members in self.groups.items() if host in members]

    def listeners(self, host: str) -> list[PlannedListener]:
        groups = self.host_groups(host)
        planned = [item for group in groups for item in COMPONENT_LISTENERS.get(group, ())]
        api_port = self.cluster.get("kubesmith_apiserver_port")
        if CONTROL_PLANE in groups and api_port is not None:
            planned.append(
                _listener(api_port, "kube-apiserver", variable="kubesmith_apiserver_port")
            )
        vip_port = self.cluster.get("kubesmith_apiserver_vip_port")
        mode = self.cluster.get("kubesmith_apiserver_lb_mode")
        if vip_port is not None and mode == "vip" and LB in groups:
            planned.append(_listener(vip_port, "nginx", variable="kubesmith_apiserver_vip_port"))
        elif vip_port is not None and mode == "local" and K8S in groups:
            planned.append(
                _listener(vip_port, "nginx", "127.0.0.1", "kubesmith_apiserver_vip_port")
            )
        if K8S in groups and self.cluster.get("kubesmith_flannel_backend") == "vxlan":
            port = self.cluster.get("kubesmith_flannel_vxlan_port")
            if port is not None:
                # The kernel's VXLAN device owns this socket, not a process.
                planned.append(
                    PlannedListener(
                        "udp",
                        port,
                        "flannel vxlan",
                        "0.0.0.0",
                        frozenset({"kernel"}),
                        "kubesmith_flannel_vxlan_port",
                    )
                )
        return planned

    def kernel_features(self, host: str) -> list[str]:
        if K8S not in self.host_groups(host):
            return []
        features = list(K8S_KERNEL_FEATURES)
        if self.cluster.get("kubesmith_flannel_backend") == "vxlan":
            features.append("vxlan")
        features.extend(
            PROXY_KERNEL_FEATURES.get(str(self.cluster.get("kubesmith_kube_proxy_mode")), ())
        )
        return features


def plan_cluster(data: InventoryData) -> ClusterPlan:
    """The plan of a (checked) inventory; problems of the inventory itself are not repeated."""
    checker = _InventoryChecker(data, Report())
    checker.run()
    return checker.plan()


def check_inventory(data: InventoryData, report: Report | None = None) -> Report:
    """Every problem of the inventory and variables, reported together."""
    report = report if report is not None else Report()
    checker = _InventoryChecker(data, report)
    checker.run()
    return report


class _InventoryChecker:
    def __init__(self, data: InventoryData, report: Report) -> None:
        self.data = data
        self.report = report
        self.cluster: dict[str, Any] = {}
        self.host_ips: dict[str, IPAddress] = {}

    def members(self, group: str) -> list[str]:
        return list(self.data.groups.get(group, ()))

    @property
    def cluster_hosts(self) -> list[str]:
        seen: dict[str, None] = {}
        for group in (*CLUSTER_GROUPS, K8S):
            for host in self.members(group):
                seen.setdefault(host)
        return list(seen)

    def run(self) -> None:
        self.check_groups()
        self.check_cluster_variables()
        self.check_host_names()
        self.check_host_addresses()
        self.check_networks()
        self.check_etcd()
        self.check_endpoint()
        self.check_ports()
        self.check_versions()
        self.check_pki()
        self.check_role_specs()
        self.check_variable_names()

    def subject(self, hosts: Sequence[str]) -> str:
        """The hosts a finding is about; empty when it is every cluster host."""
        if set(hosts) >= set(self.cluster_hosts):
            return ""
        return ", ".join(dict.fromkeys(hosts))

    # --- groups -------------------------------------------------------------------
    def check_groups(self) -> None:
        groups = self.data.groups
        for group in (ETCD, CONTROL_PLANE):
            if not self.members(group):
                self.report.error(
                    "",
                    f"groups[{group!r}]",
                    self.members(group),
                    "is empty: a cluster needs at least one host in it",
                    f"add hosts to group {group} in the inventory",
                )
        if not self.members(NODE):
            self.report.warn(
                "",
                f"groups[{NODE!r}]",
                [],
                "is empty: workloads can run only on control-plane hosts",
                f"add worker hosts to group {NODE}, or accept a cluster without workers",
            )
        k8s = set(groups.get(K8S, ()))
        for group in (CONTROL_PLANE, NODE):
            missing = [host for host in self.members(group) if host not in k8s]
            if missing:
                self.report.error(
                    "",
                    f"groups[{K8S!r}]",
                    sorted(k8s),
                    f"lacks {group} host(s) {missing}: plays for {K8S} would skip them",
                    f"make {CONTROL_PLANE} and {NODE} children of {K8S} in the inventory",
                )
        known = set(self.cluster_hosts)
        for host in groups.get("all", ()):
            if host not in known and host != "localhost":
                self.report.warn(
                    host,
                    "group_names",
                    "[]",
                    f"is in none of {list(CLUSTER_GROUPS)}: kubesmith leaves it alone",
                    "add it to a cluster group or remove it from the inventory",
                )

    # --- cluster-wide variables ---------------------------------------------------
    def check_cluster_variables(self) -> None:
        hosts = self.cluster_hosts
        for name, option in CLUSTER_SPEC.items():
            per_host = {h: self.data.hostvars.get(h, {}).get(name) for h in hosts}
            per_host = {h: v for h, v in per_host.items() if v is not None}
            if not per_host:
                continue
            if len(_distinct(per_host)) == 1:
                converted = self.validate("", name, next(iter(per_host.values())), option)
                if converted is not None:
                    self.cluster[name] = converted
                continue
            for host, value in per_host.items():
                self.validate(host, name, value, option)
            if name not in PER_HOST_VARIABLES:
                listed = ", ".join(f"{h}={show(v)}" for h, v in _first_host_of_each(per_host))
                self.report.error(
                    "",
                    name,
                    next(iter(per_host.values())),
                    f"differs between hosts ({listed}): it is one setting for the whole cluster",
                    f"set {name} once, in group_vars/all, and remove it from host or group vars",
                )

    def validate(self, subject: str, name: str, value: Any, option: Mapping[str, Any]) -> Any:
        """The converted value, or None after reporting why it is not valid."""
        try:
            converted = convert(value, option)
        except SpecError as exc:
            # Every host has this value: it belongs in group_vars/all.
            where = "" if subject else " in the inventory's group_vars/all"
            self.report.error(
                subject, name, value, str(exc), f"set {name} to {_wanted(option)}{where}"
            )
            return None
        low, high = option.get("range", (None, None))
        if low is not None and not low <= converted <= high:
            self.report.error(
                subject,
                name,
                value,
                f"is outside {low}..{high}",
                f"set {name} to a number from {low} to {high}",
            )
            return None
        if option.get("version") and parse_version(converted) is None:
            self.report.error(
                subject,
                name,
                value,
                "is not a release version",
                f"set {name} to a release such as v1.2.3",
            )
            return None
        return converted

    # --- hosts --------------------------------------------------------------------
    def check_host_names(self) -> None:
        seen: dict[str, str] = {}
        for host in self.cluster_hosts:
            node_name = host.lower()
            labels = node_name.split(".")
            if host != node_name or len(host) > 253 or not all(_DNS_LABEL.match(x) for x in labels):
                self.report.error(
                    host,
                    "inventory_hostname",
                    host,
                    "is not a valid Kubernetes node name (lower-case DNS name, RFC 1123)",
                    "rename the host in the inventory: lower-case letters, digits, '-' and '.'",
                )
            if node_name in seen:
                self.report.error(
                    host,
                    "inventory_hostname",
                    host,
                    f"names the same node as {seen[node_name]!r} (node names are case-insensitive)",
                    "give every host a distinct name",
                )
            seen.setdefault(node_name, host)

    def host_ip_source(self, host: str) -> tuple[str, Any]:
        hostvars = self.data.hostvars.get(host, {})
        for name in ("kubesmith_node_ip", "ansible_host"):
            if hostvars.get(name) not in (None, ""):
                return name, hostvars[name]
        return "inventory_hostname", host

    def check_host_addresses(self) -> None:
        owners: dict[IPAddress, str] = {}
        for host in self.cluster_hosts:
            name, value = self.host_ip_source(host)
            if {"ansible_host", "kubesmith_node_ip"} & self.data.unresolved:
                continue
            address = _address(value)
            if address is None:
                self.report.error(
                    host,
                    name,
                    value,
                    "is not an IP address: kubesmith uses it as the node's IP everywhere",
                    "set ansible_host (or kubesmith_node_ip) to the host's IP address",
                )
                continue
            if address.is_loopback or address.is_unspecified or address.is_multicast:
                self.report.warn(
                    host,
                    name,
                    value,
                    "is not an address other hosts can reach",
                    "set ansible_host (or kubesmith_node_ip) to the host's cluster network address",
                )
            if address in owners:
                self.report.error(
                    host,
                    name,
                    value,
                    f"is also the IP of {owners[address]}: two nodes cannot share an IP",
                    "give every host its own IP in the inventory",
                )
                continue
            owners[address] = host
            self.host_ips[host] = address

    # --- networks -----------------------------------------------------------------
    def check_networks(self) -> None:
        pod = self.network("kubesmith_pod_cidr")
        service = self.network("kubesmith_service_cidr")
        if pod and service and pod.version == service.version and pod.overlaps(service):
            self.report.error(
                "",
                "kubesmith_pod_cidr",
                str(pod),
                f"overlaps kubesmith_service_cidr={str(service)!r}: "
                "a pod and a service could get one IP",
                "choose pod and service ranges that do not overlap",
            )
        for label, network in (("kubesmith_pod_cidr", pod), ("kubesmith_service_cidr", service)):
            if network is not None:
                self.check_hosts_outside(label, network)
        if service is not None:
            self.check_service_network(service)
        if pod is not None:
            self.check_pod_network(pod)

    def check_hosts_outside(self, label: str, network: IPNetwork) -> None:
        inside = [host for host, address in self.host_ips.items() if address in network]
        if len(inside) == 1:
            name, value = self.host_ip_source(inside[0])
            self.report.error(
                inside[0],
                name,
                value,
                f"lies inside {label}={str(network)!r}: "
                "traffic to the node would be routed into the cluster",
                f"choose a {label} that does not contain any host's network",
            )
        elif inside:
            self.report.error(
                "",
                label,
                str(network),
                f"contains the IPs of hosts {', '.join(inside)}: "
                "traffic to them would be routed into the cluster",
                f"choose a {label} that does not contain any host's network",
            )

    def network(self, name: str) -> IPNetwork | None:
        value = self.cluster.get(name)
        if value is None:
            return None
        try:
            return ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            self.report.error(
                "",
                name,
                value,
                f"is not a network CIDR ({exc})",
                f"set {name} to a network address with its prefix, e.g. 10.96.0.0/12",
            )
            return None

    def check_service_network(self, service: IPNetwork) -> None:
        largest = SERVICE_CIDR_MIN_PREFIX_V4 if service.version == 4 else SERVICE_CIDR_MIN_PREFIX_V6
        smallest = self.data.settings.service_cidr_max_prefix
        if service.version == 4 and service.prefixlen > smallest:
            self.report.error(
                "",
                "kubesmith_service_cidr",
                str(service),
                f"has only {service.num_addresses} addresses: too few services (limit /{smallest})",
                f"use a prefix of /{smallest} or shorter, e.g. 10.96.0.0/12",
            )
        if service.prefixlen < largest:
            self.report.error(
                "",
                "kubesmith_service_cidr",
                str(service),
                f"is larger than the apiserver accepts (at most a /{largest})",
                f"use a prefix of /{largest} or longer, e.g. 10.96.0.0/12",
            )
        api_ip = service.network_address + 1
        for name in ("kubesmith_apiserver_service_ip", "kubesmith_cluster_dns_ip"):
            value = self.cluster.get(name)
            if value in (None, ""):
                continue
            address = _address(value)
            if (
                address is None
                or address not in service
                or address in (service.network_address, service.broadcast_address)
            ):
                self.report.error(
                    "",
                    name,
                    value,
                    f"is not a usable address inside kubesmith_service_cidr={str(service)!r}",
                    f"pick an address inside {service}, or leave {name} unset to derive it",
                )
            elif name == "kubesmith_cluster_dns_ip" and address == api_ip:
                self.report.error(
                    "",
                    name,
                    value,
                    "is the kubernetes Service's IP (the first of the service range)",
                    f"pick another address of {service}, e.g. {service.network_address + 10}",
                )

    def check_pod_network(self, pod: IPNetwork) -> None:
        subnet_len = self.cluster.get("kubesmith_flannel_subnet_len")
        if subnet_len is None:
            return
        max_len = pod.max_prefixlen - 2
        if not pod.prefixlen < subnet_len <= max_len:
            self.report.error(
                "",
                "kubesmith_flannel_subnet_len",
                subnet_len,
                f"must be longer than kubesmith_pod_cidr's /{pod.prefixlen} and at most /{max_len}",
                f"set kubesmith_flannel_subnet_len between {pod.prefixlen + 1} and {max_len}",
            )
            return
        hosts = len(self.members(K8S))
        leases = 2 ** (subnet_len - pod.prefixlen) - FLANNEL_UNUSED_SUBNETS
        if hosts > leases:
            self.report.error(
                "",
                "kubesmith_pod_cidr",
                str(pod),
                f"holds {leases} flannel subnets of /{subnet_len} but {K8S} has {hosts} hosts",
                "use a larger kubesmith_pod_cidr or a longer kubesmith_flannel_subnet_len",
            )
        per_node = 2 ** (pod.max_prefixlen - subnet_len)
        if per_node < self.data.settings.pod_subnet_min_addresses:
            self.report.warn(
                "",
                "kubesmith_flannel_subnet_len",
                subnet_len,
                f"gives each node {per_node} pod addresses, fewer than kubelet's 110 pods need",
                "use a shorter kubesmith_flannel_subnet_len (e.g. 24) or lower kubelet's maxPods",
            )

    # --- etcd ---------------------------------------------------------------------
    def check_etcd(self) -> None:
        members = self.members(ETCD)
        if members and len(members) % 2 == 0:
            self.report.error(
                "",
                f"groups[{ETCD!r}]",
                members,
                f"has an even number of members ({len(members)}): no more fault tolerance than "
                f"{len(members) - 1}, and a split can leave no quorum",
                "use an odd number of etcd hosts (3 or 5)",
            )
        if len(members) == 1 and self.data.settings.warn_single_etcd:
            self.report.warn(
                "",
                f"groups[{ETCD!r}]",
                members,
                "has a single member: losing that host loses the cluster state",
                "use 3 etcd hosts for production",
            )

    # --- API endpoint -------------------------------------------------------------
    def check_endpoint(self) -> None:
        mode = self.cluster.get("kubesmith_apiserver_lb_mode")
        if mode == "local":
            if self.members(LB):
                self.report.warn(
                    "",
                    "kubesmith_apiserver_lb_mode",
                    mode,
                    f"leaves the {LB} group {self.members(LB)} unused",
                    f"set kubesmith_apiserver_lb_mode: vip or empty the {LB} group",
                )
            return
        if mode != "vip":
            return
        if not self.members(LB):
            self.report.error(
                "",
                f"groups[{LB!r}]",
                [],
                "is empty but kubesmith_apiserver_lb_mode is 'vip': nothing would hold the VIP",
                f"add hosts to group {LB}, or set kubesmith_apiserver_lb_mode: local",
            )
        vip_value = self.cluster.get("kubesmith_apiserver_vip")
        if "kubesmith_apiserver_vip" in self.data.unresolved:
            return
        if vip_value in (None, ""):
            self.report.error(
                "",
                "kubesmith_apiserver_vip",
                vip_value,
                "is empty but kubesmith_apiserver_lb_mode is 'vip'",
                "set kubesmith_apiserver_vip to a free IP in the lb hosts' subnet",
            )
            return
        vip = _address(vip_value)
        if vip is None:
            self.report.error(
                "",
                "kubesmith_apiserver_vip",
                vip_value,
                "is not an IP address",
                "set kubesmith_apiserver_vip to a free IP in the lb hosts' subnet",
            )
            return
        for host, address in self.host_ips.items():
            if address == vip:
                self.report.error(
                    "",
                    "kubesmith_apiserver_vip",
                    vip_value,
                    f"is the IP of host {host}: keepalived would steal it",
                    "set kubesmith_apiserver_vip to an unused IP in the lb hosts' subnet",
                )
        for name in ("kubesmith_pod_cidr", "kubesmith_service_cidr"):
            value = self.cluster.get(name)
            network = _network(value)
            if network is not None and vip.version == network.version and vip in network:
                self.report.error(
                    "",
                    "kubesmith_apiserver_vip",
                    vip_value,
                    f"lies inside {name}={value!r}",
                    "set kubesmith_apiserver_vip to an unused IP in the lb hosts' subnet",
                )
        lb_families = {self.host_ips[h].version for h in self.members(LB) if h in self.host_ips}
        if lb_families and vip.version not in lb_families:
            self.report.error(
                "",
                "kubesmith_apiserver_vip",
                vip_value,
                f"is IPv{vip.version} but the {LB} hosts have IPv{min(lb_families)} addresses",
                "set kubesmith_apiserver_vip to an unused IP in the lb hosts' subnet",
            )

    # --- ports --------------------------------------------------------------------
    def check_ports(self) -> None:
        plan = self.plan()
        for host in self.cluster_hosts:
            by_port: dict[tuple[str, int], PlannedListener] = {}
            for listener in plan.listeners(host):
                other = by_port.setdefault((listener.proto, listener.port), listener)
                if other is listener or not _binds_overlap(other.bind, listener.bind):
                    continue
                variable = listener.variable or other.variable
                self.report.error(
                    host,
                    variable,
                    listener.port,
                    f"is also the port of {other.component} on this host: "
                    f"{listener.component} and {other.component} cannot both listen",
                    f"change {variable} (each component on a host needs its own port)",
                )
        node_ports = self.node_port_range()
        if node_ports is None:
            return
        low, high = node_ports
        for name in ("kubesmith_apiserver_port", "kubesmith_apiserver_vip_port"):
            port = self.cluster.get(name)
            if port is not None and low <= port <= high:
                self.report.error(
                    "",
                    name,
                    port,
                    f"lies in kubesmith_node_port_range {low}-{high}: "
                    "a NodePort Service could take it",
                    f"move {name} out of {low}-{high}",
                )

    def plan(self) -> ClusterPlan:
        groups = {g: self.members(g) for g in (*CLUSTER_GROUPS, K8S)}
        return ClusterPlan(
            groups, {h: str(ip) for h, ip in self.host_ips.items()}, dict(self.cluster)
        )

    def node_port_range(self) -> tuple[int, int] | None:
        value = self.cluster.get("kubesmith_node_port_range")
        if value is None:
            return None
        match = re.fullmatch(r"(\d+)-(\d+)", str(value).strip())
        if match is not None:
            low, high = int(match.group(1)), int(match.group(2))
            if 0 < low < high <= 65535:
                return low, high
        self.report.error(
            "",
            "kubesmith_node_port_range",
            value,
            "is not a port range FIRST-LAST with 0 < FIRST < LAST <= 65535",
            "set kubesmith_node_port_range like 30000-32767",
        )
        return None

    # --- versions -----------------------------------------------------------------
    def host_version(self, host: str) -> tuple[int, int, int] | None:
        return parse_version(self.data.hostvars.get(host, {}).get("kubesmith_kubernetes_version"))

    def check_versions(self) -> None:
        self.check_kubernetes_skew()
        kubernetes = parse_version(self.cluster.get("kubesmith_kubernetes_version"))
        if kubernetes is None:
            versions = [v for v in map(self.host_version, self.members(CONTROL_PLANE)) if v]
            kubernetes = min(versions) if versions else None
        etcd = parse_version(self.cluster.get("kubesmith_etcd_version"))
        if etcd is not None and etcd < ETCD_MIN:
            self.report.error(
                "",
                "kubesmith_etcd_version",
                self.cluster["kubesmith_etcd_version"],
                f"is older than {format_version(ETCD_MIN)}, "
                "the oldest etcd current Kubernetes supports",
                "set kubesmith_etcd_version to v3.5.x or v3.6.x",
            )
        flannel = parse_version(self.cluster.get("kubesmith_flannel_version"))
        if flannel is not None and flannel < FLANNEL_ETCD_V3_MIN:
            self.report.error(
                "",
                "kubesmith_flannel_version",
                self.cluster["kubesmith_flannel_version"],
                f"speaks only etcd's v2 API (v3 from {format_version(FLANNEL_ETCD_V3_MIN)}); "
                "etcd 3.6 has no v2 API",
                f"set kubesmith_flannel_version to {format_version(FLANNEL_ETCD_V3_MIN)} or newer",
            )
        mode = self.cluster.get("kubesmith_kube_proxy_mode")
        if mode == "nftables" and kubernetes is not None and kubernetes < NFTABLES_MIN_KUBERNETES:
            self.report.error(
                "",
                "kubesmith_kube_proxy_mode",
                mode,
                f"needs Kubernetes {format_version(NFTABLES_MIN_KUBERNETES)} or newer, "
                f"not {format_version(kubernetes)}",
                "use kubesmith_kube_proxy_mode: iptables, or a newer kubesmith_kubernetes_version",
            )

    def check_kubernetes_skew(self) -> None:
        control = {h: v for h in self.members(CONTROL_PLANE) if (v := self.host_version(h))}
        if not control:
            return
        oldest_host, oldest = min(control.items(), key=lambda item: item[1])
        newest_host, newest = max(control.items(), key=lambda item: item[1])
        if newest[:2] > (oldest[0], oldest[1] + 1):
            self.report.error(
                newest_host,
                "kubesmith_kubernetes_version",
                format_version(newest),
                f"is more than one minor newer than the apiserver on {oldest_host} "
                f"({format_version(oldest)})",
                "upgrade control-plane hosts one minor version at a time",
            )
        for host in self.members(K8S):
            version = self.host_version(host)
            if version is None or host in control:
                continue
            if version[:2] > oldest[:2]:
                self.report.error(
                    host,
                    "kubesmith_kubernetes_version",
                    format_version(version),
                    f"makes kubelet newer than the apiserver on {oldest_host} "
                    f"({format_version(oldest)})",
                    "upgrade the control-plane hosts first, or lower this host's version",
                )
            elif oldest[1] - version[1] > KUBELET_MAX_MINOR_SKEW or version[0] != oldest[0]:
                self.report.error(
                    host,
                    "kubesmith_kubernetes_version",
                    format_version(version),
                    f"is more than {KUBELET_MAX_MINOR_SKEW} minors older than the apiserver "
                    f"({format_version(oldest)})",
                    "upgrade this host's kubelet before the control plane moves further",
                )

    # --- PKI and names --------------------------------------------------------------
    def check_pki(self) -> None:
        valid = self.cluster.get("kubesmith_pki_cert_valid_days")
        renew = self.cluster.get("kubesmith_pki_renew_before_days")
        if valid is not None and renew is not None and renew >= valid:
            self.report.error(
                "",
                "kubesmith_pki_renew_before_days",
                renew,
                f"is not less than kubesmith_pki_cert_valid_days={valid}: every run would renew",
                "make kubesmith_pki_renew_before_days smaller than kubesmith_pki_cert_valid_days",
            )
        ca_days = self.cluster.get("kubesmith_pki_ca_valid_days")
        if valid is not None and ca_days is not None and valid > ca_days:
            self.report.error(
                "",
                "kubesmith_pki_cert_valid_days",
                valid,
                f"outlives the CA (kubesmith_pki_ca_valid_days={ca_days})",
                "make certificates expire before the CA",
            )
        for name in ("kubesmith_cluster_domain", "kubesmith_cluster_name"):
            value = self.cluster.get(name)
            if value is not None and not _is_dns_name(value):
                self.report.error(
                    "",
                    name,
                    value,
                    "is not a lower-case DNS name",
                    f"set {name} to lower-case letters, digits, '-' and '.'",
                )
        for san in self.cluster.get("kubesmith_apiserver_extra_sans", []):
            if _address(san) is None and not _is_dns_name(san.removeprefix("*.")):
                self.report.error(
                    "",
                    "kubesmith_apiserver_extra_sans",
                    san,
                    "is neither an IP address nor a DNS name",
                    "list only IP addresses and DNS names in kubesmith_apiserver_extra_sans",
                )

    # --- role argument specs --------------------------------------------------------
    def check_role_specs(self) -> None:
        for spec in self.data.role_specs:
            runs_on = set(spec.hosts) if spec.hosts is not None else set()
            for option_name, option in spec.options.items():
                self.check_role_option(spec.name, option_name, option)
                for host in self.cluster_hosts:
                    hostvars = self.data.hostvars.get(host, {})
                    if (
                        option_name not in hostvars
                        and option.get("required")
                        and "default" not in option
                        and option_name not in spec.defaults
                        and host in runs_on
                    ):
                        self.report.error(
                            host,
                            option_name,
                            None,
                            f"is required by role {spec.name} and not set",
                            f"set {option_name} for this host "
                            f"(roles/{spec.name}/meta/argument_specs.yml)",
                        )

    def check_role_option(self, role: str, name: str, option: Mapping[str, Any]) -> None:
        """The option's value on every host that sets it; one line per distinct problem."""
        problems: dict[tuple[str, str], tuple[Any, list[str]]] = {}
        for host in self.cluster_hosts:
            hostvars = self.data.hostvars.get(host, {})
            if name not in hostvars:
                continue
            try:
                convert(hostvars[name], option)
            except SpecError as exc:
                value = hostvars[name]
                problems.setdefault((show(value), str(exc)), (value, []))[1].append(host)
        for (_shown, why), (value, hosts) in problems.items():
            self.report.error(
                self.subject(hosts),
                name,
                value,
                f"{why} (role {role})",
                f"set {name} to {_wanted(option)} (roles/{role}/meta/argument_specs.yml)",
            )

    # --- variable names -------------------------------------------------------------
    def check_variable_names(self) -> None:
        """A kubesmith_* or <role>_* variable no role knows: a misspelling Ansible ignores."""
        known = self.data.known
        if known is None:
            return
        known = known.including(name for spec in self.data.role_specs for name in spec.options)
        unknown: dict[str, list[str]] = {}
        for host in self.cluster_hosts:
            for name in self.data.inventory_names.get(host, ()):
                if known.owner(name) is not None and name not in known.names:
                    unknown.setdefault(name, []).append(host)
        for name, hosts in unknown.items():
            owner = known.owner(name)
            what = (
                "a kubesmith variable" if owner == CLUSTER_ROLE else f"a variable of role {owner}"
            )
            nearest = known.nearest(name)
            fix = (
                f"did you mean {nearest}? Rename it in the inventory"
                if nearest
                else f"remove it, or use a name from roles/{owner}/defaults/main.yml "
                "(a name of your own: add it to preflight_inventory_only_variables)"
            )
            self.report.error(
                self.subject(hosts),
                name,
                NO_VALUE,
                f"is not {what}: nothing reads it, so it would be silently ignored",
                fix,
            )


def _wanted(option: Mapping[str, Any]) -> str:
    choices = option.get("choices")
    return f"one of {list(choices)}" if choices else with_article(option.get("type", "str"))


def resolve_hosts(pattern: Any, groups: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Hosts a play's `hosts:` pattern selects (a:b, a,b, &a, !a); None for templated ones."""
    if isinstance(pattern, list):
        pattern = ",".join(str(part) for part in pattern)
    if not isinstance(pattern, str) or "{{" in pattern:
        return None
    selected: list[str] = []
    for token in filter(None, re.split(r"[:,]", pattern.replace(" ", ""))):
        name = token.lstrip("&!")
        if name in ("all", "*"):
            members = list(groups.get("all", ()))
        else:
            members = list(groups.get(name, [name] if name in groups.get("all", ()) else []))
        if token.startswith("&"):
            selected = [host for host in selected if host in members]
        elif token.startswith("!"):
            selected = [host for host in selected if host not in members]
        else:
            selected.extend(host for host in members if host not in selected)
    return selected


def play_roles(play: Mapping[str, Any]) -> list[str]:
    """Role names a play runs: its roles list and its import_role/include_role tasks."""
    names: list[Any] = []
    for entry in play.get("roles") or []:
        names.append(entry.get("role", entry.get("name")) if isinstance(entry, Mapping) else entry)
    for section in ("pre_tasks", "tasks", "post_tasks"):
        for task in play.get(section) or []:
            if not isinstance(task, Mapping):
                continue
            for action in ("import_role", "include_role"):
                for key in (action, f"ansible.builtin.{action}"):
                    if isinstance(task.get(key), Mapping):
                        names.append(task[key].get("name"))
    return [str(name).rsplit(".", 1)[-1] for name in names if name]


def _binds_overlap(first: str, second: str) -> bool:
    wildcard = ("0.0.0.0", "::")
    return first in wildcard or second in wildcard or first == second


def _address(value: Any) -> IPAddress | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _network(value: Any) -> IPNetwork | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        return None


def _is_dns_name(value: str) -> bool:
    return 0 < len(value) <= 253 and all(_DNS_LABEL.match(label) for label in value.split("."))


def _distinct(per_host: Mapping[str, Any]) -> list[Any]:
    return [value for _host, value in _first_host_of_each(per_host)]


def _first_host_of_each(per_host: Mapping[str, Any]) -> list[tuple[str, Any]]:
    seen: list[Any] = []
    firsts: list[tuple[str, Any]] = []
    for host, value in per_host.items():
        if value not in seen:
            seen.append(value)
            firsts.append((host, value))
    return firsts

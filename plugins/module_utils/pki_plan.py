"""The cluster's certificate list, derived from inventory facts.

The output is the ``certificates`` argument of kubesmith.cluster.pki_set: every path below is
relative to the PKI directory on the deploy host (see docs/pki.md for the layout contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.kubesmith.cluster.plugins.module_utils.netcalc import (
    NetcalcError,
    host_list,
    is_ip_address,
    nth_ip,
    parse_address,
)

CLUSTER_CA = "ca"
ETCD_CA = "etcd/ca"
FRONT_PROXY_CA = "front-proxy-ca"
# Groups bound by Kubernetes' default RBAC; system:masters bypasses authorization entirely,
# so only the admin identity and the apiserver's kubelet client (which needs nodes/proxy,
# exec and logs on every kubelet) carry it.
MASTERS = "system:masters"
CSR_APPROVER = "system:kubesmith:csr-approver"


class PlanError(ValueError):
    """Bad cluster facts; the message names the field, its value and the fix."""


def apiserver_sans(facts: Mapping[str, Any]) -> dict[str, list[str]]:
    """DNS names and IPs the apiserver's serving certificate must carry."""
    domain = text(facts, "cluster_domain", "cluster.local")
    dns = {
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{domain}",
        "localhost",
    }
    try:
        ips = {nth_ip(facts.get("service_cidr"), 1, "service_cidr"), "127.0.0.1"}
        control_plane = host_list(facts.get("control_plane", []), "control_plane")
        load_balancers = host_list(facts.get("lb") or [], "lb")
    except NetcalcError as exc:
        raise PlanError(str(exc)) from exc
    if not control_plane:
        raise PlanError(
            "control_plane: empty; the kube_control_plane group needs at least one host"
        )
    for host in control_plane + load_balancers:
        dns.add(host["name"])
        ips.add(host["ip"])
    vip = facts.get("vip") or ""
    if vip:
        try:
            ips.add(str(parse_address(vip, "vip")))
        except NetcalcError as exc:
            raise PlanError(str(exc)) from exc
    extra = facts.get("extra_sans") or []
    if isinstance(extra, str) or not isinstance(extra, list | tuple):
        raise PlanError(f"extra_sans: expected a list of DNS names or IPs, got {extra!r}")
    for name in extra:
        if not isinstance(name, str) or not name:
            raise PlanError(f"extra_sans: entry {name!r} is not a DNS name or IP address")
        (ips if is_ip_address(name) else dns).add(name)
    return {"dns": sorted(dns), "ip": sorted(ips, key=sort_ip)}


def sort_ip(address: str) -> tuple[int, str]:
    return (6 if ":" in address else 4, address)


def text(facts: Mapping[str, Any], key: str, default: str) -> str:
    value = facts.get(key) or default
    if not isinstance(value, str):
        raise PlanError(f"{key}: expected a string, got {value!r}")
    return value


def leaf(
    path: str,
    ca: str,
    common_name: str,
    usages: list[str],
    *,
    organizations: list[str] | None = None,
    dns_names: list[str] | None = None,
    ip_addresses: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "name": path.replace("/", "-"),
        "path": path,
        "kind": "leaf",
        "ca": ca,
        "common_name": common_name,
        "organizations": organizations or [],
        "dns_names": dns_names or [],
        "ip_addresses": ip_addresses or [],
        "usages": usages,
    }


def authority(path: str, common_name: str, valid_days: int) -> dict[str, Any]:
    return {
        "name": path.replace("/", "-"),
        "path": path,
        "kind": "ca",
        "common_name": common_name,
        "valid_days": valid_days,
    }


def etcd_member_certs(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Server and peer certificates per etcd member: its name, its IP and loopback."""
    try:
        members = host_list(facts.get("etcd", []), "etcd")
    except NetcalcError as exc:
        raise PlanError(str(exc)) from exc
    if not members:
        raise PlanError("etcd: empty; the etcd group needs at least one host")
    certs = []
    for member in members:
        dns = sorted({member["name"], "localhost"})
        ips = sorted({member["ip"], "127.0.0.1", "::1"}, key=sort_ip)
        base = f"etcd/members/{member['name']}"
        # etcd dials its peers and its own client URL with these certificates too.
        both = ["client", "server"]
        certs.append(
            leaf(f"{base}/server", ETCD_CA, member["name"], both, dns_names=dns, ip_addresses=ips)
        )
        certs.append(
            leaf(f"{base}/peer", ETCD_CA, member["name"], both, dns_names=dns, ip_addresses=ips)
        )
    return certs


def pki_plan(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every CA, certificate and key pair of one cluster, in pki_set's format."""
    if not isinstance(facts, Mapping):
        raise PlanError(f"facts: expected a mapping of cluster facts, got {facts!r}")
    ca_days = facts.get("ca_valid_days", 3650)
    sans = apiserver_sans(facts)
    items = [
        authority(CLUSTER_CA, "kubernetes-ca", ca_days),
        authority(ETCD_CA, "etcd-ca", ca_days),
        authority(FRONT_PROXY_CA, "front-proxy-ca", ca_days),
        {"name": "sa", "path": "sa", "kind": "keypair"},
        leaf(
            "apiserver",
            CLUSTER_CA,
            "kube-apiserver",
            ["server"],
            dns_names=sans["dns"],
            ip_addresses=sans["ip"],
        ),
        leaf(
            "apiserver-kubelet-client",
            CLUSTER_CA,
            "kube-apiserver-kubelet-client",
            ["client"],
            organizations=[MASTERS],
        ),
        leaf("apiserver-etcd-client", ETCD_CA, "kube-apiserver-etcd-client", ["client"]),
        leaf("front-proxy-client", FRONT_PROXY_CA, "front-proxy-client", ["client"]),
        leaf("etcd/healthcheck-client", ETCD_CA, "kube-etcd-healthcheck-client", ["client"]),
        leaf("etcd/flanneld-client", ETCD_CA, "flanneld", ["client"]),
        leaf("users/admin", CLUSTER_CA, "kubernetes-admin", ["client"], organizations=[MASTERS]),
        leaf("users/controller-manager", CLUSTER_CA, "system:kube-controller-manager", ["client"]),
        leaf("users/scheduler", CLUSTER_CA, "system:kube-scheduler", ["client"]),
        leaf("users/kube-proxy", CLUSTER_CA, "system:kube-proxy", ["client"]),
        # kubesmith-csr-approver on control-plane hosts (roles/csr_approver); RBAC lets it read
        # CSRs and Nodes and approve for the kubelet-serving signer, nothing else.
        leaf("users/csr-approver", CLUSTER_CA, CSR_APPROVER, ["client"]),
    ]
    items += etcd_member_certs(facts)
    return items


def file_entry(src: str, dest: str) -> dict[str, Any]:
    secret = src.endswith((".key", ".conf"))
    return {"src": src, "dest": dest, "mode": "0600" if secret else "0644", "secret": secret}


def pair(src: str, dest: str) -> list[dict[str, Any]]:
    return [file_entry(f"{src}.crt", f"{dest}.crt"), file_entry(f"{src}.key", f"{dest}.key")]


def host_files(group_names: Any, hostname: Any, flanneld: bool = True) -> list[dict[str, Any]]:
    """What one host gets from the PKI directory, in kubeadm's layout.

    Each entry: src (relative to the PKI directory), dest (relative to /etc/kubernetes), mode
    and secret (keys and kubeconfigs: copy with no_log). The etcd and front-proxy CA keys are
    never in the list; the cluster CA key goes to control-plane hosts only.
    """
    if isinstance(group_names, str) or not isinstance(group_names, list | tuple):
        raise PlanError(f"group_names: expected the host's list of groups, got {group_names!r}")
    if not isinstance(hostname, str) or not hostname:
        raise PlanError(f"hostname: expected the inventory host name, got {hostname!r}")
    groups = set(group_names)
    files: list[dict[str, Any]] = []
    if "k8s_cluster" in groups or "kube_control_plane" in groups or "kube_node" in groups:
        files.append(file_entry("ca.crt", "pki/ca.crt"))
        files.append(file_entry("kubeconfigs/kube-proxy.conf", "kube-proxy.conf"))
        if flanneld:
            files.append(file_entry("etcd/ca.crt", "pki/etcd/ca.crt"))
            files += pair("etcd/flanneld-client", "pki/etcd/flanneld-client")
    if "kube_control_plane" in groups:
        files += [
            file_entry("ca.key", "pki/ca.key"),
            file_entry("sa.key", "pki/sa.key"),
            file_entry("sa.pub", "pki/sa.pub"),
            file_entry("front-proxy-ca.crt", "pki/front-proxy-ca.crt"),
            file_entry("etcd/ca.crt", "pki/etcd/ca.crt"),
            file_entry("kubeconfigs/admin.conf", "admin.conf"),
            file_entry("kubeconfigs/controller-manager.conf", "controller-manager.conf"),
            file_entry("kubeconfigs/scheduler.conf", "scheduler.conf"),
        ]
        for name in (
            "apiserver",
            "apiserver-kubelet-client",
            "apiserver-etcd-client",
            "front-proxy-client",
        ):
            files += pair(name, f"pki/{name}")
        # Its own directory, so its unit can show it these files and nothing else of the PKI.
        files.append(file_entry("ca.crt", "pki/csr-approver/ca.crt"))
        files += pair("users/csr-approver", "pki/csr-approver/client")
    if "etcd" in groups:
        files.append(file_entry("etcd/ca.crt", "pki/etcd/ca.crt"))
        files += pair("etcd/healthcheck-client", "pki/etcd/healthcheck-client")
        files += pair(f"etcd/members/{hostname}/server", "pki/etcd/server")
        files += pair(f"etcd/members/{hostname}/peer", "pki/etcd/peer")
    unique = {entry["dest"]: entry for entry in files}
    return sorted(unique.values(), key=lambda entry: entry["dest"])

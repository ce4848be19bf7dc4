"""Preflight layer 2: judge every host's recorded facts against what kubesmith will run there.

Input: the ClusterPlan of the inventory and, per host, what the action preflight_host_facts
returned (the facts, or why the host could not be read). Output: a Report of every problem.
Pure functions over plain data, so recorded facts stand in for hosts the lab cannot produce.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight import Report
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_inventory import (
    LB,
    PROXY_KERNEL_FEATURES,
    ClusterPlan,
    PlannedListener,
)

# kube-proxy's nftables mode needs kernel 5.13 or newer.
NFTABLES_MIN_KERNEL = (5, 13)
_WILDCARDS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class HostSettings:
    """Thresholds of the host checks (role preflight's defaults)."""

    supported_os: Mapping[str, Sequence[str]] = field(default_factory=lambda: {"debian": ["12"]})
    min_memory_mb: Mapping[str, int] = field(default_factory=dict)
    min_cpus: Mapping[str, int] = field(default_factory=dict)
    # Each item: {group, path, min_free_mb}.
    disk: Sequence[Mapping[str, Any]] = ()
    max_clock_skew_seconds: float = 2.0


def check_hosts(
    plan: ClusterPlan,
    results: Mapping[str, Mapping[str, Any]],
    settings: HostSettings,
    report: Report | None = None,
) -> Report:
    """Every problem of every host, reported together."""
    report = report if report is not None else Report()
    offsets: dict[str, tuple[float, float]] = {}
    for host in plan.hosts:
        result = results.get(host)
        if result is None:
            continue
        facts = result.get("preflight_host")
        if not isinstance(facts, Mapping):
            _report_unreadable(report, plan, host, result)
            continue
        checker = _HostChecker(plan, host, facts, settings, report)
        checker.run()
        if checker.offset is not None and checker.clock_ok:
            offsets[host] = (checker.offset, checker.uncertainty)
    _check_clock_spread(report, offsets, settings.max_clock_skew_seconds)
    return report


def _report_unreadable(
    report: Report, plan: ClusterPlan, host: str, result: Mapping[str, Any]
) -> None:
    failure = result.get("preflight_failure") or {}
    kind = failure.get("kind", "failed")
    reason = " ".join(str(failure.get("msg", "no reason given")).split())[:300]
    user = failure.get("user") or "the connecting user"
    become_user = failure.get("become_user") or "root"
    address = plan.host_ips.get(host, host)
    if kind == "unreachable":
        report.error(
            host,
            "ansible_host",
            address,
            f"is unreachable: {reason}",
            "start the host, check ansible_host/ansible_user/ansible_port and SSH keys",
        )
    elif kind == "become":
        report.error(
            host,
            "ansible_become",
            True,
            f"failed: {user} cannot become {become_user} ({reason})",
            f"give {user} passwordless sudo (or pass --ask-become-pass)",
        )
    else:
        report.error(
            host,
            "preflight_host_facts",
            kind,
            f"could not read the host ({reason})",
            "make the host run Python 3 and retry; see the task output above",
        )


def _check_clock_spread(
    report: Report, offsets: Mapping[str, tuple[float, float]], limit: float
) -> None:
    """Hosts each close enough to the deploy host can still be too far from each other.

    offsets: host -> (offset to the deploy host, half the width of the window it was read in).
    """
    if len(offsets) < 2:
        return
    fast = max(offsets, key=lambda h: offsets[h][0])
    slow = min(offsets, key=lambda h: offsets[h][0])
    spread = offsets[fast][0] - offsets[slow][0]
    if spread - offsets[fast][1] - offsets[slow][1] > limit:
        report.error(
            fast,
            "clock",
            f"{spread:+.1f}s",
            f"is ahead of {slow}'s clock by more than {limit:g}s: "
            "etcd and certificates need agreeing clocks",
            "synchronise every host's clock with NTP (chrony) before deploying",
        )


class _HostChecker:
    def __init__(
        self,
        plan: ClusterPlan,
        host: str,
        facts: Mapping[str, Any],
        settings: HostSettings,
        report: Report,
    ) -> None:
        self.plan = plan
        self.host = host
        self.facts = facts
        self.settings = settings
        self.report = report
        self.groups = [g for g in plan.host_groups(host) if g != "k8s_cluster"]
        self.offset: float | None = None
        self.uncertainty = 0.0
        self.clock_ok = True

    def run(self) -> None:
        self.check_privilege()
        self.check_os()
        self.check_resources()
        self.check_swap()
        self.check_clock()
        self.check_kernel()
        self.check_addresses()
        self.check_ports()

    def error(self, variable: str, value: Any, why: str, fix: str) -> None:
        self.report.error(self.host, variable, value, why, fix)

    def check_privilege(self) -> None:
        if self.facts.get("euid") != 0:
            self.error(
                "ansible_become",
                False,
                f"leaves preflight running as uid {self.facts.get('euid')}, not root",
                "set ansible_become: true for the host (kubesmith installs system services)",
            )

    def check_os(self) -> None:
        release = self.facts.get("os") or {}
        os_id = str(release.get("id", "unknown"))
        version = str(release.get("version_id", ""))
        versions = [str(v) for v in self.settings.supported_os.get(os_id, [])]
        major = version.split(".", maxsplit=1)[0]
        if version not in versions and major not in versions:
            name = release.get("pretty_name") or f"{os_id} {version}"
            wanted = "; ".join(
                f"{k} {', '.join(map(str, v))}" for k, v in self.settings.supported_os.items()
            )
            self.error(
                "os",
                name,
                f"is not a supported OS release (supported: {wanted})",
                "install a supported release, or add it to preflight_supported_os if you test it",
            )

    def check_resources(self) -> None:
        memory = self.facts.get("memory") or {}
        need = sum(self.settings.min_memory_mb.get(g, 0) for g in self.groups)
        total = memory.get("mem_total_mb")
        if total is not None and total < need:
            self.error(
                "memory",
                f"{total} MiB",
                f"is less than the {need} MiB its roles need ({', '.join(self.groups)})",
                "add memory, or move roles to other hosts (thresholds: preflight_min_memory_mb)",
            )
        cpus = self.facts.get("cpus")
        need_cpus = max((self.settings.min_cpus.get(g, 0) for g in self.groups), default=0)
        if isinstance(cpus, int) and cpus < need_cpus:
            self.error(
                "cpus",
                cpus,
                f"is fewer than the {need_cpus} its roles need",
                "add CPUs (threshold: preflight_min_cpus)",
            )
        free = {d.get("path"): d for d in self.facts.get("disks") or []}
        for item in self.settings.disk:
            if item.get("group") not in self.plan.host_groups(self.host):
                continue
            measured = free.get(item.get("path"))
            if measured is None:
                continue
            if measured["free_mb"] < int(item["min_free_mb"]):
                self.error(
                    f"disk {item['path']}",
                    f"{measured['free_mb']} MiB free",
                    f"is less than the {item['min_free_mb']} MiB {item['group']} needs "
                    f"(measured at {measured.get('measured_at', item['path'])})",
                    "free or add disk space (threshold: preflight_disk_requirements)",
                )

    def check_swap(self) -> None:
        memory = self.facts.get("memory") or {}
        swaps = self.facts.get("swaps") or []
        if not swaps:
            return
        used = sum(int(s.get("used_mb", 0)) for s in swaps)
        available = int(memory.get("mem_available_mb", 0))
        names = ", ".join(str(s.get("name")) for s in swaps)
        if used >= available:
            self.error(
                "swap",
                f"{used} MiB used",
                f"cannot be turned off: only {available} MiB of memory is available "
                "to take it back",
                f"free memory (or reboot) so that swap ({names}) can be turned off",
            )
        else:
            self.report.warn(
                self.host,
                "swap",
                names,
                "is on: the prepare stage turns it off (kubelet needs it off)",
                "nothing; or turn swap off yourself and remove it from /etc/fstab",
            )

    def check_clock(self) -> None:
        now = self.facts.get("time")
        before = self.facts.get("controller_before")
        after = self.facts.get("controller_after")
        if not all(isinstance(v, int | float) for v in (now, before, after)):
            return
        assert isinstance(now, int | float) and isinstance(before, int | float)
        assert isinstance(after, int | float)
        uncertainty = (after - before) / 2
        offset = now - (before + after) / 2
        self.offset = offset
        self.uncertainty = uncertainty
        limit = self.settings.max_clock_skew_seconds
        if abs(offset) - uncertainty > limit:
            self.clock_ok = False
            direction = "ahead of" if offset > 0 else "behind"
            self.error(
                "clock",
                f"{offset:+.1f}s",
                f"is {direction} the deploy host's clock by more than {limit:g}s: "
                "certificates would not be valid yet or already expired",
                "synchronise every host's clock with NTP (chrony) before deploying",
            )

    def check_kernel(self) -> None:
        features = self.facts.get("kernel_features") or {}
        kernel = str(self.facts.get("kernel", ""))
        mode = str(self.plan.cluster.get("kubesmith_kube_proxy_mode"))
        missing = [
            feature
            for feature in self.plan.kernel_features(self.host)
            if features.get(feature, "absent") == "absent"
        ]
        if "ip_vs" in missing:
            # The schedulers are parts of IP_VS: without it, naming them too says nothing new.
            missing = [feature for feature in missing if not feature.startswith("ip_vs_")]
        for feature in missing:
            needed_by = (
                f", which kubesmith_kube_proxy_mode={mode!r} needs"
                if feature in PROXY_KERNEL_FEATURES.get(mode, ())
                else ""
            )
            self.error(
                "kernel feature",
                feature,
                f"is neither built into kernel {kernel} nor loadable{needed_by}",
                _kernel_fix(feature),
            )
        if self.plan.cluster.get("kubesmith_kube_proxy_mode") == "nftables":
            numbers = kernel.split("-", maxsplit=1)[0].split(".")
            version = tuple(int(n) for n in numbers[:2] if n.isdigit())
            if "k8s_cluster" in self.plan.host_groups(self.host) and version < NFTABLES_MIN_KERNEL:
                self.error(
                    "kernel",
                    kernel,
                    "is older than 5.13, which kube-proxy's nftables mode needs",
                    "upgrade the kernel or use kubesmith_kube_proxy_mode: iptables",
                )

    def check_addresses(self) -> None:
        addresses = self.facts.get("addresses")
        if addresses is None:
            return
        networks = [ipaddress.ip_interface(a["cidr"]) for a in addresses]
        host_ip = self.plan.host_ips.get(self.host)
        own = [n for n in networks if host_ip and str(n.ip) == host_ip]
        if host_ip and not own and ipaddress.ip_address(host_ip).is_loopback:
            # Linux answers on every address of 127.0.0.0/8 that lo holds.
            own = [
                n
                for n in networks
                if n.ip.is_loopback and ipaddress.ip_address(host_ip) in n.network
            ]
        if host_ip and not own:
            self.error(
                "ansible_host",
                host_ip,
                "is not an address of any interface on this host (behind NAT?): "
                "components would advertise an IP that is not theirs",
                "set kubesmith_node_ip to the host's own address on the cluster network",
            )
        vip = self.plan.cluster.get("kubesmith_apiserver_vip")
        is_vip_host = LB in self.plan.host_groups(self.host)
        if not (
            vip
            and own
            and is_vip_host
            and self.plan.cluster.get("kubesmith_apiserver_lb_mode") == "vip"
        ):
            return
        subnet = own[0].network
        try:
            inside = ipaddress.ip_address(vip) in subnet
        except ValueError:
            return
        if not inside:
            self.report.error(
                "",
                "kubesmith_apiserver_vip",
                vip,
                f"is outside {self.host}'s subnet {subnet}: keepalived there cannot hold it",
                f"choose a free address in {subnet} for kubesmith_apiserver_vip",
            )

    def check_ports(self) -> None:
        listeners = self.facts.get("listeners") or []
        links = set(self.facts.get("links") or [])
        for planned in self.plan.listeners(self.host):
            for found in listeners:
                if not _conflicts(planned, found):
                    continue
                if _is_own(planned, found, links):
                    continue
                program = found.get("program", "unknown")
                self.error(
                    f"port {planned.port}/{planned.proto}",
                    f"{found.get('address')}:{found.get('port')}",
                    f"is held by {program} (pid {found.get('pid')}), "
                    f"but {planned.component} must listen there",
                    f"stop {program} on this host"
                    + (f", or change {planned.variable}" if planned.variable else ""),
                )


def _conflicts(planned: PlannedListener, found: Mapping[str, Any]) -> bool:
    if found.get("proto") != planned.proto or found.get("port") != planned.port:
        return False
    address = str(found.get("address"))
    return planned.bind in _WILDCARDS or address in _WILDCARDS or address == planned.bind


def _is_own(planned: PlannedListener, found: Mapping[str, Any], links: set[str]) -> bool:
    program = str(found.get("program", ""))
    if program == "kernel":
        # A VXLAN socket is kubesmith's only while flannel's own device exists.
        return "kernel" in planned.programs and any(link.startswith("flannel.") for link in links)
    return program in planned.programs


def _kernel_fix(feature: str) -> str:
    if feature.startswith("ip_vs"):
        return (
            "set kubesmith_kube_proxy_mode: iptables (or nftables), "
            "or use a kernel with IP_VS (CONFIG_IP_VS)"
        )
    return f"install a kernel that has {feature} built in or as a module"

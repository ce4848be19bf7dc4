"""Preflight layer 2 on recorded facts: what the lab cannot produce per host (its hosts share
one kernel, one clock and one memory), plus the parsers that read /proc on the hosts."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight import Report
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_hosts import (
    HostSettings,
    check_hosts,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_inventory import (
    plan_cluster,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_probe import (
    module_names,
    parse_ip_addr,
    parse_kernel_config,
    parse_meminfo,
    parse_os_release,
    parse_proc_net,
    parse_swaps,
    probe_feature,
)
from ansible_collections.kubesmith.cluster.plugins.modules.preflight_host_facts import (
    socket_owner,
)

from tests.unit.preflight_fixtures import HOST_IPS, Inventory

NOW = 1_790_000_000.0
SETTINGS = HostSettings(
    supported_os={"debian": ["12"]},
    min_memory_mb={"etcd": 1024, "kube_control_plane": 1700, "kube_node": 1024, "lb": 256},
    min_cpus={"kube_control_plane": 2},
    disk=[
        {"group": "etcd", "path": "/var/lib/etcd", "min_free_mb": 4096},
        {"group": "k8s_cluster", "path": "/var/lib/containerd", "min_free_mb": 10240},
    ],
    max_clock_skew_seconds=2,
)
# What preflight_host_facts recorded on lab host cp1 (Debian 12 container, monolithic kernel).
RECORDED: dict[str, Any] = {
    "time": NOW + 0.05,
    "controller_before": NOW,
    "controller_after": NOW + 0.1,
    "euid": 0,
    "os": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
    "kernel": "6.18.44-fc-v782",
    "cpus": 2,
    "memory": {
        "mem_total_mb": 24105,
        "mem_available_mb": 23394,
        "swap_total_mb": 0,
        "swap_free_mb": 0,
    },
    "swaps": [],
    "disks": [
        {"path": "/var/lib/etcd", "measured_at": "/var/lib", "free_mb": 79000},
        {"path": "/var/lib/containerd", "measured_at": "/var/lib/containerd", "free_mb": 79000},
    ],
    "kernel_features": {
        "overlay": "built-in",
        "br_netfilter": "built-in",
        "nf_conntrack": "built-in",
        "vxlan": "built-in",
        "iptable_nat": "built-in",
        "xt_statistic": "built-in",
        "nf_tables": "built-in",
        "ip_vs": "absent",
        "ip_vs_rr": "absent",
        "ip_vs_wrr": "absent",
        "ip_vs_sh": "absent",
    },
    "listeners": [
        {"proto": "tcp", "address": "0.0.0.0", "port": 22, "pid": 80, "program": "sshd"},
    ],
    "addresses": [
        {"interface": "lo", "cidr": "127.0.0.1/8"},
        {"interface": "eth0", "cidr": "CIDR"},
    ],
    "links": ["eth0", "lo"],
}


def recorded(host: str) -> dict[str, Any]:
    facts = copy.deepcopy(RECORDED)
    facts["addresses"][1]["cidr"] = f"{HOST_IPS[host]}/24"
    return facts


def run(
    changes: dict[str, dict[str, Any]] | None = None, inventory: Inventory | None = None
) -> Report:
    plan = plan_cluster((inventory or Inventory()).data())
    results: dict[str, dict[str, Any]] = {h: {"preflight_host": recorded(h)} for h in HOST_IPS}
    for host, change in (changes or {}).items():
        if "preflight_failure" in change:
            results[host] = change
        else:
            results[host]["preflight_host"].update(change)
    return check_hosts(plan, results, SETTINGS)


def only_error(changes: dict[str, dict[str, Any]], inventory: Inventory | None = None) -> str:
    report = run(changes, inventory)
    assert len(report.errors) == 1, report.errors
    assert "\n" not in report.errors[0]
    line: str = report.errors[0]
    return line


def test_recorded_lab_hosts_pass() -> None:
    report = run()
    assert report.errors == []
    assert report.warnings == []


def test_clock_ahead_of_the_deploy_host() -> None:
    line = only_error({"node1": {"time": NOW + 7.55}})
    assert line.startswith(
        "node1: clock='+7.5s' is ahead of the deploy host's clock by more than 2s"
    )
    assert "fix: synchronise every host's clock with NTP" in line


def test_clock_behind_the_deploy_host() -> None:
    line = only_error({"cp2": {"time": NOW - 29.95}})
    assert line.startswith("cp2: clock='-30.0s' is behind the deploy host's clock")


def test_slow_connection_widens_the_window_instead_of_failing() -> None:
    report = run({"node1": {"time": NOW + 3, "controller_after": NOW + 6}})
    assert report.errors == []


def test_clocks_apart_from_each_other() -> None:
    line = only_error({"node1": {"time": NOW + 1.9}, "node2": {"time": NOW - 1.8}})
    assert line.startswith("node1: clock='+3.7s' is ahead of node2's clock by more than 2s")


def test_slow_reads_do_not_make_clocks_disagree() -> None:
    # One shared clock read in long windows (a loaded deploy host), as in the lab.
    slow_read = {"controller_before": NOW, "controller_after": NOW + 5}
    report = run(
        {"node1": {**slow_read, "time": NOW + 4.8}, "lb1": {**slow_read, "time": NOW + 0.2}}
    )
    assert report.errors == []


def test_swap_that_cannot_be_turned_off() -> None:
    swaps = [{"name": "/swapfile", "type": "file", "size_mb": 8192, "used_mb": 6000}]
    memory = {
        "mem_total_mb": 8000,
        "mem_available_mb": 2000,
        "swap_total_mb": 8192,
        "swap_free_mb": 2192,
    }
    line = only_error({"node2": {"swaps": swaps, "memory": memory}})
    assert line == (
        "node2: swap='6000 MiB used' cannot be turned off: only 2000 MiB of memory is available "
        "to take it back; fix: free memory (or reboot) so that swap (/swapfile) can be turned off"
    )


def test_swap_that_can_be_turned_off_only_warns() -> None:
    swaps = [{"name": "/dev/vda2", "type": "partition", "size_mb": 2048, "used_mb": 10}]
    report = run({"node2": {"swaps": swaps}})
    assert report.errors == []
    assert report.warnings == [
        "node2: swap='/dev/vda2' is on: the prepare stage turns it off (kubelet needs it off); "
        "fix: nothing; or turn swap off yourself and remove it from /etc/fstab"
    ]


def test_memory_below_the_sum_of_the_roles() -> None:
    memory = {"mem_total_mb": 2048, "mem_available_mb": 1500, "swap_total_mb": 0, "swap_free_mb": 0}
    line = only_error({"cp1": {"memory": memory}})
    assert line.startswith(
        "cp1: memory='2048 MiB' is less than the 2724 MiB its roles need (etcd, kube_control_plane)"
    )
    assert "fix: add memory" in line


def test_too_few_cpus_on_a_control_plane_host() -> None:
    line = only_error({"cp3": {"cpus": 1}})
    assert line.startswith("cp3: cpus=1 is fewer than the 2 its roles need")


def test_disk_too_full() -> None:
    disks = [
        {"path": "/var/lib/etcd", "measured_at": "/var/lib", "free_mb": 900},
        {"path": "/var/lib/containerd", "measured_at": "/var/lib", "free_mb": 900},
    ]
    report = run({"cp1": {"disks": disks}})
    assert report.errors == [
        "cp1: disk /var/lib/etcd='900 MiB free' is less than the 4096 MiB etcd needs (measured at "
        "/var/lib); fix: free or add disk space (threshold: "
        "preflight_disk_requirements)",
        "cp1: disk /var/lib/containerd='900 MiB free' is less than the 10240 MiB k8s_cluster needs "
        "(measured at /var/lib); fix: free or add disk space (threshold: "
        "preflight_disk_requirements)",
    ]


def test_unsupported_os_release() -> None:
    release = {"id": "debian", "version_id": "11", "pretty_name": "Debian GNU/Linux 11 (bullseye)"}
    line = only_error({"lb2": {"os": release}})
    assert line.startswith(
        "lb2: os='Debian GNU/Linux 11 (bullseye)' is not a supported OS release "
        "(supported: debian 12)"
    )


def test_os_minor_release_matches_its_major() -> None:
    settings = HostSettings(supported_os={"rocky": ["9"]})
    plan = plan_cluster(Inventory().data())
    facts = recorded("lb1") | {"os": {"id": "rocky", "version_id": "9.4"}}
    assert check_hosts(plan, {"lb1": {"preflight_host": facts}}, settings).errors == []


def test_ipvs_mode_on_a_kernel_without_ip_vs() -> None:
    inventory = Inventory().set_all("kubesmith_kube_proxy_mode", "ipvs")
    plan = plan_cluster(inventory.data())
    results = {h: {"preflight_host": recorded(h)} for h in HOST_IPS}
    errors = check_hosts(plan, results, SETTINGS).errors
    # One line: the missing schedulers (ip_vs_rr, ...) are parts of IP_VS, not news.
    assert errors == [
        "cp1, cp2, cp3, node1, node2: kernel feature='ip_vs' is neither built into kernel "
        "6.18.44-fc-v782 nor loadable, which kubesmith_kube_proxy_mode='ipvs' needs; "
        "fix: set kubesmith_kube_proxy_mode: iptables (or nftables), "
        "or use a kernel with IP_VS (CONFIG_IP_VS)"
    ]


def test_ipvs_without_one_scheduler() -> None:
    inventory = Inventory().set_all("kubesmith_kube_proxy_mode", "ipvs")
    features = dict(
        RECORDED["kernel_features"], ip_vs="loadable", ip_vs_rr="loadable", ip_vs_wrr="loadable"
    )
    everywhere = {host: {"kernel_features": features} for host in HOST_IPS}
    line = only_error(everywhere, inventory)
    assert line.startswith(
        "cp1, cp2, cp3, node1, node2: kernel feature='ip_vs_sh' is neither built into kernel "
        "6.18.44-fc-v782 nor loadable, which kubesmith_kube_proxy_mode='ipvs' needs; fix: set "
        "kubesmith_kube_proxy_mode: iptables"
    )


def test_ipvs_on_a_kernel_with_ip_vs_passes() -> None:
    inventory = Inventory().set_all("kubesmith_kube_proxy_mode", "ipvs")
    loadable = dict.fromkeys(("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"), "loadable")
    plan = plan_cluster(inventory.data())
    results = {
        host: {
            "preflight_host": recorded(host)
            | {"kernel_features": RECORDED["kernel_features"] | loadable}
        }
        for host in HOST_IPS
    }
    assert check_hosts(plan, results, SETTINGS).errors == []


def test_iptables_mode_without_xt_statistic() -> None:
    features = dict(RECORDED["kernel_features"], xt_statistic="absent")
    line = only_error({"node1": {"kernel_features": features}})
    assert line.startswith(
        "node1: kernel feature='xt_statistic' is neither built into kernel 6.18.44-fc-v782 nor "
        "loadable, which kubesmith_kube_proxy_mode='iptables' needs; fix: install a kernel"
    )


def test_nftables_mode_on_an_old_kernel() -> None:
    inventory = Inventory().set_all("kubesmith_kube_proxy_mode", "nftables")
    line = only_error({"node1": {"kernel": "5.10.0-30-amd64"}}, inventory)
    assert line.startswith("node1: kernel='5.10.0-30-amd64' is older than 5.13")


def test_missing_overlayfs() -> None:
    features = dict(RECORDED["kernel_features"], overlay="absent")
    line = only_error({"node2": {"kernel_features": features}})
    assert "node2: kernel feature='overlay' is neither built into kernel" in line
    assert "needs" not in line


def test_port_held_by_another_program() -> None:
    listeners = [
        {"proto": "tcp", "address": "0.0.0.0", "port": 8443, "pid": 4242, "program": "python3.11"}
    ]
    line = only_error({"lb1": {"listeners": listeners}})
    assert line == (
        "lb1: port 8443/tcp='0.0.0.0:8443' is held by python3.11 (pid 4242), but nginx must listen "
        "there; fix: stop python3.11 on this host, or change kubesmith_apiserver_vip_port"
    )


def test_loopback_listener_blocks_a_wildcard_component() -> None:
    listeners = [
        {"proto": "tcp", "address": "127.0.0.1", "port": 2379, "pid": 7, "program": "etcd-old"}
    ]
    assert "cp2: port 2379/tcp='127.0.0.1:2379' is held by etcd-old" in only_error(
        {"cp2": {"listeners": listeners}}
    )


def test_other_address_does_not_block_a_loopback_component() -> None:
    listeners = [
        {"proto": "tcp", "address": "172.30.10.31", "port": 10248, "pid": 7, "program": "x"}
    ]
    assert run({"node1": {"listeners": listeners}}).errors == []


def test_kubesmiths_own_components_do_not_count() -> None:
    listeners = [
        {
            "proto": "tcp",
            "address": "0.0.0.0",
            "port": 6443,
            "pid": 10,
            "program": "kube-apiserver",
        },
        {"proto": "tcp", "address": "0.0.0.0", "port": 2379, "pid": 11, "program": "etcd"},
        {
            "proto": "tcp",
            "address": "127.0.0.1",
            "port": 10257,
            "pid": 12,
            "program": "kube-controller-manager",
        },
        {"proto": "udp", "address": "0.0.0.0", "port": 8472, "pid": 0, "program": "kernel"},
    ]
    assert run({"cp1": {"listeners": listeners, "links": ["eth0", "flannel.1", "lo"]}}).errors == []


def test_a_vxlan_socket_without_flannel_is_foreign() -> None:
    listeners = [
        {"proto": "udp", "address": "0.0.0.0", "port": 8472, "pid": 0, "program": "kernel"}
    ]
    line = only_error({"node2": {"listeners": listeners}})
    assert line.startswith(
        "node2: port 8472/udp='0.0.0.0:8472' is held by kernel (pid 0), but flannel vxlan"
    )


def test_unreachable_host() -> None:
    failure = {
        "preflight_failure": {
            "kind": "unreachable",
            "msg": "ssh: connect to host 172.30.10.32 port 22: No route to host",
            "user": "kubesmith",
        }
    }
    line = only_error({"node2": failure})
    assert line == (
        "node2: ansible_host='172.30.10.32' is unreachable: ssh: connect to host 172.30.10.32 "
        "port 22: No route to host; fix: start the host, check "
        "ansible_host/ansible_user/ansible_port and SSH keys"
    )


def test_user_without_sudo() -> None:
    failure = {
        "preflight_failure": {"kind": "become", "msg": "Missing sudo password", "user": "kubesmith"}
    }
    line = only_error({"lb1": failure})
    assert line == (
        "lb1: ansible_become=True failed: kubesmith cannot become root (Missing sudo password); "
        "fix: give kubesmith passwordless sudo (or pass --ask-become-pass)"
    )


def test_not_running_as_root() -> None:
    line = only_error({"node1": {"euid": 1000}})
    assert line.startswith(
        "node1: ansible_become=False leaves preflight running as uid 1000, not root"
    )


def test_ansible_host_not_on_any_interface() -> None:
    line = only_error({"node1": {"addresses": [{"interface": "eth0", "cidr": "10.1.2.3/24"}]}})
    assert line.startswith("node1: ansible_host='172.30.10.31' is not an address of any interface")


def test_loopback_host_ip_belongs_to_lo() -> None:
    inventory = Inventory().set_host("node1", "ansible_host", "127.0.0.31")
    assert (
        run(
            {"node1": {"addresses": [{"interface": "lo", "cidr": "127.0.0.1/8"}]}}, inventory
        ).errors
        == []
    )


def test_vip_outside_an_lb_hosts_subnet() -> None:
    addresses = [{"interface": "eth0", "cidr": "172.30.10.12/30"}]
    line = only_error({"lb2": {"addresses": addresses}})
    assert line == (
        "kubesmith_apiserver_vip='172.30.10.10' is outside lb2's subnet 172.30.10.12/30: "
        "keepalived there cannot hold it; fix: choose a free address in 172.30.10.12/30 for "
        "kubesmith_apiserver_vip"
    )


def test_every_host_problem_is_reported_together() -> None:
    failure = {
        "preflight_failure": {"kind": "unreachable", "msg": "timed out", "user": "kubesmith"}
    }
    report = run({"node2": failure, "cp1": {"cpus": 1}, "lb1": {"time": NOW + 60}})
    assert len(report.errors) == 3


# --- parsers of the host side, on recorded /proc contents ---------------------------

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2710 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0 100 0 0 10 0
   1: 00000000:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 42 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 43 1 0 20 4 30 10 -1
"""  # noqa: E501  (recorded /proc lines)
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1A0A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0 100 0 0 10 0
"""  # noqa: E501  (recorded /proc lines)
PROC_NET_UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  120: 00000000:2118 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 0 2 0 0
"""  # noqa: E501  (recorded /proc lines)


def test_parse_proc_net() -> None:
    assert parse_proc_net(PROC_NET_TCP, "tcp") == [
        {"proto": "tcp", "address": "127.0.0.1", "port": 10000, "inode": 31337},
        {"proto": "tcp", "address": "0.0.0.0", "port": 8443, "inode": 42},
    ]
    assert parse_proc_net(PROC_NET_TCP6, "tcp") == [
        {"proto": "tcp", "address": "::1", "port": 6666, "inode": 77}
    ]
    assert parse_proc_net(PROC_NET_UDP, "udp") == [
        {"proto": "udp", "address": "0.0.0.0", "port": 8472, "inode": 0}
    ]


def test_parse_meminfo_and_swaps() -> None:
    meminfo = (
        "MemTotal:       24683520 kB\nMemFree: 1 kB\nMemAvailable:   23955456 kB\n"
        "SwapTotal: 2097148 kB\nSwapFree: 2097148 kB\n"
    )
    assert parse_meminfo(meminfo) == {
        "mem_total_mb": 24105,
        "mem_available_mb": 23394,
        "swap_total_mb": 2047,
        "swap_free_mb": 2047,
    }
    swaps = "Filename\tType\tSize\tUsed\tPriority\n/swapfile  file  2097148  10240  -2\n"
    assert parse_swaps(swaps) == [
        {"name": "/swapfile", "type": "file", "size_mb": 2047, "used_mb": 10}
    ]
    assert parse_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n") == []


def test_parse_os_release() -> None:
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n# comment\n'
    assert parse_os_release(text) == {
        "pretty_name": "Debian GNU/Linux 12 (bookworm)",
        "id": "debian",
        "version_id": "12",
    }


def test_parse_ip_addr() -> None:
    lines = [
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
        "23: eth0@if24    inet 172.30.10.21/24 brd 172.30.10.255 scope global eth0\\  valid_lft 1",
        "23: eth0@if24    inet6 fe80::42:acff:fe1e:a15/64 scope link \\       valid_lft forever",
    ]
    assert parse_ip_addr(lines) == [
        {"interface": "lo", "cidr": "127.0.0.1/8"},
        {"interface": "eth0", "cidr": "172.30.10.21/24"},
        {"interface": "eth0", "cidr": "fe80::42:acff:fe1e:a15/64"},
    ]


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"loaded": {"ip_vs"}}, "loaded"),
        ({"builtin": {"ip_vs"}}, "built-in"),
        ({"config": {"CONFIG_IP_VS": "y"}}, "built-in"),
        (
            {
                "loadable": module_names(
                    ["kernel/net/netfilter/ipvs/ip_vs.ko.zst: kernel/lib/libcrc32c.ko"]
                )
            },
            "loadable",
        ),
        ({"exists": lambda path: path == "/proc/net/ip_vs"}, "present"),
        ({"config": {"CONFIG_IP_VS": "m"}}, "absent"),
        ({}, "absent"),
    ],
)
def test_probe_feature(inputs: dict[str, Any], expected: str) -> None:
    arguments: dict[str, Any] = {
        "loaded": set(),
        "builtin": set(),
        "loadable": set(),
        "config": None,
        "exists": lambda _p: False,
    }
    assert probe_feature("ip_vs", **(arguments | inputs)) == expected


def test_parse_kernel_config_and_module_names() -> None:
    config = parse_kernel_config("CONFIG_VXLAN=y\n# CONFIG_IP_VS is not set\nCONFIG_NF_TABLES=m\n")
    assert config == {"CONFIG_VXLAN": "y", "CONFIG_NF_TABLES": "m"}
    assert module_names(
        ["overlay 151552 0 - Live 0x0", "kernel/drivers/net/vxlan/vxlan.ko.xz:"]
    ) == {"overlay", "vxlan"}


def test_an_unowned_socket_seen_as_root_is_the_kernels() -> None:
    # A rerun found flannel's VXLAN port 8472 with a real inode and no process: the kernel's.
    owners = {2254001: (812, "etcd")}
    assert socket_owner(2254001, owners, as_root=True) == (812, "etcd")
    assert socket_owner(2254850, owners, as_root=True) == (0, "kernel")
    assert socket_owner(0, owners, as_root=False) == (0, "kernel")
    # Without root another user's socket has an owner we cannot see: never call it the kernel.
    assert socket_owner(2254850, owners, as_root=False) == (0, "unknown")

"""Host side of preflight: read-only probes of one host, as parsers over file contents.

Runs on the managed host inside the module preflight_host_facts (standard library only). Every
parser takes text so unit tests feed it recorded /proc files.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping

# name -> (kernel module, kernel config symbol, files whose presence proves the feature works)
KERNEL_FEATURES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "overlay": ("overlay", "CONFIG_OVERLAY_FS", ("/sys/module/overlay",)),
    "br_netfilter": (
        "br_netfilter",
        "CONFIG_BRIDGE_NETFILTER",
        ("/proc/sys/net/bridge/bridge-nf-call-iptables", "/sys/module/br_netfilter"),
    ),
    "nf_conntrack": (
        "nf_conntrack",
        "CONFIG_NF_CONNTRACK",
        ("/proc/sys/net/netfilter/nf_conntrack_max",),
    ),
    "vxlan": ("vxlan", "CONFIG_VXLAN", ("/sys/module/vxlan",)),
    "iptable_nat": ("iptable_nat", "CONFIG_IP_NF_NAT", ("/sys/module/iptable_nat",)),
    "xt_statistic": (
        "xt_statistic",
        "CONFIG_NETFILTER_XT_MATCH_STATISTIC",
        ("/sys/module/xt_statistic",),
    ),
    "nf_tables": ("nf_tables", "CONFIG_NF_TABLES", ("/sys/module/nf_tables",)),
    "ip_vs": ("ip_vs", "CONFIG_IP_VS", ("/proc/net/ip_vs",)),
    "ip_vs_rr": ("ip_vs_rr", "CONFIG_IP_VS_RR", ("/sys/module/ip_vs_rr",)),
    "ip_vs_wrr": ("ip_vs_wrr", "CONFIG_IP_VS_WRR", ("/sys/module/ip_vs_wrr",)),
    "ip_vs_sh": ("ip_vs_sh", "CONFIG_IP_VS_SH", ("/sys/module/ip_vs_sh",)),
}

_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"


def parse_os_release(text: str) -> dict[str, str]:
    """/etc/os-release as a dict of lower-case keys (id, version_id, version_codename, ...)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip().lower()] = value.strip().strip("\"'")
    return values


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in MiB, keyed mem_total, mem_available, swap_total, swap_free."""
    wanted = {
        "MemTotal": "mem_total_mb",
        "MemAvailable": "mem_available_mb",
        "SwapTotal": "swap_total_mb",
        "SwapFree": "swap_free_mb",
    }
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _sep, rest = line.partition(":")
        if key in wanted:
            values[wanted[key]] = int(rest.split()[0]) // 1024
    return values


def parse_swaps(text: str) -> list[dict[str, object]]:
    """/proc/swaps: one dict per active swap area (sizes in MiB)."""
    swaps: list[dict[str, object]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 4:
            swaps.append(
                {
                    "name": fields[0],
                    "type": fields[1],
                    "size_mb": int(fields[2]) // 1024,
                    "used_mb": int(fields[3]) // 1024,
                }
            )
    return swaps


def parse_kernel_config(text: str) -> dict[str, str]:
    """CONFIG_X=y|m lines of a kernel config (/proc/config.gz, /boot/config-RELEASE)."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^(CONFIG_[A-Z0-9_]+)=(\S+)$", line.strip())
        if match:
            config[match.group(1)] = match.group(2)
    return config


def module_names(lines: Iterable[str]) -> set[str]:
    """Module names from modules.builtin/modules.dep paths or /proc/modules lines."""
    names: set[str] = set()
    for line in lines:
        first = line.split(":")[0].split()[0] if line.strip() else ""
        base = first.rsplit("/", 1)[-1]
        base = re.sub(r"\.ko(\.(xz|gz|zst))?$", "", base)
        if base:
            names.add(base.replace("-", "_"))
    return names


def probe_feature(
    name: str,
    *,
    loaded: set[str],
    builtin: set[str],
    loadable: set[str],
    config: Mapping[str, str] | None,
    exists: Callable[[str], bool],
) -> str:
    """How the feature is available: loaded, built-in, loadable, present; or absent."""
    module, symbol, evidence = KERNEL_FEATURES[name]
    if module in loaded:
        return "loaded"
    if module in builtin or (config or {}).get(symbol) == "y":
        return "built-in"
    if module in loadable:
        return "loadable"
    if any(exists(path) for path in evidence):
        return "present"
    return "absent"


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    # /proc/net prints each 32-bit word in host (little-endian) order.
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(swapped))


def parse_proc_net(text: str, proto: str) -> list[dict[str, object]]:
    """Listening sockets of /proc/net/{tcp,tcp6,udp,udp6}: address, port, inode."""
    state = _TCP_LISTEN if proto == "tcp" else _UDP_UNCONNECTED
    sockets: list[dict[str, object]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != state:
            continue
        address, _sep, port = fields[1].partition(":")
        sockets.append(
            {
                "proto": proto,
                "address": _hex_address(address),
                "port": int(port, 16),
                "inode": int(fields[9]),
            }
        )
    return sockets


def parse_ip_addr(lines: Iterable[str]) -> list[dict[str, str]]:
    """`ip -o addr show` lines as {interface, cidr} (e.g. eth0, 172.30.10.21/24)."""
    addresses: list[dict[str, str]] = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("inet", "inet6"):
            addresses.append({"interface": fields[1].split("@")[0], "cidr": fields[3]})
    return addresses

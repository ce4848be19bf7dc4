"""Address arithmetic shared by the PKI plan and the renderers (IPv4 and IPv6).

Kept free of Ansible imports so that filters, modules and tests use one implementation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetcalcError(ValueError):
    """Bad input; the message names the field, the value and what would be valid."""


def parse_network(value: object, field: str) -> IPNetwork:
    """Parse a CIDR such as 10.96.0.0/12; host bits must be zero so typos show early."""
    if not isinstance(value, str) or not value:
        raise NetcalcError(f"{field}: expected a CIDR string like 10.96.0.0/12, got {value!r}")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise NetcalcError(
            f"{field}: {value!r} is not a valid network CIDR ({exc}); "
            "write the network address with its prefix, e.g. 10.96.0.0/12"
        ) from exc


def parse_address(value: object, field: str) -> IPAddress:
    """Parse one IPv4 or IPv6 address."""
    if not isinstance(value, str) or not value:
        raise NetcalcError(f"{field}: expected an IP address string, got {value!r}")
    try:
        return ipaddress.ip_address(value)
    except ValueError as exc:
        raise NetcalcError(
            f"{field}: {value!r} is not an IP address; give an IPv4 or IPv6 address"
        ) from exc


def is_ip_address(value: str) -> bool:
    """True when value parses as an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def nth_ip(cidr: object, index: object, field: str = "cidr") -> str:
    """The index-th address of a network: 1 is the first after the network address.

    Negative indexes count from the end (-1 is the last address). Index 0 is the network
    address itself and is refused, since a Service or DNS IP there would not work.
    """
    network = parse_network(cidr, field)
    if isinstance(index, bool) or not isinstance(index, int):
        raise NetcalcError(f"index: expected an integer, got {index!r}")
    size = network.num_addresses
    position = index if index >= 0 else size + index
    if index == 0 or not 0 < position < size:
        raise NetcalcError(
            f"index: {index} is outside {network} ({size} addresses); "
            f"use 1..{size - 1} or -1..-{size - 1}"
        )
    return str(network.network_address + position)


def etcd_initial_cluster(members: object, scheme: str = "https", peer_port: int = 2380) -> str:
    """etcd's --initial-cluster value: name=scheme://ip:port,... in the given order."""
    if scheme not in ("http", "https"):
        raise NetcalcError(f"scheme: {scheme!r} is not valid; use 'https' or 'http'")
    if isinstance(peer_port, bool) or not isinstance(peer_port, int) or not 0 < peer_port < 65536:
        raise NetcalcError(f"peer_port: {peer_port!r} is not a TCP port; use 1..65535")
    entries = []
    for position, member in enumerate(host_list(members, "members")):
        address = parse_address(member["ip"], f"members[{position}].ip")
        host = f"[{address}]" if address.version == 6 else str(address)
        entries.append(f"{member['name']}={scheme}://{host}:{peer_port}")
    if not entries:
        raise NetcalcError("members: empty; etcd needs at least one member (the etcd group)")
    return ",".join(entries)


def host_list(value: object, field: str) -> list[dict[str, str]]:
    """Validate a list of {name, ip} mappings (inventory hosts and their addresses)."""
    if not isinstance(value, list | tuple):
        raise NetcalcError(f"{field}: expected a list of {{name, ip}} mappings, got {value!r}")
    hosts: list[dict[str, str]] = []
    for position, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise NetcalcError(
                f"{field}[{position}]: expected a mapping with name and ip, got {item!r}"
            )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise NetcalcError(f"{field}[{position}].name: expected a host name, got {name!r}")
        ip = str(parse_address(item.get("ip"), f"{field}[{position}].ip"))
        hosts.append({"name": name, "ip": ip})
    return hosts


def host_addresses(
    names: Iterable[str], hostvars: Mapping[str, Any], override_var: str = "kubesmith_node_ip"
) -> list[dict[str, str]]:
    """[{name, ip}] for inventory hosts: override_var if set, else ansible_host."""
    if isinstance(names, str):
        raise NetcalcError(
            f"names: expected a list of inventory host names, got the string {names!r}"
        )
    hosts = []
    for name in names:
        try:
            variables = hostvars[name]
        except KeyError as exc:
            raise NetcalcError(f"names: host {name!r} is not in the inventory") from exc
        raw = variables.get(override_var) or variables.get("ansible_host")
        if not raw:
            raise NetcalcError(
                f"{name}: neither {override_var} nor ansible_host is set; "
                f"set ansible_host (or {override_var}) to the host's IP address"
            )
        address = parse_address(str(raw), f"{name}.{override_var} or ansible_host")
        hosts.append({"name": str(name), "ip": str(address)})
    return hosts

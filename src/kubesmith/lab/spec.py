"""What a lab is: hosts and a subnet, read from an Ansible inventory."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubesmith.lab.errors import LabError

# Every lab subnet, pod and service network lives here. The machine keeps a blackhole
# route for the whole range, so a packet for a lab address never leaves the machine when
# the lab (and with it docker's more specific bridge route) is down.
LAB_RANGE = ipaddress.IPv4Network("172.30.0.0/15")


@dataclass(frozen=True)
class LabHost:
    """One inventory host made real as a container."""

    name: str
    ip: ipaddress.IPv4Address


@dataclass(frozen=True)
class LabSpec:
    """The lab an inventory describes."""

    name: str
    subnet: ipaddress.IPv4Network
    hosts: tuple[LabHost, ...]
    ssh_user: str

    @property
    def network_name(self) -> str:
        return f"kubesmith-{self.name}"

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return next(self.subnet.hosts())

    def container_name(self, host: LabHost) -> str:
        return f"kubesmith-{self.name}-{host.name}"

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise LabError(f"host {name!r} is not in lab {self.name!r}; its hosts are: {known}")


def load_inventory(inventory: Path) -> dict[str, object]:
    """The inventory as ansible-inventory sees it (any format Ansible reads)."""
    if not inventory.exists():
        raise LabError(f"inventory {inventory} does not exist; pass -i with an inventory path")
    result = subprocess.run(
        ["ansible-inventory", "-i", str(inventory), "--list", "--export"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"ansible-inventory could not read {inventory}: {result.stderr.strip()}")
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _all_vars(inventory: dict[str, object]) -> dict[str, object]:
    all_group = inventory.get("all", {})
    if isinstance(all_group, dict):
        group_vars = all_group.get("vars", {})
        if isinstance(group_vars, dict):
            return group_vars
    return {}


def _host_vars(inventory: dict[str, object]) -> dict[str, dict[str, object]]:
    meta = inventory.get("_meta", {})
    if isinstance(meta, dict):
        hostvars = meta.get("hostvars", {})
        if isinstance(hostvars, dict):
            return hostvars
    return {}


def _all_hosts(inventory: dict[str, object]) -> list[str]:
    names: set[str] = set()
    for group in inventory.values():
        if isinstance(group, dict) and isinstance(group.get("hosts"), list):
            names.update(str(h) for h in group["hosts"])
    names.update(_host_vars(inventory).keys())
    return sorted(names)


def parse_subnet(value: object, inventory_path: Path) -> ipaddress.IPv4Network:
    if not value:
        raise LabError(
            f"inventory {inventory_path} has no kubesmith_lab_subnet; set it in group_vars/all "
            f"to a /24 inside {LAB_RANGE}, e.g. 172.30.10.0/24"
        )
    try:
        subnet = ipaddress.IPv4Network(str(value))
    except ValueError as exc:
        raise LabError(f"kubesmith_lab_subnet={value!r} is not an IPv4 network: {exc}") from exc
    if not subnet.subnet_of(LAB_RANGE):
        raise LabError(
            f"kubesmith_lab_subnet={subnet} is outside the lab range {LAB_RANGE}; pick a subnet "
            f"inside it so the blackhole route keeps its packets on this machine"
        )
    return subnet


def parse_host(name: str, hostvars: dict[str, object], subnet: ipaddress.IPv4Network) -> LabHost:
    raw_ip = hostvars.get("ansible_host")
    if not raw_ip:
        raise LabError(
            f"inventory host {name} has no ansible_host; give it a fixed IP inside {subnet}"
        )
    try:
        ip = ipaddress.IPv4Address(str(raw_ip))
    except ValueError as exc:
        raise LabError(
            f"inventory host {name}: ansible_host={raw_ip!r} is not an IPv4 address"
        ) from exc
    usable = ip in subnet and ip not in (subnet.network_address, subnet.broadcast_address)
    if not usable or ip == next(subnet.hosts()):
        raise LabError(
            f"inventory host {name}: ansible_host={ip} must be inside {subnet} and not its "
            f"network, broadcast or gateway ({next(subnet.hosts())}) address"
        )
    return LabHost(name=name, ip=ip)


def spec_from_inventory(inventory_path: Path) -> LabSpec:
    """Read an inventory and describe its lab, or explain what is missing."""
    inventory = load_inventory(inventory_path)
    group_vars = _all_vars(inventory)
    hostvars = _host_vars(inventory)
    subnet = parse_subnet(group_vars.get("kubesmith_lab_subnet"), inventory_path)
    name = str(group_vars.get("kubesmith_lab_name") or inventory_path.resolve().name)
    hosts = tuple(parse_host(h, hostvars.get(h, {}), subnet) for h in _all_hosts(inventory))
    if not hosts:
        raise LabError(f"inventory {inventory_path} has no hosts")
    seen: dict[ipaddress.IPv4Address, str] = {}
    for host in hosts:
        if host.ip in seen:
            raise LabError(
                f"inventory hosts {seen[host.ip]} and {host.name} share ansible_host={host.ip}; "
                "give each host its own address"
            )
        seen[host.ip] = host.name
    user = str(group_vars.get("ansible_user") or "kubesmith")
    return LabSpec(name=name, subnet=subnet, hosts=hosts, ssh_user=user)

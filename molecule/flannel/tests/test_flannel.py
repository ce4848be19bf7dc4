"""The vxlan overlay: one lease per host in etcd, flannel.1 on its lease, routes, and pings.

The leases are read from etcd (the source flanneld uses) and each host's own subnet file must
agree with its lease; flannel.1 must carry the lease's network address, route every other
host's subnet, and reach every other host's flannel.1 address.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import time
from collections.abc import Callable

import pytest
from testinfra.host import Host

lab_group = "k8s_cluster"

PKI = "/etc/kubernetes/pki/etcd"
LEASES_PREFIX = "/coreos.com/network/subnets/"
SUBNET_FILE = "/run/flannel/subnet.env"


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(1)


def pings(host: Host, address: str) -> bool:
    return bool(host.run("ping -c 1 -W 2 -I flannel.1 %s", address).rc == 0)


def subnet_of(host: Host) -> ipaddress.IPv4Network:
    """The host's lease from its subnet file (FLANNEL_SUBNET=172.31.N.1/24)."""
    lines = host.file(SUBNET_FILE).content_string.splitlines()
    value = next(line.split("=", 1)[1] for line in lines if line.startswith("FLANNEL_SUBNET="))
    return ipaddress.IPv4Interface(value).network


@pytest.fixture(scope="module")
def leases(lab_groups: dict[str, list[str]], lab_hosts: dict[str, Host]) -> dict[str, str]:
    """Each lease in etcd: the host's public IP to its subnet (a /24 as "172.31.N.0/24")."""
    etcd = lab_hosts[lab_groups["etcd"][0]]
    argv = [
        "etcdctl",
        "--endpoints=https://127.0.0.1:2379",
        f"--cacert={PKI}/ca.crt",
        f"--cert={PKI}/healthcheck-client.crt",
        f"--key={PKI}/healthcheck-client.key",
        "get",
        "--prefix",
        LEASES_PREFIX,
        "--write-out=json",
    ]
    listed = json.loads(etcd.check_output(" ".join(["%s"] * len(argv)), *argv))
    by_ip: dict[str, str] = {}
    for kv in listed.get("kvs", []):
        # Keys and values are base64 in etcdctl's JSON; a key ends in "172.31.N.0-24".
        key = base64.b64decode(kv["key"]).decode()
        lease = json.loads(base64.b64decode(kv["value"]))
        subnet = key.removeprefix(LEASES_PREFIX).replace("-", "/")
        assert lease["PublicIP"] not in by_ip, f"two leases for {lease['PublicIP']}: {listed}"
        by_ip[lease["PublicIP"]] = subnet
    return by_ip


@pytest.fixture(scope="module")
def overlay_addresses(
    lab_groups: dict[str, list[str]], lab_addresses: dict[str, str], leases: dict[str, str]
) -> dict[str, str]:
    """Each host's flannel.1 address: the network address of its lease (172.31.N.0)."""
    return {
        name: str(ipaddress.IPv4Network(leases[lab_addresses[name]]).network_address)
        for name in lab_groups[lab_group]
        if lab_addresses[name] in leases
    }


def test_one_lease_per_host_in_etcd(
    lab_groups: dict[str, list[str]], lab_addresses: dict[str, str], leases: dict[str, str]
) -> None:
    hosts = sorted(lab_addresses[name] for name in lab_groups[lab_group])
    assert sorted(leases) == hosts, f"leases {leases} for hosts {hosts}"
    assert len(set(leases.values())) == len(hosts), f"a subnet leased twice: {leases}"


def test_subnet_file_is_the_hosts_lease(
    hostname: str,
    lab_hosts: dict[str, Host],
    lab_addresses: dict[str, str],
    leases: dict[str, str],
) -> None:
    subnet = subnet_of(lab_hosts[hostname])
    assert str(subnet) == leases.get(lab_addresses[hostname]), f"{hostname}: {subnet} {leases}"


def test_flannel_1_holds_the_network_address_of_its_lease(
    hostname: str, lab_hosts: dict[str, Host]
) -> None:
    host = lab_hosts[hostname]
    expected = f"{subnet_of(host).network_address}/32"
    shown = json.loads(host.check_output("ip -j -4 addr show dev flannel.1"))
    addresses = [f"{a['local']}/{a['prefixlen']}" for link in shown for a in link["addr_info"]]
    assert addresses == [expected], f"{hostname}: flannel.1 has {addresses}, lease {expected}"


def test_routes_every_other_subnet_via_flannel_1(
    hostname: str,
    lab_hosts: dict[str, Host],
    lab_addresses: dict[str, str],
    leases: dict[str, str],
) -> None:
    others = {ip: subnet for ip, subnet in leases.items() if ip != lab_addresses[hostname]}
    routes = json.loads(lab_hosts[hostname].check_output("ip -j -4 route show dev flannel.1"))
    routed = {route["dst"]: route.get("gateway") for route in routes}
    expected = {
        subnet: str(ipaddress.IPv4Network(subnet).network_address) for subnet in others.values()
    }
    assert routed == expected, f"{hostname}: routes via flannel.1 {routes}"


def test_pings_every_other_hosts_flannel_1(
    hostname: str, lab_hosts: dict[str, Host], overlay_addresses: dict[str, str]
) -> None:
    host = lab_hosts[hostname]
    for peer, address in overlay_addresses.items():
        if peer == hostname:
            continue
        check = functools.partial(pings, host, address)
        wait_until(check, 10, f"{hostname} pings {peer}'s flannel.1 {address}")

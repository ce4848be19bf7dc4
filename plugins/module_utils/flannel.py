"""flannel's network config (net-conf.json) and the subnet.env flanneld writes."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

BACKENDS = ("vxlan", "host-gw")
# flanneld's smallest lease: a /30 still leaves two usable pod addresses.
MAX_SUBNET_LEN = 30
SUBNET_ENV_KEYS = {
    "FLANNEL_NETWORK": "network",
    "FLANNEL_SUBNET": "subnet",
    "FLANNEL_MTU": "mtu",
    "FLANNEL_IPMASQ": "ipmasq",
}


class FlannelError(ValueError):
    """Bad flannel data; the message names the field, its value and what would be valid."""


def integer(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FlannelError(f"{field}: {value!r} is not valid; use an integer from {low} to {high}")
    return value


def ipv4_network(value: Any, field: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        raise FlannelError(
            f"{field}: {value!r} is not a network CIDR; write it like 10.244.0.0/16"
        ) from exc
    if not isinstance(network, ipaddress.IPv4Network):
        raise FlannelError(f"{field}: {value!r} is IPv6; flannel's Network is an IPv4 CIDR")
    return network


def net_conf(settings: Any, host_count: Any = 0) -> dict[str, Any]:
    """flannel's net-conf as a dict, validated against the number of hosts running flanneld.

    settings: {network, subnet_len (24), backend (vxlan), vni (1), port (8472)}.
    """
    if not isinstance(settings, Mapping):
        raise FlannelError(
            f"settings: expected a mapping with network, subnet_len, backend, got {settings!r}"
        )
    unknown = set(settings) - {"network", "subnet_len", "backend", "vni", "port"}
    if unknown:
        raise FlannelError(
            f"settings: unknown keys {sorted(unknown)}; use network, subnet_len, backend, vni, port"
        )
    network = settings.get("network")
    subnet_len = settings.get("subnet_len", 24)
    backend = settings.get("backend", "vxlan")
    vni = settings.get("vni", 1)
    port = settings.get("port", 8472)
    pod_network = ipv4_network(network, "network")
    length = integer(subnet_len, "subnet_len", pod_network.prefixlen + 1, MAX_SUBNET_LEN)
    hosts = integer(host_count, "host_count", 0, 2**32)
    # flanneld never leases the network's first subnet (SubnetMin defaults to the second).
    leases = 2 ** (length - pod_network.prefixlen) - 1
    if hosts > leases:
        raise FlannelError(
            f"subnet_len: /{length} subnets of {pod_network} give {leases} leases but "
            f"{hosts} hosts run flanneld; use a longer subnet_len or a larger network"
        )
    if backend not in BACKENDS:
        raise FlannelError(f"backend: {backend!r} is not valid; use one of {list(BACKENDS)}")
    backend_conf: dict[str, Any] = {"Type": backend}
    if backend == "vxlan":
        backend_conf["VNI"] = integer(vni, "vni", 1, 2**24 - 1)
        backend_conf["Port"] = integer(port, "port", 1, 65535)
    return {"Network": str(pod_network), "SubnetLen": length, "Backend": backend_conf}


def render_net_conf(settings: Any, host_count: Any = 0) -> str:
    return json.dumps(net_conf(settings, host_count), indent=2) + "\n"


def parse_subnet_env(content: Any) -> dict[str, Any]:
    """{network, subnet, mtu, ipmasq} from the text of /run/flannel/subnet.env."""
    if not isinstance(content, str):
        raise FlannelError(f"subnet_env: expected the file's text, got {content!r}")
    values: dict[str, Any] = {}
    for number, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        if not separator or name not in SUBNET_ENV_KEYS:
            raise FlannelError(
                f"subnet_env line {number}: {raw!r} is not one of {sorted(SUBNET_ENV_KEYS)}=value"
            )
        values[SUBNET_ENV_KEYS[name]] = value
    missing = sorted(set(SUBNET_ENV_KEYS.values()) - set(values))
    if missing:
        raise FlannelError(f"subnet_env: missing {missing}; is flanneld's lease complete?")
    return subnet_env_values(values)


def subnet_env_values(values: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise FlannelError(f"subnet_env: expected a mapping, got {values!r}")
    network = ipv4_network(values.get("network"), "network")
    try:
        subnet = ipaddress.ip_interface(str(values.get("subnet")))
    except ValueError as exc:
        raise FlannelError(
            f"subnet: {values.get('subnet')!r} is not an address with prefix like 10.244.1.1/24"
        ) from exc
    if not isinstance(subnet, ipaddress.IPv4Interface) or not subnet.network.subnet_of(network):
        raise FlannelError(f"subnet: {subnet} is not inside network {network}")
    mtu = values.get("mtu")
    if isinstance(mtu, str) and mtu.isdigit():
        mtu = int(mtu)
    ipmasq = values.get("ipmasq")
    if isinstance(ipmasq, str) and ipmasq in ("true", "false"):
        ipmasq = ipmasq == "true"
    if not isinstance(ipmasq, bool):
        raise FlannelError(f"ipmasq: {ipmasq!r} is not valid; use true or false")
    return {
        "network": str(network),
        "subnet": str(subnet),
        "mtu": integer(mtu, "mtu", 576, 65535),
        "ipmasq": ipmasq,
    }


def render_subnet_env(values: Any) -> str:
    checked = subnet_env_values(values)
    return (
        f"FLANNEL_NETWORK={checked['network']}\n"
        f"FLANNEL_SUBNET={checked['subnet']}\n"
        f"FLANNEL_MTU={checked['mtu']}\n"
        f"FLANNEL_IPMASQ={'true' if checked['ipmasq'] else 'false'}\n"
    )

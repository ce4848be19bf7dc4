"""CIDR arithmetic and etcd's --initial-cluster, through the filters the roles call."""

from __future__ import annotations

import ipaddress

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.kubesmith.cluster.plugins.filter.pki import FilterModule
from hypothesis import given
from hypothesis import strategies as st

FILTERS = FilterModule().filters()
nth_ip = FILTERS["nth_ip"]


@pytest.mark.parametrize(
    ("cidr", "index", "expected"),
    [
        ("10.96.0.0/12", 1, "10.96.0.1"),
        ("10.96.0.0/12", 10, "10.96.0.10"),
        ("172.30.128.0/20", 1, "172.30.128.1"),
        ("10.96.0.0/12", -1, "10.111.255.255"),
        ("10.0.0.0/31", 1, "10.0.0.1"),
        ("fd00:10:96::/112", 10, "fd00:10:96::a"),
        ("fd00::/64", -1, "fd00::ffff:ffff:ffff:ffff"),
    ],
)
def test_nth_ip(cidr: str, index: int, expected: str) -> None:
    assert nth_ip(cidr, index) == expected


@pytest.mark.parametrize(
    ("cidr", "index", "message"),
    [
        ("10.96.0.1/12", 1, "cidr: '10.96.0.1/12' is not a valid network CIDR"),
        ("nonsense", 1, "cidr: 'nonsense' is not a valid network CIDR"),
        ("", 1, "cidr: expected a CIDR string"),
        (None, 1, "cidr: expected a CIDR string"),
        ("10.0.0.0/24", 0, "index: 0 is outside 10.0.0.0/24 (256 addresses); use 1..255"),
        ("10.0.0.0/24", 256, "index: 256 is outside"),
        ("10.0.0.0/24", -256, "index: -256 is outside"),
        ("10.0.0.0/32", 1, "index: 1 is outside 10.0.0.0/32 (1 addresses)"),
        ("10.0.0.0/24", "1", "index: expected an integer, got '1'"),
        ("10.0.0.0/24", True, "index: expected an integer, got True"),
    ],
)
def test_nth_ip_errors(cidr: object, index: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        nth_ip(cidr, index)
    assert message in str(error.value)


networks = st.one_of(
    st.builds(
        lambda address, prefix: ipaddress.ip_network(f"{address}/{prefix}", strict=False),
        st.ip_addresses(v=4),
        st.integers(min_value=0, max_value=31),
    ),
    st.builds(
        lambda address, prefix: ipaddress.ip_network(f"{address}/{prefix}", strict=False),
        st.ip_addresses(v=6),
        st.integers(min_value=0, max_value=127),
    ),
)


@given(network=networks, data=st.data())
def test_nth_ip_properties(network: ipaddress.IPv4Network | ipaddress.IPv6Network, data) -> None:
    size = network.num_addresses
    index = data.draw(st.integers(min_value=1, max_value=size - 1))
    forward = ipaddress.ip_address(nth_ip(str(network), index))
    assert forward in network
    assert int(forward) - int(network.network_address) == index
    backward = ipaddress.ip_address(nth_ip(str(network), index - size))
    assert backward == forward, "index and index - size name the same address"
    assert forward != network.network_address


def test_etcd_initial_cluster() -> None:
    members = [
        {"name": "cp1", "ip": "172.30.10.21"},
        {"name": "cp2", "ip": "fd00::2"},
    ]
    assert FILTERS["etcd_initial_cluster"](members) == (
        "cp1=https://172.30.10.21:2380,cp2=https://[fd00::2]:2380"
    )
    assert FILTERS["etcd_initial_cluster"](members[:1], "http", 12380) == (
        "cp1=http://172.30.10.21:12380"
    )


@pytest.mark.parametrize(
    ("members", "kwargs", "message"),
    [
        ([], {}, "members: empty"),
        ([{"name": "cp1", "ip": "x"}], {}, "members[0].ip: 'x' is not an IP address"),
        ([{"name": "cp1", "ip": "127.0.0.1"}], {"scheme": "ftp"}, "scheme: 'ftp' is not valid"),
        ([{"name": "cp1", "ip": "127.0.0.1"}], {"peer_port": 0}, "peer_port: 0 is not a TCP port"),
        (["cp1"], {}, "members[0]: expected a mapping"),
    ],
)
def test_etcd_initial_cluster_errors(members: list, kwargs: dict, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["etcd_initial_cluster"](members, **kwargs)
    assert message in str(error.value)

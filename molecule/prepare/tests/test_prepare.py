"""Host preparation holds on each host, before and after a restart of its container.

Every check runs twice (the session-scoped `phase`): first on the converged hosts, then after
`kubesmith-lab restart` of every host, so sysctls, swap and the firewall must survive a boot.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator

import pytest
from testinfra.host import Host

EXPECTED_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "fs.inotify.max_user_watches": "1048576",
}
SYSCTL_FILE = "/etc/sysctl.d/90-kubesmith.conf"
# Refused inside a container's network namespace: written with systemd's '-' (ignore) prefix.
REFUSED_SYSCTL_LINE = "-net.netfilter.nf_conntrack_max = 1048576"
CLOSED_PORT = 9099
PHASES = ("before restart", "after restart")


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(1)


def answers_ssh(host: Host) -> bool:
    try:
        return bool(host.run("true").rc == 0)
    except RuntimeError:  # testinfra raises when ssh itself fails (exit 255)
        return False


def open_port(groups: dict[str, list[str]], hostname: str) -> int:
    """A port the firewall opens for one of the host's groups (prepare_firewall_rules)."""
    return 2379 if hostname in groups["etcd"] else 10250


def peer_of(groups: dict[str, list[str]], hostname: str) -> str:
    return next(name for name in groups["all"] if name != hostname)


def listen(host: Host, port: int) -> None:
    host.run_test(
        "systemctl is-active --quiet molecule-listen-%s || "
        "systemd-run --unit=molecule-listen-%s python3 -m http.server %s",
        str(port),
        str(port),
        str(port),
    )
    wait_until(lambda: host.socket(f"tcp://0.0.0.0:{port}").is_listening, 30, f"listener on {port}")


@pytest.fixture(scope="session", params=PHASES)
def phase(
    request: pytest.FixtureRequest,
    lab_hosts: dict[str, Host],
    lab_groups: dict[str, list[str]],
    lab_tool: Callable[..., str],
) -> Iterator[str]:
    """Listeners on an opened and a closed port of each host; the second phase restarts first."""
    if request.param == "after restart":
        for name, host in lab_hosts.items():
            lab_tool("restart", name)
            wait_until(functools.partial(answers_ssh, host), 120, f"{name} over SSH")
    for name, host in lab_hosts.items():
        for port in (open_port(lab_groups, name), CLOSED_PORT):
            listen(host, port)
    yield str(request.param)
    for name, host in lab_hosts.items():
        for port in (open_port(lab_groups, name), CLOSED_PORT):
            host.run("systemctl stop molecule-listen-%s", str(port))


def test_sysctls_hold(phase: str, hostname: str, lab_hosts: dict[str, Host]) -> None:
    host = lab_hosts[hostname]
    actual = {key: str(host.sysctl(key)) for key in EXPECTED_SYSCTLS}
    assert actual == EXPECTED_SYSCTLS, f"{hostname} {phase}"


def test_refused_sysctl_is_written_to_be_ignored(
    phase: str, hostname: str, lab_hosts: dict[str, Host]
) -> None:
    lines = lab_hosts[hostname].file(SYSCTL_FILE).content_string.splitlines()
    assert REFUSED_SYSCTL_LINE in lines, f"{hostname} {phase}: {SYSCTL_FILE}: {lines}"


def test_swap_is_off(phase: str, hostname: str, lab_hosts: dict[str, Host]) -> None:
    swaps = lab_hosts[hostname].check_output("swapon --show --noheadings")
    assert swaps == "", f"{hostname} {phase}: active swap {swaps}"


def test_boot_has_no_failed_unit(phase: str, hostname: str, lab_hosts: dict[str, Host]) -> None:
    """A refused sysctl key or an absent kernel module must not fail a unit at boot."""
    host = lab_hosts[hostname]
    state = host.run("timeout 120 systemctl is-system-running --wait")
    failed = host.run("systemctl list-units --failed --plain --no-legend").stdout
    assert state.stdout.strip() == "running", f"{hostname} {phase}: {state.stdout} {failed}"


def test_firewall_table_is_loaded(
    phase: str, hostname: str, lab_hosts: dict[str, Host], lab_groups: dict[str, list[str]]
) -> None:
    table = lab_hosts[hostname].check_output("nft list table inet kubesmith")
    assert "hook input priority filter; policy drop;" in table, f"{hostname} {phase}: {table}"
    assert str(open_port(lab_groups, hostname)) in table, f"{hostname} {phase}: {table}"


def test_group_port_is_open_to_the_peer(
    phase: str,
    hostname: str,
    lab_hosts: dict[str, Host],
    lab_groups: dict[str, list[str]],
    lab_addresses: dict[str, str],
) -> None:
    port = open_port(lab_groups, hostname)
    target = lab_hosts[peer_of(lab_groups, hostname)].addr(lab_addresses[hostname]).port(port)
    wait_until(lambda: target.is_reachable, 10, f"{hostname}:{port} from its peer ({phase})")


def test_other_port_is_dropped_for_the_peer(
    phase: str,
    hostname: str,
    lab_hosts: dict[str, Host],
    lab_groups: dict[str, list[str]],
    lab_addresses: dict[str, str],
) -> None:
    host = lab_hosts[hostname]
    peer = lab_hosts[peer_of(lab_groups, hostname)]
    # The listener answers on the host itself: only the firewall keeps the peer out.
    assert host.addr("127.0.0.1").port(CLOSED_PORT).is_reachable, f"{hostname} {phase}"
    reached = peer.addr(lab_addresses[hostname]).port(CLOSED_PORT).is_reachable
    assert not reached, f"{hostname}:{CLOSED_PORT} reachable from its peer ({phase})"

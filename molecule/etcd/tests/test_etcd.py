"""A working TLS etcd on the scenario's members, then the drills that change it, in file order.

Reads and health checks use the health-check client over mutual TLS, each against one member's
own endpoint. The drills stop a member, re-run the etcd stage with a changed flag (a rolling
restart behind the health gate) and replace a member through `member remove` + `member add`.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from testinfra.host import Host

lab_group = "etcd"

PKI = "/etc/kubernetes/pki/etcd"
CA = f"{PKI}/ca.crt"
CLIENT_CERT = f"{PKI}/healthcheck-client.crt"
CLIENT_KEY = f"{PKI}/healthcheck-client.key"
DATA_DIR = "/var/lib/etcd"
UNIT = "/etc/systemd/system/etcd.service"
STAGE = "playbooks/40-etcd.yml"
ROLLING_STEPS = ("Restart etcd on", "Wait until healthy:")
# Fresh per run, so a key left by an earlier verify cannot make a read pass.
REPLICATED = ("/molecule/replicated", f"written-on-the-first-member-{uuid.uuid4().hex[:8]}")
WHILE_DOWN = ("/molecule/while-down", f"written-while-the-last-was-down-{uuid.uuid4().hex[:8]}")
# Prints "status <code>" or "error <reason>" for an HTTP(S) GET from the host itself.
HTTP_PROBE = """
import ssl, sys, urllib.error, urllib.request
url, ca, cert, key = sys.argv[1:5]
context = ssl.create_default_context(cafile=ca) if ca else None
if context and cert:
    context.load_cert_chain(cert, key)
try:
    print("status", urllib.request.urlopen(url, timeout=5, context=context).status)
except urllib.error.HTTPError as error:
    print("status", error.code)
except Exception as error:
    print("error", type(error).__name__, error)
"""


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(2)


def client_url(address: str) -> str:
    return f"https://{address}:2379"


def etcdctl(host: Host, addresses: Sequence[str], *args: str, certificate: bool = True) -> Any:
    """etcdctl on `host` against the members at `addresses`; the CommandResult."""
    argv = [
        "etcdctl",
        f"--endpoints={','.join(client_url(a) for a in addresses)}",
        f"--cacert={CA}",
        "--dial-timeout=3s",
        "--command-timeout=5s",
    ]
    if certificate:
        argv += [f"--cert={CLIENT_CERT}", f"--key={CLIENT_KEY}"]
    argv += args
    return host.run(" ".join(["%s"] * len(argv)), *argv)


def etcdctl_json(host: Host, addresses: Sequence[str], *args: str) -> Any:
    result = etcdctl(host, addresses, *args, "--write-out=json")
    assert result.rc == 0, f"etcdctl {' '.join(args)}: {result.stderr}"
    return json.loads(result.stdout)


def read_key(host: Host, address: str, key: str) -> str:
    result = etcdctl(host, [address], "get", key, "--print-value-only")
    assert result.rc == 0, f"get {key} from {address}: {result.stderr}"
    return str(result.stdout.strip())


def http_probe(host: Host, url: str, ca: str = "", cert: str = "", key: str = "") -> str:
    return str(host.check_output("python3 -c %s %s %s %s %s", HTTP_PROBE, url, ca, cert, key))


def unit_property(host: Host, name: str) -> int:
    return int(host.check_output("systemctl show --value --property=%s etcd.service", name))


def member_ids(host: Host, address: str) -> dict[str, int]:
    members = etcdctl_json(host, [address], "member", "list")["members"]
    return {member.get("name", ""): member["ID"] for member in members}


def assert_healthy_with_one_leader(host: Host, addresses: Sequence[str]) -> None:
    statuses = etcdctl_json(host, addresses, "endpoint", "status")
    leaders = {status["Status"]["leader"] for status in statuses}
    ids = [status["Status"]["header"]["member_id"] for status in statuses]
    assert len(ids) == len(addresses), statuses
    assert len(leaders) == 1, f"leaders {leaders}: {statuses}"
    assert leaders <= set(ids), f"leader {leaders} is not a member {ids}"


def ansible_steps(stdout: str, members: Sequence[str]) -> list[str]:
    """The restart and health-gate steps of an ansible-playbook run, in order."""
    pattern = re.compile(
        rf"^(?:TASK|RUNNING HANDLER) \[etcd : ({'|'.join(map(re.escape, ROLLING_STEPS))}) (\S+)\]"
    )
    matches = (pattern.match(line) for line in stdout.splitlines())
    return [f"{m[1]} {m[2]}" for m in matches if m and m[2] in members]


@pytest.fixture(scope="module")
def members(lab_groups: dict[str, list[str]]) -> list[str]:
    return lab_groups["etcd"]


@pytest.fixture(scope="module")
def log_level(members: list[str], lab_hosts: dict[str, Host]) -> str:
    """A log level the units do not have yet: the drills change a flag on every verify run."""
    unit = lab_hosts[members[0]].file(UNIT).content_string
    return "error" if "--log-level=warn" in unit else "warn"


@pytest.fixture(scope="module")
def member_addresses(members: list[str], lab_addresses: dict[str, str]) -> list[str]:
    return [lab_addresses[name] for name in members]


def test_member_is_healthy_over_mutual_tls(
    hostname: str, lab_hosts: dict[str, Host], lab_addresses: dict[str, str]
) -> None:
    health = etcdctl_json(lab_hosts[hostname], [lab_addresses[hostname]], "endpoint", "health")
    assert [endpoint["health"] for endpoint in health] == [True], health


def test_one_leader_shared_by_every_member(
    members: list[str], member_addresses: list[str], lab_hosts: dict[str, Host]
) -> None:
    assert_healthy_with_one_leader(lab_hosts[members[0]], member_addresses)


def test_member_list_is_the_inventory(
    members: list[str], member_addresses: list[str], lab_hosts: dict[str, Host]
) -> None:
    listed = etcdctl_json(lab_hosts[members[0]], member_addresses[:1], "member", "list")
    listed = listed["members"]
    assert sorted(m["name"] for m in listed) == sorted(members), listed
    peer_urls = sorted(url for m in listed for url in m["peerURLs"])
    assert peer_urls == sorted(f"https://{a}:2380" for a in member_addresses), listed
    client_urls = sorted(url for m in listed for url in m["clientURLs"])
    assert client_urls == sorted(client_url(a) for a in member_addresses), listed


def test_etcd_runs_as_its_own_user_with_a_private_data_dir(
    hostname: str, lab_hosts: dict[str, Host]
) -> None:
    host = lab_hosts[hostname]
    users = {process.user for process in host.process.filter(comm="etcd")}
    assert users == {"etcd"}, f"etcd runs as {users or 'nobody: not running'}"
    data = host.file(DATA_DIR)
    assert (data.user, data.mode) == ("etcd", 0o700), f"{DATA_DIR}: {data.user} {data.mode:o}"


def test_key_written_on_one_member_is_read_on_another(
    members: list[str], lab_hosts: dict[str, Host], lab_addresses: dict[str, str]
) -> None:
    first, last = members[0], members[-1]
    written = etcdctl(lab_hosts[first], [lab_addresses[first]], "put", *REPLICATED)
    assert written.rc == 0, written.stderr
    assert read_key(lab_hosts[last], lab_addresses[last], REPLICATED[0]) == REPLICATED[1]


def test_plaintext_client_is_refused(
    hostname: str, lab_hosts: dict[str, Host], lab_addresses: dict[str, str]
) -> None:
    host, address = lab_hosts[hostname], lab_addresses[hostname]
    # The port answers the request over TLS with the health-check client's certificate.
    answer = http_probe(host, f"https://{address}:2379/health", CA, CLIENT_CERT, CLIENT_KEY)
    assert answer == "status 200", answer
    answer = http_probe(host, f"http://{address}:2379/health")
    assert not answer.startswith("status 200"), answer


def test_tls_client_without_certificate_is_refused(
    hostname: str, lab_hosts: dict[str, Host], lab_addresses: dict[str, str]
) -> None:
    host, address = lab_hosts[hostname], lab_addresses[hostname]
    # The same read with the health-check client succeeds: only the certificate differs. (The
    # client's error text varies: "certificate required", or a broken pipe when it loses the race.)
    assert read_key(host, address, REPLICATED[0]) == REPLICATED[1]
    certless = etcdctl(host, [address], "get", REPLICATED[0], certificate=False)
    assert certless.rc != 0, f"read without a client certificate: {certless.stdout}"


def test_peer_port_refuses_a_client_without_certificate(
    hostname: str, lab_hosts: dict[str, Host], lab_addresses: dict[str, str]
) -> None:
    host, url = lab_hosts[hostname], f"https://{lab_addresses[hostname]}:2380/members"
    # The same request with the member's peer certificate is answered: only the cert differs.
    answer = http_probe(host, url, CA, f"{PKI}/peer.crt", f"{PKI}/peer.key")
    assert answer == "status 200", answer
    answer = http_probe(host, url, CA)
    assert answer.startswith("error"), answer


def test_writes_go_on_with_a_member_stopped_and_it_catches_up(
    members: list[str], lab_hosts: dict[str, Host], lab_addresses: dict[str, str]
) -> None:
    first, last = members[0], members[-1]
    stopped = lab_hosts[last]
    stopped.run_test("systemctl stop etcd.service")
    try:
        down = etcdctl(lab_hosts[first], [lab_addresses[last]], "endpoint", "health")
        assert down.rc != 0, f"{last} still answers after stop: {down.stdout}"
        written = etcdctl(lab_hosts[first], [lab_addresses[first]], "put", *WHILE_DOWN)
        assert written.rc == 0, f"write with {last} down: {written.stderr}"
    finally:
        stopped.run_test("systemctl start etcd.service")
    wait_until(
        lambda: read_key(stopped, lab_addresses[last], WHILE_DOWN[0]) == WHILE_DOWN[1],
        60,
        f"{last} reads the key written while it was down",
    )


def test_changed_flag_restarts_the_members_one_at_a_time_behind_the_gate(
    members: list[str],
    member_addresses: list[str],
    lab_hosts: dict[str, Host],
    ansible_playbook: Callable[..., Any],
    log_level: str,
) -> None:
    pids_before = {name: unit_property(lab_hosts[name], "MainPID") for name in members}
    run = ansible_playbook(STAGE, {"etcd_flags": {"log-level": log_level}})
    assert run.returncode == 0, run.stdout[-4000:]
    steps = ansible_steps(run.stdout, members)
    restarts = [step for step in steps if step.startswith("Restart etcd on")]
    assert len(restarts) == len(members), steps
    gated = [f"{step} {name}" for name in members for step in ROLLING_STEPS]
    assert steps[: len(gated)] == gated, steps
    # On the hosts: every member restarted with the flag, each after the previous was ready.
    for name in members:
        host = lab_hosts[name]
        assert unit_property(host, "MainPID") != pids_before[name], f"{name} not restarted"
        assert f"--log-level={log_level}" in host.file(UNIT).content_string, f"{name}: {UNIT}"
    started = {n: unit_property(lab_hosts[n], "ExecMainStartTimestampMonotonic") for n in members}
    ready = {n: unit_property(lab_hosts[n], "ActiveEnterTimestampMonotonic") for n in members}
    for previous, following in itertools.pairwise(members):
        assert started[following] > ready[previous], f"{following} restarted before {previous}"
    assert_healthy_with_one_leader(lab_hosts[members[0]], member_addresses)


def test_data_survive_the_rolling_restart(
    hostname: str, lab_hosts: dict[str, Host], lab_addresses: dict[str, str]
) -> None:
    host, address = lab_hosts[hostname], lab_addresses[hostname]
    assert read_key(host, address, REPLICATED[0]) == REPLICATED[1]
    assert read_key(host, address, WHILE_DOWN[0]) == WHILE_DOWN[1]


def test_removed_member_with_wiped_data_rejoins_through_member_add(
    members: list[str],
    lab_hosts: dict[str, Host],
    lab_addresses: dict[str, str],
    ansible_playbook: Callable[..., Any],
    log_level: str,
) -> None:
    """docs/etcd.md, replacing a member: remove it, wipe its data, run the etcd stage."""
    first, last = members[0], members[-1]
    source, replaced = lab_hosts[first], lab_hosts[last]
    old_ids = member_ids(source, lab_addresses[first])
    kept_pids = {name: unit_property(lab_hosts[name], "MainPID") for name in members[:-1]}
    removed = etcdctl(source, [lab_addresses[first]], "member", "remove", f"{old_ids[last]:x}")
    assert removed.rc == 0, removed.stderr
    replaced.run_test("systemctl stop etcd.service && rm -rf %s/member", DATA_DIR)

    run = ansible_playbook(STAGE, {"etcd_flags": {"log-level": log_level}})
    assert run.returncode == 0, run.stdout[-4000:]
    # Added as a learner, promoted once in sync: never a voter without data.
    for step in ("Add to the cluster as a learner", "Promote the learner to a voting member"):
        assert f"TASK [etcd : {step} {last}]" in run.stdout, f"no step '{step} {last}' in the run"

    # A new member ID: etcd3 is back through `member add`, not its old identity.
    new_ids = member_ids(source, lab_addresses[first])
    assert sorted(new_ids) == sorted(members), new_ids
    assert new_ids[last] != old_ids[last], f"{last} kept its old member ID"
    bootstrap = replaced.file("/etc/etcd/bootstrap.env").content_string
    assert "ETCD_INITIAL_CLUSTER_STATE=existing" in bootstrap, bootstrap
    for name, pid in kept_pids.items():
        assert unit_property(lab_hosts[name], "MainPID") == pid, f"{name} was restarted"
    assert read_key(replaced, lab_addresses[last], REPLICATED[0]) == REPLICATED[1]
    assert_healthy_with_one_leader(source, [lab_addresses[name] for name in members])


def test_every_member_is_healthy_after_the_drills(
    hostname: str, lab_hosts: dict[str, Host], lab_addresses: dict[str, str]
) -> None:
    host, address = lab_hosts[hostname], lab_addresses[hostname]
    health = etcdctl_json(host, [address], "endpoint", "health")
    assert [endpoint["health"] for endpoint in health] == [True], health
    assert read_key(host, address, WHILE_DOWN[0]) == WHILE_DOWN[1]

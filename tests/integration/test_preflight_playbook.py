"""playbooks/00-preflight.yml for real: bad inventories stop the run before the first change.

Every host is a loopback address with ansible_connection=local (or an SSH port that nothing
listens on), so no other machine is ever contacted. A play after preflight writes a marker
file: when preflight fails, the marker must not exist.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_inventory import (
    check_inventory,
)

from tests.unit.preflight_fixtures import Inventory
from tests.unit.test_preflight_inventory import CASES, Case

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def _inventory(**overrides: object) -> dict[str, object]:
    """A small valid cluster on loopback addresses; overrides go into group_vars all."""
    hosts = {
        "lb1": "127.0.0.11",
        "cp1": "127.0.0.21",
        "cp2": "127.0.0.22",
        "cp3": "127.0.0.23",
        "node1": "127.0.0.31",
    }
    return {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "kubesmith_apiserver_vip": "127.0.0.10",
                **overrides,
            },
            "children": {
                "lb": {"hosts": {"lb1": {"ansible_host": hosts["lb1"]}}},
                "etcd": {"hosts": {"cp1": None, "cp2": None, "cp3": None}},
                "kube_control_plane": {
                    "hosts": {h: {"ansible_host": hosts[h]} for h in ("cp1", "cp2", "cp3")}
                },
                "kube_node": {"hosts": {"node1": {"ansible_host": hosts["node1"]}}},
                "k8s_cluster": {"children": {"kube_control_plane": None, "kube_node": None}},
            },
        }
    }


def _run(
    tmp_path: Path,
    inventory: dict[str, object] | str,
    *args: str,
    marker_hosts: str = "localhost",
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run preflight then a play that changes something; return (process, marker directory)."""
    if isinstance(inventory, str):
        inventory_path = REPO / inventory
    else:
        inventory_path = tmp_path / "hosts.yml"
        inventory_path.write_text(yaml.safe_dump(inventory))
    markers = tmp_path / "changed"
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {"ansible.builtin.import_playbook": str(REPO / "playbooks/00-preflight.yml")},
                {
                    "name": "The first change after preflight",
                    "hosts": marker_hosts,
                    "gather_facts": False,
                    "tags": ["always"],
                    "tasks": [
                        {
                            "name": "Leave a marker",
                            "ansible.builtin.file": {"path": str(markers), "state": "directory"},
                        }
                    ],
                },
            ]
        )
    )
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    process = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory_path), str(playbook), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return process, markers


def _lines(process: subprocess.CompletedProcess[str], level: str) -> list[str]:
    prefix = f"[preflight] {level}: "
    output = process.stdout + process.stderr
    return [line.removeprefix(prefix) for line in output.splitlines() if line.startswith(prefix)]


BAD_INVENTORIES = [
    (
        "even etcd",
        {"kube_control_plane": None},
        "groups['etcd']=['cp1', 'cp2'] has an even number of members (2)",
    ),
    (
        "overlapping networks",
        {"kubesmith_pod_cidr": "10.96.0.0/16"},
        "kubesmith_pod_cidr='10.96.0.0/16' overlaps kubesmith_service_cidr='10.96.0.0/12'",
    ),
    (
        "VIP port on the apiserver port",
        {"kubesmith_apiserver_lb_mode": "local", "kubesmith_apiserver_vip_port": 6443},
        "cp1, cp2, cp3: kubesmith_apiserver_vip_port=6443 is also the port of kube-apiserver",
    ),
    (
        "broken expression",
        {"kubesmith_pod_cidr": "{{ undefined_network }}"},
        "kubesmith_pod_cidr='{{ undefined_network }}' cannot be evaluated on hosts",
    ),
    (
        "wrong type",
        {"kubesmith_apiserver_port": "https"},
        "kubesmith_apiserver_port='https' is a str, not an int",
    ),
    (
        "misspelt choice",
        {"kubesmith_cgroup_driver": "sytemd"},
        "kubesmith_cgroup_driver='sytemd' is not one of ['cgroupfs', 'systemd'] "
        "(did you mean 'systemd'?)",
    ),
    (
        "misspelt name",
        {"kubesmith_kube_proxy_mod": "ipvs"},
        "kubesmith_kube_proxy_mod is not a kubesmith variable",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [(o, e) for _n, o, e in BAD_INVENTORIES],
    ids=[n for n, _o, _e in BAD_INVENTORIES],
)
def test_bad_inventory_stops_before_any_change(
    tmp_path: Path, overrides: dict[str, object], expected: str
) -> None:
    inventory = _inventory(**{k: v for k, v in overrides.items() if v is not None})
    if "kube_control_plane" in overrides:
        inventory["all"]["children"]["etcd"]["hosts"].pop("cp3")  # type: ignore[index]
    process, markers = _run(tmp_path, inventory)
    errors = _lines(process, "ERROR")
    assert process.returncode != 0
    assert any(line.startswith(expected) and "; fix: " in line for line in errors), (
        errors,
        process.stdout[-3000:],
    )
    assert not markers.exists(), "a play after preflight ran"
    assert "Preflight 2/2" not in process.stdout, "layer 2 contacted hosts"


def test_misspelt_choice_and_name_stop_before_any_change(tmp_path: Path) -> None:
    inventory = _inventory(kubesmith_cgroup_driver="sytemd", kubesmith_cgroup_drivr="cgroupfs")
    # A playbook's own -e arguments in a role's namespace are not inventory: not judged.
    process, markers = _run(tmp_path, inventory, "-e", "etcd_replace_member=cp3")
    assert _lines(process, "ERROR") == [
        "kubesmith_cgroup_driver='sytemd' is not one of ['cgroupfs', 'systemd'] "
        "(did you mean 'systemd'?); fix: set kubesmith_cgroup_driver to one of "
        "['cgroupfs', 'systemd'] in the inventory's group_vars/all",
        "kubesmith_cgroup_drivr is not a kubesmith variable: nothing reads it, so it "
        "would be silently ignored; fix: did you mean kubesmith_cgroup_driver? "
        "Rename it in the inventory",
    ], process.stdout[-3000:]
    assert process.returncode != 0
    assert not markers.exists(), "a play after preflight ran"
    assert "Preflight 2/2" not in process.stdout, "layer 2 contacted hosts"


def test_all_problems_in_one_run(tmp_path: Path) -> None:
    inventory = _inventory(
        kubesmith_pod_cidr="10.96.0.0/16",
        kubesmith_kube_proxy_mode="userspace",
        kubesmith_etcd_version="v3.4.23",
    )
    inventory["all"]["children"]["kube_node"]["hosts"]["node1"]["ansible_host"] = "127.0.0.21"  # type: ignore[index]
    process, markers = _run(tmp_path, inventory)
    errors = _lines(process, "ERROR")
    assert len(errors) == 4, errors
    assert "failed=1" in process.stdout
    assert not markers.exists()


def test_limit_still_checks_the_whole_inventory(tmp_path: Path) -> None:
    inventory = _inventory(kubesmith_pod_cidr="10.96.0.0/16")
    process, markers = _run(tmp_path, inventory, "--limit", "node1", marker_hosts="all:localhost")
    errors = _lines(process, "ERROR")
    assert [line.split(" overlaps")[0] for line in errors] == ["kubesmith_pod_cidr='10.96.0.0/16'"]
    assert not markers.exists()


def test_empty_inventory_is_refused(tmp_path: Path) -> None:
    process, markers = _run(tmp_path, {"all": {"hosts": {}}})
    errors = _lines(process, "ERROR")
    assert any(line.startswith("groups['etcd']=[] is empty") for line in errors), errors
    assert any(line.startswith("groups['kube_control_plane']=[] is empty") for line in errors)
    assert not markers.exists()


def test_warnings_do_not_stop_the_run(tmp_path: Path) -> None:
    inventory = _inventory()
    process, markers = _run(tmp_path, inventory, "--tags", "preflight_inventory")
    assert process.returncode == 0, process.stdout[-3000:]
    warnings = _lines(process, "WARNING")
    assert any("is not an address other hosts can reach" in line for line in warnings)
    assert markers.exists()


def test_lab_inventory_layer_one_is_fast(tmp_path: Path) -> None:
    # CPU time of ansible-playbook and its workers: wall time on this shared machine
    # measures the other builds as much as preflight.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process, markers = _run(tmp_path, "inventory/lab", "--tags", "preflight_inventory")
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert process.returncode == 0, process.stdout[-3000:]
    assert _lines(process, "ERROR") == []
    assert markers.exists()
    assert cpu < 10, f"layer 1 on inventory/lab used {cpu:.1f}s of CPU ({elapsed:.1f}s wall)"


@pytest.mark.skipif(not (REPO / "inventory/example").exists(), reason="no inventory/example yet")
def test_example_inventory_layer_one_passes(tmp_path: Path) -> None:
    process, _markers = _run(tmp_path, "inventory/example", "--tags", "preflight_inventory")
    assert process.returncode == 0, process.stdout[-3000:]


def test_hosts_layer_reports_a_busy_port_and_a_stopped_host_together(tmp_path: Path) -> None:
    inventory = _inventory()
    children = inventory["all"]["children"]  # type: ignore[index]
    # A stopped host: SSH to a loopback port nothing listens on.
    children["kube_node"]["hosts"]["node1"].update(
        ansible_connection="ssh", ansible_port=_free_port(), ansible_user="nobody"
    )
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 2379))
        busy.listen()
        process, markers = _run(tmp_path, inventory)
    errors = _lines(process, "ERROR")
    assert any(
        line.startswith("node1: ansible_host='127.0.0.31' is unreachable") for line in errors
    ), errors
    assert any(
        line.startswith("cp1, cp2, cp3: port 2379/tcp='127.0.0.1:2379' is held by python")
        and "but etcd must listen there" in line
        for line in errors
    ), errors
    assert not markers.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Every bad inventory of the unit tests, through the real playbook. Role-spec cases need a
# role on disk and stay unit-only.
PLAYBOOK_CASES = [
    case for case in CASES if not case.name.startswith(("role option", "required role"))
]


def _as_yaml_inventory(inventory: Inventory) -> dict[str, object]:
    """The fixture as an Ansible inventory: every host local, its values as host vars."""
    hosts = {
        host: {
            **values,
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
        }
        for host, values in inventory.hostvars.items()
    }
    groups = {
        group: {"hosts": dict.fromkeys(members)}
        for group, members in inventory.groups.items()
        if group != "all"
    }
    return {"all": {"hosts": hosts, "children": groups}}


@pytest.fixture(scope="module")
def case_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[list[str], subprocess.CompletedProcess[str], Path]]:
    """Run every case's inventory through the playbook, four at a time."""

    def run_case(case: Case) -> tuple[list[str], subprocess.CompletedProcess[str], Path]:
        inventory = Inventory()
        case.mutate(inventory)
        expected = check_inventory(inventory.data()).errors
        workdir = tmp_path_factory.mktemp("case")
        process, markers = _run(workdir, _as_yaml_inventory(inventory))
        return expected, process, markers

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(run_case, PLAYBOOK_CASES)
        return {case.name: result for case, result in zip(PLAYBOOK_CASES, results, strict=True)}


@pytest.mark.parametrize("case", PLAYBOOK_CASES, ids=[case.name for case in PLAYBOOK_CASES])
def test_every_bad_inventory_stops_the_playbook(
    case: Case, case_runs: dict[str, tuple[list[str], subprocess.CompletedProcess[str], Path]]
) -> None:
    expected, process, markers = case_runs[case.name]
    assert len(expected) == 1
    assert _lines(process, "ERROR") == expected, process.stdout[-3000:]
    assert process.returncode != 0
    assert not markers.exists(), "a play after preflight ran"
    assert "Preflight 2/2" not in process.stdout, "layer 2 contacted hosts"


def test_enough_bad_inventories_run_through_the_playbook() -> None:
    assert len(PLAYBOOK_CASES) >= 30

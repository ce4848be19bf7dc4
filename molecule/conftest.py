"""Fixtures shared by the testinfra verifiers of the molecule scenarios (molecule/<s>/tests).

Molecule runs pytest with `--connection=ansible --ansible-inventory=<scenario>/inventory` (the
verifier options of each molecule.yml): these fixtures read that same inventory. Tests that
take a `hostname` argument run once per host of the module's `lab_group` (default: all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra
from testinfra.host import Host
from testinfra.utils.ansible_runner import AnsibleRunner

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

PlaybookRunner = Callable[..., subprocess.CompletedProcess[str]]


def _inventory(config: pytest.Config) -> str:
    inventory = config.getoption("ansible_inventory")
    if not inventory:
        raise pytest.UsageError(
            "these tests need the scenario inventory: run `molecule verify -s <scenario>`, "
            "or pytest --connection=ansible --ansible-inventory=molecule/<scenario>/inventory"
        )
    return str(inventory)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hostname" in metafunc.fixturenames:
        group = getattr(metafunc.module, "lab_group", "all")
        names = AnsibleRunner.get_runner(_inventory(metafunc.config)).get_hosts(group)
        metafunc.parametrize("hostname", names)


@pytest.fixture(scope="session")
def lab_inventory(pytestconfig: pytest.Config) -> Path:
    return Path(_inventory(pytestconfig))


@pytest.fixture(scope="session")
def lab_runner(lab_inventory: Path) -> AnsibleRunner:
    return AnsibleRunner.get_runner(str(lab_inventory))


@pytest.fixture(scope="session")
def lab_groups(lab_runner: AnsibleRunner) -> dict[str, list[str]]:
    """Each group's hosts, sorted; `all` holds every host."""
    groups = lab_runner.get_variables(lab_runner.get_hosts()[0])["groups"]
    return {group: sorted(set(names)) for group, names in groups.items()}


@pytest.fixture(scope="session")
def lab_addresses(lab_runner: AnsibleRunner) -> dict[str, str]:
    """Each host's address (ansible_host) by inventory name."""
    return {
        name: str(lab_runner.get_variables(name).get("ansible_host", name))
        for name in lab_runner.get_hosts()
    }


def _routed_to_a_lab_bridge(address: str) -> bool:
    # With the lab down its range hits the blackhole route: never connect then (docs/lab.md).
    route = subprocess.run(
        ["ip", "-4", "route", "get", address], capture_output=True, text=True, check=False
    )
    return route.returncode == 0 and " dev " in route.stdout


@pytest.fixture(scope="session", autouse=True)
def lab_is_up(lab_addresses: dict[str, str]) -> None:
    down = sorted(name for name, ip in lab_addresses.items() if not _routed_to_a_lab_bridge(ip))
    if down:
        pytest.exit(f"lab hosts {down} have no route (lab down?): run `molecule create`", 2)


@pytest.fixture(scope="session")
def lab_hosts(lab_inventory: Path, lab_addresses: dict[str, str]) -> dict[str, Host]:
    """testinfra hosts by inventory name (SSH with the inventory's user, key and become)."""
    return {
        name: testinfra.get_host(f"ansible://{name}", ansible_inventory=str(lab_inventory))
        for name in lab_addresses
    }


@pytest.fixture(scope="session")
def lab_tool(lab_inventory: Path) -> Callable[..., str]:
    """Run `kubesmith-lab --inventory <scenario inventory> ARGS...`; return its output."""

    def run(*args: str) -> str:
        command = [str(VENV_BIN / "kubesmith-lab"), "--inventory", str(lab_inventory), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def ansible_playbook(lab_inventory: Path) -> PlaybookRunner:
    """Run a playbook of the repository against the scenario inventory; return the process."""

    def run(
        playbook: str, extra_vars: dict[str, Any] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [str(VENV_BIN / "ansible-playbook"), f"--inventory={lab_inventory}"]
        if extra_vars:
            command.append(f"--extra-vars={json.dumps(extra_vars)}")
        command.append(str(REPO / playbook))
        environment = {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
        return subprocess.run(
            command,
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )

    return run

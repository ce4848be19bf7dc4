"""The lab tool reads inventories and refuses the ones it cannot make real."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from kubesmith.lab import cli
from kubesmith.lab.errors import LabError
from kubesmith.lab.spec import LAB_RANGE, spec_from_inventory

REPO = Path(__file__).resolve().parents[2]


def write_inventory(
    tmp_path: Path, hosts: dict[str, dict[str, object]], **all_vars: object
) -> Path:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    data = {"all": {"vars": all_vars, "children": {"lb": {"hosts": hosts}}}}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(data))
    return inventory


def test_lab_inventory_describes_seven_hosts_inside_the_lab_range() -> None:
    spec = spec_from_inventory(REPO / "inventory" / "lab")
    assert spec.name == "lab"
    assert spec.subnet == ipaddress.IPv4Network("172.30.10.0/24")
    assert spec.subnet.subnet_of(LAB_RANGE)
    assert sorted(h.name for h in spec.hosts) == [
        "cp1",
        "cp2",
        "cp3",
        "lb1",
        "lb2",
        "node1",
        "node2",
    ]
    assert spec.host("cp2").ip == ipaddress.IPv4Address("172.30.10.22")
    assert spec.container_name(spec.host("lb1")) == "kubesmith-lab-lb1"
    assert spec.ssh_user == "kubesmith"


def test_good_small_inventory(tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path,
        {"a": {"ansible_host": "172.30.99.5"}},
        kubesmith_lab_subnet="172.30.99.0/24",
        kubesmith_lab_name="tiny",
    )
    spec = spec_from_inventory(inventory)
    assert spec.network_name == "kubesmith-tiny"
    assert str(spec.gateway) == "172.30.99.1"


@pytest.mark.parametrize(
    ("hosts", "all_vars", "message"),
    [
        (
            {"a": {"ansible_host": "172.30.99.5"}},
            {},
            "has no kubesmith_lab_subnet",
        ),
        (
            {"a": {"ansible_host": "10.1.2.3"}},
            {"kubesmith_lab_subnet": "10.1.2.0/24"},
            "kubesmith_lab_subnet=10.1.2.0/24 is outside the lab range 172.30.0.0/15",
        ),
        (
            {"a": {"ansible_host": "172.30.99.5"}},
            {"kubesmith_lab_subnet": "172.30.99.0/33"},
            "kubesmith_lab_subnet='172.30.99.0/33' is not an IPv4 network",
        ),
        (
            {"a": {}},
            {"kubesmith_lab_subnet": "172.30.99.0/24"},
            "inventory host a has no ansible_host",
        ),
        (
            {"a": {"ansible_host": "web.example"}},
            {"kubesmith_lab_subnet": "172.30.99.0/24"},
            "ansible_host='web.example' is not an IPv4 address",
        ),
        (
            {"a": {"ansible_host": "172.30.98.5"}},
            {"kubesmith_lab_subnet": "172.30.99.0/24"},
            "ansible_host=172.30.98.5 must be inside 172.30.99.0/24",
        ),
        (
            {"a": {"ansible_host": "172.30.99.1"}},
            {"kubesmith_lab_subnet": "172.30.99.0/24"},
            "gateway (172.30.99.1)",
        ),
        (
            {"a": {"ansible_host": "172.30.99.5"}, "b": {"ansible_host": "172.30.99.5"}},
            {"kubesmith_lab_subnet": "172.30.99.0/24"},
            "inventory hosts a and b share ansible_host=172.30.99.5",
        ),
    ],
)
def test_bad_inventories_are_refused_with_the_field_and_fix(
    tmp_path: Path, hosts: dict[str, dict[str, object]], all_vars: dict[str, object], message: str
) -> None:
    inventory = write_inventory(tmp_path, hosts, **all_vars)
    with pytest.raises(LabError) as excinfo:
        spec_from_inventory(inventory)
    assert message in str(excinfo.value)


def test_missing_inventory_is_named(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="does not exist; pass -i"):
        spec_from_inventory(tmp_path / "nope")


def test_unknown_host_lists_the_known_ones() -> None:
    spec = spec_from_inventory(REPO / "inventory" / "lab")
    with pytest.raises(LabError, match="host 'db9' is not in lab 'lab'; its hosts are: cp1"):
        spec.host("db9")


def test_cli_reports_errors_as_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "require_root", lambda: None)
    inventory = write_inventory(tmp_path, {"a": {}}, kubesmith_lab_subnet="172.30.99.0/24")
    assert cli.main(["-i", str(inventory), "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kubesmith-lab: error: inventory host a has no ansible_host")
    assert "Traceback" not in err


def test_cli_refuses_non_root(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["status"]) == 2
    assert "the lab needs root" in capsys.readouterr().err

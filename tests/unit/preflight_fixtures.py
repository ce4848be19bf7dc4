"""Inventories as plain data for the preflight tests: the lab's layout and values."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_inventory import (
    CLUSTER_SPEC,
    HOST_VARIABLES,
    InventoryData,
    RoleSpec,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_names import (
    KnownVariables,
    known_variables,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "roles/kubesmith/defaults/main.yml").read_text())
PREFLIGHT_DEFAULTS = yaml.safe_load((REPO / "roles/preflight/defaults/main.yml").read_text())

HOST_IPS = {
    "lb1": "172.30.10.11",
    "lb2": "172.30.10.12",
    "cp1": "172.30.10.21",
    "cp2": "172.30.10.22",
    "cp3": "172.30.10.23",
    "node1": "172.30.10.31",
    "node2": "172.30.10.32",
}
LAB_VALUES = {
    "kubesmith_cluster_name": "lab",
    "kubesmith_apiserver_vip": "172.30.10.10",
    "kubesmith_apiserver_vip_port": 8443,
    "kubesmith_pod_cidr": "172.31.0.0/16",
    "kubesmith_service_cidr": "172.30.128.0/20",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def repo_known_variables() -> KnownVariables:
    """The names the action plugin knows: the roles', preflight's own, the inventory-only list."""
    also = [
        *CLUSTER_SPEC,
        *HOST_VARIABLES,
        *PREFLIGHT_DEFAULTS["preflight_inventory_only_variables"],
    ]
    return known_variables(REPO / "roles", load_yaml, also)


KNOWN = repo_known_variables()


def repo_role_spec(role: str) -> RoleSpec:
    """A role's argument spec (entry point main) as the action plugin reads it."""
    spec = load_yaml(REPO / "roles" / role / "meta/argument_specs.yml")
    defaults = load_yaml(REPO / "roles" / role / "defaults/main.yml") or {}
    return RoleSpec(role, spec["argument_specs"]["main"]["options"], frozenset(defaults))


def lab_groups() -> dict[str, list[str]]:
    groups = {
        "lb": ["lb1", "lb2"],
        "etcd": ["cp1", "cp2", "cp3"],
        "kube_control_plane": ["cp1", "cp2", "cp3"],
        "kube_node": ["node1", "node2"],
    }
    groups["k8s_cluster"] = groups["kube_control_plane"] + groups["kube_node"]
    groups["all"] = groups["lb"] + groups["k8s_cluster"]
    return groups


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def cluster_defaults() -> dict[str, Any]:
    """The defaults preflight reads; derived ones (templates) are left to Ansible to derive."""
    wanted = set(CLUSTER_SPEC) | set(HOST_VARIABLES)
    defaults = {k: v for k, v in DEFAULTS.items() if k in wanted and not is_template(v)}
    return defaults | LAB_VALUES


class Inventory:
    """A mutable lab-like inventory; data() freezes it into InventoryData."""

    def __init__(self) -> None:
        self.groups = lab_groups()
        values = cluster_defaults()
        self.hostvars: dict[str, dict[str, Any]] = {
            host: copy.deepcopy(values) | {"ansible_host": ip} for host, ip in HOST_IPS.items()
        }
        self.role_specs: list[RoleSpec] = []

    def set_all(self, name: str, value: Any) -> Inventory:
        for values in self.hostvars.values():
            values[name] = value
        return self

    def set_host(self, host: str, name: str, value: Any) -> Inventory:
        self.hostvars.setdefault(host, {})[name] = value
        return self

    def add_host(self, host: str, ip: str, *groups: str) -> Inventory:
        self.hostvars[host] = copy.deepcopy(self.hostvars["node1"]) | {"ansible_host": ip}
        for group in groups:
            self.groups.setdefault(group, []).append(host)
        self.groups["all"].append(host)
        return self

    def data(self) -> InventoryData:
        """Every value counts as set by the inventory, as the integration test writes them."""
        return InventoryData(
            self.groups, self.hostvars, self.role_specs, known=KNOWN, inventory_names=self.hostvars
        )

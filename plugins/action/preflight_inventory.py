"""Action kubesmith.cluster.preflight_inventory: judge the inventory on the controller alone.

Reads every cluster host's variables (inventory values over the kubesmith role's defaults,
templated in that host's context), hands them to the pure checks of
module_utils/preflight_inventory and fails once with every problem, one line each.
No connection to any host is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight import Report
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_inventory import (
    CLUSTER_GROUPS,
    CLUSTER_SPEC,
    HOST_VARIABLES,
    K8S,
    InventoryData,
    InventorySettings,
    RoleSpec,
    check_inventory,
    play_roles,
    resolve_hosts,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_names import (
    KnownVariables,
    known_variables,
)

COLLECTION_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULTS_ROLE = "kubesmith"

display = Display()


class InventoryLoader:
    """Each cluster host's effective, templated values of the variables preflight reads."""

    def __init__(
        self,
        action: ActionBase,
        task_vars: dict[str, Any],
        report: Report,
        inventory_only: Sequence[str] = (),
    ) -> None:
        self.action = action
        self.task_vars = task_vars
        self.report = report
        self.defaults = self.load_yaml(_role_file(DEFAULTS_ROLE, "defaults/main.yml")) or {}
        self.role_specs = self.load_role_specs()
        # (name, raw expression, reason, whether it is a kubesmith default) -> hosts
        self.unresolved: dict[tuple[str, str, str, bool], list[str]] = {}
        self.known = known_variables(
            COLLECTION_ROOT / "roles",
            self.load_yaml,
            [*CLUSTER_SPEC, *HOST_VARIABLES, *inventory_only],
        )

    def load_yaml(self, path: Path) -> Any:
        if not path.is_file():
            return None
        return self.action._loader.load_from_file(str(path), trusted_as_template=True)

    def load_role_specs(self) -> list[tuple[str, dict[str, Any], frozenset[str]]]:
        specs = []
        roles_dir = COLLECTION_ROOT / "roles"
        for spec_file in sorted(roles_dir.glob("*/meta/argument_specs.yml")):
            role = spec_file.parent.parent.name
            if role == DEFAULTS_ROLE:
                continue
            content = self.load_yaml(spec_file) or {}
            options = (content.get("argument_specs", {}).get("main") or {}).get("options") or {}
            role_defaults = self.load_yaml(_role_file(role, "defaults/main.yml")) or {}
            specs.append((role, dict(options), frozenset(role_defaults)))
        return specs

    def role_hosts(self) -> dict[str, list[str]]:
        """Which hosts run each role, from the plays of the stage playbooks and setup.yml."""
        groups = self.groups
        runs_on: dict[str, list[str]] = {}
        playbooks = sorted((COLLECTION_ROOT / "playbooks").glob("*.yml"))
        for playbook in [*playbooks, COLLECTION_ROOT / "setup.yml"]:
            plays = self.load_yaml(playbook)
            for play in plays if isinstance(plays, list) else []:
                hosts = resolve_hosts(play.get("hosts"), groups) if isinstance(play, dict) else None
                for role in play_roles(play) if hosts is not None else []:
                    known = runs_on.setdefault(role, [])
                    known.extend(host for host in hosts or [] if host not in known)
        return runs_on

    @property
    def groups(self) -> dict[str, list[str]]:
        return {name: list(hosts) for name, hosts in self.task_vars["groups"].items()}

    def cluster_hosts(self) -> list[str]:
        seen: dict[str, None] = {}
        groups = self.groups
        for group in (*CLUSTER_GROUPS, K8S):
            for host in groups.get(group, []):
                seen.setdefault(host)
        return list(seen)

    def wanted_variables(self) -> set[str]:
        wanted = set(CLUSTER_SPEC) | set(HOST_VARIABLES)
        for _role, options, _defaults in self.role_specs:
            wanted.update(options)
        return wanted

    def host_values(self, host: str, wanted: set[str]) -> dict[str, Any]:
        raw = self.task_vars["hostvars"].raw_get(host)
        merged = {**self.defaults, **dict(raw)}
        templar = self.action._templar.copy_with_new_env(available_variables=merged)
        values: dict[str, Any] = {}
        for name in sorted(wanted & set(merged)):
            try:
                values[name] = templar.template(merged[name])
            except AnsibleError as exc:
                reason = str(exc.message).splitlines()[0]
                key = (name, str(merged[name]), reason, name not in raw)
                self.unresolved.setdefault(key, []).append(host)
        return values

    def inventory_names(self, host: str, known: KnownVariables) -> set[str]:
        """The names of the host's variables in a role's namespace that the inventory sets.

        Extra vars (-e) are a playbook's arguments (etcd_replace_member, reset_confirm, ...),
        not inventory: they are left out.
        """
        raw = self.task_vars["hostvars"].raw_get(host)
        manager = self.action._task.get_variable_manager()
        extra = set(manager.extra_vars) if manager is not None else set()
        return {name for name in raw if name not in extra and known.owner(name) is not None}

    def report_unresolved(self, defaults: bool) -> None:
        """One line per broken expression, however many hosts inherit it.

        defaults: report the broken kubesmith defaults (derived from other settings, such as
        kubesmith_cluster_dns_ip from kubesmith_service_cidr) instead of the inventory's own.
        """
        for (name, raw, reason, default), hosts in self.unresolved.items():
            if default != defaults:
                continue
            where = hosts[0] if len(hosts) == 1 else ""
            also = "" if len(hosts) == 1 else f" on hosts {', '.join(hosts)}"
            self.report.error(
                where,
                name,
                raw,
                f"cannot be evaluated{also} ({reason})",
                f"fix the expression in {name}, or define what it refers to",
            )

    def load(self, settings: InventorySettings) -> InventoryData:
        wanted = self.wanted_variables()
        hostvars = {host: self.host_values(host, wanted) for host in self.cluster_hosts()}
        self.report_unresolved(defaults=False)
        role_specs = [
            RoleSpec(role, options, defaults) for role, options, defaults in self.role_specs
        ]
        unresolved = frozenset(key[0] for key in self.unresolved)
        names = {host: self.inventory_names(host, self.known) for host in self.cluster_hosts()}
        return InventoryData(
            self.groups, hostvars, role_specs, settings, unresolved, self.known, names
        )


def _role_file(role: str, relative: str) -> Path:
    return COLLECTION_ROOT / "roles" / role / relative


def show_report(report: Report) -> None:
    for line in report.warnings:
        display.display(f"[preflight] WARNING: {line}", color="bright purple")
    for line in report.errors:
        display.display(f"[preflight] ERROR: {line}", color="red")


def report_result(report: Report, what: str) -> dict[str, Any]:
    show_report(report)
    result: dict[str, Any] = {
        "changed": False,
        "preflight_errors": report.errors,
        "preflight_warnings": report.warnings,
    }
    if report.errors:
        result["failed"] = True
        result["msg"] = (
            f"preflight: {len(report.errors)} problem(s) in the {what}, listed above as "
            "'[preflight] ERROR:' lines; nothing was changed"
        )
    else:
        result["msg"] = f"preflight: the {what} passed ({len(report.warnings)} warning(s))"
    return result


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible ships no type hints
    """Layer 1 of preflight: inventory and variables, on the controller only."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(
        self, tmp: str | None = None, task_vars: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validated, args = self.validate_argument_spec(
            argument_spec={
                "service_cidr_max_prefix": {"type": "int", "default": 24},
                "pod_subnet_min_addresses": {"type": "int", "default": 128},
                "warn_single_etcd": {"type": "bool", "default": True},
                "inventory_only_variables": {"type": "list", "elements": "str", "default": []},
            }
        )
        report = Report()
        inventory_only = args.pop("inventory_only_variables")
        loader = InventoryLoader(self, task_vars, report, inventory_only)
        data = loader.load(InventorySettings(**args))
        check_inventory(data, report)
        if not report.errors:
            # A default derived from a setting preflight refused fails too: that refusal says it.
            loader.report_unresolved(defaults=True)
        return report_result(report, "inventory and variables")

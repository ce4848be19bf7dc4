"""Action kubesmith.cluster.preflight_hosts: judge every host's facts together, on the controller.

Run once after preflight_host_facts registered `preflight_host_report` on every host; reads
the inventory the same way preflight_inventory does and fails once with every problem.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.kubesmith.cluster.plugins.action.preflight_inventory import (
    InventoryLoader,
    report_result,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight import Report
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_hosts import (
    HostSettings,
    check_hosts,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_inventory import (
    InventorySettings,
    plan_cluster,
)


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible ships no type hints
    """Layer 2 of preflight: the hosts, judged together."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(
        self, tmp: str | None = None, task_vars: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validated, args = self.validate_argument_spec(
            argument_spec={
                "register": {"type": "str", "default": "preflight_host_report"},
                "supported_os": {"type": "dict", "required": True},
                "min_memory_mb": {"type": "dict", "default": {}},
                "min_cpus": {"type": "dict", "default": {}},
                "disk": {"type": "list", "elements": "dict", "default": []},
                "max_clock_skew_seconds": {"type": "float", "default": 2.0},
            }
        )
        report = Report()
        data = InventoryLoader(self, task_vars, Report()).load(InventorySettings())
        plan = plan_cluster(data)
        hostvars = task_vars["hostvars"]
        results = {
            host: hostvars[host][args["register"]]
            for host in task_vars.get("ansible_play_hosts_all", [])
            if args["register"] in hostvars[host]
        }
        settings = HostSettings(
            supported_os=args["supported_os"],
            min_memory_mb=args["min_memory_mb"],
            min_cpus=args["min_cpus"],
            disk=args["disk"],
            max_clock_skew_seconds=args["max_clock_skew_seconds"],
        )
        check_hosts(plan, results, settings, report)
        return report_result(report, "hosts")

"""Filters over plugins/module_utils/cis: the CIS facts verify reads on each host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.kubesmith.cluster.plugins.module_utils import cis
from ansible_collections.kubesmith.cluster.plugins.module_utils.filter_errors import (
    filter_errors as shared_filter_errors,
)

filter_errors = shared_filter_errors(cis.CisError)


@filter_errors
def cis_expectations(group_names: Any, hostname: Any, settings: Any) -> dict[str, Any]:
    """group_names | cis_expectations(inventory_hostname, settings)."""
    return cis.expectations(group_names, hostname, settings)


@filter_errors
def cis_read_command(expected: Any) -> str:
    """expected | cis_read_command: one bash script printing every fact."""
    return cis.read_command(expected)


@filter_errors
def cis_report(lines: Any, expected: Any) -> list[dict[str, Any]]:
    """stdout_lines | cis_report(expected): one row {check, ok, detail} per fact."""
    return cis.report(lines, expected)


class FilterModule:
    """kubesmith CIS filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "cis_expectations": cis_expectations,
            "cis_read_command": cis_read_command,
            "cis_report": cis_report,
        }

"""Filters over plugins/module_utils/binary_versions: the installed-version proof."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.kubesmith.cluster.plugins.module_utils import binary_versions


def binary_version_checks(
    catalog: Any, components: Any, group_names: Any, link_dir: str, cni_dir: str
) -> list[dict[str, str]]:
    """binaries_catalog | binary_version_checks(components, group_names, link_dir, cni_dir)."""
    try:
        return binary_versions.version_checks(catalog, components, group_names, link_dir, cni_dir)
    except binary_versions.BinaryVersionError as exc:
        raise AnsibleFilterError(f"binary_version_checks: {exc}") from exc


def binary_versions_report(
    lines: Any, catalog: Any, pinned: Any, install_dir: str, says: Any = None
) -> list[dict[str, Any]]:
    """stdout_lines | binary_versions_report(catalog, pinned, install_dir, says)."""
    try:
        return binary_versions.versions_report(lines, catalog, pinned, install_dir, says)
    except binary_versions.BinaryVersionError as exc:
        raise AnsibleFilterError(f"binary_versions_report: {exc}") from exc


class FilterModule:
    """kubesmith binary filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "binary_version_checks": binary_version_checks,
            "binary_versions_report": binary_versions_report,
        }

"""Filters over plugins/module_utils/binary_versions: the installed-version proof."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.kubesmith.cluster.plugins.module_utils import binary_versions
from ansible_collections.kubesmith.cluster.plugins.module_utils.filter_errors import (
    filter_errors as shared_filter_errors,
)

filter_errors = shared_filter_errors(binary_versions.BinaryVersionError)


@filter_errors
def binary_version_checks(
    catalog: Any, components: Any, group_names: Any, link_dir: str, cni_dir: str
) -> list[dict[str, str]]:
    """binaries_catalog | binary_version_checks(components, group_names, link_dir, cni_dir)."""
    return binary_versions.version_checks(catalog, components, group_names, link_dir, cni_dir)


@filter_errors
def binary_versions_report(
    lines: Any, catalog: Any, pinned: Any, install_dir: str, says: Any = None
) -> list[dict[str, Any]]:
    """stdout_lines | binary_versions_report(catalog, pinned, install_dir, says)."""
    return binary_versions.versions_report(lines, catalog, pinned, install_dir, says)


@filter_errors
def binary_install_plan(
    catalog: Any,
    components: Any,
    group_names: Any,
    sources: Any,
    dirs: Any,
) -> list[dict[str, str]]:
    """binaries_catalog | binary_install_plan(components, group_names, sources, dirs)."""
    return binary_versions.install_plan(catalog, components, group_names, sources, dirs)


@filter_errors
def binary_install_todo(plan: Any, installed: Any, source_sums: Any) -> dict[str, list[Any]]:
    """binaries_plan | binary_install_todo(installed_lines, sha256sum_lines)."""
    return binary_versions.install_todo(plan, installed, source_sums)


@filter_errors
def binary_sources(
    tarballs: Any, extract_dir: str, kubernetes_version: str, kubernetes_src: str
) -> dict[str, dict[str, str]]:
    """binaries_tarballs | binary_sources(extract_dir, kubernetes_version, kubernetes_src)."""
    return binary_versions.sources(tarballs, extract_dir, kubernetes_version, kubernetes_src)


class FilterModule:
    """kubesmith binary filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "binary_install_plan": binary_install_plan,
            "binary_install_todo": binary_install_todo,
            "binary_sources": binary_sources,
            "binary_version_checks": binary_version_checks,
            "binary_versions_report": binary_versions_report,
        }

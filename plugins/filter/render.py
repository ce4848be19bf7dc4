"""Renderer filters: kubeconfig, systemd_unit, flannel_net_conf, flannel_subnet_env(_parse)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.kubesmith.cluster.plugins.module_utils import (
    flannel,
    kubeconfig,
    systemd_unit,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.filter_errors import (
    filter_errors as shared_filter_errors,
)

filter_errors = shared_filter_errors(
    flannel.FlannelError, kubeconfig.KubeconfigError, systemd_unit.UnitError
)


@filter_errors
def kubeconfig_filter(spec: Any) -> str:
    return kubeconfig.render_kubeconfig(spec)


@filter_errors
def systemd_unit_filter(spec: Any) -> str:
    return systemd_unit.render_unit(spec)


@filter_errors
def flannel_net_conf(settings: Any, host_count: Any = 0) -> str:
    return flannel.render_net_conf(settings, host_count)


@filter_errors
def flannel_subnet_env(values: Any) -> str:
    return flannel.render_subnet_env(values)


@filter_errors
def flannel_subnet_env_parse(content: Any) -> dict[str, Any]:
    return flannel.parse_subnet_env(content)


class FilterModule:
    """kubesmith renderers."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "kubeconfig": kubeconfig_filter,
            "systemd_unit": systemd_unit_filter,
            "flannel_net_conf": flannel_net_conf,
            "flannel_subnet_env": flannel_subnet_env,
            "flannel_subnet_env_parse": flannel_subnet_env_parse,
        }

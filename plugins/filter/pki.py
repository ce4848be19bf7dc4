"""Filters that turn inventory facts into the PKI plan and network values.

kubesmith.cluster.pki_plan, pki_host_files, apiserver_sans, host_addresses, nth_ip,
etcd_initial_cluster, cert_report, cert_report_table.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.kubesmith.cluster.plugins.module_utils import (
    cert_report,
    netcalc,
    pki_plan,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.filter_errors import (
    filter_errors as shared_filter_errors,
)

filter_errors = shared_filter_errors(
    netcalc.NetcalcError, pki_plan.PlanError, cert_report.ReportError
)


@filter_errors
def pki_plan_filter(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    return pki_plan.pki_plan(facts)


@filter_errors
def apiserver_sans(facts: Mapping[str, Any]) -> dict[str, list[str]]:
    return pki_plan.apiserver_sans(facts)


@filter_errors
def pki_host_files(group_names: Any, hostname: Any, flanneld: bool = True) -> list[dict[str, Any]]:
    return pki_plan.host_files(group_names, hostname, flanneld)


@filter_errors
def host_addresses(
    names: Iterable[str], hostvars: Mapping[str, Any], override_var: str = "kubesmith_node_ip"
) -> list[dict[str, str]]:
    return netcalc.host_addresses(names, hostvars, override_var)


@filter_errors
def nth_ip(cidr: str, index: int) -> str:
    return netcalc.nth_ip(cidr, index)


@filter_errors
def etcd_initial_cluster(members: list[Any], scheme: str = "https", peer_port: int = 2380) -> str:
    return netcalc.etcd_initial_cluster(members, scheme, peer_port)


@filter_errors
def cert_report_filter(collected: Any, threshold_days: int = 30) -> dict[str, Any]:
    """{threshold_days, rows, below_threshold} from [{host, path, pem}]."""
    now = datetime.datetime.now(datetime.UTC)
    return cert_report.build_report(collected, threshold_days, now)


@filter_errors
def cert_report_table(rows: Any) -> str:
    return cert_report.format_table(rows)


class FilterModule:
    """kubesmith PKI and address filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "pki_plan": pki_plan_filter,
            "apiserver_sans": apiserver_sans,
            "pki_host_files": pki_host_files,
            "host_addresses": host_addresses,
            "nth_ip": nth_ip,
            "etcd_initial_cluster": etcd_initial_cluster,
            "cert_report": cert_report_filter,
            "cert_report_table": cert_report_table,
        }

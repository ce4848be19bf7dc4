"""kubesmith.cluster.serving_csr_decisions: which kubelet serving CSRs are safe to approve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.kubesmith.cluster.plugins.module_utils import csr_approval


def serving_csr_decisions(csr_list: Any, node_list: Any) -> dict[str, Any]:
    """`kubectl get csr -o json` | serving_csr_decisions(`kubectl get nodes -o json`)."""
    try:
        return csr_approval.serving_csr_decisions(csr_list, node_list)
    except csr_approval.CsrError as exc:
        raise AnsibleFilterError(f"serving_csr_decisions: {exc}") from exc


class FilterModule:
    """kubesmith CSR filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"serving_csr_decisions": serving_csr_decisions}

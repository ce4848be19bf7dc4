"""Action of kubesmith.cluster.preflight_host_facts: read a host, never fail the play.

Brackets the module with the deploy host's clock (so clock skew is measured against a known
window) and turns "unreachable", "become failed" and module failures into data, so that
preflight_hosts can report every host's problems together instead of the first one.
"""

from __future__ import annotations

import time
from typing import Any

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase

MODULE = "kubesmith.cluster.preflight_host_facts"
_BECOME_HINTS = ("sudo", "password", "become", "privilege", "sudoers")


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible ships no type hints
    """Run the module; report failures as `preflight_failure` instead of failing."""

    TRANSFERS_FILES = False

    def run(
        self, tmp: str | None = None, task_vars: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        super().run(tmp, task_vars)
        user = self._play_context.remote_user or (task_vars or {}).get("ansible_user", "")
        become_user = self._play_context.become_user or "root"
        before = time.time()
        try:
            result = self._execute_module(
                module_name=MODULE, module_args=self._task.args, task_vars=task_vars
            )
        except AnsibleConnectionFailure as exc:
            return _failure("unreachable", exc.message, user, become_user)
        except AnsibleError as exc:
            return _failure(_kind(str(exc.message)), exc.message, user, become_user)
        after = time.time()
        facts = result.get("preflight_host")
        if result.get("failed") or not isinstance(facts, dict):
            reason = " ".join(
                str(result.get(key, "")) for key in ("msg", "module_stderr", "module_stdout")
            )
            kind = "unreachable" if result.get("unreachable") else _kind(reason)
            return _failure(kind, reason, user, become_user)
        facts.update(controller_before=before, controller_after=after)
        return {"changed": False, "preflight_host": facts}


def _kind(reason: str) -> str:
    lowered = reason.lower()
    return "become" if any(hint in lowered for hint in _BECOME_HINTS) else "failed"


def _failure(kind: str, reason: object, user: str, become_user: str) -> dict[str, Any]:
    message = " ".join(str(reason).split())
    return {
        "changed": False,
        "preflight_failure": {
            "kind": kind,
            "msg": message,
            "user": user,
            "become_user": become_user,
        },
    }

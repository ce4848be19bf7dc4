"""Action plugin for kubesmith.cluster.pki_files: read the files on the controller, send them.

One module call per host instead of one copy task per file keeps distribution fast; contents
travel as no_log module arguments and are never returned.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def read_sources(src_dir: str, files: Any) -> list[dict[str, Any]]:
    """files with each src read from src_dir and added as base64 content."""
    if not isinstance(files, list):
        raise AnsibleActionFail(f"files: expected a list of {{src, dest, mode}}, got {files!r}")
    loaded = []
    root = os.path.realpath(src_dir)
    for position, item in enumerate(files):
        if not isinstance(item, dict) or not isinstance(item.get("src"), str):
            raise AnsibleActionFail(f"files[{position}]: expected a mapping with src, got {item!r}")
        path = os.path.realpath(os.path.join(root, item["src"]))
        if not path.startswith(root + os.sep):
            raise AnsibleActionFail(
                f"files[{position}].src: {item['src']!r} must be a relative path inside {src_dir!r}"
            )
        try:
            with open(path, "rb") as handle:
                content = base64.b64encode(handle.read()).decode("ascii")
        except OSError as exc:
            raise AnsibleActionFail(
                f"files[{position}].src: cannot read {path} ({exc.strerror}); "
                "run playbooks/30-pki.yml's deploy-host play (roles/pki) first"
            ) from exc
        loaded.append({**item, "content": content})
    return loaded


class ActionModule(ActionBase):  # type: ignore[misc]
    """Reads sources locally, then runs the module on the target."""

    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = dict(self._task.args)
        src_dir = args.get("src_dir")
        if not isinstance(src_dir, str) or not src_dir:
            raise AnsibleActionFail("src_dir: required; the PKI directory on the deploy host")
        args["files"] = read_sources(src_dir, args.get("files"))
        module_result: dict[str, Any] = self._execute_module(
            module_name="kubesmith.cluster.pki_files", module_args=args, task_vars=task_vars
        )
        module_result.pop("invocation", None)
        result.update(module_result)
        return result

#!/usr/bin/python
"""Ansible module kubesmith.cluster.service_binaries: which services run an outdated binary."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubesmith.cluster.plugins.module_utils.service_binaries import (
    SHOW_PROPERTIES,
    ServiceBinaries,
    ServiceBinaryError,
    ShowUnit,
    warnings_for,
)

DOCUMENTATION = r"""
---
module: service_binaries
short_description: Tell which systemd services run another binary than the one installed
description:
  - For each O(services) entry reads the unit's state and main PID (C(systemctl show)), the
    resolved path of C(/proc/<MainPID>/exe) and the resolved path of O(services[].binary)
    (the link in /usr/local/bin into a versioned directory).
  - A service is stale when it is active and runs another file than the installed binary, or a
    file that was replaced or removed since it started (the kernel marks it C( (deleted))).
    Roles restart stale services through their usual restart handler.
  - A service whose installed binary does not exist is never stale (a restart would fail); the
    module warns instead.
  - Read-only; always C(changed=false); supports check mode. Reading another user's
    C(/proc/<pid>/exe) needs root.
version_added: "0.1.0"
author: kubesmith developers
options:
  services:
    description: The services to check.
    type: list
    elements: dict
    required: true
    suboptions:
      service:
        description: systemd unit name, e.g. C(kube-apiserver) or C(etcd.service).
        type: str
        required: true
      binary:
        description: Absolute path of the installed binary, e.g. C(/usr/local/bin/kube-apiserver).
        type: path
        required: true
"""

EXAMPLES = r"""
- name: Read whether kube-apiserver runs the installed binary
  kubesmith.cluster.service_binaries:
    services:
      - {service: kube-apiserver, binary: /usr/local/bin/kube-apiserver}
  register: kube_apiserver_running_binary

- name: Restart a stale kube-apiserver
  ansible.builtin.debug:
    msg: kube-apiserver runs an old binary; it restarts.
  when: kube_apiserver_running_binary.stale_services | length > 0
  changed_when: true
  notify: kube-apiserver restart
"""

RETURN = r"""
services:
  description: One entry per requested service, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    service: {description: The unit name as given., type: str}
    binary: {description: The installed binary as given., type: str}
    loaded: {description: Whether systemd knows the unit (LoadState=loaded)., type: bool}
    active: {description: Whether the unit is active (ActiveState=active)., type: bool}
    main_pid: {description: The unit's MainPID; 0 when it has none., type: int}
    running_path:
      description: Resolved path of /proc/<MainPID>/exe without ' (deleted)'; null when not running.
      type: str
    deleted: {description: Whether the running file was replaced or removed., type: bool}
    binary_path: {description: Resolved path of the installed binary., type: str}
    binary_exists: {description: Whether the installed binary exists., type: bool}
    stale: {description: Active and running another (or a deleted) file., type: bool}
  sample:
    - service: kubelet
      binary: /usr/local/bin/kubelet
      loaded: true
      active: true
      main_pid: 812
      running_path: /opt/kubesmith/bin/kubernetes/v1.36.4/kubelet
      deleted: false
      binary_path: /opt/kubesmith/bin/kubernetes/v1.37.2/kubelet
      binary_exists: true
      stale: true
stale_services:
  description: Names of the stale services, in the order given.
  returned: always
  type: list
  elements: str
"""

ARGUMENT_SPEC: dict[str, Any] = {
    "services": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "service": {"type": "str", "required": True},
            "binary": {"type": "path", "required": True},
        },
    },
}


def show_unit_with(module: AnsibleModule) -> ShowUnit:
    """A ShowUnit that runs `systemctl show` through the module."""
    systemctl = module.get_bin_path("systemctl", required=True)

    def show_unit(service: str) -> str:
        argv = [systemctl, "show", f"--property={','.join(SHOW_PROPERTIES)}", "--", service]
        rc, out, err = module.run_command(argv)
        if rc != 0:
            raise ServiceBinaryError(
                f"{service}: systemctl show failed (rc={rc}): {(err or out).strip()}"
            )
        return str(out)

    return show_unit


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        results = ServiceBinaries(show_unit_with(module)).check_all(module.params["services"])
    except ServiceBinaryError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings_for(results):
        module.warn(warning)
    module.exit_json(
        changed=False,
        services=[result.as_dict() for result in results],
        stale_services=[result.service for result in results if result.stale],
    )


if __name__ == "__main__":
    main()

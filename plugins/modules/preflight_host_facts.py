#!/usr/bin/python
# ruff: noqa: E402  (Ansible modules put their documentation before the imports)
"""Module kubesmith.cluster.preflight_host_facts: read what preflight judges, change nothing."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_host_facts
short_description: Read-only facts of one host for kubesmith's preflight
description:
  - Reads the OS release, memory and swap, free disk space, the clock, kernel features
    (loaded, built in or loadable), listening sockets with their processes, and IP addresses.
  - Changes nothing on the host. Its action plugin brackets the call with the deploy host's
    clock and turns connection or privilege failures into data, so that preflight reports
    every host's problems together.
  - Run it with C(become) so that the processes behind every socket are visible.
options:
  disk_paths:
    description: Paths whose free space is measured (the nearest existing parent counts).
    type: list
    elements: str
    default: [/]
author: kubesmith developers
"""

EXAMPLES = r"""
- name: Read the host facts preflight needs
  kubesmith.cluster.preflight_host_facts:
    disk_paths: [/, /var/lib]
  become: true
  register: preflight_host_report
"""

RETURN = r"""
preflight_host:
  description: The facts; see module_utils/preflight_probe.py for each part.
  returned: success
  type: dict
"""

import gzip
import os
import platform
import time
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_probe import (
    KERNEL_FEATURES,
    module_names,
    parse_ip_addr,
    parse_kernel_config,
    parse_meminfo,
    parse_os_release,
    parse_proc_net,
    parse_swaps,
    probe_feature,
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _kernel_config(release: str) -> dict[str, str] | None:
    try:
        with gzip.open("/proc/config.gz", "rt", encoding="utf-8") as config:
            return parse_kernel_config(config.read())
    except OSError:
        text = _read(f"/boot/config-{release}")
        return parse_kernel_config(text) if text else None


def kernel_features(release: str) -> dict[str, str]:
    modules_dir = f"/lib/modules/{release}"
    loaded = module_names(_read("/proc/modules").splitlines())
    builtin = module_names(_read(f"{modules_dir}/modules.builtin").splitlines())
    loadable = module_names(_read(f"{modules_dir}/modules.dep").splitlines())
    config = _kernel_config(release)
    return {
        name: probe_feature(
            name,
            loaded=loaded,
            builtin=builtin,
            loadable=loadable,
            config=config,
            exists=os.path.exists,
        )
        for name in KERNEL_FEATURES
    }


def _socket_owners() -> dict[int, tuple[int, str]]:
    """Socket inode -> (pid, program name), from /proc/PID/fd (all of them only as root)."""
    owners: dict[int, tuple[int, str]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
            program = os.path.basename(os.readlink(proc / "exe")).removesuffix(" (deleted)")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[int(target[8:-1])] = (int(proc.name), program)
    return owners


def socket_owner(inode: int, owners: dict[int, tuple[int, str]], as_root: bool) -> tuple[int, str]:
    """(pid, program) of a socket; "kernel" for one no process holds.

    The kernel's own sockets (a VXLAN device's UDP port, NFS) have no process: as root every
    process's fds were read, so an unowned socket is the kernel's. Without root the owner of
    another user's socket cannot be seen, so it stays "unknown".
    """
    if inode in owners:
        return owners[inode]
    return 0, "kernel" if inode == 0 or as_root else "unknown"


def listeners() -> list[dict[str, Any]]:
    owners = _socket_owners()
    as_root = os.geteuid() == 0
    found: list[dict[str, Any]] = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for sock in parse_proc_net(_read(f"/proc/net/{proto}"), proto.rstrip("6")):
            pid, program = socket_owner(int(str(sock.pop("inode"))), owners, as_root)
            found.append({**sock, "pid": pid, "program": program})
    return found


def disks(paths: list[str]) -> list[dict[str, Any]]:
    measured = []
    for wanted in paths:
        path = Path(wanted)
        while not path.exists() and path != path.parent:
            path = path.parent
        stat = os.statvfs(path)
        measured.append(
            {
                "path": wanted,
                "measured_at": str(path),
                "free_mb": stat.f_bavail * stat.f_frsize // 2**20,
            }
        )
    return measured


def addresses(module: AnsibleModule) -> list[dict[str, str]] | None:
    ip = module.get_bin_path("ip")
    if ip is None:
        return None
    rc, out, _err = module.run_command([ip, "-o", "addr", "show"])
    return parse_ip_addr(out.splitlines()) if rc == 0 else None


def main() -> None:
    module = AnsibleModule(
        argument_spec={"disk_paths": {"type": "list", "elements": "str", "default": ["/"]}},
        supports_check_mode=True,
    )
    release = platform.release()
    facts = {
        "time": time.time(),
        "euid": os.geteuid(),
        "os": parse_os_release(_read("/etc/os-release")),
        "kernel": release,
        "cpus": os.cpu_count() or 0,
        "memory": parse_meminfo(_read("/proc/meminfo")),
        "swaps": parse_swaps(_read("/proc/swaps")),
        "disks": disks(module.params["disk_paths"]),
        "kernel_features": kernel_features(release),
        "listeners": listeners(),
        "addresses": addresses(module),
        "links": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else [],
    }
    module.exit_json(changed=False, preflight_host=facts)


if __name__ == "__main__":
    main()

#!/usr/bin/python
"""Documentation of the action kubesmith.cluster.preflight_hosts (runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_hosts
short_description: Judge every host's preflight facts together
description:
  - Layer 2 of preflight, run once by the action plugin of the same name on the deploy host,
    after M(kubesmith.cluster.preflight_host_facts) registered its result on every host.
  - Checks reachability and privilege escalation, OS release, memory, CPUs, disk, swap, clock
    skew (to the deploy host and between hosts), kernel features, the node IP and the VIP
    subnet, and ports kubesmith's components need (its own running components do not count).
  - Prints every problem as one C([preflight] ERROR:) line and fails once.
options:
  register:
    description: Name of the variable preflight_host_facts was registered as.
    type: str
    default: preflight_host_report
  supported_os:
    description: OS id mapped to its supported releases (VERSION_ID or its major number).
    type: dict
    required: true
  min_memory_mb:
    description: MiB per group; a host needs the sum over its groups.
    type: dict
    default: {}
  min_cpus:
    description: CPUs per group; a host needs the largest over its groups.
    type: dict
    default: {}
  disk:
    description: Items C({group, path, min_free_mb}).
    type: list
    elements: dict
    default: []
  max_clock_skew_seconds:
    description: Largest clock difference allowed.
    type: float
    default: 2.0
author: kubesmith developers
"""

EXAMPLES = r"""
- name: Check every host against what kubesmith will run there
  kubesmith.cluster.preflight_hosts:
    supported_os: {debian: ["12"]}
  run_once: true
"""

RETURN = r"""
preflight_errors:
  description: One line per problem.
  returned: always
  type: list
  elements: str
"""

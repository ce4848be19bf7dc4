#!/usr/bin/python
"""Documentation of the action kubesmith.cluster.preflight_inventory (runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_inventory
short_description: Check kubesmith's inventory and variables without contacting any host
description:
  - Layer 1 of preflight, run by the action plugin of the same name on the deploy host only.
  - Reads every cluster host's variables (inventory values over the defaults of role
    kubesmith, templated in that host's context) and checks groups, addresses,
    networks, etcd membership, the API endpoint, ports, versions, PKI settings, the types,
    choices and required options of every role's meta/argument_specs.yml, and the names of
    the C(kubesmith_*) and C(<role>_*) variables the inventory sets.
  - Prints every problem as one C([preflight] ERROR:) line naming the host or variable, its
    value, why it is wrong and the fix, then fails once. Warnings do not fail.
  - docs/preflight.md lists every check.
options:
  service_cidr_max_prefix:
    description: Longest prefix kubesmith_service_cidr may have.
    type: int
    default: 24
  pod_subnet_min_addresses:
    description: Warn when one flannel subnet holds fewer pod addresses than this.
    type: int
    default: 128
  warn_single_etcd:
    description: Warn when the etcd group has one member.
    type: bool
    default: true
  inventory_only_variables:
    description:
      - Names in a role's namespace (C(kubesmith_*), C(<role>_*)) that no role defines but the
        inventory may set. Any other such name that no role's defaults, vars or argument specs
        know is reported as a misspelling, with the nearest known name.
    type: list
    elements: str
    default: []
author: kubesmith developers
"""

EXAMPLES = r"""
- name: Check the inventory and variables of every cluster host
  kubesmith.cluster.preflight_inventory:
  run_once: true
"""

RETURN = r"""
preflight_errors:
  description: One line per problem.
  returned: always
  type: list
  elements: str
preflight_warnings:
  description: One line per warning.
  returned: always
  type: list
  elements: str
"""

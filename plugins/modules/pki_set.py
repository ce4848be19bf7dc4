#!/usr/bin/python
"""Ansible module kubesmith.cluster.pki_set: a whole PKI directory in one call."""

from __future__ import annotations

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from ansible_collections.kubesmith.cluster.plugins.module_utils.kubeconfig import (
        KubeconfigError,
        ensure_kubeconfigs,
    )
    from ansible_collections.kubesmith.cluster.plugins.module_utils.pki import (
        Outcome,
        PkiError,
        PkiManager,
        PkiStore,
        spec_from_mapping,
    )
except ImportError:
    IMPORT_ERROR: str | None = traceback.format_exc()
else:
    IMPORT_ERROR = None

DOCUMENTATION = r"""
---
module: pki_set
short_description: Create CAs, issue certificates and keep key pairs of one PKI directory
description:
  - Brings a PKI directory on the host it runs on (normally the deploy host) in line with a list
    of items in one call (certificate authorities, leaf certificates and bare key pairs).
  - A leaf is reissued only when its key, subject, SANs, usages, issuer or signature no longer
    match, or it is inside its renew window. Its existing key is kept unless it is missing,
    unreadable or of another type/size than requested.
  - An existing CA or key pair is never regenerated; drift is reported as a warning.
  - Files are written atomically; keys C(0600), certificates and public keys C(0644),
    directories C(0700). Key material never appears in results or diffs.
version_added: "0.1.0"
author: kubesmith developers
options:
  dir:
    description: The PKI directory; created when missing.
    type: path
    required: true
  certificates:
    description:
      - The items. kubesmith.cluster.pki_plan derives the cluster's full list from inventory.
      - CAs are handled first, whatever their position in the list.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unique name of the item in results. Defaults to O(certificates[].path).
        type: str
      path:
        description:
          - Path relative to O(dir) without extension, e.g. C(etcd/ca) for C(etcd/ca.crt) and
            C(etcd/ca.key). A key pair writes C(.key) and C(.pub).
        type: str
        required: true
      kind:
        description: What the item is.
        type: str
        choices: [ca, leaf, keypair]
        default: leaf
      common_name:
        description: Subject CN. Required for C(ca) and C(leaf).
        type: str
      organizations:
        description: Subject O values (Kubernetes groups for client certificates).
        type: list
        elements: str
      dns_names:
        description: DNS subject alternative names.
        type: list
        elements: str
      ip_addresses:
        description: IP subject alternative names (IPv4 or IPv6).
        type: list
        elements: str
      usages:
        description: Extended key usages of a leaf.
        type: list
        elements: str
        choices: [server, client]
      ca:
        description: Path (as in O(certificates[].path)) of the CA that signs a leaf.
        type: str
      valid_days:
        description: Validity of a new certificate. Defaults to O(valid_days).
        type: int
      renew_before_days:
        description: Reissue when fewer days are left. Defaults to O(renew_before_days).
        type: int
      key_type:
        description: Key type of this item. Defaults to O(key_type).
        type: str
        choices: [ecdsa, rsa]
      rsa_bits:
        description: RSA key size of this item. Defaults to O(rsa_bits).
        type: int
        choices: [2048, 3072, 4096]
  kubeconfigs:
    description:
      - Kubeconfigs to write after the certificates, each embedding the CA and one leaf's
        certificate and key; written C(0600) and only when their content changes.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: File path relative to O(dir), e.g. C(kubeconfigs/admin.conf).
        type: str
        required: true
      cluster_name:
        description: Cluster name in the kubeconfig.
        type: str
        required: true
      server:
        description: API server URL (https).
        type: str
        required: true
      user:
        description: User name in the kubeconfig (the identity is the certificate's subject).
        type: str
        required: true
      cert:
        description: Path (as in O(certificates[].path)) of the client certificate to embed.
        type: str
        required: true
      ca:
        description: Path of the CA certificate to embed.
        type: str
        default: ca
  key_type:
    description: Default key type, C(ecdsa) (P-256) or C(rsa).
    type: str
    choices: [ecdsa, rsa]
    default: ecdsa
  rsa_bits:
    description: Default RSA key size.
    type: int
    choices: [2048, 3072, 4096]
    default: 2048
  valid_days:
    description: Default validity of new leaf certificates and CAs without their own.
    type: int
    default: 365
  renew_before_days:
    description: Default renew window in days.
    type: int
    default: 30
requirements:
  - cryptography >= 42 on the host the module runs on
notes:
  - Supports check mode and diff mode (subject, issuer, SANs, not-after per changed item).
"""

EXAMPLES = r"""
- name: Issue the cluster PKI on the deploy host
  kubesmith.cluster.pki_set:
    dir: "{{ kubesmith_pki_dir }}"
    key_type: ecdsa
    certificates: "{{ pki_facts | kubesmith.cluster.pki_plan }}"
  delegate_to: localhost
  run_once: true

- name: Issue one extra client certificate under the cluster CA
  kubesmith.cluster.pki_set:
    dir: /srv/pki/lab
    certificates:
      - {path: ca, kind: ca, common_name: kubernetes-ca, valid_days: 3650}
      - path: users/backup
        ca: ca
        common_name: backup-operator
        organizations: [backup]
        usages: [client]
"""

RETURN = r"""
certificates:
  description: One entry per item, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Item name., type: str}
    path: {description: Path relative to O(dir) without extension., type: str}
    kind: {description: ca, leaf or keypair., type: str}
    changed: {description: Whether the item was (or in check mode would be) written., type: bool}
    reasons: {description: Why it changed., type: list, elements: str}
    before: {description: Subject, issuer, SANs and not-after before; null if new., type: dict}
    after: {description: The same after the run (predicted in check mode)., type: dict}
  sample:
    - name: apiserver
      path: apiserver
      kind: leaf
      changed: true
      reasons: ["SANs differ (add ['IP:172.30.10.24'], remove [])"]
      before: null
      after: {subject: CN=kube-apiserver, issuer: CN=kubernetes-ca, sans: [], not_after: "..."}
kubeconfigs:
  description: One entry per kubeconfig (name, path, changed, reasons); never the content.
  returned: always
  type: list
  elements: dict
changed_names:
  description: Names of the items and kubeconfig paths that changed.
  returned: always
  type: list
  elements: str
"""

ITEM_OPTIONS: dict[str, Any] = {
    "name": {"type": "str"},
    "path": {"type": "str", "required": True},
    "kind": {"type": "str", "choices": ["ca", "leaf", "keypair"], "default": "leaf"},
    "common_name": {"type": "str"},
    "organizations": {"type": "list", "elements": "str"},
    "dns_names": {"type": "list", "elements": "str"},
    "ip_addresses": {"type": "list", "elements": "str"},
    "usages": {"type": "list", "elements": "str", "choices": ["server", "client"]},
    "ca": {"type": "str"},
    "valid_days": {"type": "int"},
    "renew_before_days": {"type": "int"},
    "key_type": {"type": "str", "choices": ["ecdsa", "rsa"]},
    "rsa_bits": {"type": "int", "choices": [2048, 3072, 4096]},
}

ARGUMENT_SPEC: dict[str, Any] = {
    "dir": {"type": "path", "required": True},
    "certificates": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": ITEM_OPTIONS,
    },
    "kubeconfigs": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "path": {"type": "str", "required": True},
            "cluster_name": {"type": "str", "required": True},
            "server": {"type": "str", "required": True},
            "user": {"type": "str", "required": True},
            "cert": {"type": "str", "required": True},
            "ca": {"type": "str", "default": "ca"},
        },
    },
    "key_type": {"type": "str", "choices": ["ecdsa", "rsa"], "default": "ecdsa"},
    "rsa_bits": {"type": "int", "choices": [2048, 3072, 4096], "default": 2048},
    "valid_days": {"type": "int", "default": 365},
    "renew_before_days": {"type": "int", "default": 30},
}


def diff_text(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return ""
    lines = [f"subject: {summary['subject']}", f"issuer: {summary['issuer']}", "sans:"]
    lines += [f"  - {name}" for name in summary["sans"]]
    lines.append(f"not_after: {summary['not_after']}")
    return "\n".join(lines) + "\n"


def diff_entries(outcomes: list[Outcome]) -> list[dict[str, str]]:
    entries = []
    for outcome in outcomes:
        if not outcome.changed:
            continue
        result = outcome.as_dict()
        suffix = {"keypair": ".pub", "kubeconfig": ""}.get(outcome.kind, ".crt")
        entries.append(
            {
                "before_header": f"{outcome.path}{suffix}",
                "after_header": f"{outcome.path}{suffix} ({'; '.join(outcome.reasons)})",
                "before": diff_text(result["before"]),
                "after": diff_text(result["after"]),
            }
        )
    return entries


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=IMPORT_ERROR)
    params = module.params
    defaults = {
        "key_type": params["key_type"],
        "rsa_bits": params["rsa_bits"],
        "valid_days": params["valid_days"],
        "renew_before_days": params["renew_before_days"],
    }
    try:
        specs = [
            spec_from_mapping(item, position, defaults)
            for position, item in enumerate(params["certificates"])
        ]
        store = PkiStore(params["dir"])
        outcomes = PkiManager(store, check_mode=module.check_mode).apply(specs)
        reissued = {outcome.path for outcome in outcomes if outcome.changed}
        kubeconfigs = ensure_kubeconfigs(store, params["kubeconfigs"], module.check_mode, reissued)
    except (PkiError, KubeconfigError, OSError) as exc:
        module.fail_json(msg=str(exc))
    for outcome in outcomes:
        for warning in outcome.warnings:
            module.warn(warning)
    changed_names = [outcome.name for outcome in outcomes + kubeconfigs if outcome.changed]
    module.exit_json(
        changed=bool(changed_names),
        certificates=[outcome.as_dict() for outcome in outcomes],
        kubeconfigs=[
            {key: value for key, value in kc.as_dict().items() if key not in ("before", "after")}
            for kc in kubeconfigs
        ],
        changed_names=changed_names,
        diff=diff_entries(outcomes + kubeconfigs),
    )


if __name__ == "__main__":
    main()

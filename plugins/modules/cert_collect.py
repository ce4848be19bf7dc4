#!/usr/bin/python
"""Ansible module kubesmith.cluster.cert_collect: read every certificate under some paths."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import glob
import os
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: cert_collect
short_description: Collect the PEM certificates under directories and inside kubeconfigs
description:
  - Reads every file matching O(patterns) under O(paths) (recursively) and the certificates
    embedded in O(kubeconfigs), and returns their PEM text for parsing on the controller
    (kubesmith.cluster.cert_report). Needs only Python's standard library on the host.
  - Returns certificate blocks only, never private keys, whatever else a matched file holds;
    kubeconfigs are scanned for certificate data only.
  - Read-only; supports check mode.
version_added: "0.1.0"
author: kubesmith developers
options:
  paths:
    description: Directories to search; missing ones are skipped.
    type: list
    elements: path
    default: [/etc/kubernetes/pki]
  patterns:
    description: File name globs of certificates.
    type: list
    elements: str
    default: ["*.crt"]
  kubeconfigs:
    description: Globs of kubeconfig files whose embedded certificates are reported.
    type: list
    elements: path
    default: [/etc/kubernetes/*.conf]
"""

EXAMPLES = r"""
- name: Collect the host's certificates
  kubesmith.cluster.cert_collect:
    paths: [/etc/kubernetes/pki]
  register: cert_collect_result
"""

RETURN = r"""
certificates:
  description: One entry per file (or kubeconfig field) with PEM text.
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: File path; kubeconfigs add '#field'., type: str}
    pem: {description: PEM certificate text (may be a bundle)., type: str}
"""

# Only certificate blocks leave the host, whatever a matched file holds besides them.
PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----\n?"
)
CERT_FIELD = re.compile(
    r"^\s*(certificate-authority-data|client-certificate-data):\s*[\"']?([A-Za-z0-9+/=]+)",
    re.MULTILINE,
)


def certificate_files(paths: list[str], patterns: list[str]) -> list[str]:
    found = []
    for root in paths:
        for directory, _, files in os.walk(root):
            found += [
                os.path.join(directory, name)
                for name in files
                if any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
            ]
    return sorted(found)


def kubeconfig_certificates(patterns: list[str]) -> list[dict[str, str]]:
    entries = []
    for path in sorted({match for pattern in patterns for match in glob.glob(pattern)}):
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
        for field, data in CERT_FIELD.findall(content):
            try:
                pem = base64.b64decode(data, validate=True).decode("ascii")
            except (binascii.Error, UnicodeDecodeError):
                continue
            blocks = PEM_CERTIFICATE.findall(pem)
            if blocks:
                entries.append({"path": f"{path}#{field}", "pem": "".join(blocks)})
    return entries


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "default": ["/etc/kubernetes/pki"]},
            "patterns": {"type": "list", "elements": "str", "default": ["*.crt"]},
            "kubeconfigs": {
                "type": "list",
                "elements": "path",
                "default": ["/etc/kubernetes/*.conf"],
            },
        },
        supports_check_mode=True,
    )
    certificates: list[dict[str, Any]] = []
    try:
        for path in certificate_files(module.params["paths"], module.params["patterns"]):
            with open(path, encoding="ascii", errors="replace") as handle:
                blocks = PEM_CERTIFICATE.findall(handle.read())
            if blocks:
                certificates.append({"path": path, "pem": "".join(blocks)})
        certificates += kubeconfig_certificates(module.params["kubeconfigs"])
    except OSError as exc:
        module.fail_json(msg=f"cannot read {exc.filename}: {exc.strerror}")
    module.exit_json(changed=False, certificates=certificates)


if __name__ == "__main__":
    main()

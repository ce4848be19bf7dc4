#!/usr/bin/python
"""Ansible module kubesmith.cluster.pki_files: write many small files in one call."""

from __future__ import annotations

import base64
import binascii
import grp
import os
import pwd
import stat
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: pki_files
short_description: Copy a host's certificates, keys and kubeconfigs in one call
description:
  - Used through its action plugin of the same name, which reads O(src_dir)/C(src) on the
    controller and sends the contents; the module writes each file under O(dest_dir) only when
    its content, mode or owner differ, atomically (temporary file and rename).
  - Directories on the way are created (or corrected) with O(dir_mode) and the same owner.
  - File contents never appear in results or diffs; the diff lists the paths that change.
  - Supports check mode.
version_added: "0.1.0"
author: kubesmith developers
options:
  src_dir:
    description: Directory on the controller the C(src) paths are relative to (action plugin).
    type: path
    required: true
  dest_dir:
    description: Directory on the host the C(dest) paths are relative to.
    type: path
    required: true
  files:
    description: What to copy; kubesmith.cluster.pki_host_files gives a host's list.
    type: list
    elements: dict
    required: true
    suboptions:
      src:
        description: Path relative to O(src_dir) on the controller.
        type: str
        required: true
      dest:
        description: Path relative to O(dest_dir) on the host.
        type: str
        required: true
      mode:
        description: File mode, e.g. C('0600').
        type: str
        required: true
      secret:
        description: Informational (keys, kubeconfigs); contents are never returned anyway.
        type: bool
        default: false
  owner:
    description: Owner of files and directories.
    type: str
    default: root
  group:
    description: Group of files and directories.
    type: str
    default: root
  dir_mode:
    description: Mode of the directories below and including O(dest_dir).
    type: str
    default: "0755"
"""

EXAMPLES = r"""
- name: Copy this host's certificates, keys and kubeconfigs
  kubesmith.cluster.pki_files:
    src_dir: "{{ kubesmith_pki_dir }}"
    dest_dir: /etc/kubernetes
    files: "{{ group_names | kubesmith.cluster.pki_host_files(inventory_hostname) }}"
"""

RETURN = r"""
changed_files:
  description: dest paths (relative to dest_dir) written or corrected.
  returned: always
  type: list
  elements: str
"""


def parse_mode(value: str, field: str, module: AnsibleModule) -> int:
    try:
        mode = int(str(value), 8)
    except ValueError:
        module.fail_json(msg=f"{field}: {value!r} is not an octal mode; write it like '0644'")
    if not 0 <= mode <= 0o7777:
        module.fail_json(msg=f"{field}: {value!r} is out of range; write it like '0644'")
    return mode


def inside(base: str, relative: str) -> str:
    path = os.path.normpath(os.path.join(base, relative))
    if os.path.isabs(relative) or not path.startswith(os.path.normpath(base) + os.sep):
        raise ValueError(relative)
    return path


def needs_fix(path: str, mode: int, uid: int, gid: int) -> bool:
    info = os.stat(path)
    return stat.S_IMODE(info.st_mode) != mode or info.st_uid != uid or info.st_gid != gid


def ensure_directory(path: str, mode: int, uid: int, gid: int, check_mode: bool) -> bool:
    if os.path.isdir(path):
        if not needs_fix(path, mode, uid, gid):
            return False
    elif check_mode:
        return True
    else:
        os.makedirs(path, mode=mode)
    if not check_mode:
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    return True


def write_file(path: str, content: bytes, mode: int, uid: int, gid: int) -> None:
    directory = os.path.dirname(path)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        os.fchmod(descriptor, mode)
        os.fchown(descriptor, uid, gid)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def file_state(path: str, content: bytes, mode: int, uid: int, gid: int) -> str | None:
    """Why path must be (re)written or corrected; None when it is right."""
    try:
        with open(path, "rb") as handle:
            current = handle.read()
    except FileNotFoundError:
        return "missing"
    if current != content:
        return "content"
    if needs_fix(path, mode, uid, gid):
        return "attributes"
    return None


ARGUMENT_SPEC: dict[str, Any] = {
    "src_dir": {"type": "path", "required": True},
    "dest_dir": {"type": "path", "required": True},
    "files": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "src": {"type": "str", "required": True},
            "dest": {"type": "str", "required": True},
            "mode": {"type": "str", "required": True},
            "secret": {"type": "bool", "default": False},
            "content": {"type": "str", "required": True, "no_log": True},
        },
    },
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
    "dir_mode": {"type": "str", "default": "0755"},
}


def plan_files(module: AnsibleModule, base: str) -> list[tuple[str, str, bytes, int]]:
    """(dest, absolute path, content, mode) per file, validated."""
    planned = []
    for position, item in enumerate(module.params["files"]):
        try:
            path = inside(base, item["dest"])
        except ValueError:
            module.fail_json(
                msg=f"files[{position}].dest: {item['dest']!r} must be a relative path "
                f"inside dest_dir {base!r}"
            )
        try:
            content = base64.b64decode(item["content"], validate=True)
        except binascii.Error:
            module.fail_json(msg=f"files[{position}].content: not base64 (use the action plugin)")
        planned.append((item["dest"], path, content, parse_mode(item["mode"], "mode", module)))
    return planned


def apply_files(
    planned: list[tuple[str, str, bytes, int]], uid: int, gid: int, check_mode: bool
) -> list[str]:
    changed = []
    for dest, path, content, mode in planned:
        reason = file_state(path, content, mode, uid, gid)
        if reason is None:
            continue
        changed.append(dest)
        if check_mode:
            continue
        if reason == "attributes":
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        else:
            write_file(path, content, mode, uid, gid)
    return changed


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        uid = pwd.getpwnam(params["owner"]).pw_uid
    except KeyError:
        module.fail_json(msg=f"owner: user {params['owner']!r} does not exist on this host")
    try:
        gid = grp.getgrnam(params["group"]).gr_gid
    except KeyError:
        module.fail_json(msg=f"group: group {params['group']!r} does not exist on this host")
    dir_mode = parse_mode(params["dir_mode"], "dir_mode", module)
    base = params["dest_dir"]
    planned = plan_files(module, base)
    try:
        directories = {base} | {os.path.dirname(path) for _, path, _, _ in planned}
        changed_dirs = [
            directory
            for directory in sorted(directories)
            if ensure_directory(directory, dir_mode, uid, gid, module.check_mode)
        ]
        changed_files = apply_files(planned, uid, gid, module.check_mode)
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename}: {exc.strerror}")
    result: dict[str, Any] = {
        "changed": bool(changed_files or changed_dirs),
        "changed_files": changed_files,
        "changed_directories": changed_dirs,
    }
    if module._diff:
        result["diff"] = {
            "before_header": base,
            "after_header": base,
            "before": "",
            "after": "".join(f"{dest} (content not shown)\n" for dest in changed_files),
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()

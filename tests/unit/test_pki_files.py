"""pki_files: the action plugin's reading of sources and the module's writes and errors."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleActionFail
from ansible.module_utils.testing import patch_module_args
from ansible_collections.kubesmith.cluster.plugins.action.pki_files import read_sources
from ansible_collections.kubesmith.cluster.plugins.modules import pki_files

ROOT = "root" if os.geteuid() == 0 else None
needs_root = pytest.mark.skipif(ROOT is None, reason="chown to root needs root")


def run(capsys, check_mode: bool = False, **args) -> dict:
    module_args = {"_ansible_check_mode": check_mode, "_ansible_diff": True, **args}
    with patch_module_args(module_args), pytest.raises(SystemExit):
        pki_files.main()
    return json.loads(capsys.readouterr().out)


def entry(dest: str, text: str, mode: str = "0644") -> dict:
    content = base64.b64encode(text.encode()).decode()
    return {"src": dest, "dest": dest, "mode": mode, "content": content}


def test_read_sources(tmp_path: Path) -> None:
    (tmp_path / "etcd").mkdir()
    (tmp_path / "etcd/ca.crt").write_text("cert")
    loaded = read_sources(str(tmp_path), [{"src": "etcd/ca.crt", "dest": "pki/etcd/ca.crt"}])
    assert base64.b64decode(loaded[0]["content"]) == b"cert"
    with pytest.raises(AnsibleActionFail, match=r"cannot read .* run playbooks/30-pki\.yml"):
        read_sources(str(tmp_path), [{"src": "missing.key", "dest": "x"}])
    with pytest.raises(AnsibleActionFail, match=r"files\[0\].src: '../x' must be a relative path"):
        read_sources(str(tmp_path), [{"src": "../x", "dest": "x"}])
    with pytest.raises(AnsibleActionFail, match="files: expected a list"):
        read_sources(str(tmp_path), "ca.crt")


@needs_root
def test_check_apply_check_apply(tmp_path: Path, capsys) -> None:
    base = tmp_path / "kubernetes"
    args: dict[str, Any] = {
        "src_dir": "/unused",
        "dest_dir": str(base),
        "files": [entry("pki/ca.crt", "cert"), entry("pki/etcd/server.key", "key", "0600")],
    }
    check = run(capsys, check_mode=True, **args)
    assert check["changed"] and check["changed_files"] == ["pki/ca.crt", "pki/etcd/server.key"]
    assert not base.exists()
    assert "key" not in check["diff"]["after"].replace("server.key", "")
    assert run(capsys, **args)["changed"]
    assert (base / "pki/etcd/server.key").read_text() == "key"
    assert stat.S_IMODE((base / "pki/etcd/server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((base / "pki/etcd").stat().st_mode) == 0o755
    assert not run(capsys, check_mode=True, **args)["changed"]
    assert not run(capsys, **args)["changed"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"files": [entry("../escape", "x")]}, "files[0].dest: '../escape' must be a relative"),
        ({"files": [entry("/etc/x", "x")]}, "files[0].dest: '/etc/x' must be a relative"),
        ({"files": [entry("a", "x", "rw-r--r--")]}, "mode: 'rw-r--r--' is not an octal mode"),
        ({"files": [{**entry("a", "x"), "content": "%%%"}]}, "files[0].content: not base64"),
        (
            {"owner": "no-such-user-kubesmith"},
            "owner: user 'no-such-user-kubesmith' does not exist",
        ),
        ({"group": "no-such-group-kubesmith"}, "group: group 'no-such-group-kubesmith' does not"),
        ({"dir_mode": "99999"}, "dir_mode: '99999' is not an octal mode"),
    ],
)
def test_errors(tmp_path: Path, capsys, change: dict, message: str) -> None:
    args = {"src_dir": "/unused", "dest_dir": str(tmp_path), "files": [entry("a", "x")], **change}
    result = run(capsys, **args)
    assert result["failed"] and message in result["msg"]

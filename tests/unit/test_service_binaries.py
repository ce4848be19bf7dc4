"""service_binaries: a service is stale when it runs another (or a deleted) file than installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.kubesmith.cluster.plugins.module_utils.service_binaries import (
    ServiceBinaries,
    ServiceBinaryError,
    parse_show,
    requested,
    split_deleted,
    warnings_for,
)
from ansible_collections.kubesmith.cluster.plugins.modules import service_binaries


class Host:
    """A fake host: versioned binaries, links, /proc/<pid>/exe links and systemd units."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc = root / "proc"
        self.units: dict[str, str] = {}
        (root / "bin").mkdir()

    def install(self, version: str, name: str = "kubelet") -> Path:
        directory = self.root / "opt" / version
        directory.mkdir(parents=True, exist_ok=True)
        binary = directory / name
        binary.write_text(version)
        link = self.root / "bin" / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(binary)
        return link

    def run(self, service: str, pid: int, exe: str, state: str = "active") -> None:
        (self.proc / str(pid)).mkdir(parents=True)
        (self.proc / str(pid) / "exe").symlink_to(exe)
        self.units[service] = f"LoadState=loaded\nActiveState={state}\nMainPID={pid}\n"

    def show(self, service: str) -> str:
        return self.units.get(service, "LoadState=not-found\nActiveState=inactive\nMainPID=0\n")

    def checker(self) -> ServiceBinaries:
        return ServiceBinaries(self.show, str(self.proc))


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def test_current_binary_is_not_stale(host: Host) -> None:
    link = host.install("v1.37.2")
    host.run("kubelet", 100, str(link.resolve()))
    result = host.checker().check("kubelet", str(link))
    assert result.active and result.loaded and result.main_pid == 100
    assert result.running_path == result.binary_path == str(link.resolve())
    assert not result.stale and not result.deleted


def test_old_version_still_running_is_stale(host: Host) -> None:
    old = host.install("v1.36.4").resolve()
    host.run("kubelet", 100, str(old))
    link = host.install("v1.37.2")
    result = host.checker().check("kubelet", str(link))
    assert result.stale
    assert result.running_path == str(old)
    assert result.binary_path.endswith("v1.37.2/kubelet")


def test_file_replaced_in_place_is_stale(host: Host) -> None:
    link = host.install("v1.37.2")
    host.run("kubelet", 100, f"{link.resolve()} (deleted)")
    result = host.checker().check("kubelet", str(link))
    assert result.deleted and result.stale
    assert result.running_path == result.binary_path


def test_old_version_directory_removed_is_stale(host: Host) -> None:
    link = host.install("v1.37.2")
    host.run("kubelet", 100, str(host.root / "opt/v1.36.4/kubelet") + " (deleted)")
    result = host.checker().check("kubelet", str(link))
    assert result.deleted and result.stale


@pytest.mark.parametrize("state", ["inactive", "failed", "activating"])
def test_not_active_is_never_stale(host: Host, state: str) -> None:
    old = host.install("v1.36.4").resolve()
    host.run("kubelet", 100, str(old), state=state)
    link = host.install("v1.37.2")
    result = host.checker().check("kubelet", str(link))
    assert not result.active and not result.stale and result.running_path is None


def test_unknown_unit_is_not_loaded_nor_stale(host: Host) -> None:
    link = host.install("v1.37.2")
    result = host.checker().check("kube-proxy", str(link))
    assert not result.loaded and not result.active and not result.stale and result.main_pid == 0


def test_active_without_main_pid_is_not_stale(host: Host) -> None:
    link = host.install("v1.37.2")
    host.units["oneshot"] = "LoadState=loaded\nActiveState=active\nMainPID=0\n"
    result = host.checker().check("oneshot", str(link))
    assert result.active and not result.stale and result.running_path is None


def test_process_gone_between_reads_is_not_stale(host: Host) -> None:
    link = host.install("v1.37.2")
    host.units["kubelet"] = "LoadState=loaded\nActiveState=active\nMainPID=4242\n"
    result = host.checker().check("kubelet", str(link))
    assert result.active and result.running_path is None and not result.stale


def test_missing_installed_binary_is_not_stale_but_warned(host: Host) -> None:
    old = host.install("v1.36.4").resolve()
    host.run("kubelet", 100, str(old))
    result = host.checker().check("kubelet", str(host.root / "bin/missing"))
    assert not result.binary_exists and not result.stale
    (warning,) = warnings_for([result])
    assert "kubelet runs" in warning and "does not exist: not restarting it" in warning


def test_check_all_keeps_order(host: Host) -> None:
    kubelet = host.install("v1.37.2")
    proxy = host.install("v1.37.2", "kube-proxy")
    host.run("kube-proxy", 200, str(host.root / "opt/v1.36.4/kube-proxy") + " (deleted)")
    host.run("kubelet", 100, str(kubelet.resolve()))
    results = host.checker().check_all(
        [
            {"service": "kubelet", "binary": str(kubelet)},
            {"service": "kube-proxy", "binary": str(proxy)},
        ]
    )
    assert [(r.service, r.stale) for r in results] == [("kubelet", False), ("kube-proxy", True)]
    assert results[1].as_dict()["stale"] is True


def test_permission_denied_names_the_fix(host: Host) -> None:
    link = host.install("v1.37.2")
    host.run("etcd", 300, str(link.resolve()))
    with (
        mock.patch("os.readlink", side_effect=PermissionError(13, "Permission denied")),
        pytest.raises(ServiceBinaryError, match=r"etcd: cannot read .*/300/exe .*become: true"),
    ):
        host.checker().check("etcd", str(link))


def test_split_deleted() -> None:
    assert split_deleted("/a/b (deleted)") == ("/a/b", True)
    assert split_deleted("/a/b") == ("/a/b", False)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("ActiveState=active\nMainPID=1\n", "did not report LoadState"),
        ("garbage", "did not report LoadState, ActiveState, MainPID"),
        ("LoadState=loaded\nActiveState=active\nMainPID=x\n", "MainPID='x', not a number"),
    ],
)
def test_parse_show_errors(output: str, message: str) -> None:
    with pytest.raises(ServiceBinaryError, match=message):
        parse_show(output, "kubelet")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("kubelet", r"services: expected a list"),
        ([["kubelet"]], r"services\[0\]: expected a mapping"),
        ([{"service": "", "binary": "/b"}], r"services\[0\].service: expected a unit name"),
        ([{"service": "kubelet"}], r"services\[0\].binary: expected an absolute path"),
        (
            [{"service": "kubelet", "binary": "/b"}, {"service": "x", "binary": "kubelet"}],
            r"services\[1\].binary: expected an absolute path .* got 'kubelet'",
        ),
    ],
)
def test_requested_errors(items: Any, message: str) -> None:
    with pytest.raises(ServiceBinaryError, match=message):
        requested(items)


# --- the module, with systemctl and /proc faked ----------------------------------------------


def run_module(
    capsys, host: Host, args: dict[str, Any], check_mode: bool = False, rc: int = 0
) -> dict:
    def run_command(self, argv, **_kwargs):
        assert argv[:2] == ["/bin/systemctl", "show"] and argv[-2] == "--"
        return rc, host.show(argv[-1]), "unit broken" if rc else ""

    real_checker = ServiceBinaries.__init__

    def fake_proc(self, show_unit, proc_root="/proc"):
        real_checker(self, show_unit, str(host.proc))

    module_args = {"_ansible_check_mode": check_mode, **args}
    with (
        patch_module_args(module_args),
        mock.patch.object(AnsibleModule, "run_command", run_command),
        mock.patch.object(AnsibleModule, "get_bin_path", return_value="/bin/systemctl"),
        mock.patch.object(ServiceBinaries, "__init__", fake_proc),
        pytest.raises(SystemExit),
    ):
        service_binaries.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("check_mode", [False, True])
def test_module_reports_stale_and_never_changes(host: Host, capsys, check_mode: bool) -> None:
    old = host.install("v1.36.4").resolve()
    host.run("kubelet", 100, str(old))
    link = host.install("v1.37.2")
    args = {"services": [{"service": "kubelet", "binary": str(link)}]}
    result = run_module(capsys, host, args, check_mode=check_mode)
    assert result["changed"] is False
    assert result["stale_services"] == ["kubelet"]
    (entry,) = result["services"]
    assert entry["running_path"] == str(old) and entry["stale"] is True
    assert os.readlink(link) == str(link.resolve())


def test_module_warns_about_a_missing_binary(host: Host, capsys) -> None:
    host.run("kubelet", 100, str(host.install("v1.36.4").resolve()))
    args = {"services": [{"service": "kubelet", "binary": str(host.root / "bin/gone")}]}
    # Spy on warn(): the result's "warnings" key depends on ansible-core's process-wide warning
    # state, which other module tests in the same pytest process leave behind.
    with mock.patch.object(AnsibleModule, "warn", autospec=True) as warn:
        result = run_module(capsys, host, args)
    assert result["stale_services"] == []
    assert any("does not exist: not restarting it" in str(c.args[1]) for c in warn.call_args_list)


def test_module_fails_when_systemctl_fails(host: Host, capsys) -> None:
    args = {"services": [{"service": "kubelet", "binary": "/usr/local/bin/kubelet"}]}
    result = run_module(capsys, host, args, rc=1)
    assert result["failed"]
    assert result["msg"] == "kubelet: systemctl show failed (rc=1): unit broken"


def test_module_fails_on_a_relative_binary(host: Host, capsys) -> None:
    args = {"services": [{"service": "kubelet", "binary": "kubelet"}]}
    result = run_module(capsys, host, args)
    assert result["failed"] and "services[0].binary: expected an absolute path" in result["msg"]


def test_module_requires_services(host: Host, capsys) -> None:
    result = run_module(capsys, host, {})
    assert result["failed"] and "services" in result["msg"]


def test_real_process_in_proc(tmp_path: Path) -> None:
    """The real /proc: a running copy of sleep is current until its file is replaced."""
    binary = tmp_path / "sleeper"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", binary)
    process = subprocess.Popen([str(binary), "30"])
    try:
        unit = f"LoadState=loaded\nActiveState=active\nMainPID={process.pid}\n"
        checker = ServiceBinaries(lambda _service: unit)
        assert not checker.check("sleeper", str(binary)).stale
        replacement = tmp_path / "sleeper.new"
        shutil.copy2(binary, replacement)
        replacement.replace(binary)
        result = checker.check("sleeper", str(binary))
        assert result.deleted and result.stale and result.running_path == str(binary)
    finally:
        process.kill()
        process.wait()

"""cis_expectations, cis_read_command and cis_report: the CIS facts 90-verify.yml reads per host."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.kubesmith.cluster.plugins.filter.cis import FilterModule

FILTERS = FilterModule().filters()
SETTINGS: dict[str, Any] = {
    "admission_config": "/etc/kubernetes/admission-control.yaml",
    "cni_conf_dir": "/etc/cni/net.d",
    "cni_conf_mode": "0600",
    "etcd_data_dir": "/var/lib/etcd",
    "flanneld_pki": True,
    "kubelet_config_path": "/var/lib/kubelet/config.yaml",
    "kubelet_settings": {
        "seccompDefault": True,
        "podPidsLimit": 4096,
        "authentication.anonymous.enabled": False,
        "readOnlyPort": None,
    },
}
CONTROL_PLANE = ["etcd", "kube_control_plane", "k8s_cluster"]
NODE = ["kube_node", "k8s_cluster"]
KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
kind: KubeletConfiguration
podPidsLimit: 4096
seccompDefault: true
"""
APISERVER_ARGS = [
    "/usr/local/bin/kube-apiserver",
    "--admission-control-config-file=/etc/kubernetes/admission-control.yaml",
    "--anonymous-auth=false",
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction,EventRateLimit",
    "--profiling=false",
    "--service-account-extend-token-expiration=false",
]


def expect(groups: list[str], **changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = FILTERS["cis_expectations"](groups, "cp1", SETTINGS | changes)
    return result


def stat(key: str, path: str, mode: str = "600", owner: str = "root") -> str:
    return f"stat\t{key}\t{path}\t{mode}\t{owner}\t{owner}"


def healthy_answer(expected: dict[str, Any]) -> list[str]:
    """What a host set up by kubesmith answers: every file at its mode, the flags, the config."""
    lines = []
    for item in expected["files"]:
        path = item["path"] + ("/10-flannel.conflist" if item["glob"] == "required" else "")
        if item["glob"] != "optional":
            lines.append(stat(item["key"], path, item["mode"].lstrip("0"), item["owner"]))
    if expected["apiserver_flags"]:
        lines.append("pid\tkube-apiserver\t4242")
        lines += [f"arg\tkube-apiserver\t{arg}" for arg in APISERVER_ARGS]
    if expected["kubelet_config_path"]:
        lines += [f"conf\tkubelet\t{line}" for line in KUBELET_CONFIG.splitlines()]
    return lines


def rows(lines: list[str], expected: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = FILTERS["cis_report"](lines, expected)
    return result


def failing(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in report if not row["ok"]]


def test_a_control_plane_host_expects_its_units_keys_and_apiserver_flags() -> None:
    got = expect(CONTROL_PLANE)
    paths = {item["path"]: item for item in got["files"]}
    for unit in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "flanneld"):
        assert paths[f"/etc/systemd/system/{unit}.service"]["mode"] == "0600"
        assert paths[f"/etc/systemd/system/{unit}.service.d"]["glob"] == "optional"
    assert "/etc/systemd/system/kubelet.service" not in paths
    assert paths["/etc/kubernetes/pki/apiserver.key"]["mode"] == "0600"
    assert paths["/etc/kubernetes/pki/apiserver.crt"]["mode"] == "0644"
    assert paths["/etc/kubernetes/admin.conf"]["key"] == "kubeconfig"
    assert paths["/etc/kubernetes/admission-control.yaml"]["mode"] == "0600"
    assert (paths["/var/lib/etcd"]["mode"], paths["/var/lib/etcd"]["owner"]) == ("0700", "etcd")
    assert paths["/etc/cni/net.d"]["glob"] == "required"
    assert got["kubelet_config_path"] == ""
    assert {
        "flag": "admission-control-config-file",
        "value": SETTINGS["admission_config"],
        "word": False,
    } in got["apiserver_flags"]


def test_a_worker_expects_kubelet_files_and_settings_but_no_apiserver() -> None:
    got = expect(NODE)
    paths = {item["path"]: item for item in got["files"]}
    assert paths["/etc/systemd/system/kubelet.service"]["mode"] == "0600"
    assert paths["/etc/systemd/system/kube-proxy.service"]["mode"] == "0600"
    assert paths["/var/lib/kubelet/config.yaml"]["mode"] == "0600"
    assert paths["/etc/kubernetes/kubelet.conf"]["mode"] == "0600"
    assert "/etc/systemd/system/kube-apiserver.service" not in paths
    assert "/etc/kubernetes/admission-control.yaml" not in paths
    assert got["apiserver_flags"] == []
    # null turns a check off (readOnlyPort above).
    assert got["kubelet_settings"] == {
        "seccompDefault": True,
        "podPidsLimit": 4096,
        "authentication.anonymous.enabled": False,
    }


def test_without_event_rate_limit_neither_its_file_nor_its_flags_are_expected() -> None:
    got = expect(CONTROL_PLANE, admission_config="")
    assert all(item["key"] != "admission config" for item in got["files"])
    assert all(flag["value"] != "EventRateLimit" for flag in got["apiserver_flags"])


@pytest.mark.parametrize("groups", [CONTROL_PLANE, NODE, ["etcd"]])
def test_a_healthy_host_passes_every_row(groups: list[str]) -> None:
    expected = expect(groups)
    report = rows(healthy_answer(expected), expected)
    assert report and failing(report) == []


def test_one_row_per_fact() -> None:
    expected = expect(NODE)
    report = rows(healthy_answer(expected), expected)
    checks = [row["check"] for row in report]
    assert len(checks) == len(set(checks))
    assert "kubelet config seccompDefault: true" in checks
    assert (
        "kubelet unit /etc/systemd/system/kubelet.service is 0600 or stricter, root:root" in checks
    )


def test_a_stricter_mode_passes_and_a_wider_one_fails() -> None:
    expected = expect(NODE)
    unit = "/etc/systemd/system/kubelet.service"
    lines = [line for line in healthy_answer(expected) if f"\t{unit}\t" not in line]
    assert failing(rows([*lines, stat("kubelet unit", unit, "400")], expected)) == []
    bad = failing(rows([*lines, stat("kubelet unit", unit, "644")], expected))
    assert [(row["check"].split(" is ")[0], row["detail"]) for row in bad] == [
        (f"kubelet unit {unit}", "0644 root:root")
    ]


def test_a_wrong_owner_fails() -> None:
    expected = expect(["etcd"])
    lines = [*healthy_answer(expected), stat("etcd data dir", "/var/lib/etcd", "700", "root")]
    lines = [
        line for line in lines if line != stat("etcd data dir", "/var/lib/etcd", "700", "etcd")
    ]
    bad = failing(rows(lines, expected))
    assert [row["detail"] for row in bad] == ["0700 root:root"]


def test_a_missing_file_fails() -> None:
    expected = expect(NODE)
    lines = [
        *healthy_answer(expected),
        "stat\tkubelet config\t/var/lib/kubelet/config.yaml\tmissing\t\t",
    ]
    lines = [
        line
        for line in lines
        if not line.startswith("stat\tkubelet config\t/var/lib/kubelet/config.yaml\t600")
    ]
    bad = failing(rows(lines, expected))
    assert [row["detail"] for row in bad] == ["missing"]


def test_a_drop_in_is_checked_when_present_and_a_wide_one_fails() -> None:
    expected = expect(NODE)
    dropin = "/etc/systemd/system/kubelet.service.d/10-local.conf"
    bad = failing(
        rows([*healthy_answer(expected), stat("kubelet drop-in", dropin, "644")], expected)
    )
    assert [row["check"] for row in bad] == [
        f"kubelet drop-in {dropin} is 0600 or stricter, root:root"
    ]


def test_no_cni_config_at_all_fails() -> None:
    expected = expect(NODE)
    lines = [line for line in healthy_answer(expected) if not line.startswith("stat\tCNI config\t")]
    bad = failing(rows(lines, expected))
    assert [(row["check"], row["detail"]) for row in bad] == [
        ("CNI config /etc/cni/net.d/* is 0600 or stricter, root:root", "missing")
    ]


def test_the_cni_mode_follows_the_setting() -> None:
    expected = expect(NODE, cni_conf_mode="0644")
    lines = [*healthy_answer(expected), stat("CNI config", "/etc/cni/net.d/99-other.conf", "644")]
    assert failing(rows(lines, expected)) == []


def test_an_apiserver_without_the_flag_fails() -> None:
    expected = expect(CONTROL_PLANE)
    lines = [
        line
        for line in healthy_answer(expected)
        if "service-account-extend-token-expiration" not in line and "EventRateLimit" not in line
    ]
    lines.append("arg\tkube-apiserver\t--enable-admission-plugins=NodeRestriction")
    bad = failing(rows(lines, expected))
    assert [(row["check"], row["detail"]) for row in bad] == [
        (
            "running kube-apiserver: --service-account-extend-token-expiration=false",
            "--service-account-extend-token-expiration not given",
        ),
        (
            "running kube-apiserver: --enable-admission-plugins includes EventRateLimit",
            "--enable-admission-plugins=NodeRestriction",
        ),
    ]


def test_a_flag_word_must_match_whole() -> None:
    expected = expect(CONTROL_PLANE)
    lines = [line for line in healthy_answer(expected) if "authorization-mode" not in line]
    lines.append("arg\tkube-apiserver\t--authorization-mode=Nodes,RBAC")
    bad = failing(rows(lines, expected))
    assert [row["check"] for row in bad] == [
        "running kube-apiserver: --authorization-mode includes Node"
    ]


def test_a_stopped_apiserver_fails_every_flag() -> None:
    expected = expect(CONTROL_PLANE)
    lines = [line for line in healthy_answer(expected) if line.startswith("stat")]
    lines.append("pid\tkube-apiserver\t0")
    bad = failing(rows(lines, expected))
    assert len(bad) == len(expected["apiserver_flags"])
    assert {row["detail"] for row in bad} == {"kube-apiserver is not running"}


def test_kubelet_settings_that_differ_or_are_absent_fail() -> None:
    expected = expect(NODE)
    lines = [line for line in healthy_answer(expected) if not line.startswith("conf")]
    lines += ["conf\tkubelet\tkind: KubeletConfiguration", "conf\tkubelet\tseccompDefault: false"]
    bad = failing(rows(lines, expected))
    assert [(row["check"], row["detail"]) for row in bad] == [
        ("kubelet config seccompDefault: true", "false"),
        ("kubelet config podPidsLimit: 4096", "not set"),
        ("kubelet config authentication.anonymous.enabled: false", "not set"),
    ]


def test_a_missing_kubelet_config_fails_every_setting() -> None:
    expected = expect(NODE)
    lines = [line for line in healthy_answer(expected) if not line.startswith("conf")]
    bad = failing(rows(lines, expected))
    assert len(bad) == 3
    assert {row["detail"] for row in bad} == {"/var/lib/kubelet/config.yaml is missing or empty"}


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(AnsibleFilterError, match="missing cni_conf_mode"):
        FILTERS["cis_expectations"](
            NODE, "node1", {k: v for k, v in SETTINGS.items() if k != "cni_conf_mode"}
        )
    with pytest.raises(AnsibleFilterError, match=r"settings\.cni_conf_mode: 'rw' is not an octal"):
        FILTERS["cis_expectations"](NODE, "node1", SETTINGS | {"cni_conf_mode": "rw"})
    with pytest.raises(AnsibleFilterError, match=r"settings\.kubelet_settings: expected a mapping"):
        FILTERS["cis_expectations"](
            NODE, "node1", SETTINGS | {"kubelet_settings": ["seccompDefault"]}
        )


def test_an_unknown_answer_line_is_refused() -> None:
    expected = expect(NODE)
    with pytest.raises(AnsibleFilterError, match="cis_report: answer 'hello'"):
        FILTERS["cis_report"](["hello"], expected)
    with pytest.raises(
        AnsibleFilterError, match="cis_report: expected: the result of cis_expectations"
    ):
        FILTERS["cis_report"]([], {"files": []})


def test_the_script_reads_real_files(tmp_path: Path) -> None:
    """The generated bash, run for real on files in a temporary directory, answers the report."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    unit, cni_dir, config = tmp_path / "x.service", tmp_path / "net.d", tmp_path / "config.yaml"
    unit.write_text("[Service]\n")
    unit.chmod(0o644)
    cni_dir.mkdir()
    (cni_dir / "10-flannel.conflist").write_text("{}")
    (cni_dir / "10-flannel.conflist").chmod(0o600)
    config.write_text(KUBELET_CONFIG)

    def entry(key: str, path: Path, mode: str, glob: str = "") -> dict[str, Any]:
        return {
            "key": key,
            "path": str(path),
            "mode": mode,
            "owner": user,
            "group": group,
            "glob": glob,
        }

    expected = {
        "files": [
            entry("x unit", unit, "0600"),
            entry("x drop-in", tmp_path / "x.service.d", "0600", "optional"),
            entry("CNI config", cni_dir, "0600", "required"),
            entry("absent", tmp_path / "absent.conf", "0600"),
        ],
        "apiserver_flags": [],
        "kubelet_config_path": str(config),
        "kubelet_settings": {"seccompDefault": True, "podPidsLimit": 4096},
    }
    script = FILTERS["cis_read_command"](expected)
    answer = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    report = rows(answer.stdout.splitlines(), expected)
    verdicts = {row["check"].split(" is ")[0]: (row["ok"], row["detail"]) for row in report}
    assert verdicts == {
        f"x unit {unit}": (False, f"0644 {user}:{group}"),
        f"CNI config {cni_dir}/10-flannel.conflist": (True, f"0600 {user}:{group}"),
        f"absent {tmp_path}/absent.conf": (False, "missing"),
        "kubelet config seccompDefault: true": (True, "true"),
        "kubelet config podPidsLimit: 4096": (True, "4096"),
    }

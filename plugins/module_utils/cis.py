"""The CIS facts playbooks/tasks/verify-cis.yml reads on a host, and the verdict on each.

One implementation for three filters (plugins/filter/cis.py): `cis_expectations` (what a host
in these groups must have), `cis_read_command` (one bash script that prints every fact) and
`cis_report` (one row per fact from the script's answer).

The script answers one fact per line, tab-separated:
  stat <key> <path> <mode> <owner> <group>   (mode `missing` when the path does not exist)
  pid kube-apiserver <pid>                   (0 when it does not run)
  arg kube-apiserver <argument>              (one line per argument of the running process)
  conf kubelet <line>                        (the kubelet configuration file, line by line)
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from ansible_collections.kubesmith.cluster.plugins.module_utils import pki_plan

UNIT_DIR = "/etc/systemd/system"
KUBERNETES_DIR = "/etc/kubernetes"
# Which kubesmith units a host in a group runs (CIS 1.1.1-1.1.8, 4.1.1: 0600 root:root).
UNITS_BY_GROUP: dict[str, tuple[str, ...]] = {
    "kube_control_plane": ("kube-apiserver", "kube-controller-manager", "kube-scheduler"),
    "etcd": ("etcd",),
    "kube_node": ("kubelet", "kube-proxy"),
    "k8s_cluster": ("flanneld",),
}
# Files the kubelet writes itself (TLS bootstrap, rotation): kubeconfig and credentials 0600.
KUBELET_OWN_FILES = (
    ("kubelet kubeconfig", f"{KUBERNETES_DIR}/kubelet.conf"),
    ("kubelet client credentials", "/var/lib/kubelet/pki/kubelet-client-current.pem"),
    ("kubelet serving credentials", "/var/lib/kubelet/pki/kubelet-server-current.pem"),
)
# Flags of the running kube-apiserver with the exact value they must have.
APISERVER_FLAGS = (
    ("anonymous-auth", "false"),
    ("profiling", "false"),
    ("service-account-extend-token-expiration", "false"),
)
# Comma-list flags of the running kube-apiserver and a word each must contain.
APISERVER_LIST_FLAGS = (
    ("authorization-mode", "Node"),
    ("authorization-mode", "RBAC"),
    ("enable-admission-plugins", "NodeRestriction"),
)
SETTINGS = (
    "admission_config",
    "cni_conf_dir",
    "cni_conf_mode",
    "etcd_data_dir",
    "flanneld_pki",
    "kubelet_config_path",
    "kubelet_settings",
)


class CisError(ValueError):
    """The settings or the host's answer are not what verify-cis.yml produces."""


def parse_mode(value: Any, field: str) -> int:
    """An octal file mode such as '0600' (or 600 as YAML reads it unquoted)."""
    try:
        mode = int(str(value), 8)
    except ValueError:
        mode = -1
    if isinstance(value, bool) or not 0 <= mode <= 0o7777:
        raise CisError(f"{field}: {value!r} is not an octal file mode such as '0600'")
    return mode


def _file(
    key: str,
    path: str,
    mode: str,
    owner: str = "root",
    glob: str = "",
) -> dict[str, Any]:
    """A path and what it must be. glob: 'optional' or 'required' for every file in a directory."""
    return {"key": key, "path": path, "mode": mode, "owner": owner, "group": owner, "glob": glob}


def _settings(settings: Any) -> Mapping[str, Any]:
    if not isinstance(settings, Mapping):
        raise CisError(f"settings: expected a mapping with {', '.join(SETTINGS)}, got {settings!r}")
    missing = [name for name in SETTINGS if name not in settings]
    if missing:
        raise CisError(f"settings: missing {', '.join(missing)}")
    if not isinstance(settings["kubelet_settings"], Mapping):
        raise CisError(
            "settings.kubelet_settings: expected a mapping of dotted path to value, got "
            f"{settings['kubelet_settings']!r}"
        )
    parse_mode(settings["cni_conf_mode"], "settings.cni_conf_mode")
    return settings


def _apiserver_flags(admission_config: str) -> list[dict[str, Any]]:
    flags = [{"flag": name, "value": value, "word": False} for name, value in APISERVER_FLAGS]
    flags += [{"flag": name, "value": value, "word": True} for name, value in APISERVER_LIST_FLAGS]
    if admission_config:
        flags.append({"flag": "enable-admission-plugins", "value": "EventRateLimit", "word": True})
        flags.append(
            {"flag": "admission-control-config-file", "value": admission_config, "word": False}
        )
    return flags


def expectations(group_names: Any, hostname: Any, settings: Any) -> dict[str, Any]:
    """What a host in `group_names` must have: file modes, apiserver flags, kubelet settings.

    settings: admission_config (its path; '' when EventRateLimit is off), cni_conf_dir,
    cni_conf_mode, etcd_data_dir, flanneld_pki (as pki_distribute_flanneld),
    kubelet_config_path and kubelet_settings (a dotted path in the KubeletConfiguration to the
    value it must hold; null checks nothing).
    """
    conf = _settings(settings)
    pki_files = pki_plan.host_files(group_names, hostname, bool(conf["flanneld_pki"]))
    groups = set(group_names)
    files: list[dict[str, Any]] = []
    for group, units in UNITS_BY_GROUP.items():
        for unit in units if group in groups else ():
            files.append(_file(f"{unit} unit", f"{UNIT_DIR}/{unit}.service", "0600"))
            files.append(
                _file(f"{unit} drop-in", f"{UNIT_DIR}/{unit}.service.d", "0600", glob="optional")
            )
    for entry in pki_files:
        kind = "kubeconfig" if entry["dest"].endswith(".conf") else "PKI file"
        files.append(_file(kind, f"{KUBERNETES_DIR}/{entry['dest']}", entry["mode"]))
    apiserver = "kube_control_plane" in groups
    admission_config = str(conf["admission_config"] or "")
    if apiserver:
        files.append(_file("encryption config", f"{KUBERNETES_DIR}/encryption-config.yaml", "0600"))
        if admission_config:
            files.append(_file("admission config", admission_config, "0600"))
    if "etcd" in groups:
        files.append(_file("etcd data dir", str(conf["etcd_data_dir"]), "0700", owner="etcd"))
    if "k8s_cluster" in groups:
        cni_mode = f"{parse_mode(conf['cni_conf_mode'], 'settings.cni_conf_mode'):04o}"
        files.append(_file("CNI config", str(conf["cni_conf_dir"]), cni_mode, glob="required"))
    kubelet = "kube_node" in groups
    if kubelet:
        files.append(_file("kubelet config", str(conf["kubelet_config_path"]), "0600"))
        files.append(_file("kubeconfig", f"{KUBERNETES_DIR}/bootstrap-kubelet.conf", "0600"))
        files += [_file(key, path, "0600") for key, path in KUBELET_OWN_FILES]
    kubelet_settings = {
        str(path): value for path, value in conf["kubelet_settings"].items() if value is not None
    }
    return {
        "files": files,
        "apiserver_flags": _apiserver_flags(admission_config) if apiserver else [],
        "kubelet_config_path": str(conf["kubelet_config_path"]) if kubelet else "",
        "kubelet_settings": kubelet_settings if kubelet else {},
    }


def _stat_line(key: str, path: str) -> str:
    """Bash printing `stat <key> <path> <mode> <owner> <group>`; path is already a shell word."""
    answer = shlex.quote(f"stat\t{key}\t%n\t%a\t%U\t%G\n")
    missing = shlex.quote(f"stat\t{key}\t%s\tmissing\t\t\n")
    return f"stat -L --printf={answer} {path} 2>/dev/null || printf {missing} {path}"


def _expected(expected: Any) -> Mapping[str, Any]:
    keys = ("files", "apiserver_flags", "kubelet_config_path", "kubelet_settings")
    if not isinstance(expected, Mapping) or any(key not in expected for key in keys):
        raise CisError(
            f"expected: the result of cis_expectations (keys {', '.join(keys)}), got {expected!r}"
        )
    return expected


def read_command(expected: Any) -> str:
    """One bash script printing every fact `expected` (from expectations) asks about."""
    wanted = _expected(expected)
    lines = []
    for item in wanted["files"]:
        if item["glob"]:
            each = _stat_line(item["key"], '"$f"')
            lines += [
                f"for f in {shlex.quote(item['path'])}/*; do",
                f'  [ -e "$f" ] || continue; {each}',
                "done",
            ]
        else:
            lines.append(_stat_line(item["key"], shlex.quote(item["path"])))
    if wanted["apiserver_flags"]:
        lines += [
            "pid=$(systemctl show --property=MainPID --value kube-apiserver 2>/dev/null)",
            "printf 'pid\\tkube-apiserver\\t%s\\n' \"${pid:-0}\"",
            'if [ "${pid:-0}" != 0 ]; then',
            "  tr '\\0' '\\n' <\"/proc/$pid/cmdline\" | sed 's/^/arg\\tkube-apiserver\\t/'",
            "fi",
        ]
    if wanted["kubelet_config_path"]:
        path = shlex.quote(wanted["kubelet_config_path"])
        lines.append(f"sed 's/^/conf\\tkubelet\\t/' {path} 2>/dev/null")
    lines.append("true")
    return "\n".join(lines) + "\n"


def _parse(lines: Iterable[Any]) -> tuple[dict[str, list[list[str]]], list[str], str, list[str]]:
    """(stat answers by key, apiserver arguments, apiserver pid, kubelet config lines)."""
    if isinstance(lines, str) or not isinstance(lines, Iterable):
        raise CisError(f"lines: expected the script's stdout_lines, got {lines!r}")
    stats: dict[str, list[list[str]]] = {}
    args: list[str] = []
    pid = "0"
    conf: list[str] = []
    for line in lines:
        parts = str(line).split("\t")
        if parts[0] == "stat" and len(parts) == 6:
            stats.setdefault(parts[1], []).append(parts[2:])
        elif parts[:2] == ["pid", "kube-apiserver"] and len(parts) == 3:
            pid = parts[2] or "0"
        elif parts[:2] == ["arg", "kube-apiserver"]:
            args.append("\t".join(parts[2:]))
        elif parts[:2] == ["conf", "kubelet"]:
            conf.append("\t".join(parts[2:]))
        else:
            raise CisError(f"answer {line!r}: expected a stat, pid, arg or conf line")
    return stats, args, pid, conf


def _file_row(item: Mapping[str, Any], path: str, answer: list[str] | None) -> dict[str, Any]:
    wanted = parse_mode(item["mode"], f"{item['key']} {path}: mode")
    owner = f"{item['owner']}:{item['group']}"
    check = f"{item['key']} {path} is {item['mode']} or stricter, {owner}"
    if answer is None or answer[1] == "missing":
        return {"check": check, "ok": False, "detail": "missing"}
    mode, user, group = answer[1], answer[2], answer[3]
    try:
        actual = int(mode, 8)
    except ValueError:
        raise CisError(f"answer for {path}: mode {mode!r} is not octal") from None
    ok = actual & ~wanted == 0 and f"{user}:{group}" == owner
    return {"check": check, "ok": ok, "detail": f"{actual:04o} {user}:{group}"}


def _file_rows(item: Mapping[str, Any], answers: list[list[str]]) -> list[dict[str, Any]]:
    if not item["glob"]:
        found = [answer for answer in answers if answer[0] == item["path"]]
        return [_file_row(item, item["path"], found[-1] if found else None)]
    rows = [_file_row(item, answer[0], answer) for answer in answers]
    if not rows and item["glob"] == "required":
        rows.append(_file_row(item, item["path"] + "/*", None))
    return rows


def _flag_rows(flags: list[Mapping[str, Any]], args: list[str], pid: str) -> list[dict[str, Any]]:
    given: dict[str, str] = {}
    for arg in args:
        name, _, value = arg.partition("=")
        if name.startswith("--"):
            given[name[2:]] = value
    rows = []
    for flag in flags:
        name, value = str(flag["flag"]), str(flag["value"])
        if flag["word"]:
            check = f"running kube-apiserver: --{name} includes {value}"
            ok = value in given.get(name, "").split(",")
        else:
            check = f"running kube-apiserver: --{name}={value}"
            ok = given.get(name) == value
        if pid == "0" or not args:
            detail = "kube-apiserver is not running"
        else:
            detail = f"--{name}={given[name]}" if name in given else f"--{name} not given"
        rows.append({"check": check, "ok": ok and pid != "0", "detail": detail})
    return rows


def _plain(value: Any) -> str:
    """How YAML and Ansible values compare: true/false for bools, the text otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _setting(config: Any, path: str) -> tuple[bool, Any]:
    node = config
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _kubelet_rows(settings: Mapping[str, Any], conf: list[str], path: str) -> list[dict[str, Any]]:
    try:
        config = yaml.safe_load("\n".join(conf)) if conf else None
    except yaml.YAMLError as exc:
        config, problem = None, f"{path} is not YAML: {str(exc).splitlines()[0]}"
    else:
        problem = f"{path} is missing or empty" if config is None else ""
    rows = []
    for setting, value in settings.items():
        check = f"kubelet config {setting}: {_plain(value)}"
        found, actual = _setting(config, setting)
        if problem:
            rows.append({"check": check, "ok": False, "detail": problem})
        elif not found:
            rows.append({"check": check, "ok": False, "detail": "not set"})
        else:
            rows.append(
                {"check": check, "ok": _plain(actual) == _plain(value), "detail": _plain(actual)}
            )
    return rows


def report(lines: Any, expected: Any) -> list[dict[str, Any]]:
    """One row {check, ok, detail} per fact of `expected`, judged from the script's answer."""
    wanted = _expected(expected)
    stats, args, pid, conf = _parse(lines)
    rows = []
    for item in wanted["files"]:
        rows += _file_rows(item, stats.get(item["key"], []))
    if wanted["apiserver_flags"]:
        rows += _flag_rows(wanted["apiserver_flags"], args, pid)
    if wanted["kubelet_config_path"]:
        rows += _kubelet_rows(wanted["kubelet_settings"], conf, wanted["kubelet_config_path"])
    return rows

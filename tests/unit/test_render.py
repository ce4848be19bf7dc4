"""Renderer filters: kubeconfig, systemd units, flannel config, through FilterModule."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.kubesmith.cluster.plugins.filter.render import FilterModule
from ansible_collections.kubesmith.cluster.plugins.module_utils.pki import (
    CertSpec,
    PkiManager,
    PkiStore,
)
from hypothesis import given
from hypothesis import strategies as st

FILTERS = FilterModule().filters()


# --- kubeconfig -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    specs = [
        CertSpec(name="ca", path="ca", kind="ca", common_name="kubernetes-ca", valid_days=3650),
        CertSpec(
            name="admin",
            path="admin",
            common_name="kubernetes-admin",
            usages=("client",),
            organizations=("system:masters",),
            ca="ca",
        ),
        CertSpec(name="other", path="other", common_name="other", usages=("client",), ca="ca"),
    ]
    PkiManager(PkiStore(root), check_mode=False).apply(specs)
    return root


def admin_spec(pki: Path) -> dict:
    return {
        "cluster_name": "lab",
        "server": "https://172.30.10.10:8443",
        "ca_cert": (pki / "ca.crt").read_text(),
        "user": "kubernetes-admin",
        "client_cert": (pki / "admin.crt").read_text(),
        "client_key": (pki / "admin.key").read_text(),
    }


def test_kubeconfig_with_embedded_certificates(pki: Path) -> None:
    document = yaml.safe_load(FILTERS["kubeconfig"](admin_spec(pki)))
    assert document["current-context"] == "kubernetes-admin@lab"
    cluster = document["clusters"][0]
    assert cluster["name"] == "lab"
    assert cluster["cluster"]["server"] == "https://172.30.10.10:8443"
    ca_data = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
    assert ca_data == (pki / "ca.crt").read_bytes()
    user = document["users"][0]
    assert base64.b64decode(user["user"]["client-key-data"]) == (pki / "admin.key").read_bytes()
    assert document["contexts"][0]["context"] == {"cluster": "lab", "user": "kubernetes-admin"}


def test_kubeconfig_from_files_is_identical(pki: Path) -> None:
    from_files = {
        **admin_spec(pki),
        "ca_cert": None,
        "client_cert": None,
        "client_key": None,
        "ca_cert_file": str(pki / "ca.crt"),
        "client_cert_file": str(pki / "admin.crt"),
        "client_key_file": str(pki / "admin.key"),
    }
    assert FILTERS["kubeconfig"](from_files) == FILTERS["kubeconfig"](admin_spec(pki))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_reads_the_kubeconfig(pki: Path, tmp_path: Path) -> None:
    path = tmp_path / "admin.conf"
    path.write_text(FILTERS["kubeconfig"]({**admin_spec(pki), "namespace": "kube-system"}))
    view = subprocess.run(
        ["kubectl", "config", "view", "--kubeconfig", str(path), "--raw", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(view.stdout)
    assert config["contexts"][0]["context"]["namespace"] == "kube-system"
    assert config["users"][0]["user"]["client-certificate-data"]


def test_kubeconfig_with_bootstrap_token(pki: Path) -> None:
    spec = {
        "cluster_name": "lab",
        "server": "https://127.0.0.1:8443",
        "ca_cert_file": str(pki / "ca.crt"),
        "user": "kubelet-bootstrap",
        "token": "abcdef.0123456789abcdef",
        "context": "bootstrap",
    }
    document = yaml.safe_load(FILTERS["kubeconfig"](spec))
    assert document["users"][0]["user"] == {"token": "abcdef.0123456789abcdef"}
    assert document["current-context"] == "bootstrap"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"server": "http://10.0.0.1:6443"}, "server: 'http://10.0.0.1:6443' is not valid"),
        ({"server": None}, "server: expected a URL"),
        ({"cluster_name": ""}, "cluster_name: expected a non-empty string"),
        ({"ca_cert": None}, "ca_cert: missing"),
        ({"ca_cert": "junk"}, "ca_cert: not a PEM certificate"),
        ({"ca_cert_file": "/nonexistent/ca.crt"}, "ca_cert: give either ca_cert or ca_cert_file"),
        ({"client_key": None}, "client_cert/client_key: a user needs both"),
        ({"client_key": "junk"}, "client_key: not an unencrypted PEM private key"),
        ({"token": "abc"}, "token: give either token or client_cert/client_key"),
    ],
)
def test_kubeconfig_errors(pki: Path, change: dict, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["kubeconfig"]({**admin_spec(pki), **change})
    assert message in str(error.value)


def test_kubeconfig_refuses_a_key_of_another_certificate(pki: Path) -> None:
    spec = {**admin_spec(pki), "client_key": (pki / "other.key").read_text()}
    with pytest.raises(AnsibleFilterError, match="client_key: does not belong to client_cert"):
        FILTERS["kubeconfig"](spec)


def test_kubeconfig_missing_file(pki: Path) -> None:
    spec = {**admin_spec(pki), "ca_cert": None, "ca_cert_file": "/nonexistent/ca.crt"}
    with pytest.raises(
        AnsibleFilterError, match=r"ca_cert_file: cannot read '/nonexistent/ca\.crt'"
    ):
        FILTERS["kubeconfig"](spec)


def test_kubeconfig_of_non_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match="kubeconfig: expected a mapping"):
        FILTERS["kubeconfig"]("admin")


# --- systemd units ----------------------------------------------------------------------

APISERVER_UNIT = {
    "unit": {
        "Description": "Kubernetes API Server",
        "Documentation": "https://kubernetes.io/docs/",
        "After": ["network-online.target", "etcd.service"],
        "Wants": "network-online.target",
    },
    "service": {
        "exec_start": {
            "program": "/usr/local/bin/kube-apiserver",
            "flags": {
                "--etcd-servers": ["https://172.30.10.21:2379", "https://172.30.10.22:2379"],
                "anonymous-auth": False,
                "allow-privileged": True,
                "feature-gates": {"B": False, "A": True},
                "v": 2,
                "removed-default": None,
            },
        },
        "Environment": {"GOMAXPROCS": 2, "HTTPS_PROXY": None},
        "Restart": "on-failure",
        "RestartSec": 5,
        "LimitNOFILE": 65536,
        "NoNewPrivileges": True,
    },
    "install": {"WantedBy": "multi-user.target"},
}


def test_systemd_unit_layout() -> None:
    text = FILTERS["systemd_unit"](APISERVER_UNIT)
    assert text.startswith("# Managed by kubesmith")
    assert "[Unit]\nDescription=Kubernetes API Server\n" in text
    assert "After=network-online.target\nAfter=etcd.service\n" in text
    exec_start = (
        "ExecStart=/usr/local/bin/kube-apiserver \\\n"
        "  --allow-privileged=true \\\n"
        "  --anonymous-auth=false \\\n"
        "  --etcd-servers=https://172.30.10.21:2379,https://172.30.10.22:2379 \\\n"
        "  --feature-gates=A=true,B=false \\\n"
        "  --v=2\n"
    )
    assert exec_start in text
    assert 'Environment="GOMAXPROCS=2"\n' in text and "HTTPS_PROXY" not in text
    assert "NoNewPrivileges=yes\n" in text and "LimitNOFILE=65536\n" in text
    assert text.endswith("[Install]\nWantedBy=multi-user.target\n")
    assert text.index("[Unit]") < text.index("[Service]") < text.index("[Install]")


def systemd_split(command: str) -> list[str]:
    """A reference reading of an ExecStart= value as systemd documents it."""
    joined = command.replace("\\\n", " ")
    words, pattern = [], re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
    for quoted, bare in pattern.findall(joined):
        word = re.sub(r"\\(.)", r"\1", quoted) if quoted or bare == "" else bare
        words.append(word.replace("%%", "%").replace("$$", "$"))
    return words


@given(
    values=st.lists(
        st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f")),
        min_size=1,
        max_size=4,
    )
)
def test_arguments_survive_systemd_parsing(values: list[str]) -> None:
    flags = {f"flag-{i}": value for i, value in enumerate(values)}
    unit = {"service": {"exec_start": {"program": "/bin/echo", "args": values, "flags": flags}}}
    line = next(
        block for block in FILTERS["systemd_unit"](unit).split("\n[") if "ExecStart=" in block
    )
    command = line.split("ExecStart=", 1)[1].rstrip("\n")
    expected = ["/bin/echo", *values, *(f"--flag-{i}={v}" for i, v in enumerate(values))]
    assert systemd_split(command) == expected


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_accepts_awkward_values(tmp_path: Path) -> None:
    unit = {
        "unit": {"Description": "quoting test"},
        "service": {
            "exec_start": {
                "program": "/bin/echo",
                "args": ["a b", 'say "hi"', "back\\slash", "100%", "$HOME", ";", ""],
                "flags": {"label": "x y"},
            },
            "ExecStartPre": ["/bin/true", {"program": "/bin/echo", "args": ["pre"]}],
            "Environment": {"A": 'quote " and \\ and 50%'},
            "Type": "simple",
        },
        "install": {"WantedBy": "multi-user.target"},
    }
    path = tmp_path / "quoting.service"
    path.write_text(FILTERS["systemd_unit"](unit))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "quoting" not in result.stderr.lower()


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ("x", "unit: expected a mapping"),
        ({"service": {}}, "service.exec_start: missing"),
        ({"servce": {}}, "unit: unknown sections ['servce']"),
        (
            {"service": {"exec_start": "bin/x"}},
            "service.exec_start.program: 'bin/x' must be an absolute",
        ),
        (
            {"service": {"exec_start": {"program": "/x", "args": "a b"}}},
            "service.exec_start.args: expected a list",
        ),
        (
            {"service": {"exec_start": {"program": "/x", "flags": ["a"]}}},
            "service.exec_start.flags: expected a mapping",
        ),
        (
            {"service": {"exec_start": {"program": "/x", "flags": {"bad name": 1}}}},
            "'bad name' is not a flag name",
        ),
        (
            {"service": {"exec_start": {"program": "/x", "flags": {"a": "x\ny"}}}},
            "flags.a: '--a=x\\ny' contains a control character",
        ),
        (
            {"service": {"exec_start": {"program": "/x", "flags": {"a": {"k": [1]}}}}},
            "flags.a.k: [1] must be a string",
        ),
        ({"service": {"exec_start": {"program": "/x", "cmd": 1}}}, "unknown keys ['cmd']"),
        (
            {"service": {"exec_start": {"program": "/x", "flags": {"--v": 1, "v": 2}}}},
            "'v' is given twice",
        ),
        (
            {"service": {"exec_start": "/x", "restart": "always"}},
            "'restart' is not a systemd directive",
        ),
        (
            {"service": {"exec_start": "/x", "Environment": {"1A": "x"}}},
            "'1A' is not a valid environment",
        ),
        (
            {"service": {"exec_start": "/x", "Environment": ["A=1"]}},
            "service.Environment: expected a mapping",
        ),
        (
            {"service": {"exec_start": "/x"}, "unit": ["x"]},
            "unit: expected a mapping of directives",
        ),
    ],
)
def test_systemd_unit_errors(unit: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["systemd_unit"](unit)
    assert message in str(error.value)


# --- flannel ----------------------------------------------------------------------------


def test_flannel_net_conf_vxlan() -> None:
    conf = json.loads(FILTERS["flannel_net_conf"]({"network": "172.31.0.0/16"}, 7))
    assert conf == {
        "Network": "172.31.0.0/16",
        "SubnetLen": 24,
        "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472},
    }


def test_flannel_net_conf_host_gw() -> None:
    settings = {"network": "10.244.0.0/16", "subnet_len": 26, "backend": "host-gw"}
    conf = json.loads(FILTERS["flannel_net_conf"](settings))
    assert conf["Backend"] == {"Type": "host-gw"} and conf["SubnetLen"] == 26


def test_flannel_net_conf_lease_count_boundary() -> None:
    settings = {"network": "10.244.0.0/22", "subnet_len": 24}
    assert json.loads(FILTERS["flannel_net_conf"](settings, 3))["SubnetLen"] == 24
    with pytest.raises(AnsibleFilterError, match="give 3 leases but 4 hosts run flanneld"):
        FILTERS["flannel_net_conf"](settings, 4)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"network": "10.244.0.0/16", "subnet_len": 16},
            "subnet_len: 16 is not valid; use an integer from 17 to 30",
        ),
        ({"network": "10.244.0.0/16", "subnet_len": 31}, "subnet_len: 31 is not valid"),
        ({"network": "10.244.0.1/16"}, "network: '10.244.0.1/16' is not a network CIDR"),
        ({"network": "fd00::/64"}, "network: 'fd00::/64' is IPv6"),
        ({"network": "10.244.0.0/16", "backend": "udp"}, "backend: 'udp' is not valid"),
        ({"network": "10.244.0.0/16", "vni": 0}, "vni: 0 is not valid"),
        ({"network": "10.244.0.0/16", "port": 70000}, "port: 70000 is not valid"),
        ({"network": "10.244.0.0/16", "Network": "x"}, "settings: unknown keys ['Network']"),
        ("10.244.0.0/16", "settings: expected a mapping"),
    ],
)
def test_flannel_net_conf_errors(settings: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["flannel_net_conf"](settings)
    assert message in str(error.value)


SUBNET_ENV = """FLANNEL_NETWORK=172.31.0.0/16
FLANNEL_SUBNET=172.31.3.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
"""


def test_subnet_env_round_trip() -> None:
    parsed = FILTERS["flannel_subnet_env_parse"](SUBNET_ENV)
    assert parsed == {
        "network": "172.31.0.0/16",
        "subnet": "172.31.3.1/24",
        "mtu": 1450,
        "ipmasq": True,
    }
    assert FILTERS["flannel_subnet_env"](parsed) == SUBNET_ENV
    assert FILTERS["flannel_subnet_env_parse"]("# lease\n\n" + SUBNET_ENV) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SUBNET_ENV + "FLANNEL_OTHER=1\n", "subnet_env line 5: 'FLANNEL_OTHER=1' is not one of"),
        ("FLANNEL_NETWORK=172.31.0.0/16\n", "subnet_env: missing ['ipmasq', 'mtu', 'subnet']"),
        (SUBNET_ENV.replace("172.31.3.1/24", "10.0.0.1/24"), "subnet: 10.0.0.1/24 is not inside"),
        (SUBNET_ENV.replace("1450", "big"), "mtu: 'big' is not valid"),
        (SUBNET_ENV.replace("=true", "=yes"), "ipmasq: 'yes' is not valid"),
        (SUBNET_ENV.replace("172.31.3.1/24", "x"), "subnet: 'x' is not an address"),
        (None, "subnet_env: expected the file's text"),
    ],
)
def test_subnet_env_errors(text: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["flannel_subnet_env_parse"](text)
    assert message in str(error.value)


def test_subnet_env_render_error() -> None:
    with pytest.raises(AnsibleFilterError, match="subnet_env: expected a mapping"):
        FILTERS["flannel_subnet_env"]("FLANNEL_MTU=1")

"""The names preflight knows (read from the roles) and the choices of the roles' argument specs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_inventory import (
    CLUSTER_SPEC,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_names import (
    KnownVariables,
    known_variables,
    role_variable_names,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.preflight_spec import (
    SpecError,
    convert,
)

from tests.unit.preflight_fixtures import DEFAULTS, KNOWN, REPO, load_yaml


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_role_knows_its_defaults_vars_and_every_entry_point(tmp_path: Path) -> None:
    role = tmp_path / "roles" / "web"
    _write(role / "defaults/main.yml", "web_port: 80\n")
    _write(role / "defaults/main/extra.yaml", "web_tls: true\n")
    _write(role / "vars/main.yml", "web_user: www\n")
    _write(role / "vars/README.md", "web_not_yaml: 1\n")
    _write(
        role / "meta/argument_specs.yml",
        "argument_specs:\n"
        "  main: {options: {web_root: {type: path}}}\n"
        "  reload: {options: {web_signal: {type: str}}}\n",
    )
    assert role_variable_names(role, load_yaml) == {
        "web_port",
        "web_tls",
        "web_user",
        "web_root",
        "web_signal",
    }


def test_a_role_without_files_knows_nothing(tmp_path: Path) -> None:
    role = tmp_path / "roles" / "empty"
    _write(role / "defaults/main.yml", "---\n")
    _write(role / "meta/argument_specs.yml", "argument_specs:\n  main:\n")
    assert role_variable_names(role, load_yaml) == frozenset()


def test_known_variables_of_several_roles(tmp_path: Path) -> None:
    _write(tmp_path / "pki/defaults/main.yml", "pki_dir: /x\n")
    _write(tmp_path / "pki_distribute/defaults/main.yml", "pki_distribute_flanneld: true\n")
    _write(tmp_path / "not-a-role.txt", "")
    known = known_variables(tmp_path, load_yaml, ["pki_extra"])
    assert known.names == {"pki_dir", "pki_distribute_flanneld", "pki_extra"}
    assert known.roles == ("pki", "pki_distribute")


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("pki_distribute_flannel", "pki_distribute"),  # the longer prefix wins
        ("pki_dri", "pki"),
        ("kube_proxy_mod", "kube_proxy"),
        ("kube_mode", None),
        ("kubesmith", None),
        ("verify_build_image", None),
    ],
)
def test_owner_is_the_role_of_the_longest_prefix(name: str, owner: str | None) -> None:
    known = KnownVariables(frozenset(), ("kube_proxy", "kubesmith", "pki", "pki_distribute"))
    assert known.owner(name) == owner


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("kubesmith_cgroup_drivr", "kubesmith_cgroup_driver"),
        ("kubesmith_proxy_mode", "kubesmith_kube_proxy_mode"),
        ("kubesmith_service_cdir", "kubesmith_service_cidr"),
        ("kubelet_cgroup_rot", "kubelet_cgroup_root"),
        ("kubesmith_colour", None),
        ("etcd_quota", None),
    ],
)
def test_nearest_known_name_of_the_repository(name: str, nearest: str | None) -> None:
    assert KNOWN.nearest(name) == nearest


def test_the_repository_knows_every_cluster_default_and_role_option() -> None:
    assert set(DEFAULTS) <= KNOWN.names
    assert {"kubelet_cgroup_root", "etcd_data_dir", "preflight_supported_os"} <= KNOWN.names
    assert set(CLUSTER_SPEC) <= KNOWN.names
    assert "kubesmith" in KNOWN.roles
    assert "preflight" in KNOWN.roles


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sytemd", "is not one of ['cgroupfs', 'systemd'] (did you mean 'systemd'?)"),
        ("SYSTEMD", "is not one of ['cgroupfs', 'systemd'] (did you mean 'systemd'?)"),
        ("cgroupsfs", "is not one of ['cgroupfs', 'systemd'] (did you mean 'cgroupfs'?)"),
        ("docker", "is not one of ['cgroupfs', 'systemd']"),
    ],
)
def test_a_misspelt_choice_names_the_nearest(value: str, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        convert(value, {"type": "str", "choices": ["cgroupfs", "systemd"]})
    assert str(raised.value) == message


def test_numeric_choices_suggest_nothing() -> None:
    with pytest.raises(SpecError, match=r"^is not one of \[2048, 3072, 4096\]$"):
        convert(1024, {"type": "int", "choices": [2048, 3072, 4096]})


def test_list_elements_are_checked_against_the_choices() -> None:
    option = {"type": "list", "elements": "str", "choices": ["coredns", "metrics-server"]}
    assert convert(["coredns"], option) == ["coredns"]
    with pytest.raises(SpecError, match=r"\(did you mean 'metrics-server'\?\)"):
        convert(["coredns", "metrics_server"], option)


def _role_options() -> list[tuple[str, str, dict[str, Any], Any]]:
    """(role, option, spec, the role's default) of every option with choices."""
    found = []
    for spec_file in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        defaults = load_yaml(spec_file.parent.parent / "defaults/main.yml") or {}
        for entry_point in (load_yaml(spec_file).get("argument_specs") or {}).values():
            for name, option in ((entry_point or {}).get("options") or {}).items():
                if option.get("choices"):
                    found.append((role, name, option, defaults.get(name, option.get("default"))))
    return found


ROLE_CHOICES = _role_options()


def test_every_role_with_a_fixed_set_of_values_names_it() -> None:
    with_choices = {name for _role, name, _option, _default in ROLE_CHOICES}
    assert {
        "apiserver_lb_mode",
        "containerd_cgroup_driver",
        "kubelet_cgroup_driver",
        "kube_proxy_mode",
        "addons_image_pull_policy",
        "addons_enabled",
        "prepare_firewall",
        "reset_etcd_data",
    } <= with_choices


@pytest.mark.parametrize(
    ("role", "name", "option", "default"),
    ROLE_CHOICES,
    ids=[f"{role}.{name}" for role, name, _option, _default in ROLE_CHOICES],
)
def test_role_choices_agree_with_defaults_and_cluster_settings(
    role: str, name: str, option: dict[str, Any], default: Any
) -> None:
    """A default is one of its choices; one taken from a cluster setting has the same choices."""
    source = re.fullmatch(r"\{\{\s*(kubesmith_\w+)\s*\}\}", str(default))
    if source is not None:
        assert set(option["choices"]) == set(CLUSTER_SPEC[source.group(1)]["choices"]), role
    elif default is not None:
        convert(default, option)

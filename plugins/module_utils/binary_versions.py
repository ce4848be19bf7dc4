"""Which installed binaries to ask for their version, and how their answers compare with the pins.

One implementation for the `binary_version_checks` and `binary_versions_report` filters
(roles/binaries/tasks/versions.yml, used by playbooks/verify.yml).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

# How each binary is asked; every other binary answers `--version`.
VERSION_ARGS: dict[str, tuple[str, ...]] = {
    "kubectl": ("version", "--client"),
    "etcdctl": ("version",),
    "etcdutl": ("version",),
}


class BinaryVersionError(ValueError):
    """The catalog or the hosts' answers are not what the role produces."""


def _entry(item: Any) -> tuple[str, str, list[str], bool]:
    if not isinstance(item, Mapping):
        raise BinaryVersionError(f"catalog entry {item!r}: expected a mapping")
    missing = [key for key in ("name", "component", "groups") if key not in item]
    if missing:
        raise BinaryVersionError(f"catalog entry {dict(item)!r}: missing {', '.join(missing)}")
    return str(item["name"]), str(item["component"]), list(item["groups"]), bool(item.get("cni"))


def version_checks(
    catalog: Iterable[Any],
    components: Iterable[str],
    group_names: Iterable[str],
    link_dir: str,
    cni_dir: str,
) -> list[dict[str, str]]:
    """The binaries of `components` a host in `group_names` has, each with the command to ask it.

    CNI plugins print their name and version when run without CNI_COMMAND (stdin closed).
    """
    wanted, groups = set(components), set(group_names)
    checks = []
    for item in catalog:
        name, component, needed_by, cni = _entry(item)
        if component not in wanted or not groups.intersection(needed_by):
            continue
        path = f"{cni_dir if cni else link_dir}/{name}"
        args = () if cni else VERSION_ARGS.get(name, ("--version",))
        checks.append({"name": name, "path": path, "command": shlex.join((path, *args))})
    return checks


def _parse_line(line: str) -> tuple[str, str, str]:
    parts = line.split("\t", 2)
    if len(parts) != 3:
        raise BinaryVersionError(f"answer {line!r}: expected NAME<TAB>LINK<TAB>OUTPUT")
    return parts[0], parts[1], parts[2].strip()


def versions_report(
    lines: Iterable[str],
    catalog: Iterable[Any],
    pinned: Mapping[str, str],
    install_dir: str,
    says: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Compare each binary's answer with its component's pinned version.

    A binary passes when its link resolves into <install_dir>/<component>/<pinned>/ and its
    version output contains the pinned version (without a leading v), or the version that
    `says` records for it where a build is known to report another (the lab's flannel CNI plugin).
    """
    components = {name: component for name, component, _, _ in map(_entry, catalog)}
    expected_says = dict(says or {})
    rows = []
    for line in lines:
        if not line.strip():
            continue
        name, link, output = _parse_line(line)
        if name not in components:
            raise BinaryVersionError(f"answer for {name!r}, which is not in the catalog")
        component = components[name]
        if component not in pinned:
            raise BinaryVersionError(f"{name}: no pinned version for component {component!r}")
        version = str(pinned[component])
        want_link = f"{install_dir}/{component}/{version}/{name}"
        want_says = str(expected_says.get(name, version)).removeprefix("v")
        rows.append(
            {
                "name": name,
                "component": component,
                "pinned": version,
                "link": link,
                "says": output,
                "ok": link == want_link and want_says in output,
            }
        )
    return rows

"""Which installed binaries to ask for their version, and how their answers compare with the pins.

One implementation for the `binary_version_checks` and `binary_versions_report` filters
(roles/binaries/tasks/versions.yml, used by playbooks/90-verify.yml).
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


def _host_entries(
    catalog: Iterable[Any], components: Iterable[str], group_names: Iterable[str]
) -> list[tuple[Mapping[str, Any], str, str, bool]]:
    """(entry, name, component, cni) of each binary of `components` a host in these groups needs."""
    wanted, groups = set(components), set(group_names)
    kept = []
    for item in catalog:
        name, component, needed_by, cni = _entry(item)
        if component in wanted and groups.intersection(needed_by):
            kept.append((item, name, component, cni))
    return kept


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
    checks = []
    for _, name, _, cni in _host_entries(catalog, components, group_names):
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


def install_plan(
    catalog: Iterable[Any],
    components: Iterable[str],
    group_names: Iterable[str],
    sources: Mapping[str, Mapping[str, str]],
    dirs: Mapping[str, str],
) -> list[dict[str, str]]:
    """Every binary a host needs: its source on the deploy host, versioned path and link.

    sources: component -> {version, dir}, where dir holds the component's files on the deploy
    host (the Kubernetes release directory, or the unpacked tarball).
    dirs: {install, link, cni}: the versioned root, and where the links and CNI links go.
    """
    missing = {"install", "link", "cni"} - set(dirs)
    if missing:
        raise BinaryVersionError(f"dirs: missing {', '.join(sorted(missing))}")
    install_dir, link_dir, cni_dir = dirs["install"], dirs["link"], dirs["cni"]
    plan = []
    for item, name, component, cni in _host_entries(catalog, components, group_names):
        source = sources.get(component)
        if not isinstance(source, Mapping) or not {"version", "dir"} <= set(source):
            raise BinaryVersionError(f"{name}: sources has no {{version, dir}} for {component!r}")
        directory = f"{install_dir}/{component}/{source['version']}"
        plan.append(
            {
                "name": name,
                "src": f"{source['dir']}/{item.get('file', name)}",
                "dir": directory,
                "dest": f"{directory}/{name}",
                "link": f"{cni_dir if cni else link_dir}/{name}",
            }
        )
    return plan


INSTALLED_MODE = "755:root:root"


def _source_sums(lines: Iterable[str]) -> dict[str, str]:
    sums = {}
    for line in lines:
        if not line.strip():
            continue
        digest, sep, path = line.partition("  ")
        if not sep or len(digest) != 64:
            raise BinaryVersionError(f"sha256sum line {line!r}: expected '<sha256>  <path>'")
        sums[path] = digest
    return sums


def _installed(lines: Iterable[str]) -> dict[str, tuple[str, str, str]]:
    found = {}
    for line in lines:
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 4:
            raise BinaryVersionError(f"answer {line!r}: expected NAME<TAB>SHA256<TAB>MODE<TAB>LINK")
        found[parts[0]] = (parts[1], parts[2], parts[3])
    return found


def install_todo(
    plan: Iterable[Mapping[str, str]], installed: Iterable[str], source_sums: Iterable[str]
) -> dict[str, list[Any]]:
    """What a host lacks: binaries to copy (missing, different, wrong mode) and links to set.

    installed: NAME<TAB>sha256 of dest<TAB>mode:owner:group<TAB>link target, empty where absent.
    source_sums: `sha256sum` lines of the sources on the deploy host.
    """
    sums, have = _source_sums(source_sums), _installed(installed)
    copy, link = [], []
    for item in plan:
        if item["src"] not in sums:
            raise BinaryVersionError(f"{item['name']}: no checksum for source {item['src']}")
        digest, mode, target = have.get(item["name"], ("", "", ""))
        if digest != sums[item["src"]] or mode != INSTALLED_MODE:
            copy.append(dict(item))
        if target != item["dest"]:
            link.append(dict(item))
    return {
        "copy": copy,
        "dirs": sorted({item["dir"] for item in copy}),
        "link": link,
        "link_dirs": sorted({item["link"].rsplit("/", 1)[0] for item in link}),
    }


def sources(
    tarballs: Mapping[str, Any], extract_dir: str, kubernetes_version: str, kubernetes_src: str
) -> dict[str, dict[str, str]]:
    """component -> {version, dir}: where install_plan finds each component's files.

    tarballs: binaries_tarballs (component -> {version, archive}), unpacked under
    <extract_dir>/<component>/<version>; Kubernetes ships per-binary files in kubernetes_src.
    """
    found = {"kubernetes": {"version": str(kubernetes_version), "dir": str(kubernetes_src)}}
    for component, tarball in tarballs.items():
        if not isinstance(tarball, Mapping) or "version" not in tarball:
            raise BinaryVersionError(f"tarballs[{component!r}]: expected {{version, archive}}")
        version = str(tarball["version"])
        found[component] = {"version": version, "dir": f"{extract_dir}/{component}/{version}"}
    return found

"""The variable names kubesmith knows, read from its roles, and the nearest one to a misspelling.

Ansible silently ignores a variable nobody reads, so `kubesmith_cgroup_drivr: cgroupfs` in an
inventory would leave the default in force without a word. The names a role knows are the
keys of its defaults and vars files and the options of its argument specs: read at run time
from the roles on disk, so this list can never drift from them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The role that holds the cluster-wide settings: its prefix is the project's own.
CLUSTER_ROLE = "kubesmith"
# A misspelling this close to a known name (difflib's ratio) is worth suggesting.
NEAREST_CUTOFF = 0.8
_YAML_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class KnownVariables:
    """Every variable name the project knows, and the roles whose prefix claims a name."""

    names: frozenset[str]
    roles: tuple[str, ...]

    def owner(self, name: str) -> str | None:
        """The role whose `<role>_` prefix the name carries (the longest one), or None."""
        matching = [role for role in self.roles if name.startswith(f"{role}_")]
        return max(matching, key=len) if matching else None

    def nearest(self, name: str) -> str | None:
        """The known name most like this one, when one is close enough to be a misspelling."""
        close = difflib.get_close_matches(name, sorted(self.names), n=1, cutoff=NEAREST_CUTOFF)
        return close[0] if close else None

    def including(self, names: Iterable[str]) -> KnownVariables:
        return KnownVariables(self.names | frozenset(names), self.roles)


def known_variables(
    roles_dir: Path, load: Callable[[Path], Any], also: Iterable[str] = ()
) -> KnownVariables:
    """The names every role under roles_dir defines, plus `also` (inventory-only variables)."""
    per_role = {
        role.name: role_variable_names(role, load)
        for role in sorted(roles_dir.iterdir())
        if role.is_dir()
    }
    names = frozenset(also).union(*per_role.values())
    return KnownVariables(names, tuple(per_role))


def role_variable_names(role_dir: Path, load: Callable[[Path], Any]) -> frozenset[str]:
    """Keys of defaults/ and vars/ files and the options of every argument-spec entry point."""
    names: set[str] = set()
    for section in ("defaults", "vars"):
        for path in sorted((role_dir / section).rglob("*")):
            if path.suffix in _YAML_SUFFIXES and path.is_file():
                names.update(_keys(load(path)))
    spec_file = role_dir / "meta" / "argument_specs.yml"
    specs = load(spec_file) if spec_file.is_file() else None
    entry_points = specs.get("argument_specs") if isinstance(specs, Mapping) else None
    for entry_point in (entry_points or {}).values():
        if isinstance(entry_point, Mapping):
            names.update(_keys(entry_point.get("options")))
    return frozenset(names)


def _keys(content: Any) -> list[str]:
    return [str(key) for key in content] if isinstance(content, Mapping) else []

"""Read an upstream go.mod and write the wrapper module that builds its commands.

k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go, ...) with local
paths and requires them at v0.0.0, so `go install k8s.io/kubernetes/cmd/...@vX.Y.Z` is refused.
A wrapper module requires k8s.io/kubernetes and replaces each such staging module with its
published twin v0.Y.Z. The list comes from the downloaded go.mod so a new release that adds or
drops a staging module needs no change here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kubesmith.bundle.errors import BundleError

_DIRECTIVE = re.compile(r"^(require|replace|godebug|go|toolchain|module|exclude|retract|tool)\b")
_SEMVER = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class GoMod:
    """The parts of a go.mod that the wrapper needs."""

    module: str
    go_version: str
    godebug: tuple[str, ...]
    requires: dict[str, str]
    local_replaces: dict[str, str] = field(default_factory=dict)
    module_replaces: dict[str, str] = field(default_factory=dict)


def _strip_comment(line: str) -> str:
    return line.split("//", 1)[0].strip()


def _entries(text: str) -> list[tuple[str, str]]:
    """Flatten go.mod into (directive, rest) pairs, expanding `directive ( ... )` blocks."""
    entries: list[tuple[str, str]] = []
    block: str | None = None
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
            else:
                entries.append((block, line))
            continue
        match = _DIRECTIVE.match(line)
        if match is None:
            continue
        directive = match.group(1)
        rest = line[len(directive) :].strip()
        if rest == "(":
            block = directive
        else:
            entries.append((directive, rest))
    return entries


def parse_gomod(text: str) -> GoMod:
    """Parse go.mod text; raise BundleError naming what is missing."""
    module = ""
    go_version = ""
    godebug: list[str] = []
    requires: dict[str, str] = {}
    local_replaces: dict[str, str] = {}
    module_replaces: dict[str, str] = {}
    for directive, rest in _entries(text):
        if directive == "module":
            module = rest.strip('"')
        elif directive == "go":
            go_version = rest
        elif directive == "godebug":
            godebug.append(rest)
        elif directive == "require":
            parts = rest.split()
            if len(parts) >= 2:
                requires[parts[0]] = parts[1]
        elif directive == "replace":
            old, _, new = rest.partition("=>")
            target = new.split()
            if target and target[0].startswith(("./", "../", "/")):
                local_replaces[old.split()[0]] = target[0]
            elif len(target) == 2 and len(old.split()) == 1:
                module_replaces[old.strip()] = " ".join(target)
    if not module:
        raise BundleError("go.mod has no module directive: is this really a go.mod file?")
    if not go_version:
        raise BundleError(f"go.mod of {module} has no go directive")
    return GoMod(module, go_version, tuple(godebug), requires, local_replaces, module_replaces)


def staging_version(kubernetes_version: str) -> str:
    """v1.37.2 -> v0.37.2: the tag the staging modules are published under."""
    match = _SEMVER.match(kubernetes_version)
    if match is None or match.group(1) != "1":
        raise BundleError(
            f"kubernetes version {kubernetes_version!r} is not a release vMAJOR.MINOR.PATCH "
            "with major 1; set kubesmith_kubernetes_version to e.g. v1.37.2"
        )
    return f"v0.{match.group(2)}.{match.group(3)}"


def staging_replaces(upstream: GoMod, kubernetes_version: str) -> dict[str, str]:
    """Map each staging module that upstream requires at v0.0.0 via a local path to v0.Y.Z."""
    target = staging_version(kubernetes_version)
    replaces = {
        path: target
        for path, version in upstream.requires.items()
        if version == "v0.0.0" and path in upstream.local_replaces
    }
    if not replaces:
        raise BundleError(
            f"go.mod of {upstream.module} {kubernetes_version} requires no module at v0.0.0 "
            "through a local replace; the wrapper would not be needed or the layout changed"
        )
    return dict(sorted(replaces.items()))


def render_wrapper_gomod(
    wrapper_module: str,
    upstream: GoMod,
    requires: dict[str, str],
    replaces: dict[str, str],
) -> str:
    """The wrapper's go.mod: same go/godebug settings as upstream so binaries behave alike.

    replaces maps a module to `vX` (same path, that version) or to `path vX`, as upstream's
    own replace directives (which Go ignores in a dependency) are carried over.
    """
    lines = [f"module {wrapper_module}", "", f"go {upstream.go_version}", ""]
    lines += [f"godebug {setting}" for setting in upstream.godebug]
    if upstream.godebug:
        lines.append("")
    lines += ["require ("]
    lines += [f"\t{path} {version}" for path, version in sorted(requires.items())]
    lines.append(")")
    if replaces:
        lines += ["", "replace ("]
        for path, target in sorted(replaces.items()):
            new = target if " " in target else f"{path} {target}"
            lines.append(f"\t{path} => {new}")
        lines.append(")")
    return "\n".join(lines) + "\n"


def render_imports_go(packages: list[str]) -> str:
    """A build-tagged file importing the commands so `go mod tidy` keeps their dependencies."""
    imports = "\n".join(f'\t_ "{package}"' for package in sorted(packages))
    return (
        "//go:build tools\n\n"
        "// The upstream commands this module builds; the tag keeps the file out of builds.\n"
        f"package main\n\nimport (\n{imports}\n)\n"
    )

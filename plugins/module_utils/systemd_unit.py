"""Render a systemd unit file from structured data.

ExecStart is a program, positional arguments and a mapping of flags rendered one per line;
every word is escaped so that systemd passes it to the program unchanged (no word splitting,
no $VARIABLE or %specifier expansion).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECTIONS = (("unit", "Unit"), ("service", "Service"), ("install", "Install"))
DIRECTIVE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
FLAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Characters that make systemd split, unquote or treat a word specially.
NEEDS_QUOTES = re.compile(r"[\s\"'\\;]")
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop")


class UnitError(ValueError):
    """Bad unit data; the message names the field, its value and what would be valid."""


def escape_word(word: str, field: str) -> str:
    """One argument of a command line, quoted only when it has to be."""
    if any(ord(char) < 32 or ord(char) == 127 for char in word):
        raise UnitError(
            f"{field}: {word!r} contains a control character (newline, tab, ...); "
            "pass such values through a file instead"
        )
    escaped = word.replace("%", "%%").replace("$", "$$")
    if word == "" or NEEDS_QUOTES.search(word):
        escaped = '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def flag_value(value: Any, field: str) -> str | None:
    """Go-style flag value: lists comma-joined, mappings k=v comma-joined, bools lower-case."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list | tuple):
        return ",".join(scalar(item, f"{field}[{i}]") for i, item in enumerate(value))
    if isinstance(value, Mapping):
        return ",".join(
            f"{key}={scalar(item, f'{field}.{key}')}" for key, item in sorted(value.items())
        )
    raise UnitError(f"{field}: {value!r} is not a string, number, bool, list or mapping")


def scalar(value: Any, field: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise UnitError(f"{field}: {value!r} must be a string, number or bool inside a list or map")


def command_line(spec: Any, field: str) -> str:
    """program + args + flags (sorted, None dropped) as continued lines."""
    if isinstance(spec, str):
        spec = {"program": spec}
    if not isinstance(spec, Mapping):
        raise UnitError(f"{field}: expected a mapping with program, args and flags, got {spec!r}")
    unknown = set(spec) - {"program", "args", "flags"}
    if unknown:
        raise UnitError(f"{field}: unknown keys {sorted(unknown)}; use program, args and flags")
    program = spec.get("program")
    if not isinstance(program, str) or not program.startswith("/"):
        raise UnitError(
            f"{field}.program: {program!r} must be an absolute path, e.g. /usr/bin/etcd"
        )
    args = spec.get("args") or []
    if isinstance(args, str) or not isinstance(args, list | tuple):
        raise UnitError(f"{field}.args: expected a list of arguments, got {args!r}")
    flags = spec.get("flags") or {}
    if not isinstance(flags, Mapping):
        raise UnitError(f"{field}.flags: expected a mapping of flag name to value, got {flags!r}")
    words = [
        escape_word(scalar(arg, f"{field}.args[{i}]"), f"{field}.args")
        for i, arg in enumerate(args)
    ]
    bare_names: dict[str, Any] = {}
    for name in flags:
        bare = str(name).removeprefix("--")
        if not FLAG_NAME.match(bare):
            raise UnitError(f"{field}.flags: {name!r} is not a flag name; use e.g. 'bind-address'")
        if bare in bare_names:
            raise UnitError(f"{field}.flags: {name!r} is given twice (with and without '--')")
        bare_names[bare] = flags[name]
    for bare in sorted(bare_names):
        value = flag_value(bare_names[bare], f"{field}.flags.{bare}")
        if value is not None:
            words.append(escape_word(f"--{bare}={value}", f"{field}.flags.{bare}"))
    lines = [escape_word(program, f"{field}.program"), *words]
    return " \\\n  ".join(lines)


def environment_lines(value: Any, field: str) -> list[str]:
    if not isinstance(value, Mapping):
        raise UnitError(f"{field}: expected a mapping of variable name to value, got {value!r}")
    lines = []
    for name in sorted(value):
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise UnitError(f"{field}: {name!r} is not a valid environment variable name")
        if value[name] is None:
            continue
        assignment = f"{name}={scalar(value[name], f'{field}.{name}')}"
        if any(ord(char) < 32 for char in assignment):
            raise UnitError(f"{field}.{name}: contains a control character")
        quoted = assignment.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'Environment="{quoted}"')
    return lines


def directive_lines(key: str, value: Any, field: str) -> list[str]:
    if not DIRECTIVE.match(key) and key != "exec_start":
        raise UnitError(f"{field}: {key!r} is not a systemd directive name (e.g. Restart)")
    if key in ("exec_start", "ExecStart") and not isinstance(value, list | tuple):
        return [f"ExecStart={command_line(value, field + '.' + key)}"]
    if key in EXEC_KEYS:
        items = value if isinstance(value, list | tuple) else [value]
        return [
            f"{key}={command_line(item, f'{field}.{key}[{i}]')}" for i, item in enumerate(items)
        ]
    if key == "Environment":
        return environment_lines(value, f"{field}.Environment")
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [f"{key}={directive_value(item, f'{field}.{key}')}" for item in value]
    return [f"{key}={directive_value(value, f'{field}.{key}')}"]


def directive_value(value: Any, field: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = scalar(value, field)
    if "\n" in text:
        raise UnitError(f"{field}: {text!r} spans several lines; give a single-line value")
    return text


def render_unit(spec: Any) -> str:
    """The unit file text for {unit: {...}, service: {...}, install: {...}}."""
    if not isinstance(spec, Mapping):
        raise UnitError(f"unit: expected a mapping with unit, service and install, got {spec!r}")
    unknown = set(spec) - {key for key, _ in SECTIONS}
    if unknown:
        raise UnitError(f"unit: unknown sections {sorted(unknown)}; use unit, service and install")
    service = spec.get("service") or {}
    if "exec_start" not in service and "ExecStart" not in service:
        raise UnitError("service.exec_start: missing; a service needs the program to run")
    blocks = []
    for key, title in SECTIONS:
        section = spec.get(key) or {}
        if not isinstance(section, Mapping):
            raise UnitError(f"{key}: expected a mapping of directives, got {section!r}")
        if not section:
            continue
        lines = [f"[{title}]"]
        for directive, value in section.items():
            lines += directive_lines(str(directive), value, key)
        blocks.append("\n".join(lines))
    header = "# Managed by kubesmith; local changes are overwritten.\n"
    return header + "\n\n".join(blocks) + "\n"

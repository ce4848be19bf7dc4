"""Type and choice checks in the format of Ansible role argument specs (meta/argument_specs.yml).

Used for kubesmith's cluster-wide variables and for every role's own argument spec, so that a
wrong type is reported by preflight, with all other problems, before any host is changed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.module_utils.common.validation import (
    check_type_bool,
    check_type_dict,
    check_type_float,
    check_type_int,
    check_type_list,
    check_type_path,
    check_type_raw,
    check_type_str,
)

_CHECKERS: dict[str, Callable[[Any], Any]] = {
    "bool": check_type_bool,
    "dict": check_type_dict,
    "float": check_type_float,
    "int": check_type_int,
    "list": check_type_list,
    "path": check_type_path,
    "raw": check_type_raw,
    "str": check_type_str,
}


class SpecError(ValueError):
    """The value does not fit its spec; the message says how, without the variable's name."""


def convert(value: Any, option: Mapping[str, Any]) -> Any:
    """The value converted as Ansible would convert it for this option, or SpecError."""
    kind = str(option.get("type", "str"))
    checker = _CHECKERS.get(kind)
    if checker is None:
        raise SpecError(f"has an argument spec of unknown type {kind!r}")
    # Ansible would quietly turn True into 1 or "True", and a dict into its repr: refuse both.
    if isinstance(value, bool) and kind in ("int", "float", "str"):
        raise SpecError(f"is a bool, not {with_article(kind)}")
    if kind == "str" and not isinstance(value, str | int | float):
        raise SpecError(f"is {with_article(type_name(value))}, not a str")
    try:
        converted = checker(value)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"is {with_article(type_name(value))}, not {with_article(kind)}") from exc
    if kind == "list" and "elements" in option:
        element_spec = {"type": option["elements"], "choices": option.get("choices")}
        return [convert(item, {k: v for k, v in element_spec.items() if v}) for item in converted]
    choices = option.get("choices")
    if choices and converted not in choices:
        raise SpecError(f"is not one of {list(choices)}{_did_you_mean(converted, choices)}")
    return converted


def _did_you_mean(value: Any, choices: Sequence[Any]) -> str:
    """' (did you mean 'systemd'?)' for a misspelt choice; empty when none is close."""
    if not isinstance(value, str):
        return ""
    by_folded = {str(choice).lower(): choice for choice in choices if isinstance(choice, str)}
    close = difflib.get_close_matches(value.lower(), list(by_folded), n=1, cutoff=0.6)
    return f" (did you mean {by_folded[close[0]]!r}?)" if close else ""


def type_name(value: Any) -> str:
    """The YAML-level type of a value (Ansible wraps strings in tagged subclasses)."""
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def with_article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"

"""Findings of kubesmith's preflight checks: one line each, gathered into one report.

Kept free of Ansible imports: the checks are pure functions over plain data so that unit tests
can feed them recorded inventories and recorded host facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$")
_VALUE_LIMIT = 120


class _NoValue:
    """The value of a finding about a name: an unknown variable's value may well be a secret."""

    def __repr__(self) -> str:
        return "<not shown>"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class Finding:
    """One problem: where (host or empty for the whole cluster), which variable, why, the fix."""

    level: str
    subject: str
    variable: str
    value: Any
    why: str
    fix: str

    def line(self) -> str:
        """One line naming the host or variable, its value, why it is wrong and the fix."""
        where = f"{self.subject}: " if self.subject else ""
        value = "" if self.value is NO_VALUE else f"={show(self.value)}"
        return f"{where}{self.variable}{value} {self.why}; fix: {self.fix}"


@dataclass
class Report:
    """Every finding of one run, so that all of them are shown together."""

    findings: list[Finding] = field(default_factory=list)

    def error(self, subject: str, variable: str, value: Any, why: str, fix: str) -> None:
        self.findings.append(Finding(ERROR, subject, variable, value, why, fix))

    def warn(self, subject: str, variable: str, value: Any, why: str, fix: str) -> None:
        self.findings.append(Finding(WARNING, subject, variable, value, why, fix))

    @property
    def errors(self) -> list[str]:
        return self.lines(ERROR)

    @property
    def warnings(self) -> list[str]:
        return self.lines(WARNING)

    def lines(self, level: str) -> list[str]:
        """One line per problem: the same problem on several hosts names them all at once."""
        merged: dict[tuple[str, str, str, str], list[Finding]] = {}
        for finding in self.findings:
            if finding.level == level:
                key = (finding.variable, show(finding.value), finding.why, finding.fix)
                merged.setdefault(key, []).append(finding)
        lines = []
        for same in merged.values():
            subjects = [f.subject for f in same if f.subject]
            subject = ", ".join(dict.fromkeys(subjects)) if len(subjects) == len(same) else ""
            first = same[0]
            lines.append(
                Finding(level, subject, first.variable, first.value, first.why, first.fix).line()
            )
        return lines


def show(value: Any) -> str:
    """The value as the operator wrote it, shortened so that a line stays readable."""
    text = repr(value)
    if len(text) > _VALUE_LIMIT:
        return text[: _VALUE_LIMIT - 3] + "..."
    return text


def parse_version(value: Any) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a release such as v1.37.2 or 3.6.6; None when it is not one."""
    if not isinstance(value, str):
        return None
    match = _VERSION_RE.match(value.strip())
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def format_version(version: tuple[int, int, int]) -> str:
    return "v{}.{}.{}".format(*version)

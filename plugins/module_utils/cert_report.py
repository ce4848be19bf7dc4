"""Certificate expiry report: parse collected PEM text, rank by days left, render a table.

Parsing happens on the controller (cryptography is there); hosts only send PEM text
(kubesmith.cluster.cert_collect needs nothing beyond Python's standard library).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.kubesmith.cluster.plugins.module_utils.pki import cert_sans
from cryptography import x509

PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
COLUMNS = (
    ("days_left", "DAYS"),
    ("host", "HOST"),
    ("path", "PATH"),
    ("subject", "SUBJECT"),
    ("issuer", "ISSUER"),
    ("sans", "SANS"),
)


class ReportError(ValueError):
    """Bad collected data; the message names the entry and field."""


def describe(pem: str, now: datetime.datetime) -> list[dict[str, Any]]:
    """One row per certificate in pem (a file may hold a bundle)."""
    rows = []
    for block in PEM_BLOCK.findall(pem):
        cert = x509.load_pem_x509_certificate(block.encode())
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        not_after = cert.not_valid_after_utc
        rows.append(
            {
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "sans": cert_sans(cert),
                "not_after": not_after.isoformat(),
                "days_left": (not_after - now).days,
                "is_ca": is_ca,
            }
        )
    return rows


def build_report(collected: Any, threshold_days: int, now: datetime.datetime) -> dict[str, Any]:
    """{threshold_days, rows, below_threshold}, soonest expiry first.

    collected maps each host name to the certificates found there ([{path, pem}], as
    kubesmith.cluster.cert_collect returns them).
    """
    if isinstance(threshold_days, bool) or not isinstance(threshold_days, int):
        raise ReportError(f"threshold_days: expected an integer, got {threshold_days!r}")
    if not isinstance(collected, Mapping):
        raise ReportError(
            f"collected: expected a mapping of host to [{{path, pem}}], got {collected!r}"
        )
    rows = []
    for host, entries in collected.items():
        if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
            raise ReportError(
                f"collected[{host}]: expected a list of {{path, pem}}, got {entries!r}"
            )
        for position, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("pem"), str):
                where = f"collected[{host}][{position}]"
                raise ReportError(f"{where}: expected a mapping with pem text, got {entry!r}")
            path = str(entry.get("path", ""))
            try:
                described = describe(entry["pem"], now)
            except ValueError as exc:
                raise ReportError(
                    f"collected[{host}] {path}: unreadable certificate ({exc})"
                ) from exc
            rows += [{"host": str(host), "path": path, **row} for row in described]
    rows.sort(key=lambda row: (row["days_left"], row["host"], row["path"]))
    below = [row for row in rows if row["days_left"] < threshold_days]
    return {"threshold_days": threshold_days, "rows": rows, "below_threshold": below}


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Fixed-width text table of report rows."""
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
        raise ReportError(f"rows: expected the rows of kubesmith.cluster.cert_report, got {rows!r}")
    cells = [[title for _, title in COLUMNS]]
    for position, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ReportError(f"rows[{position}]: expected a mapping, got {row!r}")
        values = {**row, "sans": ",".join(row.get("sans", []))}
        cells.append([str(values.get(key, "")) for key, _ in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    return "\n".join(lines) + "\n"

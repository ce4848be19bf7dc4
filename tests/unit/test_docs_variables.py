"""docs/variables.md documents every cluster-wide variable; doc links point at real files."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(((?!https?://|#)[^)#\s]+)(#[^)]*)?\)")


def test_every_cluster_default_is_documented() -> None:
    defaults = yaml.safe_load((REPO / "roles" / "kubesmith" / "defaults" / "main.yml").read_text())
    documented = (REPO / "docs" / "variables.md").read_text()
    missing = sorted(name for name in defaults if f"`{name}`" not in documented)
    assert missing == [], "add these to docs/variables.md"


def test_markdown_links_point_at_files_that_exist() -> None:
    pages = [
        REPO / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "roles").glob("*/README.md")),
    ]
    broken = [
        f"{page.relative_to(REPO)} -> {target}"
        for page in pages
        for target, _anchor in LINK.findall(page.read_text())
        if not (page.parent / target).exists()
    ]
    assert broken == []

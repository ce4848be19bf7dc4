"""Module documentation parses and lists exactly the options each module accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.kubesmith.cluster.plugins.filter import pki, render
from ansible_collections.kubesmith.cluster.plugins.modules import cert_collect, pki_files, pki_set


@pytest.mark.parametrize("module", [pki_set, pki_files, cert_collect])
def test_documentation_parses(module) -> None:
    documentation = yaml.safe_load(module.DOCUMENTATION)
    assert documentation["module"] == module.__name__.rsplit(".", 1)[1]
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)


@pytest.mark.parametrize(
    ("module", "spec"),
    [(pki_set, pki_set.ARGUMENT_SPEC), (pki_files, pki_files.ARGUMENT_SPEC)],
)
def test_documented_options_match_the_argument_spec(module, spec: dict) -> None:
    options = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert set(options) == set(spec)
    for name, option in spec.items():
        documented_sub = set(options[name].get("suboptions", {}))
        # pki_files' content is added by the action plugin, not written by users.
        assert documented_sub == set(option.get("options", {})) - {"content"}, name


def test_every_filter_has_documentation() -> None:
    filter_dir = Path(pki.__file__).parent
    names = set(pki.FilterModule().filters()) | set(render.FilterModule().filters())
    for name in names:
        document = yaml.safe_load((filter_dir / f"{name}.yml").read_text())
        assert document["DOCUMENTATION"]["name"] == name
        assert "_input" in document["DOCUMENTATION"]["options"]
        assert f"kubesmith.cluster.{name}" in document["EXAMPLES"]
        assert "_value" in document["RETURN"]

"""kubesmith-bundle --version-override: another version of one component (the drill's)."""

from __future__ import annotations

import pytest

from kubesmith.bundle import cli, layout
from kubesmith.bundle.errors import BundleError


def _versions(*overrides: str) -> layout.Versions:
    argv = [f"--version-override={item}" for item in overrides]
    return cli._versions(cli.parser().parse_args([*argv, "verify"]))


def test_override_replaces_only_that_component() -> None:
    pinned = layout.load_versions(layout.DEFAULTS_FILE)
    changed = _versions("kubernetes=v1.36.3")
    assert changed.kubernetes == "v1.36.3"
    assert changed.etcd == pinned.etcd


@pytest.mark.parametrize("item", ["kubernetes", "kube=v1", "kubernetes="])
def test_bad_override_says_how(item: str) -> None:
    with pytest.raises(BundleError, match="write COMPONENT=VERSION"):
        _versions(item)


def test_main_reports_a_bad_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version-override=x", "build", "--components", "kubernetes"]) == 2
    assert "--version-override 'x'" in capsys.readouterr().err

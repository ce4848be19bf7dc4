"""Expiry report: cert_collect on a directory, cert_report / cert_report_table filters."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.testing import patch_module_args
from ansible_collections.kubesmith.cluster.plugins.filter.pki import FilterModule
from ansible_collections.kubesmith.cluster.plugins.filter.render import (
    FilterModule as RenderFilters,
)
from ansible_collections.kubesmith.cluster.plugins.module_utils.pki import (
    CertSpec,
    PkiManager,
    PkiStore,
)
from ansible_collections.kubesmith.cluster.plugins.modules import cert_collect

FILTERS = FilterModule().filters()


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    root = tmp_path / "pki"
    specs = [
        CertSpec(name="ca", path="ca", kind="ca", common_name="kubernetes-ca", valid_days=3650),
        CertSpec(
            name="apiserver",
            path="apiserver",
            common_name="kube-apiserver",
            dns_names=("kubernetes",),
            ip_addresses=("10.96.0.1",),
            usages=("server",),
            ca="ca",
            valid_days=20,
            renew_before_days=10,
        ),
        CertSpec(
            name="admin", path="users/admin", common_name="admin", usages=("client",), ca="ca"
        ),
    ]
    PkiManager(PkiStore(root), check_mode=False).apply(specs)
    kubeconfig = RenderFilters().filters()["kubeconfig"](
        {
            "cluster_name": "lab",
            "server": "https://127.0.0.1:6443",
            "ca_cert_file": str(root / "ca.crt"),
            "user": "admin",
            "client_cert_file": str(root / "users/admin.crt"),
            "client_key_file": str(root / "users/admin.key"),
        }
    )
    (tmp_path / "admin.conf").write_text(kubeconfig)
    return root


def collect(capsys, **args) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        cert_collect.main()
    return json.loads(capsys.readouterr().out)


def test_collect_returns_certificates_never_keys(pki: Path, capsys) -> None:
    result = collect(
        capsys,
        paths=[str(pki), str(pki.parent / "missing")],
        patterns=["*"],
        kubeconfigs=[str(pki.parent / "*.conf")],
    )
    assert not result["changed"]
    paths = [Path(entry["path"]).name for entry in result["certificates"]]
    assert "apiserver.crt" in paths and "ca.crt" in paths
    assert "admin.conf#client-certificate-data" in paths
    assert "admin.conf#certificate-authority-data" in paths
    assert not any(name.endswith(".key") for name in paths)
    assert "PRIVATE KEY" not in json.dumps(result)


def test_report_ranks_by_days_left_and_flags_the_threshold(pki: Path, capsys) -> None:
    collected = collect(capsys, paths=[str(pki)], kubeconfigs=[str(pki.parent / "*.conf")])
    report = FILTERS["cert_report"]({"cp1": collected["certificates"]}, 30)
    rows = report["rows"]
    assert rows[0]["subject"] == "CN=kube-apiserver" and rows[0]["days_left"] == 19
    assert rows[0]["sans"] == ["DNS:kubernetes", "IP:10.96.0.1"]
    assert rows[-1]["is_ca"] and rows[-1]["issuer"] == "CN=kubernetes-ca"
    assert [row["subject"] for row in report["below_threshold"]] == ["CN=kube-apiserver"]
    assert FILTERS["cert_report"]({"cp1": collected["certificates"]}, 10)["below_threshold"] == []
    datetime.datetime.fromisoformat(rows[0]["not_after"])

    table = FILTERS["cert_report_table"](rows).splitlines()
    assert table[0].split() == ["DAYS", "HOST", "PATH", "SUBJECT", "ISSUER", "SANS"]
    assert table[1].split()[:2] == ["19", "cp1"]
    assert len(table) == len(rows) + 1


def test_bundle_gives_one_row_per_certificate(pki: Path) -> None:
    bundle = (pki / "ca.crt").read_text() + (pki / "apiserver.crt").read_text()
    rows = FILTERS["cert_report"]({"h": [{"path": "bundle.pem", "pem": bundle}]})["rows"]
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("collected", "threshold", "message"),
    [
        ([], 30, "collected: expected a mapping of host"),
        ({"h": "x"}, 30, "collected[h]: expected a list"),
        ({"h": [{"path": "p"}]}, 30, "collected[h][0]: expected a mapping with pem text"),
        ({"h": []}, "30", "threshold_days: expected an integer, got '30'"),
        (
            {
                "h": [
                    {
                        "path": "p",
                        "pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                    }
                ]
            },
            30,
            "collected[h] p: unreadable certificate",
        ),
    ],
)
def test_report_errors(collected: object, threshold: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["cert_report"](collected, threshold)
    assert message in str(error.value)


def test_table_errors() -> None:
    with pytest.raises(AnsibleFilterError, match="rows: expected the rows"):
        FILTERS["cert_report_table"]("x")
    with pytest.raises(AnsibleFilterError, match=r"rows\[0\]: expected a mapping"):
        FILTERS["cert_report_table"](["x"])

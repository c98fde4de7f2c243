"""Argument names match the azurerm schema from @cdktf/provider-azurerm, and typos are caught.

Skipped (loudly, by scripts/terraform-check) when the package tarball could not be fetched.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import schema_check  # noqa: E402
from hclmodel import load_tree  # noqa: E402
from test_structure import TF_ROOT, copy_tree, plant  # noqa: E402

TGZ = schema_check.default_tgz()
pytestmark = pytest.mark.skipif(not TGZ.exists(), reason=f"{TGZ} missing (npm pack {schema_check.PACKAGE})")


def test_every_argument_exists_in_the_provider_schema():
    findings = schema_check.check(load_tree(TF_ROOT), TGZ)
    assert findings == [], "\n".join(map(str, findings))


PLANTED = [
    pytest.param(
        "modules/storage/main.tf",
        "  is_hns_enabled                    = true\n",
        "  is_hns_enable                     = true\n",
        "unknown argument is_hns_enable",
        id="top_level_typo",
    ),
    pytest.param(
        "modules/function/main.tf",
        "    http2_enabled                          = true\n",
        "    http2_enable                           = true\n",
        "unknown argument site_config.http2_enable",
        id="nested_block_typo",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        '        path      = "/healthz"\n',
        '        path      = "/healthz"\n        initial_delay_seconds = 5\n',
        "unknown argument template.container.liveness_probe.initial_delay_seconds",
        id="deeply_nested_typo",
    ),
    pytest.param(
        "modules/events/main.tf",
        '  topic_type          = "Microsoft.Storage.StorageAccounts"\n',
        "",
        "required argument topic_type is missing",
        id="missing_required_argument",
    ),
    pytest.param(
        "modules/monitoring/main.tf",
        '  dynamic "enabled_metric" {',
        '  dynamic "enabled_metrics" {',
        "unknown block enabled_metrics (dynamic)",
        id="dynamic_block_typo",
    ),
    pytest.param(
        "modules/function/main.tf",
        'resource "azurerm_function_app_flex_consumption" "this" {',
        'resource "azurerm_function_app_flex" "this" {',
        "does not exist in azurerm",
        id="unknown_resource_type",
    ),
    pytest.param(
        "versions.tf",
        "  storage_use_azuread = true\n",
        "  storage_use_azure_ad = true\n",
        "unknown argument storage_use_azure_ad",
        id="provider_block_typo",
    ),
]


@pytest.mark.parametrize("rel, old, new, expected", PLANTED)
def test_planted_schema_mistake_is_reported(tmp_path, rel, old, new, expected):
    root = copy_tree(tmp_path)
    plant(root, rel, old, new)
    findings = schema_check.check(load_tree(root), TGZ)
    assert any(expected in str(f) for f in findings), "\n".join(map(str, findings)) or "no findings"

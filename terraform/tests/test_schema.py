"""Argument names match the azurerm 5.x schema (PyPI cdktn-provider-azurerm), the azurerm pins
match the schema's version, and typos are caught.

Skipped (loudly, by scripts/terraform-check) when the schema tarball could not be fetched.
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
pytestmark = pytest.mark.skipif(not TGZ.exists(), reason=f"{TGZ} missing (PyPI {schema_check.PACKAGE})")


def test_every_argument_exists_in_the_provider_schema():
    findings = schema_check.check(load_tree(TF_ROOT), TGZ)
    assert findings == [], "\n".join(map(str, findings))


def test_every_referenced_attribute_exists_in_the_provider_schema():
    findings = schema_check.check_attributes(load_tree(TF_ROOT), TGZ)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("rel, old, new, expected", [
    pytest.param(
        "modules/storage/outputs.tf",
        "azurerm_storage_account.runtime.primary_blob_endpoint",
        "azurerm_storage_account.runtime.primary_blob_endpoint_url",
        "azurerm_storage_account.runtime.primary_blob_endpoint_url: azurerm 5.10.0 has no attribute",
        id="computed_attribute_typo",
    ),
    pytest.param(
        "modules/function/main.tf",
        "data.azurerm_function_app_host_keys.this[0].event_grid_extension_key",
        "data.azurerm_function_app_host_keys.this[0].eventgrid_extension_key",
        "data.azurerm_function_app_host_keys.this.eventgrid_extension_key",
        id="data_source_attribute_typo",
    ),
])
def test_planted_attribute_typo_is_reported(tmp_path, rel, old, new, expected):
    root = copy_tree(tmp_path)
    plant(root, rel, old, new)
    findings = schema_check.check_attributes(load_tree(root), TGZ)
    assert any(expected in str(f) for f in findings), "\n".join(map(str, findings)) or "no findings"


def test_the_schema_is_the_pinned_major():
    assert schema_check.provider_version(TGZ) == schema_check.PROVIDER_VERSION
    assert schema_check.PROVIDER_VERSION.startswith("5.")


def test_azurerm_pins_match_the_checked_schema():
    findings = schema_check.check_pins(load_tree(TF_ROOT), TGZ)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("pin", ["~> 5.0", "~> 4.55", "~> 6.0", ">= 5.10"])
def test_a_pin_other_than_the_checked_schema_is_reported(tmp_path, pin):
    root = copy_tree(tmp_path)
    plant(root, "modules/events/versions.tf", 'version = "~> 5.10"', f'version = "{pin}"')
    findings = schema_check.check_pins(load_tree(root), TGZ)
    assert any("modules/events/versions.tf" in str(f) and "azurerm 5.10.0" in str(f) for f in findings), findings


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
        "modules/storage/main.tf",
        "  storage_account_id    = azurerm_storage_account.data.id\n  container_access_type = \"private\"\n}\n\nresource \"azurerm_storage_container\" \"standard\"",
        "  storage_account_name  = azurerm_storage_account.data.name\n  container_access_type = \"private\"\n}\n\nresource \"azurerm_storage_container\" \"standard\"",
        "unknown argument storage_account_name",
        id="argument_removed_in_5x",
    ),
    pytest.param(
        "modules/monitoring/main.tf",
        "  local_authentication_enabled = false\n  retention_in_days",
        "  local_authentication_disabled = true\n  retention_in_days",
        "unknown argument local_authentication_disabled",
        id="4x_negative_flag",
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

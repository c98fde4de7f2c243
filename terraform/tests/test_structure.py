"""The structural rules pass on terraform/ and catch each planted mistake.

Every planted case copies the tree to a temporary directory, makes one edit (the anchor text
must be present, so a refactor that removes it fails here instead of silently testing nothing)
and asserts that the named rule reports it.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import structure  # noqa: E402

TF_ROOT = HERE.parent


def copy_tree(dst: pathlib.Path) -> pathlib.Path:
    """terraform/ and the function app folder it deploys (transformer/function), side by side."""
    target = dst / "terraform"
    shutil.copytree(
        TF_ROOT,
        target,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "__pycache__", ".pytest_cache", "*.tfstate*"),
    )
    shutil.copytree(TF_ROOT.parent / structure.FUNCTION_APP_DIR, dst / structure.FUNCTION_APP_DIR)
    return target


def plant(root: pathlib.Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"anchor not found in {rel}: {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("rule", sorted(structure.RULES))
def test_rule_passes_on_the_real_tree(rule):
    findings = structure.run(TF_ROOT, rules={rule})
    assert findings == [], "\n".join(map(str, findings))


PLANTED = [
    pytest.param(
        "modules/storage/main.tf",
        "  name                  = var.raw_container_name\n",
        "  name                  = var.raw_container_name\n  storage_account_name  = azurerm_storage_account.data.name\n",
        "removed-arguments", "'storage_account_name' was removed",
        id="container_uses_storage_account_name",
    ),
    pytest.param(
        "modules/storage/main.tf",
        "  name               = var.poison_queue_name\n",
        "  name               = var.poison_queue_name\n  storage_account_name = azurerm_storage_account.data.name\n",
        "removed-arguments", "azurerm_storage_queue",
        id="queue_uses_storage_account_name",
    ),
    pytest.param(
        "modules/events/main.tf",
        "  source_resource_id  = var.source_storage_account_id\n",
        "  source_arm_resource_id = var.source_storage_account_id\n",
        "removed-arguments", "'source_arm_resource_id' was removed",
        id="system_topic_uses_4x_argument",
    ),
    pytest.param(
        "main.tf",
        "  runtime_account_name       = module.naming.runtime_storage_account\n",
        "",
        "module-inputs", "required variable 'runtime_account_name'",
        id="root_drops_required_input",
    ),
    pytest.param(
        "examples/storage-and-identity/main.tf",
        "  poison_queue_id           = module.storage.poison_queue_id\n",
        "",
        "module-inputs", "required variable 'poison_queue_id'",
        id="example_drops_required_input",
    ),
    pytest.param(
        "main.tf",
        '  source                     = "./modules/storage"\n',
        '  source                     = "./modules/storage"\n  raw_container_nme          = "raw"\n',
        "module-inputs", "'raw_container_nme' is not a variable",
        id="root_passes_unknown_input",
    ),
    pytest.param(
        "main.tf",
        'source      = "./modules/naming"',
        'source      = "./modules/nameing"',
        "module-inputs", "is not a module directory",
        id="root_calls_missing_module",
    ),
    pytest.param(
        "modules/events/variables.tf",
        '  description = "Name of the Event Grid system topic on the data account."\n',
        "",
        "variable-docs", "variable system_topic_name: has no description",
        id="variable_without_description",
    ),
    pytest.param(
        "modules/identity/variables.tf",
        'variable "worker_identity_name" {\n  type        = string\n',
        'variable "worker_identity_name" {\n',
        "variable-docs", "variable worker_identity_name: has no type",
        id="variable_without_type",
    ),
    pytest.param(
        "outputs.tf",
        "value       = module.storage.data_account_name",
        "value       = module.storage.data_account_nme",
        "module-outputs", "has no output 'data_account_nme'",
        id="root_reads_missing_output",
    ),
    pytest.param(
        "main.tf",
        "function_id                    = module.function.function_id",
        "function_id                    = module.functions.function_id",
        "module-outputs", "no module 'functions'",
        id="root_reads_missing_module",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"AzureWebJobsStorage__accountName" = var.runtime_account_name',
        '"AzureWebJobsStorage__accountName" = var.runtime_account_name\n    "AzureWebJobsStorage" = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc=="',
        "no-account-keys", "AccountKey",
        id="account_key_in_app_settings",
    ),
    pytest.param(
        "modules/function/main.tf",
        "  storage_user_assigned_identity_id = var.identity_id\n",
        "  storage_user_assigned_identity_id = var.identity_id\n  storage_access_key = var.runtime_account_name\n",
        "no-account-keys", "sets 'storage_access_key'",
        id="function_uses_storage_access_key",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"AzureWebJobsStorage__accountName" = var.runtime_account_name',
        '"AzureWebJobsStorage__accountName" = azurerm_storage_account.x.primary_connection_string',
        "no-account-keys", "reads a storage account key",
        id="reference_to_primary_connection_string",
    ),
    pytest.param(
        "modules/function/main.tf",
        'storage_authentication_type       = "UserAssignedIdentity"',
        'storage_authentication_type       = "StorageAccountConnectionString"',
        "no-account-keys", "StorageAccountConnectionString",
        id="deployment_storage_by_connection_string",
    ),
    pytest.param(
        "modules/storage/main.tf",
        "  is_hns_enabled                    = true\n",
        "  is_hns_enabled                    = false\n",
        "hns", "is_hns_enabled must be true",
        id="data_account_without_hns",
    ),
    pytest.param(
        "modules/storage/main.tf",
        "  is_hns_enabled                    = true\n",
        "",
        "hns", "got None",
        id="data_account_hns_unset",
    ),
    pytest.param(
        "modules/storage/main.tf",
        "  shared_access_key_enabled         = false\n",
        "  shared_access_key_enabled         = true\n",
        "shared-key", "shared_access_key_enabled must be false",
        id="shared_key_enabled",
    ),
    pytest.param(
        "modules/events/versions.tf",
        'version = "~> 5.10"',
        'version = "~> 4.0"',
        "provider-pin", "not pinned to '~> 5.x'",
        id="module_pins_azurerm_4",
    ),
    pytest.param(
        "modules/naming/versions.tf",
        'required_version = ">= 1.0"\n',
        'required_version = ">= 1.0"\n  required_providers {\n    azurerm = {\n      source  = "hashicorp/azurerm"\n      version = "~> 5.10"\n    }\n  }\n',
        "provider-pin", "provider-free",
        id="naming_module_gains_a_provider",
    ),
    pytest.param(
        "modules/function/variables.tf",
        'default     = "custom"',
        'default     = "node"',
        "flex-runtime", "runtime_name must default to 'custom'",
        id="flex_runtime_not_custom",
    ),
    pytest.param(
        "examples/minimal/terraform.tfvars",
        'location    = "westeurope"\n',
        'location    = "westeurope"\nlocaton     = "northeurope"\n',
        "tfvars", "'locaton' is not a variable",
        id="tfvars_unknown_key",
    ),
    pytest.param(
        "examples/with-worker/terraform.tfvars",
        'location    = "westeurope"\n',
        'location    = "westeurope"\nkafka_sasl_password = "hunter2"\n',
        "tfvars", "'kafka_sasl_password' is sensitive",
        id="tfvars_holds_a_secret",
    ),
    pytest.param(
        "examples/minimal/terraform.tfvars",
        'location    = "westeurope"\n',
        'location    = "westeurope"\nenable_worker_app = true\n',
        "tfvars", "'enable_worker_app' is not a variable of examples/minimal",
        id="example_tfvars_checked_against_the_example",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"AzureWebJobsStorage__accountName" = var.runtime_account_name',
        '"AzureWebJobsStorage__accountName" = var.runtime_acount_name',
        "references", "var.runtime_acount_name is not a variable of modules/function",
        id="variable_typo",
    ),
    pytest.param(
        "modules/function/main.tf",
        "    properties = local.effective_app_settings\n",
        "    properties = local.effective_settings\n",
        "references", "local.effective_settings is not a local",
        id="local_typo",
    ),
    pytest.param(
        "modules/storage/main.tf",
        "  storage_account_id    = azurerm_storage_account.runtime.id\n",
        "  storage_account_id    = azurerm_storage_account.runtme.id\n",
        "references", "azurerm_storage_account.runtme is not a resource of modules/storage",
        id="resource_typo",
    ),
    pytest.param(
        "main.tf",
        "data.azurerm_client_config.current.subscription_id",
        "data.azurerm_client_config.this.subscription_id",
        "references", "data.azurerm_client_config.this is not a data source",
        id="data_source_typo",
    ),
    # Item 1: the host's storage is identity-only.
    pytest.param(
        "modules/function/main.tf",
        '"AzureWebJobsStorage__accountName" = var.runtime_account_name',
        '"AzureWebJobsStorage"              = ""\n    "AzureWebJobsStorage__accountName" = var.runtime_account_name',
        "host-storage", "plain AzureWebJobsStorage app setting",
        id="empty_azurewebjobsstorage_override",
    ),
    pytest.param(
        "modules/function/main.tf",
        "    replace_triggered_by = [azurerm_function_app_flex_consumption.this]\n",
        "    create_before_destroy = false\n",
        "host-storage", "replace_triggered_by must list azurerm_function_app_flex_consumption.this",
        id="settings_put_not_rerun_after_app_updates",
    ),
    pytest.param(
        "modules/function/main.tf",
        '  method      = "PUT"\n',
        '  method      = "PATCH"\n',
        "host-storage", "method must be PUT",
        id="settings_patched_not_replaced",
    ),
    pytest.param(
        "modules/function/main.tf",
        '/config/appsettings"',
        '/config/web"',
        "host-storage", "no azapi_resource_action PUTting its config/appsettings",
        id="no_settings_put",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"AzureWebJobsStorage__credential"  = "managedidentity"',
        '"AzureWebJobsStorage__credentials" = "managedidentity"',
        "host-storage", "no AzureWebJobsStorage__credential app setting",
        id="identity_setting_misspelt",
    ),
    # Item 3: the host's roles on its storage.
    pytest.param(
        "modules/identity/main.tf",
        '  role_definition_name = "Storage Table Data Contributor"\n',
        '  role_definition_name = "Storage Table Data Reader"\n',
        "host-roles", "not 'Storage Table Data Contributor'",
        id="host_without_table_role",
    ),
    # Issue 20 item 5, then item 4: transforms per instance sized for memory. The function is an
    # Event Grid trigger, so the handler caps itself (WATCH_CONCURRENCY).
    pytest.param(
        "modules/function/main.tf",
        "    \"2048\" = 5\n",
        "    \"2048\" = 6\n",
        "transform-concurrency", "2048 MB instance: 256 MB host + 6 x 300 MB per transform = 2056 MB does not fit",
        id="cap_too_high_for_2048",
    ),
    pytest.param(
        "modules/function/variables.tf",
        "contains([2048, 4096], var.instance_memory_in_mb)",
        "contains([512, 2048, 4096], var.instance_memory_in_mb)",
        "transform-concurrency", "no cap for the allowed instance size 512 MB",
        id="512_allowed_without_a_cap",
    ),
    pytest.param(
        "../transformer/function/host.json",
        '  "extensionBundle": {',
        '  "extensions": { "blobs": { "maxDegreeOfParallelism": 4 } },\n  "extensionBundle": {',
        "transform-concurrency", "extensions.blobs is set, but the function is an Event Grid trigger",
        id="host_json_keeps_a_blob_cap",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"WATCH_CONCURRENCY" = tostring(local.transform_concurrency[var.instance_memory_in_mb])',
        '"WATCH_CONCURENCY" = tostring(local.transform_concurrency[var.instance_memory_in_mb])',
        "transform-concurrency", "is not set as the WATCH_CONCURRENCY app setting",
        id="cap_setting_misspelt",
    ),
    # Issue 20 item 4: the host passes the event, not the blob.
    pytest.param(
        "../transformer/function/transform/function.json",
        '"type": "eventGridTrigger"',
        '"type": "blobTrigger"',
        "event-trigger", "want one eventGridTrigger",
        id="function_is_a_blob_trigger_again",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"RAW_URL"                    = "az://${var.raw_container_name}"',
        '"RAW_URL"                    = "az://raw"',
        "event-trigger", "RAW_URL app setting is 'az://raw'",
        id="raw_url_not_from_variable",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"WATCH_CONCURRENCY" = tostring(',
        '"RAW_CONTAINER" = var.raw_container_name\n    "WATCH_CONCURRENCY" = tostring(',
        "event-trigger", "blob-trigger leftover app setting RAW_CONTAINER",
        id="blob_trigger_setting_left",
    ),
    pytest.param(
        "modules/function/variables.tf",
        "var.maximum_instance_count >= 1 &&",
        "var.maximum_instance_count >= 40 &&",
        "flex-limits", "rejects maximum_instance_count = 1",
        id="instance_count_stricter_than_provider",
    ),
    pytest.param(
        "modules/function/variables.tf",
        "var.maximum_instance_count <= 1000 &&",
        "var.maximum_instance_count <= 5000 &&",
        "flex-limits", "accepts maximum_instance_count = 1001",
        id="instance_count_looser_than_provider",
    ),
    pytest.param(
        "modules/monitoring/main.tf",
        "  local_authentication_enabled = false\n  tags",
        "  local_authentication_enabled = true\n  tags",
        "local-auth", "azurerm_log_analytics_workspace.this: local_authentication_enabled must be false",
        id="log_analytics_local_auth_on",
    ),
    pytest.param(
        "modules/function/versions.tf",
        'version = "~> 2.0"',
        'version = ">= 1.0"',
        "provider-pin", "azapi version '>= 1.0' is not pinned",
        id="azapi_unpinned",
    ),
]


# Issue 18: Delta mode on Functions. `transform` only stages; the timer function `commit` commits
# on a fixed NCRONTAB period that equals DELTA_COMMIT_INTERVAL_MS; STANDARD_FORMAT comes from a
# delta|parquet variable defaulting to delta everywhere it is passed through.
PLANTED += [
    pytest.param(
        "../transformer/function/commit/function.json",
        '"type": "timerTrigger"',
        '"type": "eventGridTrigger"',
        "delta-commit", "bindings are ['eventGridTrigger'], want exactly one timerTrigger",
        id="commit_is_not_a_timer",
    ),
    pytest.param(
        "../transformer/function/commit/function.json",
        '"schedule": "*/5 * * * * *"',
        '"schedule": "*/10 * * * * *"',
        "delta-commit", "DELTA_COMMIT_INTERVAL_MS = 5000 but the commit timer fires every 10 s",
        id="timer_slower_than_the_interval",
    ),
    pytest.param(
        "modules/function/main.tf",
        "  delta_commit_interval_ms = 5000\n",
        "  delta_commit_interval_ms = 2000\n",
        "delta-commit", "DELTA_COMMIT_INTERVAL_MS = 2000 but the commit timer fires every 5 s",
        id="interval_shorter_than_the_timer",
    ),
    pytest.param(
        "modules/function/main.tf",
        "  delta_commit_interval_ms = 5000\n",
        "  delta_commit_interval_ms = 50\n",
        "delta-commit", "DELTA_COMMIT_INTERVAL_MS = 50 is outside 100-3600000 ms",
        id="interval_the_transformer_refuses",
    ),
    pytest.param(
        "../transformer/function/commit/function.json",
        '"schedule": "*/5 * * * * *"',
        '"schedule": "*/5 * * * *"',
        "delta-commit", "is not a fixed-period six-field NCRONTAB expression",
        id="five_field_cron",
    ),
    pytest.param(
        "../transformer/function/commit/function.json",
        '"schedule": "*/5 * * * * *"',
        '"schedule": "00:00:05"',
        "delta-commit", "is a TimeSpan, which only App Service plans accept",
        id="timespan_schedule",
    ),
    pytest.param(
        "../transformer/function/commit/function.json",
        '"schedule": "*/5 * * * * *"',
        '"schedule": "%DELTA_COMMIT_SCHEDULE%"',
        "delta-commit", "is an app setting",
        id="schedule_from_an_app_setting",
    ),
    pytest.param(
        "../transformer/function/commit/function.json",
        '"runOnStartup": false',
        '"runOnStartup": true',
        "delta-commit", "runOnStartup is true",
        id="commit_runs_on_startup",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"STANDARD_FORMAT"          = var.standard_format',
        '"STANDARD_FORMAT"          = "parquet"',
        "delta-commit", "STANDARD_FORMAT app setting is 'parquet', want a variable",
        id="format_hard_coded",
    ),
    pytest.param(
        "modules/function/main.tf",
        '    "DELTA_COMMIT_INTERVAL_MS" = tostring(local.delta_commit_interval_ms)\n',
        "",
        "delta-commit", "DELTA_COMMIT_INTERVAL_MS app setting is None",
        id="interval_setting_missing",
    ),
    pytest.param(
        "modules/function/variables.tf",
        'contains(["delta", "parquet"], var.standard_format)',
        'contains(["delta", "parquet", "iceberg"], var.standard_format)',
        "delta-commit", "validation allows ['delta', 'parquet', 'iceberg']",
        id="module_allows_an_unknown_format",
    ),
    pytest.param(
        "variables.tf",
        'variable "standard_format" {\n  type        = string\n  description = "STANDARD_FORMAT for the transformer: delta (one Delta Lake table per model, committed by the timer function `commit`) or parquet (one Parquet file per model per raw blob)."\n  default     = "delta"\n',
        'variable "standard_format" {\n  type        = string\n  description = "STANDARD_FORMAT for the transformer: delta (one Delta Lake table per model, committed by the timer function `commit`) or parquet (one Parquet file per model per raw blob)."\n  default     = "parquet"\n',
        "delta-commit", "variables.tf: variable standard_format: must default to 'delta'",
        id="root_defaults_to_parquet",
    ),
]


def test_commit_timer_missing_is_reported(tmp_path):
    root = copy_tree(tmp_path)
    (root.parent / structure.FUNCTION_APP_DIR / structure.COMMIT_FUNCTION / "function.json").unlink()
    findings = [str(f) for f in structure.run(root) if f.rule == "delta-commit"]
    assert any("nothing would commit the files `transform` stages" in f for f in findings), findings


def test_tfvars_with_an_unknown_format_is_reported(tmp_path):
    root = copy_tree(tmp_path)
    # The root module's variable, set in a root-level tfvars file.
    (root / "dev.tfvars").write_text('location = "westeurope"\nstandard_format = "csv"\n')
    findings = [str(f) for f in structure.run(root) if f.rule == "delta-commit"]
    assert any("dev.tfvars: standard_format = 'csv' is not one of ['delta', 'parquet']" in f for f in findings), findings


def test_ncrontab_periods():
    period = structure.ncrontab_period
    assert period("*/5 * * * * *") == 5
    assert period("*/10 * * * * *") == 10
    assert period("0 */5 * * * *") == 300
    assert period("0 0 * * * *") == 3600
    # Not a fixed period: 7 does not divide 60 (the last gap would be 4 s); five fields; weekdays.
    assert period("*/7 * * * * *") is None
    assert period("*/5 * * * *") is None
    assert period("0 */5 * * * 1-5") is None


def test_package_zips_every_function_folder(tmp_path):
    """scripts/package-function ships the timers (commit, compact, vacuum) next to transform (with
    a stand-in binary, in a copy of the repository layout so the real transformer/dist is left
    alone)."""
    import zipfile

    repo = TF_ROOT.parent
    (tmp_path / "scripts").mkdir()
    shutil.copy2(repo / "scripts" / "package-function", tmp_path / "scripts" / "package-function")
    shutil.copytree(repo / structure.FUNCTION_APP_DIR, tmp_path / structure.FUNCTION_APP_DIR)
    fake = tmp_path / "transformer-stand-in"
    fake.write_text("#!/bin/sh\necho stand-in\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        [str(tmp_path / "scripts" / "package-function"), "--binary", str(fake)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = zipfile.ZipFile(tmp_path / "transformer" / "dist" / "transformer-function.zip").namelist()
    for want in ("host.json", f"{structure.TRANSFORM_FUNCTION}/function.json", "transformer"):
        assert want in names, names
    for timer in structure.TIMER_FUNCTIONS:
        assert f"{timer}/function.json" in names, names
    assert not any(n.endswith("README.md") or "local.settings" in n for n in names), names


# Delta upkeep on Functions: the timers `compact` (hourly) and `vacuum` (daily) keep to the same
# timer checks as `commit` (one shared helper); COMPACT_TARGET_MB is sized for every instance size
# the module allows and VACUUM_RETENTION_HOURS never drops below the week the transformer requires.
COMPACT_JSON = "../transformer/function/compact/function.json"
VACUUM_JSON = "../transformer/function/vacuum/function.json"
PLANTED += [
    pytest.param(
        COMPACT_JSON,
        '"type": "timerTrigger"',
        '"type": "eventGridTrigger"',
        "delta-maintenance", "compact/function.json: bindings are ['eventGridTrigger'], want exactly one timerTrigger",
        id="compact_is_not_a_timer",
    ),
    pytest.param(
        VACUUM_JSON,
        '    }\n  ]',
        '    },\n    {\n      "type": "timerTrigger",\n      "direction": "in",\n      "name": "again",\n      "schedule": "0 0 4 * * *"\n    }\n  ]',
        "delta-maintenance", "vacuum/function.json: bindings are ['timerTrigger', 'timerTrigger'], want exactly one timerTrigger",
        id="vacuum_has_two_timers",
    ),
    pytest.param(
        VACUUM_JSON,
        '"direction": "in"',
        '"direction": "out"',
        "delta-maintenance", "vacuum/function.json: trigger needs direction \"in\" and a name",
        id="vacuum_trigger_direction_out",
    ),
    pytest.param(
        COMPACT_JSON,
        '"name": "timer",',
        '',
        "delta-maintenance", "compact/function.json: trigger needs direction \"in\" and a name",
        id="compact_trigger_without_a_name",
    ),
    pytest.param(
        COMPACT_JSON,
        '"schedule": "0 15 * * * *"',
        '"schedule": "15 * * * *"',
        "delta-maintenance", "compact/function.json: schedule '15 * * * *' is not a six-field NCRONTAB expression",
        id="compact_five_field_cron",
    ),
    pytest.param(
        VACUUM_JSON,
        '"schedule": "0 45 3 * * *"',
        '"schedule": "0 45 24 * * *"',
        "delta-maintenance", "vacuum/function.json: schedule '0 45 24 * * *' is not a six-field NCRONTAB expression",
        id="vacuum_hour_out_of_range",
    ),
    pytest.param(
        VACUUM_JSON,
        '"schedule": "0 45 3 * * *"',
        '"schedule": "24:00:00"',
        "delta-maintenance", "vacuum/function.json: schedule '24:00:00' is a TimeSpan",
        id="vacuum_timespan_schedule",
    ),
    pytest.param(
        COMPACT_JSON,
        '"schedule": "0 15 * * * *"',
        '"schedule": "%COMPACT_SCHEDULE%"',
        "delta-maintenance", "compact/function.json: schedule '%COMPACT_SCHEDULE%' is an app setting",
        id="compact_schedule_from_an_app_setting",
    ),
    pytest.param(
        VACUUM_JSON,
        '"runOnStartup": false',
        '"runOnStartup": true',
        "delta-maintenance", "vacuum/function.json: runOnStartup is true",
        id="vacuum_runs_on_startup",
    ),
    pytest.param(
        "modules/function/main.tf",
        '    "2048" = 64\n',
        '    "2048" = 8192\n',
        "delta-maintenance", "COMPACT_TARGET_MB for the 2048 MB instance = 8192 is outside 1-4096 MiB",
        id="compact_target_the_transformer_refuses",
    ),
    pytest.param(
        "modules/function/main.tf",
        '    "2048" = 64\n',
        '    "2048" = 256\n',
        "delta-maintenance", "2048 MB instance: 256 MB host + 12 x 256 MiB compaction group = 3328 MB does not fit",
        id="compact_target_too_big_for_2048",
    ),
    pytest.param(
        "modules/function/main.tf",
        '    "2048" = 64\n',
        '    "2048" = 64.5\n',
        "delta-maintenance", "COMPACT_TARGET_MB for the 2048 MB instance is 64.5, want a whole number of MiB",
        id="compact_target_not_whole",
    ),
    pytest.param(
        "modules/function/variables.tf",
        "contains([2048, 4096], var.instance_memory_in_mb)",
        "contains([512, 2048, 4096], var.instance_memory_in_mb)",
        "delta-maintenance", "no COMPACT_TARGET_MB for the allowed instance size 512 MB",
        id="512_allowed_without_a_compact_target",
    ),
    pytest.param(
        "modules/function/main.tf",
        '    "COMPACT_TARGET_MB"      = tostring(local.compact_target_mb[var.instance_memory_in_mb])\n',
        "",
        "delta-maintenance", "COMPACT_TARGET_MB app setting is None",
        id="compact_target_setting_missing",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"COMPACT_TARGET_MB"      = tostring(local.compact_target_mb[var.instance_memory_in_mb])',
        '"COMPACT_TARGET_MB"      = "5000"',
        "delta-maintenance", "COMPACT_TARGET_MB = 5000 is outside 1-4096 MiB",
        id="compact_target_literal_out_of_range",
    ),
    pytest.param(
        "modules/function/variables.tf",
        "  default     = 168\n",
        "  default     = 167\n",
        "delta-maintenance", "variable vacuum_retention_hours: VACUUM_RETENTION_HOURS = 167",
        id="vacuum_retention_default_below_a_week",
    ),
    pytest.param(
        "modules/function/variables.tf",
        "var.vacuum_retention_hours >= 168 &&",
        "var.vacuum_retention_hours >= 24 &&",
        "delta-maintenance", "accepts vacuum_retention_hours = 167",
        id="vacuum_retention_validation_too_loose",
    ),
    pytest.param(
        "modules/function/variables.tf",
        " && floor(var.vacuum_retention_hours) == var.vacuum_retention_hours",
        "",
        "delta-maintenance", "accepts vacuum_retention_hours = 168.5",
        id="vacuum_retention_validation_takes_fractions",
    ),
    pytest.param(
        "modules/function/main.tf",
        '"VACUUM_RETENTION_HOURS" = tostring(var.vacuum_retention_hours)',
        '"VACUUM_RETENTION_HOURS" = "24"',
        "delta-maintenance", "VACUUM_RETENTION_HOURS = '24': the transformer refuses",
        id="vacuum_retention_literal_below_a_week",
    ),
    pytest.param(
        "modules/function/main.tf",
        '    "VACUUM_RETENTION_HOURS" = tostring(var.vacuum_retention_hours)\n',
        "",
        "delta-maintenance", "VACUUM_RETENTION_HOURS app setting is None",
        id="vacuum_retention_setting_missing",
    ),
    pytest.param(
        "main.tf",
        "  vacuum_retention_hours                 = var.vacuum_retention_hours\n",
        "  vacuum_retention_hours                 = 100\n",
        "delta-maintenance", "main.tf: module function: VACUUM_RETENTION_HOURS = 100",
        id="root_passes_a_short_retention",
    ),
    pytest.param(
        "variables.tf",
        "  default     = 168\n",
        "  default     = 100\n",
        "delta-maintenance", "variables.tf (defaults): VACUUM_RETENTION_HOURS = 100",
        id="root_retention_default_too_short",
    ),
    pytest.param(
        "modules/function/main.tf",
        '    "VACUUM_RETENTION_HOURS" = tostring(var.vacuum_retention_hours)\n',
        '    "VACUUM_RETENTION_HOURS" = tostring(var.vacuum_retention_hours)\n    "COMPACT_INTERVAL_MS" = "3600000"\n',
        "delta-maintenance", "sets COMPACT_INTERVAL_MS, which only `transformer watch` reads",
        id="watch_only_interval_in_app_settings",
    ),
]


@pytest.mark.parametrize("timer, expected", [
    (structure.COMPACT_TIMER.name, "closed partitions would keep their small files"),
    (structure.VACUUM_TIMER.name, "would stay in `standard` for ever"),
])
def test_maintenance_timer_missing_is_reported(tmp_path, timer, expected):
    root = copy_tree(tmp_path)
    (root.parent / structure.FUNCTION_APP_DIR / timer / "function.json").unlink()
    findings = [str(f) for f in structure.run(root) if f.rule == "delta-maintenance"]
    assert any(f"{timer}/function.json" in f and expected in f for f in findings), findings


def test_transform_function_missing_is_reported(tmp_path):
    """Only the three timers may be something else: transform itself must be there."""
    root = copy_tree(tmp_path)
    (root.parent / structure.FUNCTION_APP_DIR / structure.TRANSFORM_FUNCTION / "function.json").unlink()
    findings = [str(f) for f in structure.run(root) if f.rule == "event-trigger"]
    assert any("transform/function.json: missing" in f for f in findings), findings


def test_an_unknown_timer_function_is_reported(tmp_path):
    """A fourth timer is not one of commit, compact, vacuum: event-trigger wants an Event Grid trigger."""
    root = copy_tree(tmp_path)
    app = root.parent / structure.FUNCTION_APP_DIR
    (app / "cleanup").mkdir()
    shutil.copy2(app / structure.VACUUM_TIMER.name / "function.json", app / "cleanup" / "function.json")
    findings = [str(f) for f in structure.run(root) if f.rule == "event-trigger"]
    assert any("cleanup/function.json: triggers are ['timerTrigger'], want one eventGridTrigger" in f for f in findings), findings


def test_ncrontab_valid():
    valid = structure.ncrontab_valid
    for schedule in ("0 15 * * * *", "0 45 3 * * *", "*/5 * * * * *", "0 0 9-17 * * MON-FRI",
                     "0 30 9 1,15 JAN *", "0 0 */2 * * 0", "59 59 23 31 12 6"):
        assert valid(schedule), schedule
    for schedule in ("15 * * * *", "0 15 * * * * *", "60 * * * * *", "0 60 * * * *", "0 0 24 * * *",
                     "0 0 0 0 * *", "0 0 0 * 13 *", "0 0 0 * * 7", "0 0 0 * * FOO", "0 0 5-3 * * *",
                     "*/0 * * * * *", "? * * * * *", "", "00:05:00"):
        assert not valid(schedule), schedule


PLANTED += [
    pytest.param(
        "modules/events/variables.tf",
        'variable "tags" {',
        'variable "undocumented_knob" {\n  type        = string\n  description = "Planted."\n  default     = ""\n}\n\nvariable "tags" {',
        "module-readme", "does not document variable `undocumented_knob`",
        id="variable_missing_from_readme",
    ),
]


# Issue 21: the worker's scheduled mode (modules/worker_app).
PLANTED += [
    pytest.param(
        "modules/worker_app/main.tf",
        '  count                        = var.mode == "scheduled" ? 1 : 0\n',
        '  count                        = var.mode == "daemon" ? 1 : 0\n',
        "worker-modes", "mode 'daemon' creates 2 of the daemon app and the scheduled job",
        id="job_created_in_daemon_mode",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        '  count                        = var.mode == "daemon" ? 1 : 0\n',
        "",
        "worker-modes", "mode 'scheduled' creates 2",
        id="app_kept_in_scheduled_mode",
    ),
    pytest.param(
        "modules/worker_app/variables.tf",
        '  default     = "daemon"\n',
        '  default     = "scheduled"\n',
        "worker-modes", "mode must default to 'daemon'",
        id="module_defaults_to_scheduled",
    ),
    pytest.param(
        "variables.tf",
        '  default     = "daemon"\n',
        '  default     = "scheduled"\n',
        "worker-modes", "variable worker_mode: must default to 'daemon'",
        id="root_defaults_to_scheduled",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        "  job_env     = merge(var.env, local.telemetry_env, local.pass_limits, local.pass_env)\n",
        "  job_env     = merge(var.env, local.telemetry_env, local.pass_limits)\n",
        "worker-modes", "must set BATCH_CONTINUOUS = \"false\" (one pass, then exit), got None",
        id="job_runs_a_daemon",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        "  job_env     = merge(var.env, local.telemetry_env, local.pass_limits, local.pass_env)\n",
        "  job_env     = merge(local.pass_env, var.env, local.telemetry_env, local.pass_limits)\n",
        "worker-modes", "must be merged last: var.env",
        id="env_can_override_the_pass",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        "        for_each = local.app_env\n",
        "        for_each = local.job_env\n",
        "worker-modes", "the daemon app sets BATCH_CONTINUOUS",
        id="daemon_gets_the_pass_env",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        "    parallelism              = 1\n",
        "    parallelism              = 2\n",
        "worker-modes", "schedule_trigger_config.parallelism must be 1",
        id="two_passes_per_execution",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        '    replica_completion_count = 1\n  }\n\n  identity {\n    type         = "UserAssigned"\n',
        '    replica_completion_count = 1\n  }\n\n  identity {\n    type         = "SystemAssigned"\n',
        "worker-modes", "identity differs from the daemon app's",
        id="job_runs_as_another_identity",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        '          name        = "REDIS_URL"\n          secret_name = env.value\n        }\n      }\n    }\n  }\n',
        '          name        = "REDIS_URI"\n          secret_name = env.value\n        }\n      }\n    }\n  }\n',
        "worker-modes", "differs from the daemon app's ['APPLICATIONINSIGHTS_CONNECTION_STRING (for_each ${local.telemetry_enabled ? [local.telemetry_secret] : []})', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_USERNAME', 'REDIS_URL",
        id="job_misses_a_secret",
    ),
    pytest.param(
        "modules/worker_app/main.tf",
        "  job_env     = merge(var.env, local.telemetry_env, local.pass_limits, local.pass_env)\n",
        "  job_env     = merge(var.env, local.pass_limits, local.pass_env)\n",
        "worker-modes", "the job's environment does not include local.telemetry_enabled ? {APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        id="job_misses_the_telemetry_env",
    ),
    pytest.param(
        "modules/worker_app/variables.tf",
        "    condition     = coalesce(var.pass_max_seconds, 0) + 60 <= var.job_replica_timeout_seconds\n",
        "    condition     = coalesce(var.pass_max_seconds, 0) <= var.job_replica_timeout_seconds\n",
        "worker-modes", "accepts pass_max_seconds = 1800 with job_replica_timeout_seconds = 1800",
        id="pass_may_run_into_the_timeout",
    ),
    pytest.param(
        "examples/with-worker/terraform.tfvars",
        "worker_pass_max_seconds            = 840\n",
        "worker_pass_max_seconds            = 1800\n",
        "worker-modes", "examples/with-worker/terraform.tfvars: worker_pass_max_seconds = 1800 is not at least 60 s below worker_job_replica_timeout_seconds = 1800",
        id="tfvars_pass_longer_than_the_timeout",
    ),
]


def test_tfvars_only_example_is_reported(tmp_path):
    root = copy_tree(tmp_path)
    (root / "examples" / "values-only").mkdir()
    (root / "examples" / "values-only" / "terraform.tfvars").write_text('location = "westeurope"\n')
    findings = [f for f in structure.run(root) if f.rule == "examples-runnable"]
    assert any("examples/values-only" in str(f) and "not only tfvars" in str(f) for f in findings), findings


def test_512_mb_with_a_cap_of_one_does_not_fit(tmp_path):
    root = copy_tree(tmp_path)
    plant(root, "modules/function/variables.tf", "contains([2048, 4096]", "contains([512, 2048, 4096]")
    plant(root, "modules/function/main.tf", "    \"2048\" = 5\n", "    \"512\"  = 1\n    \"2048\" = 5\n")
    findings = [str(f) for f in structure.run(root) if f.rule == "transform-concurrency"]
    assert any("512 MB instance: 256 MB host + 1 x 300 MB per transform = 556 MB does not fit" in f for f in findings), findings


@pytest.mark.parametrize("rel, old, new, rule, expected", PLANTED)
def test_planted_mistake_is_reported(tmp_path, rel, old, new, rule, expected):
    root = copy_tree(tmp_path)
    plant(root, rel, old, new)
    findings = [f for f in structure.run(root) if f.rule == rule]
    assert any(expected in str(f) for f in findings), (
        f"rule {rule} did not report {expected!r}; it reported:\n" + "\n".join(map(str, findings))
    )


def test_cli_exits_non_zero_on_a_planted_mistake(tmp_path):
    root = copy_tree(tmp_path)
    plant(root, "modules/storage/main.tf", "  is_hns_enabled                    = true\n", "")
    proc = subprocess.run(
        [sys.executable, str(HERE / "structure.py"), str(root)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "hns" in proc.stdout and "1 findings" in proc.stdout


def test_cli_exits_zero_on_the_real_tree():
    proc = subprocess.run(
        [sys.executable, str(HERE / "structure.py"), str(TF_ROOT)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

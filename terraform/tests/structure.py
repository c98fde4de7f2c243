"""Structural rules for terraform/, checked offline with python-hcl2 (no provider download).

    python3 terraform/tests/structure.py [terraform_dir]

prints one line per finding ("RULE  where: message") and exits 1 if there is any.
test_structure.py runs every rule on the real tree and on copies with planted mistakes.

Rules
  module-inputs      every local module call passes every required variable and no unknown one
  variable-docs      every variable has a type and a description; every output a description
  module-outputs     every module.X.Y reference names a module call X whose module has output Y
  references         every var.X, local.X, resource and data source reference in an expression
                     names something declared in that module (part of what `terraform validate`
                     would say, which cannot run offline for modules using azurerm)
  removed-arguments  no argument that azurerm 5.x removed (storage_account_name on containers...)
  no-account-keys    no storage keys or connection strings anywhere, nor in function app settings
  shared-key         every storage account sets shared_access_key_enabled = false
  hns                every storage account sets is_hns_enabled = true (listed exemptions: false)
  provider-pin       modules using azurerm pin "~> 5.x", modules using azapi pin "~> 2.x"; the
                     naming module stays provider-free
  flex-runtime       the Flex Consumption app runs the custom handler runtime "custom" / "1.0"
  host-storage       no plain AzureWebJobsStorage app setting (not even ""), the __accountName /
                     __credential identity settings instead, and an azapi PUT of the app
                     settings re-run after every change of the app (removes the key azurerm
                     injects)
  host-roles         whoever gets data roles on the Functions runtime account gets all three the
                     host needs: Blob Data Owner, Queue Data Contributor, Table Data Contributor
  transform-concurrency
                     the function module caps transforms per instance (WATCH_CONCURRENCY, read
                     by the handler: the Event Grid trigger has no host.json cap) for every
                     instance size it allows, and host reserve + cap x per-transform peak fits;
                     host.json carries no blob-trigger cap that would bound nothing
  event-trigger      transform/function.json exists, and every function.json but the timers'
                     (commit, compact, vacuum) is one eventGridTrigger (the event, never the
                     blob); the function module sets RAW_URL from var.raw_container_name (the
                     container the handler accepts events for) and no blob-trigger leftovers
                     (RAW_CONTAINER, RawStorage__*)
  delta-commit       delta mode on Functions: commit/function.json is one timerTrigger (direction
                     in, named) on a fixed six-field NCRONTAB period written in the package (no
                     %SETTING%, no TimeSpan, no runOnStartup), the function module sets
                     STANDARD_FORMAT from a standard_format variable (delta|parquet, default
                     delta, in every configuration that passes it through) and
                     DELTA_COMMIT_INTERVAL_MS equal to the timer's period
  delta-maintenance  compact/function.json and vacuum/function.json keep to the same timer
                     checks (any valid six-field NCRONTAB schedule); the function module sets
                     COMPACT_TARGET_MB to a whole number in 1-4096 for every instance size it
                     allows, with host reserve + COMPACT_PEAK_FACTOR x target fitting the
                     instance, VACUUM_RETENTION_HOURS to a whole number >= 168 (literal, local,
                     or a variable whose validation, defaults and tfvars keep to it), and
                     neither COMPACT_INTERVAL_MS nor VACUUM_INTERVAL_MS (watch only)
  flex-limits        maximum_instance_count accepts the provider's whole range, 1-1000
  local-auth         Log Analytics workspaces and Application Insights set
                     local_authentication_enabled = false
  examples-runnable  every directory under examples/ is a root configuration (required_providers,
                     at least one module or resource, a README.md)
  tfvars             tfvars set only variables of the configuration in their directory (else the
                     root), and never a sensitive one
  module-readme      the root and every module under modules/ have a README.md naming each of
                     their variables and outputs in backticks
  worker-modes       modules/worker_app: each allowed `mode` creates exactly one of the daemon
                     app and the scheduled job, the default is daemon (here and in its callers);
                     the job runs one pass (BATCH_CONTINUOUS = "false" merged last, parallelism
                     and completions 1), the app never does; the job has the app's identity,
                     registry, Key Vault secrets and env; pass_max_seconds is validated to stay
                     PASS_HEADROOM_SECONDS below the replica timeout, and every configuration's
                     values (defaults, tfvars) keep to it
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from hclmodel import Block, Module, Tree, clean, is_block, load_tree, resolve, unquote  # noqa: E402

MODULE_META_ARGS = {"source", "version", "count", "for_each", "providers", "depends_on"}

# Arguments the pinned major (azurerm 5.x) no longer accepts, with their replacement
# (shared/reference/azure.md section 5; the provider's 5.0 upgrade guide).
REMOVED_IN_5 = {
    "azurerm_storage_container": {"storage_account_name": "storage_account_id", "resource_manager_id": "id"},
    "azurerm_storage_queue": {"storage_account_name": "storage_account_id", "resource_manager_id": "id"},
    "azurerm_storage_share": {"storage_account_name": "storage_account_id", "resource_manager_id": "id"},
    "azurerm_storage_table": {"storage_account_name": "storage_account_id"},
    "azurerm_storage_blob": {"storage_account_name": "storage_account_id"},
    "azurerm_storage_data_lake_gen2_filesystem": {"storage_account_name": "storage_account_id"},
    "azurerm_storage_account": {"queue_properties": "azurerm_storage_account_queue_properties", "static_website": "azurerm_storage_account_static_website"},
    "azurerm_eventgrid_system_topic": {"source_arm_resource_id": "source_resource_id", "metric_arm_resource_id": "metric_resource_id"},
    "azurerm_eventgrid_system_topic_event_subscription": {"source_arm_resource_id": "source_resource_id", "eventhub_endpoint_id": "eventhub_id", "service_bus_queue_endpoint_id": "service_bus_queue_id"},
    "azurerm_eventgrid_event_subscription": {"eventhub_endpoint_id": "eventhub_id", "service_bus_queue_endpoint_id": "service_bus_queue_id"},
    "azurerm_application_insights": {"local_authentication_disabled": "local_authentication_enabled", "disable_ip_masking": "ip_masking_enabled", "daily_data_cap_notifications_disabled": "daily_data_cap_notifications_enabled"},
    "azurerm_log_analytics_workspace": {"local_authentication_disabled": "local_authentication_enabled", "internet_ingestion_enabled": "internet_ingestion_access_type", "internet_query_enabled": "internet_query_access_type"},
    "azurerm_key_vault": {"enable_rbac_authorization": "rbac_authorization_enabled", "contact": "azurerm_key_vault_certificate_contacts"},
    "azurerm_monitor_diagnostic_setting": {"metric": "enabled_metric"},
}

# Storage key material: never referenced, never written into settings.
KEY_PATTERNS = [
    (re.compile(r"\.(primary|secondary)_(access_key|connection_string|blob_connection_string)\b"), "reads a storage account key"),
    (re.compile(r"AccountKey\s*=", re.I), "contains an AccountKey= connection string"),
    (re.compile(r"SharedAccessSignature\s*=", re.I), "contains a SAS connection string"),
]
FUNCTION_KEY_ARGS = {
    "storage_account_access_key",
    "storage_access_key",
    "function_app_storage_account_access_key",
    "function_app_storage_key_vault_secret_id",
}

# Storage accounts allowed (and required) to be flat, with the reason. Keyed by module dir and
# resource name.
HNS_EXEMPT = {
    ("modules/storage", "runtime"): "Functions host storage (deployment package, host state, dead letters); "
    "the Functions blob extension does not support HNS accounts for its bookkeeping",
}

PROVIDER_FREE_MODULES = {"modules/naming"}
AZURERM_PIN = re.compile(r"^~>\s*5\.\d+(\.\d+)?$")
AZAPI_PIN = re.compile(r"^~>\s*2\.\d+(\.\d+)?$")

# The Functions host's own storage (AzureWebJobsStorage) with an identity: blobs (package, locks,
# keys, receipts), queues (the Event Grid blob trigger's internal queue), tables (diagnostic
# events; AZFD0003 without it). Microsoft Learn: functions-reference "Connecting to host storage
# with an identity", errors-diagnostics/diagnostic-events/azfd0003.
HOST_STORAGE_ROLES = {"Storage Blob Data Owner", "Storage Queue Data Contributor", "Storage Table Data Contributor"}
HOST_STORAGE_SCOPE = "${var.runtime_account_id}"

# Memory sum behind the per-instance transform cap (modules/function/README.md, "Concurrency and
# memory"): the Functions host and the handler's idle baseline, and the worst case of one
# transform (streaming, <= 300 MB whatever the blob size; docs/DESIGN.md, "Memory"). The host
# holds only the event, not the blob, since the function is an Event Grid trigger.
HOST_RESERVE_MB = 256
PER_TRANSFORM_MB = 300
# The app setting the handler reads its cap from (transformer serve: ServeOptions::from_env).
TRANSFORM_CAP_SETTING = "WATCH_CONCURRENCY"
FUNCTION_APP_DIR = pathlib.Path("transformer") / "function"  # relative to the repository root

# Delta mode on Functions: each `transform` invocation stages files under _delta_staging/, the
# timer function COMMIT_FUNCTION commits them (transformer serve answers POST /commit). Learn:
# azure-functions/functions-bindings-timer ("NCRONTAB expressions": six fields, seconds first;
# "TimeSpan": App Service plan only; runOnStartup "should rarely if ever be set to true").
COMMIT_FUNCTION = "commit"
STANDARD_FORMATS = ["delta", "parquet"]
STANDARD_FORMAT_DEFAULT = "delta"
# DELTA_COMMIT_INTERVAL_MS bounds accepted by the transformer (config.rs, Settings::validate).
DELTA_COMMIT_INTERVAL_RANGE_MS = (100, 3_600_000)

# The function the Event Grid subscription delivers BlobCreated events to (modules/function,
# var.function_name); every function but the timers below must be such an eventGridTrigger.
TRANSFORM_FUNCTION = "transform"


@dataclasses.dataclass(frozen=True)
class TimerFunction:
    """A timer-triggered function of the package (transformer serve answers POST /<name>)."""

    name: str  # folder <name>/function.json, and the handler's route
    rule: str  # the rule that reports on it
    run: str  # what one invocation does, for messages
    without: str  # what would not happen if the host could not load it
    fixed_period: bool  # the schedule must fire at a fixed period (pinned against an app setting)
    in_package: str  # why the schedule is written in function.json, not read from an app setting


COMMIT_TIMER = TimerFunction(
    COMMIT_FUNCTION, "delta-commit", "one commit round",
    "nothing would commit the files `transform` stages", True,
    "keep the period in the package, pinned against DELTA_COMMIT_INTERVAL_MS",
)
# Delta table upkeep (transformer serve: POST /compact, POST /vacuum; src/maintenance.rs).
COMPACT_TIMER = TimerFunction(
    "compact", "delta-maintenance", "one compaction pass over the closed partitions",
    "closed partitions would keep their small files", False,
    "keep the schedule in the package: a missing setting would leave the host unable to load the function",
)
VACUUM_TIMER = TimerFunction(
    "vacuum", "delta-maintenance", "one vacuum pass",
    "files removed from the Delta log, and orphans, would stay in `standard` for ever", False,
    "keep the schedule in the package: a missing setting would leave the host unable to load the function",
)
TIMER_FUNCTIONS = {t.name: t for t in (COMMIT_TIMER, COMPACT_TIMER, VACUUM_TIMER)}

# COMPACT_TARGET_MB bounds accepted by the transformer (config.rs, validate_maintenance), and the
# memory one compaction holds, in multiples of the target: the group's Parquet bytes (1x), its
# decoded Arrow batches, concatenated and then sorted into a second copy (2 x ~5x for
# zstd-compressed log rows) and the encoded output (1x). An estimate (modules/function/main.tf,
# local.compact_target_mb), checked like the transform cap: host reserve + factor x target fits.
COMPACT_TARGET_RANGE_MB = (1, 4096)
COMPACT_PEAK_FACTOR = 12
# VACUUM_RETENTION_HOURS: the transformer refuses less than a week (delta::vacuum::SAFE_RETENTION).
VACUUM_MIN_RETENTION_HOURS = 168
# Read only by `transformer watch`; on Functions the schedules are the timers' function.json.
WATCH_ONLY_SETTINGS = ("COMPACT_INTERVAL_MS", "VACUUM_INTERVAL_MS")

# The worker's scheduled mode (modules/worker_app): a Container Apps Job running one pass
# (docs/DESIGN.md, "Single pass"). PASS_MAX_SECONDS must leave the pass this long before the
# replica timeout to start (image, group join), land its last batches (SHUTDOWN_GRACE_MS, 10 s)
# and commit, so that it ends itself instead of being stopped.
WORKER_APP_DIR = "modules/worker_app"
WORKER_MODES_DEFAULT = "daemon"
PASS_HEADROOM_SECONDS = 60

MODULE_REF = re.compile(r"\bmodule\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[[^\]]*\])?\.([A-Za-z_][A-Za-z0-9_-]*)")


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule:18} {self.where}: {self.message}"


def _local_target(tree: Tree, mod: Module, call) -> Module | None:
    source = unquote(call.body.get("source", ""))
    if not isinstance(source, str) or not source.startswith("."):
        return None
    return tree.module_at(mod.path / source)


def check_module_inputs(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        for call in mod.module_calls.values():
            where = call.where(tree.root)
            source = unquote(call.body.get("source", ""))
            if isinstance(source, str) and source.startswith("."):
                target = _local_target(tree, mod, call)
                if target is None:
                    out.append(Finding("module-inputs", where, f"source {source!r} is not a module directory"))
                    continue
            else:
                continue  # registry modules are not ours to check
            passed = {k for k in call.body if not k.startswith("__")} - MODULE_META_ARGS
            required = {n for n, v in target.variables.items() if "default" not in v.body}
            for name in sorted(required - passed):
                out.append(Finding("module-inputs", where, f"required variable {name!r} of {target.rel} is not passed"))
            for name in sorted(passed - set(target.variables)):
                out.append(Finding("module-inputs", where, f"{name!r} is not a variable of {target.rel}"))
    return out


def check_variable_docs(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        for var in mod.variables.values():
            where = var.where(tree.root)
            if "type" not in var.body:
                out.append(Finding("variable-docs", where, "has no type"))
            desc = unquote(var.body.get("description", ""))
            if not isinstance(desc, str) or not desc.strip():
                out.append(Finding("variable-docs", where, "has no description"))
        for output in mod.outputs.values():
            desc = unquote(output.body.get("description", ""))
            if not isinstance(desc, str) or not desc.strip():
                out.append(Finding("variable-docs", output.where(tree.root), "output has no description"))
    return out


def check_module_outputs(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        seen = set()
        for where, text in mod.all_strings():
            for m in MODULE_REF.finditer(text):
                name, attr = m.group(1), m.group(2)
                key = (where, name, attr)
                if key in seen:
                    continue
                seen.add(key)
                call = mod.module_calls.get(name)
                loc = f"{mod.rel}/{where}"
                if call is None:
                    out.append(Finding("module-outputs", loc, f"module.{name}.{attr}: no module {name!r} in {mod.rel}"))
                    continue
                target = _local_target(tree, mod, call)
                if target is not None and attr not in target.outputs:
                    out.append(Finding("module-outputs", loc, f"module.{name}.{attr}: {target.rel} has no output {attr!r}"))
    return out


EXPR = re.compile(r"\$\{")
VAR_USE = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
LOCAL_USE = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
RES_USE = re.compile(r"(?<![\w.])((?:azurerm|azapi|terraform)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
DATA_USE = re.compile(r"(?<![\w.])data\.([a-z0-9_]+)\.([A-Za-z_][\w-]*)")


def _expressions(mod: Module):
    """(where, text) of every string that holds an HCL expression (${...})."""
    for where, text in mod.all_strings():
        if EXPR.search(text):
            yield where, text


def check_references(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        local_names = {k for loc in mod.locals for k in loc if not k.startswith("__")}
        resources = {(r.labels[0], r.name) for r in mod.resources}
        data = {(d.labels[0], d.name) for d in mod.data}
        seen = set()
        for where, text in _expressions(mod):
            loc = f"{mod.rel}/{where}"
            for kind, pattern in (("var", VAR_USE), ("local", LOCAL_USE), ("resource", RES_USE), ("data", DATA_USE)):
                for m in pattern.finditer(text):
                    key = (loc, kind, m.groups())
                    if key in seen:
                        continue
                    seen.add(key)
                    if kind == "var" and m.group(1) not in mod.variables:
                        out.append(Finding("references", loc, f"var.{m.group(1)} is not a variable of {mod.rel}"))
                    elif kind == "local" and m.group(1) not in local_names:
                        out.append(Finding("references", loc, f"local.{m.group(1)} is not a local of {mod.rel}"))
                    elif kind == "resource" and m.groups() not in resources:
                        out.append(Finding("references", loc, f"{m.group(1)}.{m.group(2)} is not a resource of {mod.rel}"))
                    elif kind == "data" and m.groups() not in data:
                        out.append(Finding("references", loc, f"data.{m.group(1)}.{m.group(2)} is not a data source of {mod.rel}"))
    return out


def _args_recursive(body: dict, prefix: str = ""):
    """(path, name) of every argument and nested block name in a resource body."""
    for key, value in body.items():
        if key.startswith("__"):
            continue
        if key == "dynamic" and isinstance(value, list):
            for dyn in value:
                for label, dbody in dyn.items():
                    if label.startswith("__"):
                        continue
                    label = unquote(label)
                    yield prefix, label
                    for content in dbody.get("content", []):
                        yield from _args_recursive(content, f"{prefix}{label}.")
            continue
        yield prefix, key
        if is_block(value):
            for sub in value:
                yield from _args_recursive(sub, f"{prefix}{key}.")


def check_removed_arguments(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        for res in mod.resources + mod.data:
            removed = REMOVED_IN_5.get(res.labels[0], {})
            for prefix, arg in _args_recursive(res.body):
                if not prefix and arg in removed:
                    out.append(Finding(
                        "removed-arguments", res.where(tree.root),
                        f"{arg!r} was removed in azurerm 5.x; use {removed[arg]!r}",
                    ))
    return out


def check_no_account_keys(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        for where, text in mod.all_strings():
            for pattern, why in KEY_PATTERNS:
                if pattern.search(text):
                    out.append(Finding("no-account-keys", f"{mod.rel}/{where}", f"{why}: {text[:80]!r}"))
        for res in mod.resources:
            if "function_app" not in res.labels[0]:
                continue
            where = res.where(tree.root)
            for arg in sorted(FUNCTION_KEY_ARGS & set(res.body)):
                out.append(Finding("no-account-keys", where, f"sets {arg!r}; use a managed identity"))
            auth = resolve(mod, res.body.get("storage_authentication_type"))
            if auth == "StorageAccountConnectionString":
                out.append(Finding("no-account-keys", where, "storage_authentication_type is StorageAccountConnectionString"))
            if resolve(mod, res.body.get("storage_uses_managed_identity")) is False:
                out.append(Finding("no-account-keys", where, "storage_uses_managed_identity is false"))
            settings = res.body.get("app_settings")
            if isinstance(settings, dict):
                for key, value in settings.items():
                    for pattern, why in KEY_PATTERNS:
                        if isinstance(value, str) and pattern.search(value):
                            out.append(Finding("no-account-keys", where, f"app setting {unquote(key)!r} {why}"))
    return out


def _storage_accounts(tree: Tree):
    for mod in tree.modules.values():
        for res in mod.resources:
            if res.labels[0] == "azurerm_storage_account":
                yield mod, res


def check_shared_key(tree: Tree) -> list[Finding]:
    out = []
    for mod, res in _storage_accounts(tree):
        if resolve(mod, res.body.get("shared_access_key_enabled")) is not False:
            out.append(Finding("shared-key", res.where(tree.root), "shared_access_key_enabled must be false (Entra ID only)"))
    return out


def check_hns(tree: Tree) -> list[Finding]:
    out = []
    for mod, res in _storage_accounts(tree):
        where = res.where(tree.root)
        value = resolve(mod, res.body.get("is_hns_enabled"))
        exempt = HNS_EXEMPT.get((mod.rel, res.name))
        if exempt:
            if value is not False:
                out.append(Finding("hns", where, f"listed as flat ({exempt}) but is_hns_enabled is {value!r}"))
        elif value is not True:
            out.append(Finding("hns", where, f"is_hns_enabled must be true (ADLS Gen2), got {value!r}"))
    return out


def check_provider_pin(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        uses_azurerm = any(b.labels[0].startswith("azurerm_") for b in mod.resources + mod.data)
        pins = mod.required_providers()
        where = f"{mod.rel}/versions.tf"
        if mod.rel in PROVIDER_FREE_MODULES:
            if pins or mod.resources or mod.data:
                out.append(Finding("provider-pin", where, "must stay provider-free so terraform test runs offline"))
            continue
        if not uses_azurerm:
            continue
        spec = pins.get("azurerm")
        if spec is None:
            out.append(Finding("provider-pin", where, "uses azurerm but declares no required_providers.azurerm"))
            continue
        if spec.get("source") != "hashicorp/azurerm":
            out.append(Finding("provider-pin", where, f"azurerm source is {spec.get('source')!r}"))
        if not AZURERM_PIN.match(str(spec.get("version", ""))):
            out.append(Finding("provider-pin", where, f"azurerm version {spec.get('version')!r} is not pinned to '~> 5.x'"))
    for mod in tree.modules.values():
        if not any(b.labels[0].startswith("azapi_") for b in mod.resources + mod.data):
            continue
        spec = mod.required_providers().get("azapi")
        where = f"{mod.rel}/versions.tf"
        if spec is None or spec.get("source") != "Azure/azapi":
            out.append(Finding("provider-pin", where, "uses azapi but declares no required_providers.azapi with source 'Azure/azapi'"))
        elif not AZAPI_PIN.match(str(spec.get("version", ""))):
            out.append(Finding("provider-pin", where, f"azapi version {spec.get('version')!r} is not pinned to '~> 2.x'"))
    return out


def check_flex_runtime(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        for res in mod.resources:
            if res.labels[0] != "azurerm_function_app_flex_consumption":
                continue
            where = res.where(tree.root)
            name = resolve(mod, res.body.get("runtime_name"))
            version = resolve(mod, res.body.get("runtime_version"))
            if name != "custom":
                out.append(Finding("flex-runtime", where, f"runtime_name must default to 'custom' (Rust custom handler), got {name!r}"))
            if version != "1.0":
                out.append(Finding("flex-runtime", where, f"runtime_version must default to '1.0' (the only catalogued custom version), got {version!r}"))
    return out


def _dict_keys(value):
    """Every (unquoted) key of every dict inside a parsed value."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k.startswith("__"):
                continue
            yield unquote(k)
            yield from _dict_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dict_keys(v)


def _flex_apps(tree: Tree):
    for mod in tree.modules.values():
        for res in mod.resources:
            if res.labels[0] == "azurerm_function_app_flex_consumption":
                yield mod, res


def check_host_storage(tree: Tree) -> list[Finding]:
    out = []
    for mod, app in _flex_apps(tree):
        where = app.where(tree.root)
        settings_keys = set(_dict_keys(mod.locals)) | set(_dict_keys(app.body.get("app_settings")))
        if "AzureWebJobsStorage" in settings_keys:
            out.append(Finding(
                "host-storage", where,
                "sets a plain AzureWebJobsStorage app setting; an empty or key-less value breaks the host "
                "(Azure/azure-functions-host#11796): use only the AzureWebJobsStorage__* identity settings",
            ))
        for needed in ("AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential"):
            if needed not in settings_keys:
                out.append(Finding("host-storage", where, f"no {needed} app setting (identity-based host storage)"))
        app_ref = f"azurerm_function_app_flex_consumption.{app.name}"
        fixes = []
        for res in mod.resources:
            if res.labels[0] != "azapi_resource_action":
                continue
            rid = unquote(res.body.get("resource_id", ""))
            if isinstance(rid, str) and f"{app_ref}.id}}/config/appsettings" in rid:
                fixes.append(res)
        if not fixes:
            out.append(Finding(
                "host-storage", where,
                "no azapi_resource_action PUTting its config/appsettings: azurerm re-injects a key-less "
                "AzureWebJobsStorage on every create and update (hashicorp/terraform-provider-azurerm#29693)",
            ))
        for fix in fixes:
            fwhere = fix.where(tree.root)
            if unquote(fix.body.get("method")) != "PUT":
                out.append(Finding("host-storage", fwhere, "method must be PUT (replaces the whole settings set, dropping the injected key)"))
            triggers = [
                unquote(x)
                for lc in fix.body.get("lifecycle", [])
                for x in (lc.get("replace_triggered_by") or [])
            ]
            if f"${{{app_ref}}}" not in triggers:
                out.append(Finding(
                    "host-storage", fwhere,
                    f"lifecycle.replace_triggered_by must list {app_ref}, so the PUT runs again after every update of the app",
                ))
    return out


def check_host_roles(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        granted: dict[str, set[str]] = {}
        where: dict[str, str] = {}
        for res in mod.resources:
            if res.labels[0] != "azurerm_role_assignment" or res.body.get("scope") != HOST_STORAGE_SCOPE:
                continue
            principal = str(res.body.get("principal_id"))
            granted.setdefault(principal, set()).add(str(resolve(mod, res.body.get("role_definition_name"))))
            where.setdefault(principal, res.where(tree.root))
        for principal, roles in granted.items():
            for role in sorted(HOST_STORAGE_ROLES - roles):
                out.append(Finding(
                    "host-roles", where[principal],
                    f"{principal} has data roles on the Functions runtime account but not {role!r}",
                ))
    return out


def _repo_root(tree: Tree) -> pathlib.Path:
    return tree.root.parent


def _load_json(path: pathlib.Path):
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, ValueError) as e:
        return None, str(e)


def _memory_sizes(mod: Module) -> list[int]:
    var = mod.variables.get("instance_memory_in_mb")
    if var is None:
        return []
    for val in var.body.get("validation", []):
        m = re.search(r"contains\(\[([\d,\s]+)\],\s*var\.instance_memory_in_mb\)", str(val.get("condition", "")))
        if m:
            return [int(x) for x in m.group(1).split(",") if x.strip()]
    return []


def check_transform_concurrency(tree: Tree) -> list[Finding]:
    out = []
    host_path = _repo_root(tree) / FUNCTION_APP_DIR / "host.json"
    host, err = _load_json(host_path)
    if host is None:
        return [Finding("transform-concurrency", str(host_path), f"cannot read host.json: {err}")]
    if "blobs" in (host.get("extensions") or {}):
        out.append(Finding(
            "transform-concurrency", "transformer/function/host.json",
            "extensions.blobs is set, but the function is an Event Grid trigger: the blob trigger's "
            "cap bounds nothing (the handler caps transforms with WATCH_CONCURRENCY)",
        ))
    for mod, app in _flex_apps(tree):
        where = f"{mod.rel}/main.tf"
        caps = {}
        for loc in mod.locals:
            if "transform_concurrency" in loc:
                caps = {int(unquote(k)): v for k, v in clean(loc["transform_concurrency"]).items()}
        if not caps:
            out.append(Finding("transform-concurrency", where, "no local.transform_concurrency (cap per instance_memory_in_mb)"))
            continue
        setting = None
        for loc in mod.locals:
            for value in loc.values():
                if isinstance(value, dict):
                    setting = value.get(f'"{TRANSFORM_CAP_SETTING}"', value.get(TRANSFORM_CAP_SETTING, setting))
        if not (isinstance(setting, str) and "local.transform_concurrency[var.instance_memory_in_mb]" in setting):
            out.append(Finding(
                "transform-concurrency", where,
                f"the cap is not set as the {TRANSFORM_CAP_SETTING} app setting from "
                "local.transform_concurrency[var.instance_memory_in_mb] (the handler reads it)",
            ))
        sizes = _memory_sizes(mod)
        if not sizes:
            out.append(Finding("transform-concurrency", where, "instance_memory_in_mb has no contains([...]) validation listing the allowed sizes"))
        for size in sizes:
            n = caps.get(size)
            if not isinstance(n, int) or n < 1:
                out.append(Finding("transform-concurrency", where, f"no cap for the allowed instance size {size} MB"))
                continue
            need = HOST_RESERVE_MB + n * PER_TRANSFORM_MB
            if need > size:
                out.append(Finding(
                    "transform-concurrency", where,
                    f"{size} MB instance: {HOST_RESERVE_MB} MB host + {n} x {PER_TRANSFORM_MB} MB per transform = {need} MB does not fit",
                ))
    return out


def check_event_trigger(tree: Tree) -> list[Finding]:
    out = []
    app_dir = _repo_root(tree) / FUNCTION_APP_DIR
    # The timers (commit, compact, vacuum) are the only functions that are not Event Grid triggers
    # (rules delta-commit and delta-maintenance); transform must be there and be one.
    functions = sorted(fn for fn in app_dir.glob("*/function.json") if fn.parent.name not in TIMER_FUNCTIONS)
    if not (app_dir / TRANSFORM_FUNCTION / "function.json").is_file():
        out.append(Finding(
            "event-trigger", str(FUNCTION_APP_DIR / TRANSFORM_FUNCTION / "function.json"),
            "missing: the Event Grid subscription delivers the BlobCreated events to this function",
        ))
    for fn in functions:
        doc, err = _load_json(fn)
        where = str(fn.relative_to(_repo_root(tree)))
        if doc is None:
            out.append(Finding("event-trigger", where, f"cannot read: {err}"))
            continue
        triggers = [b for b in doc.get("bindings", []) if str(b.get("type", "")).endswith("Trigger")]
        kinds = [b.get("type") for b in triggers]
        if kinds != ["eventGridTrigger"]:
            out.append(Finding(
                "event-trigger", where,
                f"triggers are {kinds}, want one eventGridTrigger (the host passes the event; a "
                "blobTrigger makes it read the blob and post it base64 to the handler, which reads it again)",
            ))
        for b in triggers:
            if b.get("direction") != "in" or not b.get("name"):
                out.append(Finding("event-trigger", where, f"trigger needs direction \"in\" and a name: {b}"))
    example, err = _load_json(app_dir / "local.settings.json.example")
    values = (example or {}).get("Values") or {}
    if example is not None and "RAW_URL" not in values:
        out.append(Finding("event-trigger", str(FUNCTION_APP_DIR / "local.settings.json.example"), "Values has no RAW_URL (the container events must name)"))
    for mod, app in _flex_apps(tree):
        keys = set(_dict_keys(mod.locals))
        raw_url = None
        for loc in mod.locals:
            for value in loc.values():
                if isinstance(value, dict):
                    raw_url = value.get('"RAW_URL"', value.get("RAW_URL", raw_url))
        raw_url = unquote(raw_url) if isinstance(raw_url, str) else raw_url
        if raw_url != "az://${var.raw_container_name}":
            out.append(Finding(
                "event-trigger", app.where(tree.root),
                f"RAW_URL app setting is {raw_url!r}, want \"az://${{var.raw_container_name}}\" "
                "(the handler ignores events for any other container)",
            ))
        for left in sorted(k for k in keys if k == "RAW_CONTAINER" or k.startswith("RawStorage__")):
            out.append(Finding("event-trigger", app.where(tree.root), f"blob-trigger leftover app setting {left}"))
    return out


def ncrontab_period(schedule: str) -> int | None:
    """Seconds between the occurrences of a six-field NCRONTAB schedule that fires at a fixed
    period (every S seconds, every M minutes with S and M dividing 60, or hourly); None for
    anything else."""
    fields = schedule.split()
    if len(fields) != 6 or fields[3:] != ["*"] * 3:
        return None
    sec, minute, hour = fields[0], fields[1], fields[2]
    if hour != "*":
        return None
    if sec.isdigit() and minute.isdigit() and int(sec) < 60 and int(minute) < 60:
        return 3600
    m = re.fullmatch(r"\*/(\d+)", sec)
    if minute == "*" and (sec == "*" or m):
        step = int(m.group(1)) if m else 1
        return step if 0 < step < 60 and 60 % step == 0 else None
    m = re.fullmatch(r"\*/(\d+)", minute)
    if sec.isdigit() and int(sec) < 60 and (minute == "*" or m):
        step = int(m.group(1)) if m else 1
        return step * 60 if 0 < step < 60 and 60 % step == 0 else None
    return None


def _setting(mod: Module, name: str):
    """The value a local map in the module gives the app setting `name` (None if unset)."""
    found = None
    for loc in mod.locals:
        for value in loc.values():
            if isinstance(value, dict):
                found = value.get(f'"{name}"', value.get(name, found))
    return found


def _local_value(mod: Module, name: str):
    for loc in mod.locals:
        if name in loc:
            return unquote(loc[name])
    return None


MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (lowest, highest) of {second} {minute} {hour} {day} {month} {day-of-week}.
NCRONTAB_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def ncrontab_valid(schedule: str) -> bool:
    """Whether `schedule` is a six-field NCRONTAB expression: each field `*`, a value, a range
    `a-b` or a comma-separated list of them, each optionally `/step`; values within the field's
    bounds (months and weekdays also by three-letter name)."""
    fields = schedule.split()
    if len(fields) != 6:
        return False
    for i, (field, (lo, hi)) in enumerate(zip(fields, NCRONTAB_BOUNDS)):
        names = MONTH_NAMES if i == 4 else DAY_NAMES if i == 5 else []
        first = 1 if i == 4 else 0
        for item in field.split(","):
            m = re.fullmatch(r"(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(\d+))?", item)
            if not m or (m.group(2) is not None and int(m.group(2)) < 1):
                return False
            if m.group(1) == "*":
                continue
            values = []
            for part in m.group(1).split("-"):
                if part.isdigit():
                    values.append(int(part))
                elif part.upper() in names:
                    values.append(names.index(part.upper()) + first)
                else:
                    return False
            if any(not lo <= v <= hi for v in values) or values != sorted(values):
                return False
    return True


def _check_timer(tree: Tree, timer: TimerFunction) -> tuple[list[Finding], str | None]:
    """What every timer function of the package keeps to: <name>/function.json is exactly one
    timerTrigger, direction "in" with a name, runOnStartup not true, and a six-field NCRONTAB
    schedule written in the package (no %SETTING%, no TimeSpan), of a fixed period if the timer
    says so. Returns the findings (under timer.rule) and the schedule when it is usable."""
    out = []
    where = str(FUNCTION_APP_DIR / timer.name / "function.json")
    doc, err = _load_json(_repo_root(tree) / where)
    if doc is None:
        return [Finding(
            timer.rule, where,
            f"cannot read ({err}): in delta mode {timer.without} "
            f"(the handler answers POST /{timer.name} with {timer.run})",
        )], None
    usable = None
    bindings = doc.get("bindings") or []
    kinds = [b.get("type") for b in bindings]
    if kinds != ["timerTrigger"]:
        out.append(Finding(timer.rule, where, f"bindings are {kinds}, want exactly one timerTrigger"))
    for b in bindings:
        if b.get("type") != "timerTrigger":
            continue
        if b.get("direction") != "in" or not b.get("name"):
            out.append(Finding(timer.rule, where, f"trigger needs direction \"in\" and a name: {b}"))
        if b.get("runOnStartup") is True:
            out.append(Finding(
                timer.rule, where,
                f"runOnStartup is true: every scale-out and restart would add {timer.run} at an "
                "unpredictable time (learn: functions-bindings-timer)",
            ))
        schedule = str(b.get("schedule", ""))
        if schedule.startswith("%"):
            out.append(Finding(timer.rule, where, f"schedule {schedule!r} is an app setting; {timer.in_package}"))
        elif re.fullmatch(r"\d+:\d+:\d+", schedule):
            out.append(Finding(timer.rule, where, f"schedule {schedule!r} is a TimeSpan, which only App Service plans accept; Flex Consumption needs NCRONTAB"))
        elif timer.fixed_period and ncrontab_period(schedule) is None:
            out.append(Finding(
                timer.rule, where,
                f"schedule {schedule!r} is not a fixed-period six-field NCRONTAB expression "
                "({second} {minute} {hour} {day} {month} {day-of-week}, e.g. \"*/5 * * * * *\")",
            ))
        elif not ncrontab_valid(schedule):
            out.append(Finding(
                timer.rule, where,
                f"schedule {schedule!r} is not a six-field NCRONTAB expression "
                "({second} {minute} {hour} {day} {month} {day-of-week}, e.g. \"0 15 * * * *\")",
            ))
        else:
            usable = schedule
    return out, usable


def check_delta_commit(tree: Tree) -> list[Finding]:
    out, schedule = _check_timer(tree, COMMIT_TIMER)
    period = ncrontab_period(schedule) if schedule else None
    for mod, app in _flex_apps(tree):
        awhere = app.where(tree.root)
        fmt = unquote(_setting(mod, "STANDARD_FORMAT"))
        m = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(fmt))
        if not m or m.group(1) not in mod.variables:
            out.append(Finding("delta-commit", awhere, f"STANDARD_FORMAT app setting is {fmt!r}, want a variable (var.standard_format)"))
        else:
            out += _check_format_variable(tree, mod, m.group(1))
        interval = unquote(_setting(mod, "DELTA_COMMIT_INTERVAL_MS"))
        lm = re.fullmatch(r"\$\{tostring\(local\.([\w-]+)\)\}", str(interval))
        value = _local_value(mod, lm.group(1)) if lm else interval
        try:
            ms = int(str(value))
        except ValueError:
            out.append(Finding("delta-commit", awhere, f"DELTA_COMMIT_INTERVAL_MS app setting is {interval!r}, want a whole number of ms (a literal or tostring(local.X))"))
            continue
        lo, hi = DELTA_COMMIT_INTERVAL_RANGE_MS
        if not lo <= ms <= hi:
            out.append(Finding("delta-commit", awhere, f"DELTA_COMMIT_INTERVAL_MS = {ms} is outside {lo}-{hi} ms: the transformer refuses to start"))
        if period is not None and ms != period * 1000:
            out.append(Finding(
                "delta-commit", awhere,
                f"DELTA_COMMIT_INTERVAL_MS = {ms} but the {COMMIT_FUNCTION} timer fires every {period} s: "
                "rows would wait for a commit longer (or shorter) than the interval says",
            ))
    return out


def _check_format_variable(tree: Tree, mod: Module, name: str) -> list[Finding]:
    """standard_format is delta|parquet, default delta, here and in every caller passing a variable."""
    out = []
    pairs = [(mod, name)]
    for caller in tree.modules.values():
        for call in caller.module_calls.values():
            target = _local_target(tree, caller, call)
            if target is None:
                continue
            if target is mod:
                m = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(call.body.get(name, "")))
                if m and m.group(1) in caller.variables:
                    pairs.append((caller, m.group(1)))
    # Configurations calling those callers in turn (the examples call the root module).
    for caller in tree.modules.values():
        for call in caller.module_calls.values():
            target = _local_target(tree, caller, call)
            for tmod, tname in list(pairs):
                if target is tmod and tmod is not mod:
                    m = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(call.body.get(tname, "")))
                    if m and m.group(1) in caller.variables and (caller, m.group(1)) not in pairs:
                        pairs.append((caller, m.group(1)))
    for vmod, vname in pairs:
        var = vmod.variables[vname]
        allowed = _allowed_values(var)
        if sorted(allowed) != sorted(STANDARD_FORMATS):
            out.append(Finding("delta-commit", var.where(tree.root), f"validation allows {allowed}, want contains({STANDARD_FORMATS}, var.{vname})"))
        if vmod.variable_default(vname) != STANDARD_FORMAT_DEFAULT:
            out.append(Finding("delta-commit", var.where(tree.root), f"must default to {STANDARD_FORMAT_DEFAULT!r} (the transformer's own default), got {vmod.variable_default(vname)!r}"))
    for path, doc in tree.tfvars.items():
        rel_dir = str(path.parent.relative_to(tree.root)) if path.parent != tree.root else "."
        target = tree.modules.get(rel_dir, tree.modules.get("."))
        for vmod, vname in pairs:
            if target is vmod and vname in doc and unquote(doc[vname]) not in STANDARD_FORMATS:
                out.append(Finding("delta-commit", str(path.relative_to(tree.root)), f"{vname} = {unquote(doc[vname])!r} is not one of {STANDARD_FORMATS}"))
    return out


def _whole(value) -> int | None:
    """A whole number from an HCL literal (64, "64"); None for anything else (64.5, "x", true)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


def _compact_targets(mod: Module, raw) -> dict[int | None, object] | None:
    """COMPACT_TARGET_MB per allowed instance size (None: every size) from its app setting: a
    literal, tostring(local.X) or tostring(local.X[var.instance_memory_in_mb]); None if unreadable."""
    text = str(raw)
    m = re.fullmatch(r"\$\{tostring\(local\.([\w-]+)\[var\.instance_memory_in_mb\]\)\}", text)
    if m:
        table = _local_value(mod, m.group(1))
        if not isinstance(table, dict):
            return None
        by_size = {int(unquote(k)): v for k, v in clean(table).items() if str(unquote(k)).isdigit()}
        return {size: by_size.get(size) for size in _memory_sizes(mod) or sorted(by_size)}
    m = re.fullmatch(r"\$\{tostring\(local\.([\w-]+)\)\}", text)
    if m:
        return {None: _local_value(mod, m.group(1))}
    if text.startswith("${"):
        return None
    return {None: raw}


def _retention_values(tree: Tree, mod: Module, name: str) -> list[tuple[str, object]]:
    """(where, value) of the variable `name` of `mod` feeding VACUUM_RETENTION_HOURS: its default,
    and in every configuration passing one of its own variables to it, that variable's default
    and tfvars values."""
    names = [name]
    out = [(mod.variables[name].where(tree.root), mod.variable_default(name))]
    for caller in tree.modules.values():
        for call in caller.module_calls.values():
            if _local_target(tree, caller, call) is not mod or name not in call.body:
                continue
            passed = unquote(call.body[name])
            m = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(passed))
            if m and m.group(1) in caller.variables:
                names.append(m.group(1))
            elif not str(passed).startswith("${"):
                out.append((call.where(tree.root), passed))
    for cname in names[1:]:
        out += [(where, values[cname]) for where, values in _config_values(tree, (cname,))]
    return out


def check_delta_maintenance(tree: Tree) -> list[Finding]:
    out = []
    for timer in (COMPACT_TIMER, VACUUM_TIMER):
        out += _check_timer(tree, timer)[0]
    lo, hi = COMPACT_TARGET_RANGE_MB
    for mod, app in _flex_apps(tree):
        awhere = app.where(tree.root)
        where = f"{mod.rel}/main.tf"
        for key in WATCH_ONLY_SETTINGS:
            if _setting(mod, key) is not None:
                out.append(Finding(
                    "delta-maintenance", where,
                    f"sets {key}, which only `transformer watch` reads: on Functions the "
                    f"{COMPACT_TIMER.name}/{VACUUM_TIMER.name} function.json schedules decide when upkeep runs",
                ))

        # COMPACT_TARGET_MB: a whole number the transformer accepts, and one compaction fits.
        raw = unquote(_setting(mod, "COMPACT_TARGET_MB"))
        targets = None if raw is None else _compact_targets(mod, raw)
        if targets is None:
            out.append(Finding(
                "delta-maintenance", awhere,
                f"COMPACT_TARGET_MB app setting is {raw!r}, want a whole number of MiB sized for the instance "
                "(a literal, tostring(local.X) or tostring(local.X[var.instance_memory_in_mb]))",
            ))
        else:
            for size, value in targets.items():
                at = f" for the {size} MB instance" if size is not None else ""
                n = _whole(unquote(value)) if value is not None else None
                if value is None and size is not None:
                    out.append(Finding("delta-maintenance", where, f"no COMPACT_TARGET_MB for the allowed instance size {size} MB"))
                    continue
                if n is None:
                    out.append(Finding("delta-maintenance", where, f"COMPACT_TARGET_MB{at} is {value!r}, want a whole number of MiB"))
                    continue
                if not lo <= n <= hi:
                    out.append(Finding("delta-maintenance", where, f"COMPACT_TARGET_MB{at} = {n} is outside {lo}-{hi} MiB: the transformer refuses to start"))
                for mem in ([size] if size is not None else _memory_sizes(mod)):
                    need = HOST_RESERVE_MB + COMPACT_PEAK_FACTOR * n
                    if need > mem:
                        out.append(Finding(
                            "delta-maintenance", where,
                            f"{mem} MB instance: {HOST_RESERVE_MB} MB host + {COMPACT_PEAK_FACTOR} x {n} MiB "
                            f"compaction group = {need} MB does not fit",
                        ))

        # VACUUM_RETENTION_HOURS: a whole number of at least a week, wherever it is set.
        raw = unquote(_setting(mod, "VACUUM_RETENTION_HOURS"))
        m = re.fullmatch(r"\$\{tostring\(var\.([\w-]+)\)\}", str(raw))
        if raw is None:
            values = None
        elif m and m.group(1) in mod.variables:
            name = m.group(1)
            var = mod.variables[name]
            values = _retention_values(tree, mod, name)
            conditions = [str(v.get("condition", "")) for v in var.body.get("validation", [])]
            if not conditions:
                out.append(Finding("delta-maintenance", var.where(tree.root), f"no validation: {name} must be a whole number >= {VACUUM_MIN_RETENTION_HOURS}"))
            for value, ok in ((VACUUM_MIN_RETENTION_HOURS, True), (720, True), (VACUUM_MIN_RETENTION_HOURS - 1, False), (0, False), (VACUUM_MIN_RETENTION_HOURS + 0.5, False)):
                if not conditions:
                    break
                try:
                    got = all(_eval_condition(c, name, value) for c in conditions)
                except Exception as e:  # noqa: BLE001 - report any expression we cannot read
                    out.append(Finding("delta-maintenance", var.where(tree.root), f"cannot evaluate the validation: {e}"))
                    break
                if got != ok:
                    out.append(Finding(
                        "delta-maintenance", var.where(tree.root),
                        f"{'rejects' if ok else 'accepts'} {name} = {value}; the transformer takes whole hours >= {VACUUM_MIN_RETENTION_HOURS}",
                    ))
        else:
            lm = re.fullmatch(r"\$\{tostring\(local\.([\w-]+)\)\}", str(raw))
            values = [(awhere, _local_value(mod, lm.group(1)) if lm else raw)]
        if values is None or any(isinstance(v, str) and v.startswith("${") for _, v in values):
            out.append(Finding(
                "delta-maintenance", awhere,
                f"VACUUM_RETENTION_HOURS app setting is {raw!r}, want a whole number of hours >= "
                f"{VACUUM_MIN_RETENTION_HOURS} (a literal, tostring(local.X) or tostring(var.X))",
            ))
            continue
        for vwhere, value in values:
            n = _whole(unquote(value)) if value is not None else None
            if n is None or n < VACUUM_MIN_RETENTION_HOURS:
                out.append(Finding(
                    "delta-maintenance", vwhere,
                    f"VACUUM_RETENTION_HOURS = {value!r}: the transformer refuses anything but a whole number "
                    f">= {VACUUM_MIN_RETENTION_HOURS} (readers of older snapshots and time travel need the files for a week)",
                ))
    return out


def _eval_condition(condition: str, var: str, value) -> bool:
    """Evaluate a simple HCL validation condition (comparisons, &&, ||, !, floor, contains)."""
    expr = condition.strip()
    if expr.startswith("${") and expr.endswith("}"):
        expr = expr[2:-1]
    expr = expr.replace(f"var.{var}", repr(value))
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    return bool(eval(expr, {"__builtins__": {}}, {"floor": math.floor, "contains": lambda xs, x: x in xs, "true": True, "false": False}))


def check_flex_limits(tree: Tree) -> list[Finding]:
    out = []
    for mod, app in _flex_apps(tree):
        ref = app.body.get("maximum_instance_count")
        m = re.fullmatch(r"\$\{var\.(\w+)\}", str(ref))
        if not m or m.group(1) not in mod.variables:
            continue
        var = mod.variables[m.group(1)]
        for val in var.body.get("validation", []):
            cond = str(val.get("condition", ""))
            for value, ok in ((1, True), (40, True), (1000, True), (0, False), (1001, False)):
                try:
                    got = _eval_condition(cond, m.group(1), value)
                except Exception as e:  # noqa: BLE001 - report any expression we cannot read
                    out.append(Finding("flex-limits", var.where(tree.root), f"cannot evaluate {cond!r}: {e}"))
                    break
                if got != ok:
                    out.append(Finding(
                        "flex-limits", var.where(tree.root),
                        f"{'rejects' if ok else 'accepts'} maximum_instance_count = {value}; the provider accepts 1-1000",
                    ))
    return out


def check_local_auth(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        for res in mod.resources:
            if res.labels[0] in ("azurerm_log_analytics_workspace", "azurerm_application_insights"):
                if resolve(mod, res.body.get("local_authentication_enabled")) is not False:
                    out.append(Finding("local-auth", res.where(tree.root), "local_authentication_enabled must be false (Entra ID only)"))
    return out


def check_examples_runnable(tree: Tree) -> list[Finding]:
    out = []
    examples = tree.root / "examples"
    if not examples.is_dir():
        return out
    for d in sorted(p for p in examples.iterdir() if p.is_dir()):
        rel = str(d.relative_to(tree.root))
        mod = tree.modules.get(rel)
        if mod is None:
            out.append(Finding("examples-runnable", rel, "no .tf files: an example must be a runnable root configuration, not only tfvars"))
            continue
        if not mod.required_providers():
            out.append(Finding("examples-runnable", rel, "no terraform { required_providers } block"))
        if not mod.module_calls and not mod.resources:
            out.append(Finding("examples-runnable", rel, "calls no module and declares no resource"))
        if not (d / "README.md").exists():
            out.append(Finding("examples-runnable", rel, "no README.md with its commands"))
    return out


def check_tfvars(tree: Tree) -> list[Finding]:
    out = []
    root = tree.modules.get(".")
    if root is None:
        return out
    for path, doc in tree.tfvars.items():
        where = str(path.relative_to(tree.root))
        rel_dir = str(path.parent.relative_to(tree.root)) if path.parent != tree.root else "."
        target = tree.modules.get(rel_dir, root)
        for key in doc:
            if key.startswith("__"):
                continue
            var = target.variables.get(key)
            if var is None:
                name = "the root module" if target is root else target.rel
                out.append(Finding("tfvars", where, f"{key!r} is not a variable of {name}"))
            elif var.body.get("sensitive") is True or var.body.get("ephemeral") is True:
                out.append(Finding("tfvars", where, f"{key!r} is sensitive: pass it with TF_VAR_{key}, never in a file"))
    return out


def check_module_readme(tree: Tree) -> list[Finding]:
    out = []
    for mod in tree.modules.values():
        if mod.rel != "." and not mod.rel.startswith("modules/"):
            continue
        readme = mod.path / "README.md"
        where = f"{mod.rel}/README.md"
        if not readme.exists():
            out.append(Finding("module-readme", where, "missing"))
            continue
        text = readme.read_text(encoding="utf-8")
        for kind, names in (("variable", mod.variables), ("output", mod.outputs)):
            for name in names:
                if f"`{name}`" not in text:
                    out.append(Finding("module-readme", where, f"does not document {kind} `{name}`"))
    return out


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of an HCL call's argument list."""
    out, depth, cur, quote = [], 0, "", False
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([{":
            depth += 1
        elif not quote and ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _env_sources(mod: Module, expr, seen=()) -> list:
    """What a for_each over an env map is made of, in merge order: a dict for a known map (a
    literal local), or the expression text for a map whose keys are not known here."""
    if isinstance(expr, dict):
        return [{unquote(k): unquote(v) for k, v in clean(expr).items()}]
    text = str(expr).strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1].strip()
    m = re.fullmatch(r"merge\((.*)\)", text, re.S)
    if m:
        return [s for arg in _split_args(m.group(1)) for s in _env_sources(mod, arg, seen)]
    m = re.fullmatch(r"local\.([A-Za-z_][\w-]*)", text)
    if m and m.group(1) not in seen:
        for loc in mod.locals:
            if m.group(1) in loc:
                return _env_sources(mod, loc[m.group(1)], seen + (m.group(1),))
    return [text]


def _batch_continuous(sources: list) -> tuple[str | None, list[str]]:
    """The BATCH_CONTINUOUS value the merge ends with (None if unset), and the maps of unknown keys
    merged after the last literal one that sets it (any of which could override it)."""
    value, after = None, []
    for src in sources:
        if isinstance(src, dict):
            if "BATCH_CONTINUOUS" in src:
                value, after = str(src["BATCH_CONTINUOUS"]), []
        else:
            after.append(src)
    return value, after


def _containers(res: Block) -> list[dict]:
    return [c for tpl in res.body.get("template", []) for c in tpl.get("container", [])]


def _dynamic(body: dict, label: str) -> list[dict]:
    out = []
    for dyn in body.get("dynamic", []):
        for key, dbody in dyn.items():
            if not key.startswith("__") and unquote(key) == label:
                out.append(dbody)
    return out


def _secret_env_names(container: dict) -> list[str]:
    names = [unquote(e.get("name")) for e in container.get("env", []) if "secret_name" in e]
    for dyn in _dynamic(container, "env"):
        for content in dyn.get("content", []):
            if "secret_name" in content:
                names.append(f"{unquote(content.get('name'))} (for_each {dyn.get('for_each')})")
    return sorted(names)


def _plain_env_sources(mod: Module, container: dict) -> list:
    sources = []
    for dyn in _dynamic(container, "env"):
        if any("secret_name" not in c for c in dyn.get("content", [])):
            sources += _env_sources(mod, dyn.get("for_each"))
    static = {unquote(e.get("name")): unquote(e.get("value")) for e in container.get("env", []) if "value" in e}
    return sources + ([static] if static else [])


def _comparable(value) -> str:
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if not k.startswith("__")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return json.dumps(strip(value), sort_keys=True)


def _eval_validation(condition: str, values: dict):
    """Evaluate a validation condition over several variables (None is null)."""
    expr = condition.strip()
    if expr.startswith("${") and expr.endswith("}"):
        expr = expr[2:-1]
    for name, value in values.items():
        expr = re.sub(rf"\bvar\.{re.escape(name)}\b", repr(value), expr)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    expr = re.sub(r"\bnull\b", "None", expr)
    funcs = {
        "floor": math.floor,
        "coalesce": lambda *xs: next(x for x in xs if x is not None),
        "contains": lambda xs, x: x in xs,
        "true": True,
        "false": False,
    }
    return bool(eval(expr, {"__builtins__": {}}, funcs))


def _count_for(res: Block, var: str, value: str):
    """The count of a resource whose count is `var.X == "v" ? 1 : 0` (or its negation) for one value."""
    if "count" not in res.body:
        return 1
    text = str(res.body["count"]).strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    m = re.fullmatch(rf'\s*var\.{var}\s*(==|!=)\s*"([^"]*)"\s*\?\s*(\d+)\s*:\s*(\d+)\s*', text)
    if not m:
        return None
    hit = (value == m.group(2)) == (m.group(1) == "==")
    return int(m.group(3) if hit else m.group(4))


def _allowed_values(var: Block) -> list[str]:
    for val in var.body.get("validation", []):
        m = re.search(r"contains\(\[([^\]]*)\]", str(val.get("condition", "")))
        if m:
            return [unquote(x.strip()) for x in m.group(1).split(",") if x.strip()]
    return []


def _config_values(tree: Tree, names: tuple[str, str]) -> list[tuple[str, dict]]:
    """(where, {name: value}) for every configuration declaring both variables: its defaults, and
    each tfvars file that applies to it (its own directory's, else the root's) over them."""
    out = []
    root = tree.modules.get(".")
    for mod in tree.modules.values():
        if not all(n in mod.variables for n in names):
            continue
        defaults = {n: mod.variable_default(n) for n in names}
        out.append((f"{mod.rel}/variables.tf (defaults)", defaults))
        for path, doc in tree.tfvars.items():
            rel_dir = str(path.parent.relative_to(tree.root)) if path.parent != tree.root else "."
            target = tree.modules.get(rel_dir, root)
            if target is mod and any(n in doc for n in names):
                out.append((str(path.relative_to(tree.root)), {n: unquote(doc.get(n, defaults[n])) for n in names}))
    return out


def check_worker_modes(tree: Tree) -> list[Finding]:
    mod = tree.modules.get(WORKER_APP_DIR)
    if mod is None:
        return []
    out = []
    where = f"{WORKER_APP_DIR}/main.tf"
    apps = [r for r in mod.resources if r.labels[0] == "azurerm_container_app"]
    jobs = [r for r in mod.resources if r.labels[0] == "azurerm_container_app_job"]
    if len(apps) != 1 or len(jobs) != 1:
        return [Finding("worker-modes", where, f"expected one azurerm_container_app and one azurerm_container_app_job, found {len(apps)} and {len(jobs)}")]
    app, job = apps[0], jobs[0]

    # Exactly one of the two per mode; the default changes nothing for existing users.
    mode = mod.variables.get("mode")
    if mode is None:
        return [Finding("worker-modes", f"{WORKER_APP_DIR}/variables.tf", "no variable `mode` choosing between the daemon app and the scheduled job")]
    modes = _allowed_values(mode)
    if not modes:
        out.append(Finding("worker-modes", mode.where(tree.root), "mode has no contains([...], var.mode) validation listing the modes"))
    if mod.variable_default("mode") != WORKER_MODES_DEFAULT:
        out.append(Finding("worker-modes", mode.where(tree.root), f"mode must default to {WORKER_MODES_DEFAULT!r} (existing deployments keep the always-on app), got {mod.variable_default('mode')!r}"))
    for value in modes:
        counts = {r.where(tree.root): _count_for(r, "mode", value) for r in (app, job)}
        if None in counts.values():
            out.append(Finding("worker-modes", where, f"count of the app and the job must be `var.mode == \"...\" ? 1 : 0`, got {[str(r.body.get('count')) for r in (app, job)]}"))
            break
        made = sum(counts.values())
        if made != 1:
            out.append(Finding("worker-modes", where, f"mode {value!r} creates {made} of the daemon app and the scheduled job; exactly one must exist"))
    for caller in tree.modules.values():
        for call in caller.module_calls.values():
            if _local_target(tree, caller, call) is not mod:
                continue
            m = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(call.body.get("mode", "")))
            if m and caller.variable_default(m.group(1)) != WORKER_MODES_DEFAULT:
                out.append(Finding("worker-modes", caller.variables[m.group(1)].where(tree.root), f"must default to {WORKER_MODES_DEFAULT!r}, got {caller.variable_default(m.group(1))!r}"))

    # The job runs one pass, the app never does.
    for container in _containers(job):
        value, after = _batch_continuous(_plain_env_sources(mod, container))
        if value != "false":
            out.append(Finding("worker-modes", job.where(tree.root), f"the job's environment must set BATCH_CONTINUOUS = \"false\" (one pass, then exit), got {value!r}: a daemon would run until the replica timeout"))
        elif after:
            out.append(Finding("worker-modes", job.where(tree.root), f"BATCH_CONTINUOUS = \"false\" must be merged last: {', '.join(after)} could override it"))
    for container in _containers(app):
        value, _ = _batch_continuous(_plain_env_sources(mod, container))
        if value == "false":
            out.append(Finding("worker-modes", app.where(tree.root), "the daemon app sets BATCH_CONTINUOUS = \"false\": it would land one pass, exit and be restarted in a loop"))
    trigger = (job.body.get("schedule_trigger_config") or [{}])[0]
    if "cron_expression" not in trigger:
        out.append(Finding("worker-modes", job.where(tree.root), "no schedule_trigger_config.cron_expression"))
    for arg in ("parallelism", "replica_completion_count"):
        if unquote(trigger.get(arg)) != 1:
            out.append(Finding("worker-modes", job.where(tree.root), f"schedule_trigger_config.{arg} must be 1 (one pass per execution; more replicas in the group only split the partitions), got {unquote(trigger.get(arg))!r}"))

    # The same identity, registry, secrets and environment as the daemon app.
    for key in ("identity", "registry", "secret"):
        a = app.body.get(key) or _dynamic(app.body, key)
        j = job.body.get(key) or _dynamic(job.body, key)
        if _comparable(a) != _comparable(j):
            out.append(Finding("worker-modes", job.where(tree.root), f"{key} differs from the daemon app's: the job must run as the same identity with the same secrets and registry"))
    app_c, job_c = _containers(app), _containers(job)
    if app_c and job_c:
        if _secret_env_names(app_c[0]) != _secret_env_names(job_c[0]):
            out.append(Finding("worker-modes", job.where(tree.root), f"secret env {_secret_env_names(job_c[0])} differs from the daemon app's {_secret_env_names(app_c[0])}"))
        app_maps = [s for s in _plain_env_sources(mod, app_c[0]) if isinstance(s, str)]
        job_maps = [s for s in _plain_env_sources(mod, job_c[0]) if isinstance(s, str)]
        for src in app_maps:
            if src not in job_maps:
                out.append(Finding("worker-modes", job.where(tree.root), f"the job's environment does not include {src}, which the daemon app gets"))
        for arg in ("image", "cpu", "memory"):
            if app_c[0].get(arg) != job_c[0].get(arg):
                out.append(Finding("worker-modes", job.where(tree.root), f"container {arg} {job_c[0].get(arg)!r} differs from the daemon app's {app_c[0].get(arg)!r}"))

    # PASS_MAX_SECONDS stays PASS_HEADROOM_SECONDS below the replica timeout.
    timeout = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(job.body.get("replica_timeout_in_seconds", "")))
    limit = None
    for _, text in mod.all_strings():
        m = re.search(r"PASS_MAX_SECONDS\s*=\s*tostring\(var\.([\w-]+)\)", text)
        if m:
            limit = m.group(1)
    if not timeout or timeout.group(1) not in mod.variables:
        out.append(Finding("worker-modes", job.where(tree.root), "replica_timeout_in_seconds must be a variable (validated against pass_max_seconds)"))
        return out
    if limit is None or limit not in mod.variables:
        out.append(Finding("worker-modes", where, "no PASS_MAX_SECONDS = tostring(var.X) in the job's environment"))
        return out
    t_var, p_var = timeout.group(1), limit
    conditions = [str(v.get("condition", "")) for v in mod.variables[p_var].body.get("validation", [])]
    for p, t, ok in ((None, 1800, True), (0, 60, True), (840, 1800, True), (1800 - PASS_HEADROOM_SECONDS, 1800, True),
                     (1800 - PASS_HEADROOM_SECONDS + 1, 1800, False), (1800, 1800, False), (3600, 1800, False)):
        try:
            got = all(_eval_validation(c, {p_var: p, t_var: t}) for c in conditions)
        except Exception as e:  # noqa: BLE001 - report any expression we cannot read
            out.append(Finding("worker-modes", mod.variables[p_var].where(tree.root), f"cannot evaluate the validation: {e}"))
            break
        if got != ok:
            out.append(Finding(
                "worker-modes", mod.variables[p_var].where(tree.root),
                f"{'rejects' if ok else 'accepts'} {p_var} = {p} with {t_var} = {t}; it must stay at least "
                f"{PASS_HEADROOM_SECONDS} s below the replica timeout (start, last landing, commit)",
            ))
    pairs = [(WORKER_APP_DIR, p_var, t_var)]
    for caller in tree.modules.values():
        for call in caller.module_calls.values():
            if _local_target(tree, caller, call) is mod:
                mp = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(call.body.get(p_var, "")))
                mt = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(call.body.get(t_var, "")))
                if mp and mt:
                    pairs.append((caller.rel, mp.group(1), mt.group(1)))
    for _, pn, tn in pairs:
        for cwhere, values in _config_values(tree, (pn, tn)):
            p, t = values[pn], values[tn]
            if p is not None and t is not None and float(p) + PASS_HEADROOM_SECONDS > float(t):
                out.append(Finding(
                    "worker-modes", cwhere,
                    f"{pn} = {p} is not at least {PASS_HEADROOM_SECONDS} s below {tn} = {t}: the pass would be stopped before it ends itself",
                ))
    return out


RULES = {
    "module-inputs": check_module_inputs,
    "variable-docs": check_variable_docs,
    "module-outputs": check_module_outputs,
    "references": check_references,
    "removed-arguments": check_removed_arguments,
    "no-account-keys": check_no_account_keys,
    "shared-key": check_shared_key,
    "hns": check_hns,
    "provider-pin": check_provider_pin,
    "flex-runtime": check_flex_runtime,
    "host-storage": check_host_storage,
    "host-roles": check_host_roles,
    "transform-concurrency": check_transform_concurrency,
    "event-trigger": check_event_trigger,
    "delta-commit": check_delta_commit,
    "delta-maintenance": check_delta_maintenance,
    "flex-limits": check_flex_limits,
    "local-auth": check_local_auth,
    "examples-runnable": check_examples_runnable,
    "tfvars": check_tfvars,
    "module-readme": check_module_readme,
    "worker-modes": check_worker_modes,
}


def run(root: pathlib.Path, rules=None) -> list[Finding]:
    tree = load_tree(root)
    findings: list[Finding] = []
    for name, rule in RULES.items():
        if rules is None or name in rules:
            findings.extend(rule(tree))
    return findings


def main(argv: list[str]) -> int:
    root = pathlib.Path(argv[1]) if len(argv) > 1 else pathlib.Path(__file__).resolve().parents[1]
    findings = run(root)
    for f in findings:
        print(f)
    tree_modules = len(load_tree(root).modules)
    print(f"structure: {len(RULES)} rules over {tree_modules} modules, {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

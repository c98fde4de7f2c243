"""Structural rules for terraform/, checked offline with python-hcl2 (no provider download).

    python3 terraform/tests/structure.py [terraform_dir]

prints one line per finding ("RULE  where: message") and exits 1 if there is any.
test_structure.py runs every rule on the real tree and on copies with planted mistakes.

Rules
  module-inputs      every local module call passes every required variable and no unknown one
  variable-docs      every variable has a type and a description; every output a description
  module-outputs     every module.X.Y reference names a module call X whose module has output Y
  removed-arguments  no argument that azurerm 5.x removed (storage_account_name on containers...)
  no-account-keys    no storage keys or connection strings anywhere, nor in function app settings
  shared-key         every storage account sets shared_access_key_enabled = false
  hns                every storage account sets is_hns_enabled = true (listed exemptions: false)
  provider-pin       modules using azurerm pin "~> 5.x"; the naming module stays provider-free
  flex-runtime       the Flex Consumption app runs the custom handler runtime "custom" / "1.0"
  tfvars             example tfvars set only root variables, and never a sensitive one
  module-readme      the root and every module under modules/ have a README.md naming each of
                     their variables and outputs in backticks
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from hclmodel import Module, Tree, is_block, load_tree, resolve, unquote  # noqa: E402

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


def check_tfvars(tree: Tree) -> list[Finding]:
    out = []
    root = tree.modules.get(".")
    if root is None:
        return out
    for path, doc in tree.tfvars.items():
        where = str(path.relative_to(tree.root))
        for key in doc:
            if key.startswith("__"):
                continue
            var = root.variables.get(key)
            if var is None:
                out.append(Finding("tfvars", where, f"{key!r} is not a variable of the root module"))
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


RULES = {
    "module-inputs": check_module_inputs,
    "variable-docs": check_variable_docs,
    "module-outputs": check_module_outputs,
    "removed-arguments": check_removed_arguments,
    "no-account-keys": check_no_account_keys,
    "shared-key": check_shared_key,
    "hns": check_hns,
    "provider-pin": check_provider_pin,
    "flex-runtime": check_flex_runtime,
    "tfvars": check_tfvars,
    "module-readme": check_module_readme,
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

"""Check argument and block names against the real azurerm provider schema, offline.

The CDK Terrain bindings for azurerm (PyPI `cdktn-provider-azurerm`, the maintained fork of the
deprecated cdktf bindings) are generated from the azurerm provider's schema. The wheel embeds the
npm package as a jsii tarball; each resource's lib/<name>/index.js maps every argument (and every
nested block, recursively) to Terraform, index.d.ts marks which ones are required, and
package.json names the provider version it was generated from. That is the provider's schema in
JavaScript form, so no provider binary or registry is needed.

The pinned package (18.9.0) is generated from azurerm 5.10.0, the major this tree pins; the
versions.tf pins say `~> 5.10` so that nothing older than the checked schema can be selected
(test_schema.py asserts that the pin and the schema agree). Only names and required-ness are
checked, not types, allowed values or cross-argument rules.

    python3 terraform/tests/schema_check.py [terraform_dir]   (needs AZURERM_SCHEMA_TGZ or the
                                                              cached tarball under .stack/cdktn)
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import sys
import tarfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from hclmodel import Tree, is_block, load_tree, unquote  # noqa: E402

PACKAGE = "cdktn-provider-azurerm"
PACKAGE_VERSION = "18.9.0"
# The provider release the package was generated from (its package.json, "cdktn.provider.version").
PROVIDER_VERSION = "5.10.0"
TGZ_NAME = f"provider-azurerm-{PACKAGE_VERSION}.jsii.tgz"

RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection", "alias"}

# Arguments accepted by the provider but missing from the generated schema, with a reason
# (none today: the schema is generated from the pinned major).
SCHEMA_GAPS: dict[str, set[str]] = {}


def repo_root() -> pathlib.Path:
    return pathlib.Path(__file__).resolve().parents[2]


def default_tgz() -> pathlib.Path:
    env = os.environ.get("AZURERM_SCHEMA_TGZ")
    if env:
        return pathlib.Path(env)
    return repo_root() / ".stack" / "cdktn" / TGZ_NAME


def provider_version(tgz: pathlib.Path) -> str:
    """The azurerm release the tarball was generated from (package.json)."""
    with tarfile.open(tgz, "r:gz") as tar:
        meta = json.load(tar.extractfile("package/package.json"))
    spec = meta.get("cdktn") or meta.get("cdktf") or {}
    return spec["provider"]["version"]


def lib_dir(kind: str, type_name: str) -> str:
    if kind == "provider":
        return "package/lib/provider"
    stem = type_name.removeprefix("azurerm_").replace("_", "-")
    return f"package/lib/{'data-azurerm-' if kind == 'data' else ''}{stem}"


# --- parsing the generated JavaScript ----------------------------------------------------------

FUNC_RE = re.compile(r"^function (\w+)ToTerraform\(struct\) \{\n(.*?)^\}", re.S | re.M)
TOP_RE = re.compile(r"    synthesizeAttributes\(\) \{\n        return \{\n(.*?)\n        \};", re.S)
FIELD_RE = re.compile(r"^\s+([a-z0-9_]+): (.*),$", re.M)
CAMEL_RE = re.compile(r"(?:struct|this)\.?_?(\w+?)(?:\.internalValue)?\)")
CHILD_RE = re.compile(r"(\w+)ToTerraform\b")
IFACE_RE = re.compile(r"^export interface (\w+)(?: extends [\w.]+)? \{\n(.*?)^\}", re.S | re.M)
IFACE_FIELD_RE = re.compile(r"^    readonly (\w+)(\?)?:", re.M)
# Attribute getters (arguments and computed attributes, top level and nested), e.g.
# `get primaryBlobEndpoint() { return this.getStringAttribute('primary_blob_endpoint'); }`.
ATTR_RE = re.compile(r"get\w*Attribute\('([a-z0-9_]+)'\)")


def _fields(body: str, known_funcs: set[str]) -> dict[str, tuple[str | None, str | None]]:
    """snake name -> (child function or None, camel name)."""
    out = {}
    for m in FIELD_RE.finditer(body):
        snake, expr = m.group(1), m.group(2)
        child = next((c for c in CHILD_RE.findall(expr) if c in known_funcs), None)
        camel = CAMEL_RE.search(expr)
        out[snake] = (child, camel.group(1) if camel else None)
    return out


def parse_resource(js: str, dts: str) -> dict:
    """Schema node: {"args": {name: node-or-None}, "required": [names]}."""
    funcs = {m.group(1): m.group(2) for m in FUNC_RE.finditer(js)}
    ifaces = {}
    for m in IFACE_RE.finditer(dts):
        ifaces[m.group(1)] = {f.group(1): not f.group(2) for f in IFACE_FIELD_RE.finditer(m.group(2))}
    top = TOP_RE.search(js)
    if top is None:
        raise ValueError("no synthesizeAttributes() in generated resource")
    config_iface = next((v for k, v in ifaces.items() if k.endswith("Config")), {})

    def node(fields: dict, iface: dict, depth: int) -> dict:
        args = {}
        required = []
        for snake, (child, camel) in fields.items():
            if child and depth < 12:
                child_body = funcs[child]
                ret = child_body[child_body.find("return {"):]
                child_iface = ifaces.get(child[0].upper() + child[1:], {})
                args[snake] = node(_fields(ret, set(funcs)), child_iface, depth + 1)
            else:
                args[snake] = None
            if camel and iface.get(camel):
                required.append(snake)
        return {"args": args, "required": sorted(required)}

    root = node(_fields(top.group(1), set(funcs)), config_iface, 0)
    root["attrs"] = sorted(set(ATTR_RE.findall(js)) | set(root["args"]) | {"id"})
    return root


def load_schemas(tgz: pathlib.Path, wanted: set[tuple[str, str]], cache: pathlib.Path | None = None) -> dict:
    """{"resource:azurerm_x": node} for every wanted (kind, type); cached as JSON next to the tgz."""
    cache = cache or tgz.with_suffix(".schema.json")
    schemas: dict = {}
    if cache.exists():
        schemas = json.loads(cache.read_text())
    missing = {(k, t) for k, t in wanted if f"{k}:{t}" not in schemas or (schemas[f"{k}:{t}"] and "attrs" not in schemas[f"{k}:{t}"])}
    if missing:
        members = {}
        for kind, type_name in missing:
            base = lib_dir(kind, type_name)
            members[f"{base}/index.js"] = (kind, type_name, "js")
            members[f"{base}/index.d.ts"] = (kind, type_name, "dts")
        texts: dict[tuple[str, str], dict[str, str]] = {}
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar:
                hit = members.get(member.name)
                if hit:
                    fh = tar.extractfile(member)
                    texts.setdefault(hit[:2], {})[hit[2]] = fh.read().decode("utf-8")
        for kind, type_name in missing:
            got = texts.get((kind, type_name), {})
            if "js" not in got:
                schemas[f"{kind}:{type_name}"] = None  # not in this provider version
                continue
            schemas[f"{kind}:{type_name}"] = parse_resource(got["js"], got.get("dts", ""))
        cache.write_text(json.dumps(schemas, sort_keys=True))
    return schemas


# --- checking ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Finding:
    where: str
    message: str

    def __str__(self) -> str:
        return f"schema             {self.where}: {self.message}"


def _check_body(body: dict, node: dict, path: str, where: str, allowed_extra: set[str], out: list) -> None:
    present = set()
    for key, value in body.items():
        if key.startswith("__") or (not path and key in RESOURCE_META):
            continue
        if key == "dynamic" and isinstance(value, list):
            for dyn in value:
                for label, dbody in dyn.items():
                    if label.startswith("__"):
                        continue
                    label = unquote(label)
                    present.add(label)
                    child = node["args"].get(label, "missing")
                    if child == "missing" and f"{path}{label}" not in allowed_extra:
                        out.append(Finding(where, f"unknown block {path}{label!s} (dynamic)"))
                    elif isinstance(child, dict):
                        for content in dbody.get("content", []):
                            _check_body(content, child, f"{path}{label}.", where, allowed_extra, out)
            continue
        present.add(key)
        if key not in node["args"]:
            if f"{path}{key}" not in allowed_extra:
                out.append(Finding(where, f"unknown argument {path}{key}"))
            continue
        child = node["args"][key]
        if is_block(value):
            if child is None:
                out.append(Finding(where, f"{path}{key} is an attribute, not a block"))
                continue
            for sub in value:
                _check_body(sub, child, f"{path}{key}.", where, allowed_extra, out)
    for req in node["required"]:
        if req not in present:
            out.append(Finding(where, f"required argument {path}{req} is missing"))


def check(tree: Tree, tgz: pathlib.Path) -> list[Finding]:
    blocks = []
    for mod in tree.modules.values():
        blocks += [("resource", b) for b in mod.resources if b.labels[0].startswith("azurerm_")]
        blocks += [("data", b) for b in mod.data if b.labels[0].startswith("azurerm_")]
        blocks += [("provider", b) for b in mod.providers if b.labels[0] == "azurerm"]
    schemas = load_schemas(tgz, {(kind, b.labels[0]) for kind, b in blocks})
    out: list[Finding] = []
    for kind, block in blocks:
        where = block.where(tree.root)
        node = schemas.get(f"{kind}:{block.labels[0]}")
        if node is None:
            out.append(Finding(where, f"{kind} type {block.labels[0]} does not exist in azurerm (per {PACKAGE} {PACKAGE_VERSION})"))
            continue
        _check_body(block.body, node, "", where, SCHEMA_GAPS.get(block.labels[0], set()), out)
    return out


ATTR_USE = re.compile(r"(?<![\w.])(data\.)?(azurerm_[a-z0-9_]+)\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?\.([a-z0-9_]+)")


def check_attributes(tree: Tree, tgz: pathlib.Path) -> list[Finding]:
    """Every `azurerm_x.name.attr` / `data.azurerm_x.name.attr` in an expression reads an argument
    or computed attribute the provider schema has (what `terraform validate` would check)."""
    uses = []
    for mod in tree.modules.values():
        for where, text in mod.all_strings():
            if "${" not in text:
                continue
            for m in ATTR_USE.finditer(text):
                kind = "data" if m.group(1) else "resource"
                uses.append((kind, m.group(2), m.group(3), m.group(4), f"{mod.rel}/{where}"))
    schemas = load_schemas(tgz, {(k, t) for k, t, *_ in uses})
    out, seen = [], set()
    for kind, type_name, name, attr, where in uses:
        node = schemas.get(f"{kind}:{type_name}")
        if node is None or (where, type_name, name, attr) in seen:
            continue  # unknown types are reported by check()
        seen.add((where, type_name, name, attr))
        if attr not in node.get("attrs", []):
            prefix = "data." if kind == "data" else ""
            out.append(Finding(where, f"{prefix}{type_name}.{name}.{attr}: azurerm {PROVIDER_VERSION} has no attribute {attr!r}"))
    return out


def check_pins(tree: Tree, tgz: pathlib.Path) -> list[Finding]:
    """Every azurerm pin is `~> MAJOR.MINOR` of the schema checked here, so no provider release
    older than that schema (or of another major) can be selected."""
    version = provider_version(tgz)
    major, minor = version.split(".")[:2]
    want = re.compile(rf"~>\s*{major}\.{minor}")
    out = []
    for mod in tree.modules.values():
        spec = mod.required_providers().get("azurerm")
        if spec is None:
            continue
        pin = str(spec.get("version", ""))
        if not want.fullmatch(pin):
            out.append(Finding(
                f"{mod.rel}/versions.tf",
                f"azurerm is pinned {pin!r} but the schema checked here is azurerm {version}; pin '~> {major}.{minor}' "
                f"or bump {PACKAGE} in scripts/terraform-check",
            ))
    return out


def main(argv: list[str]) -> int:
    root = pathlib.Path(argv[1]) if len(argv) > 1 else pathlib.Path(__file__).resolve().parents[1]
    tgz = default_tgz()
    if not tgz.exists():
        print(f"schema: {tgz} not found (scripts/terraform-check fetches {PACKAGE}=={PACKAGE_VERSION} from PyPI)", file=sys.stderr)
        return 2
    tree = load_tree(root)
    findings = check(tree, tgz) + check_attributes(tree, tgz) + check_pins(tree, tgz)
    for f in findings:
        print(f)
    count = sum(len(m.resources) + len(m.data) + len(m.providers) for m in tree.modules.values())
    print(f"schema: {count} resource/data/provider blocks checked against azurerm {provider_version(tgz)} ({PACKAGE} {PACKAGE_VERSION}), {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Load a Terraform tree with python-hcl2 into plain Python objects.

python-hcl2 (8.x) keeps HCL quoting: block labels and string literals come back wrapped in
double quotes, expressions as "${...}", and blocks carry an "__is_block__" marker. This module
strips that noise so the checks can compare names and values directly.

Layout of the result:
    Tree.modules[rel_dir] -> Module(variables, outputs, module_calls, resources, data, ...)
where rel_dir is the module directory relative to the terraform/ root ("." for the root).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any, Iterator

import hcl2

SKIP_DIRS = {".terraform", "__pycache__", ".pytest_cache"}


def unquote(value: Any) -> Any:
    """'"abc"' -> 'abc'; leaves expressions ("${...}") and non-strings alone."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def is_block(value: Any) -> bool:
    """A nested block is a list of dicts carrying python-hcl2's __is_block__ marker."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def clean(body: dict) -> dict:
    """Drop python-hcl2 markers from a block body (one level)."""
    return {k: v for k, v in body.items() if not k.startswith("__")}


def strings_in(value: Any) -> Iterator[str]:
    """Every string anywhere inside a parsed value (expressions included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if not k.startswith("__"):
                yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


@dataclasses.dataclass
class Block:
    """One labelled block (variable, output, module, resource, data) and where it came from."""

    kind: str
    labels: tuple[str, ...]
    body: dict
    file: pathlib.Path

    @property
    def name(self) -> str:
        return self.labels[-1]

    def where(self, root: pathlib.Path) -> str:
        return f"{self.file.relative_to(root)}: {self.kind} {'.'.join(self.labels)}"


@dataclasses.dataclass
class Module:
    path: pathlib.Path
    rel: str
    variables: dict[str, Block]
    outputs: dict[str, Block]
    module_calls: dict[str, Block]
    resources: list[Block]
    data: list[Block]
    locals: list[dict]
    terraform: list[dict]
    providers: list[Block]
    checks: list[dict]
    files: list[pathlib.Path]

    def all_blocks(self) -> Iterator[Block]:
        yield from self.variables.values()
        yield from self.outputs.values()
        yield from self.module_calls.values()
        yield from self.resources
        yield from self.data
        yield from self.providers

    def all_strings(self) -> Iterator[tuple[str, str]]:
        """(where, string) for every string value in the module's configuration."""
        for block in self.all_blocks():
            for s in strings_in(block.body):
                yield f"{block.file.name}: {block.kind} {'.'.join(block.labels)}", s
        for loc in self.locals:
            for s in strings_in(loc):
                yield "locals", s
        for chk in self.checks:
            for s in strings_in(chk):
                yield "check", s

    def required_providers(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for tf in self.terraform:
            for rp in tf.get("required_providers", []):
                for name, spec in clean(rp).items():
                    if isinstance(spec, dict):
                        found[name] = {k: unquote(v) for k, v in spec.items()}
        return found

    def variable_default(self, name: str) -> Any:
        block = self.variables.get(name)
        if block is None:
            return None
        return unquote(block.body.get("default"))


VAR_REF = re.compile(r"^\$\{var\.([A-Za-z0-9_-]+)\}$")


def resolve(module: Module, value: Any) -> Any:
    """Literal value, or the default of a plain `var.x` reference; anything else unchanged."""
    value = unquote(value)
    if isinstance(value, str):
        m = VAR_REF.match(value)
        if m:
            return module.variable_default(m.group(1))
    return value


def _labelled(entries: list, depth: int) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Flatten python-hcl2's nested label dicts into (labels, body)."""
    for entry in entries:
        yield from _walk_labels(entry, depth, ())


def _walk_labels(node: dict, depth: int, labels: tuple[str, ...]):
    if depth == 0:
        yield labels, node
        return
    for key, sub in node.items():
        if key.startswith("__"):
            continue
        yield from _walk_labels(sub, depth - 1, labels + (unquote(key),))


def load_module(path: pathlib.Path, root: pathlib.Path) -> Module:
    mod = Module(
        path=path,
        rel=str(path.relative_to(root)) if path != root else ".",
        variables={},
        outputs={},
        module_calls={},
        resources=[],
        data=[],
        locals=[],
        terraform=[],
        providers=[],
        checks=[],
        files=[],
    )
    for tf in sorted(path.glob("*.tf")):
        mod.files.append(tf)
        with tf.open(encoding="utf-8") as fh:
            doc = hcl2.load(fh)
        for labels, body in _labelled(doc.get("variable", []), 1):
            mod.variables[labels[0]] = Block("variable", labels, body, tf)
        for labels, body in _labelled(doc.get("output", []), 1):
            mod.outputs[labels[0]] = Block("output", labels, body, tf)
        for labels, body in _labelled(doc.get("module", []), 1):
            mod.module_calls[labels[0]] = Block("module", labels, body, tf)
        for labels, body in _labelled(doc.get("resource", []), 2):
            mod.resources.append(Block("resource", labels, body, tf))
        for labels, body in _labelled(doc.get("data", []), 2):
            mod.data.append(Block("data", labels, body, tf))
        for labels, body in _labelled(doc.get("provider", []), 1):
            mod.providers.append(Block("provider", labels, body, tf))
        mod.locals.extend(doc.get("locals", []))
        mod.terraform.extend(doc.get("terraform", []))
        mod.checks.extend(doc.get("check", []))
    return mod


@dataclasses.dataclass
class Tree:
    root: pathlib.Path
    modules: dict[str, Module]
    tfvars: dict[pathlib.Path, dict]

    def module_at(self, path: pathlib.Path) -> Module | None:
        for mod in self.modules.values():
            if mod.path == path.resolve():
                return mod
        return None


def module_dirs(root: pathlib.Path) -> list[pathlib.Path]:
    dirs = set()
    for tf in root.rglob("*.tf"):
        if SKIP_DIRS.intersection(tf.relative_to(root).parts):
            continue
        dirs.add(tf.parent.resolve())
    return sorted(dirs)


def load_tree(root: pathlib.Path) -> Tree:
    root = root.resolve()
    modules = {}
    for d in module_dirs(root):
        mod = load_module(d, root)
        modules[mod.rel] = mod
    tfvars = {}
    for f in sorted(root.rglob("*.tfvars")):
        if SKIP_DIRS.intersection(f.relative_to(root).parts):
            continue
        with f.open(encoding="utf-8") as fh:
            tfvars[f] = hcl2.load(fh)
    return Tree(root=root, modules=modules, tfvars=tfvars)

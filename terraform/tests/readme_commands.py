"""The ```sh blocks of every terraform/**/README.md, checked offline as far as they go without Azure.

    python3 terraform/tests/readme_commands.py [terraform_dir]

Every block is run from the repository root, the way the READMEs say to run them. For each one:

  syntax         `bash -n` accepts the block (placeholders such as <rg> do not parse)
  quoted-subst   no command whose first word is a quoted command substitution: "$(terraform
                 output -raw cmd)" makes bash look for one program named after the whole line
                 (exit 127); hand a printed command to `bash -c` instead
  path           every command given as a path (scripts/package-function, terraform/scripts/...)
                 exists and is executable; every `cd` and `-chdir=` directory exists
  terraform      each `terraform -chdir=DIR ...` targets a directory holding a configuration;
                 `output NAME` names one of its outputs, `-var NAME=...` one of its variables,
                 `-var-file=FILE` an existing file (relative to DIR) whose keys are its variables

What it cannot know: whether Azure accepts the commands (nothing here reaches Azure).
Prints one line per finding and exits 1 if there is any; test_readme_commands.py runs it on the
real READMEs and on planted mistakes.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shlex
import subprocess
import sys
import textwrap

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import hcl2  # noqa: E402

from hclmodel import SKIP_DIRS, load_module  # noqa: E402

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*$")
SUBST = re.compile(r"\$\(([^()]*)\)")
# A double-quoted substitution in command position: start of line, after ; & | ( or a keyword.
QUOTED_SUBST_COMMAND = re.compile(r'(?:^|[;&|(]|\b(?:then|do|else|time|!))\s*"\$\(')
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}
BUILTINS_SKIPPED = {"export", "read", "set", "source", ".", "echo", "printf", "test", "[", "true", "false", "unset"}


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.check:14} {self.where}: {self.message}"


@dataclasses.dataclass
class Block:
    readme: pathlib.Path
    line: int  # 1-based line of the opening fence
    text: str

    def where(self, repo: pathlib.Path) -> str:
        return f"{self.readme.relative_to(repo)}:{self.line}"


def sh_blocks(readme: pathlib.Path, text: str | None = None) -> list[Block]:
    """The ```sh / ```bash / ```shell blocks of a Markdown file, dedented."""
    lines = (text if text is not None else readme.read_text(encoding="utf-8")).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m.group("lang") in ("sh", "bash", "shell"):
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not FENCE.match(lines[i]):
                body.append(lines[i])
                i += 1
            blocks.append(Block(readme, start, textwrap.dedent("\n".join(body)) + "\n"))
        elif m:  # another language: skip to its closing fence
            i += 1
            while i < len(lines) and not FENCE.match(lines[i]):
                i += 1
        i += 1
    return blocks


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined."""
    return [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def commands(line: str) -> list[list[str]]:
    """Simple commands of one logical line, the bodies of $(...) included, comments dropped."""
    bodies = SUBST.findall(line)
    outer = SUBST.sub("SUBST", line)
    out = []
    for piece in [outer, *bodies]:
        lexer = shlex.shlex(piece, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        try:
            tokens = list(lexer)
        except ValueError:
            continue  # unbalanced quotes: bash -n reports it
        for tok in tokens:
            if tok in SEPARATORS:
                if current:
                    out.append(current)
                current = []
            else:
                current.append(tok)
        if current:
            out.append(current)
    # Leading assignments (VAR=value cmd) are not the command.
    cleaned = []
    for cmd in out:
        while cmd and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", cmd[0]):
            cmd = cmd[1:]
        if cmd:
            cleaned.append(cmd)
    return cleaned


def _config(directory: pathlib.Path, tf_root: pathlib.Path):
    if not directory.is_dir() or not list(directory.glob("*.tf")):
        return None
    return load_module(directory.resolve(), tf_root.resolve())


def _tfvars_keys(path: pathlib.Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [k for k in hcl2.load(fh) if not k.startswith("__")]


def check_terraform(cmd: list[str], cwd: pathlib.Path, tf_root: pathlib.Path, where: str) -> list[Finding]:
    out = []
    target = cwd
    args = cmd[1:]
    while args and args[0].startswith("-"):
        if args[0].startswith("-chdir="):
            target = (cwd / args[0].split("=", 1)[1]).resolve()
        args = args[1:]
    if not args:
        return out
    sub, rest = args[0], args[1:]
    if sub in ("version", "fmt", "-version", "-help"):
        return out
    mod = _config(target, tf_root)
    if mod is None:
        return [Finding("terraform", where, f"`terraform {sub}` runs in {target}, which holds no configuration (*.tf)")]
    label = os.path.relpath(target, tf_root.parent)
    i = 0
    positional = []
    while i < len(rest):
        arg = rest[i]
        if arg == "-var" and i + 1 < len(rest):
            arg = "-var=" + rest[i + 1]
            i += 1
        elif arg == "-var-file" and i + 1 < len(rest):
            arg = "-var-file=" + rest[i + 1]
            i += 1
        if arg.startswith("-var="):
            name = arg.split("=", 2)[1]
            if name not in mod.variables:
                out.append(Finding("terraform", where, f"-var {name}: {label} has no variable {name!r}"))
        elif arg.startswith("-var-file="):
            path = (target / arg.split("=", 1)[1]).resolve()
            if not path.is_file():
                out.append(Finding("terraform", where, f"-var-file {arg.split('=', 1)[1]} does not exist in {label}"))
            else:
                for key in _tfvars_keys(path):
                    if key not in mod.variables:
                        out.append(Finding("terraform", where, f"{path.relative_to(tf_root.parent)} sets {key!r}, not a variable of {label}"))
        elif not arg.startswith("-"):
            positional.append(arg)
        i += 1
    if sub == "output" and positional:
        name = positional[0]
        if name not in mod.outputs:
            out.append(Finding("terraform", where, f"output {name!r}: {label} has no such output ({', '.join(sorted(mod.outputs))})"))
    return out


def check_block(block: Block, tf_root: pathlib.Path) -> list[Finding]:
    repo = tf_root.parent
    where = block.where(repo)
    out = []
    proc = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        out.append(Finding("syntax", where, f"bash -n: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'rejected'}"))
    cwd = repo
    for line in logical_lines(block.text):
        if QUOTED_SUBST_COMMAND.search(line.split(" #", 1)[0]):
            out.append(Finding(
                "quoted-subst", where,
                f"{line.strip()[:70]!r}: a quoted \"$(...)\" as the command runs one program named after the whole "
                "output (exit 127); use `bash -c \"$(...)\"` or spell the command out",
            ))
        for cmd in commands(line):
            word = cmd[0]
            if word == "cd" and len(cmd) > 1:
                nxt = (cwd / cmd[1]).resolve()
                if not nxt.is_dir():
                    out.append(Finding("path", where, f"cd {cmd[1]}: no such directory"))
                else:
                    cwd = nxt
                continue
            if word in BUILTINS_SKIPPED or word == "SUBST":
                continue
            if "/" in word:
                path = (cwd / word).resolve()
                if not path.is_file() or not os.access(path, os.X_OK):
                    out.append(Finding("path", where, f"{word}: no such executable (relative to {os.path.relpath(cwd, repo)})"))
                continue
            if word == "terraform":
                for arg in cmd[1:]:
                    if arg.startswith("-chdir=") and not (cwd / arg.split("=", 1)[1]).is_dir():
                        out.append(Finding("path", where, f"{arg}: no such directory"))
                        break
                else:
                    out.extend(check_terraform(cmd, cwd, tf_root, where))
    return out


def readmes(tf_root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(
        p for p in tf_root.rglob("README.md")
        if not SKIP_DIRS.intersection(p.relative_to(tf_root).parts)
    )


def run(tf_root: pathlib.Path) -> tuple[list[Finding], int]:
    findings, count = [], 0
    for readme in readmes(tf_root):
        for block in sh_blocks(readme):
            count += 1
            findings.extend(check_block(block, tf_root))
    return findings, count


def main(argv: list[str]) -> int:
    tf_root = pathlib.Path(argv[1]).resolve() if len(argv) > 1 else pathlib.Path(__file__).resolve().parents[1]
    findings, count = run(tf_root)
    for f in findings:
        print(f)
    print(f"readme-commands: {count} sh blocks in {len(readmes(tf_root))} READMEs, {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

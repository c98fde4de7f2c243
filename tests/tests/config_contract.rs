//! The env files and the compose services speak the binaries' language.
//!
//! Every variable in `env/local.env`, `env/compose.env` and `env/azure.env.example` (set or
//! documented as a commented `# KEY=value` knob) and in each compose service's `environment:`
//! must be read by the binary it is meant for: by that binary's config struct (the names come
//! from `service::config::arg_env_keys`, i.e. from the code, not from a list), by
//! object_store's Azure settings (`AZURE_*`, decided by object_store's own key parser), or by
//! tracing (`RUST_LOG`). And every binary must accept the settings its compose service gets:
//! each required variable set, each value valid. Offline: no broker or storage is contacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use object_store::azure::AzureConfigKey;
use service::config::arg_env_keys;

type Vars = Vec<(String, String)>;

/// One of our binaries as its configuration sees it.
struct Binary {
    name: &'static str,
    keys: Vec<String>,
    /// Parses and validates a full environment, as the binary does at start-up.
    validate: fn(Vars) -> Result<(), String>,
}

fn binaries() -> Vec<Binary> {
    vec![
        Binary {
            name: "worker",
            keys: arg_env_keys::<worker::config::Config>(),
            validate: |vars| {
                worker::Settings::from_vars(vars)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
        Binary {
            name: "transformer",
            keys: arg_env_keys::<transformer::config::Config>(),
            validate: |vars| {
                transformer::config::Settings::from_vars(vars)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
        Binary {
            name: "simulator",
            keys: arg_env_keys::<simulator::config::Config>(),
            validate: |vars| {
                simulator::Settings::from_vars(vars)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
    ]
}

fn binary(name: &str) -> Binary {
    binaries()
        .into_iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no binary {name}"))
}

/// Who reads `key` besides our config structs, if anyone.
fn library_reader(key: &str) -> Option<&'static str> {
    match key {
        // tracing_subscriber's EnvFilter::try_from_default_env (service::telemetry::init_logs).
        "RUST_LOG" => Some("tracing"),
        // object_store-0.12.5/src/azure/builder.rs reads it when AZURE_STORAGE_USE_EMULATOR is true.
        "AZURITE_BLOB_STORAGE_URL" => Some("object_store"),
        // MicrosoftAzureBuilder::from_env takes AZURE_* variables that its key parser knows and
        // silently ignores the rest, which is why a misspelling must be caught here.
        k if k.starts_with("AZURE_")
            && AzureConfigKey::from_str(&k.to_ascii_lowercase()).is_ok() =>
        {
            Some("object_store")
        }
        _ => None,
    }
}

fn accepted_by(bin: &Binary, key: &str) -> bool {
    bin.keys.iter().any(|k| k == key) || library_reader(key).is_some()
}

// --- env files ------------------------------------------------------------------------------

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A `KEY=value` line of an env file; `commented` for a documented `# KEY=value` knob.
#[derive(Debug)]
struct EnvLine {
    line: usize,
    key: String,
    value: String,
    commented: bool,
}

fn parse_env(text: &str) -> Vec<EnvLine> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let (body, commented) = match raw.trim().strip_prefix('#') {
            Some(rest) => (rest.trim(), true),
            None => (raw.trim(), false),
        };
        let Some((key, value)) = body.split_once('=') else {
            continue;
        };
        // Prose in comments is not a variable; a knob is an upper-case name right before `=`.
        let is_name = !key.is_empty()
            && key.starts_with(|c: char| c.is_ascii_uppercase())
            && key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        // A set variable is reported whatever its spelling; a comment only when it is a knob.
        if is_name || !commented {
            out.push(EnvLine {
                line: i + 1,
                key: key.to_owned(),
                value: value.to_owned(),
                commented,
            });
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The variables an env file sets (not the commented ones), in order.
fn env_vars(path: &Path) -> Vars {
    parse_env(&read(path))
        .into_iter()
        .filter(|l| !l.commented)
        .map(|l| (l.key, l.value))
        .collect()
}

/// Problems with an env file read by all our binaries: each name, set or documented, must be
/// read by at least one of them.
fn check_env_file(path: &Path, bins: &[Binary]) -> Vec<String> {
    parse_env(&read(path))
        .into_iter()
        .filter(|l| !bins.iter().any(|b| accepted_by(b, &l.key)))
        .map(|l| {
            format!(
                "{}:{}: {} is read by no binary (not in {}'s config, nor object_store's AZURE_* keys, nor RUST_LOG)",
                path.display(),
                l.line,
                l.key,
                bins.iter().map(|b| b.name).collect::<Vec<_>>().join("/"),
            )
        })
        .collect()
}

// --- compose --------------------------------------------------------------------------------

fn compose_dir() -> PathBuf {
    root().join("compose")
}

fn load_yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An env file named by compose; git-ignored files (env/azure.env) are stood in for by their
/// committed `.example`, as compose-check does.
fn env_file(reference: &str) -> PathBuf {
    let path = compose_dir().join(reference);
    if path.exists() {
        return path;
    }
    let mut example = path.clone().into_os_string();
    example.push(".example");
    let example = PathBuf::from(example);
    assert!(
        example.exists(),
        "env_file {reference} exists neither as is nor as .example"
    );
    example
}

/// A service of ours in a (merged) compose setup: which binary it runs and what it gets.
#[derive(Debug, Default)]
struct ComposeService {
    binary: Option<String>,
    env_files: Vec<PathBuf>,
    environment: BTreeMap<String, String>,
}

impl ComposeService {
    /// The process environment: env files in order, then `environment:` (which wins).
    fn vars(&self) -> Vars {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for file in &self.env_files {
            vars.extend(env_vars(file));
        }
        vars.extend(self.environment.clone());
        vars.into_iter().collect()
    }
}

fn scalar(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// The services of `files` merged in order (env_file lists append, `environment:` merges by
/// key), keyed by name. The binary is the Dockerfile target the service builds, whose stage
/// names are the binary names.
fn compose_services(files: &[&str]) -> BTreeMap<String, ComposeService> {
    let mut out: BTreeMap<String, ComposeService> = BTreeMap::new();
    for file in files {
        let doc = load_yaml(&compose_dir().join(file));
        let Some(services) = doc.get("services").and_then(|s| s.as_mapping()) else {
            continue;
        };
        for (name, svc) in services {
            let entry = out.entry(scalar(name)).or_default();
            if let Some(target) = svc.get("build").and_then(|b| b.get("target")) {
                entry.binary = Some(scalar(target));
            }
            match svc.get("env_file") {
                Some(serde_yaml::Value::String(s)) => entry.env_files.push(env_file(s)),
                Some(serde_yaml::Value::Sequence(list)) => entry
                    .env_files
                    .extend(list.iter().map(|s| env_file(&scalar(s)))),
                _ => {}
            }
            match svc.get("environment") {
                Some(serde_yaml::Value::Mapping(map)) => {
                    for (k, v) in map {
                        entry.environment.insert(scalar(k), scalar(v));
                    }
                }
                Some(serde_yaml::Value::Sequence(list)) => {
                    for item in list {
                        let item = scalar(item);
                        let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                        entry.environment.insert(k.to_owned(), v.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    out
}

const SETUPS: [&[&str]; 2] = [
    &["docker-compose.yml"],
    &["docker-compose.yml", "docker-compose.azure.yml"],
];

fn our_services(files: &[&str]) -> Vec<(String, ComposeService, Binary)> {
    compose_services(files)
        .into_iter()
        .filter_map(|(name, svc)| {
            let bin = binary(svc.binary.as_deref()?);
            Some((name, svc, bin))
        })
        .collect()
}

// --- the contract ---------------------------------------------------------------------------

#[test]
fn every_variable_in_the_env_files_is_read_by_a_binary() {
    let bins = binaries();
    let problems: Vec<String> = ["local.env", "compose.env", "azure.env.example"]
        .iter()
        .flat_map(|f| check_env_file(&root().join("env").join(f), &bins))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_compose_environment_variable_is_read_by_its_services_binary() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for files in SETUPS {
        for (name, svc, bin) in our_services(files) {
            for key in svc.environment.keys() {
                checked += 1;
                if !accepted_by(&bin, key) {
                    problems.push(format!(
                        "{}: service {name} sets {key}, which {} does not read",
                        files.join(" + "),
                        bin.name
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        checked > 0,
        "no environment entries found: the test would prove nothing"
    );
}

#[test]
fn every_binary_accepts_what_its_compose_service_gets() {
    let mut problems = Vec::new();
    for files in SETUPS {
        let services = our_services(files);
        let ran: Vec<&str> = services.iter().map(|(_, _, b)| b.name).collect();
        for expected in ["worker", "transformer", "simulator"] {
            assert!(
                ran.contains(&expected),
                "{files:?}: no service builds {expected}"
            );
        }
        for (name, svc, bin) in services {
            if let Err(e) = (bin.validate)(svc.vars()) {
                problems.push(format!(
                    "{}: service {name} ({}): {e}",
                    files.join(" + "),
                    bin.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_binary_accepts_the_local_stack_env() {
    let vars = env_vars(&root().join("env/local.env"));
    for bin in binaries() {
        (bin.validate)(vars.clone())
            .unwrap_or_else(|e| panic!("env/local.env for {}: {e}", bin.name));
    }
}

#[test]
fn local_and_compose_stacks_use_the_same_names_and_defaults() {
    let local: BTreeMap<_, _> = env_vars(&root().join("env/local.env"))
        .into_iter()
        .collect();
    let compose: BTreeMap<_, _> = env_vars(&root().join("env/compose.env"))
        .into_iter()
        .collect();
    for (key, value) in &local {
        let other = compose
            .get(key)
            .unwrap_or_else(|| panic!("env/compose.env lacks {key}, which env/local.env sets"));
        // Only addresses differ: loopback there, compose service names here.
        let is_address = value.contains("127.0.0.1") || key == "KAFKA_BROKERS";
        if !is_address {
            assert_eq!(
                other, value,
                "{key} differs between env/local.env and env/compose.env"
            );
        }
    }
}

// --- the checks can fail --------------------------------------------------------------------

#[test]
fn misspelled_variable_in_an_env_file_is_reported() {
    let dir = std::env::temp_dir().join(testkit::unique("config-contract"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("compose.env");
    let text = read(&root().join("env/compose.env"))
        .replace("RAW_URL=az://raw", "RAW_ULR=az://raw")
        .replace("# BATCH_SIZE=1000", "# BATCH_SIZ=1000")
        .replace(
            "AZURE_STORAGE_USE_EMULATOR=true",
            "AZURE_STORAGE_USE_EMULATER=true",
        );
    std::fs::write(&path, text).expect("write temp env file");

    let problems = check_env_file(&path, &binaries());
    std::fs::remove_dir_all(&dir).expect("clean temp dir");

    let named: Vec<&str> = problems
        .iter()
        .filter_map(|p| p.split(": ").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(
        named,
        ["AZURE_STORAGE_USE_EMULATER", "RAW_ULR", "BATCH_SIZ"],
        "{problems:#?}"
    );
    assert!(problems[1].contains("compose.env:"), "{}", problems[1]);
}

#[test]
fn compose_variable_unknown_to_the_services_binary_is_reported() {
    // The transformer does not read BATCH_SIZE (a worker knob): giving it to the transformer
    // is a mistake even though some binary reads that name.
    let transformer = binary("transformer");
    assert!(!accepted_by(&transformer, "BATCH_SIZE"));
    assert!(accepted_by(&binary("worker"), "BATCH_SIZE"));
    assert!(!accepted_by(&transformer, "AZURE_STORAGE_ACOUNT_NAME"));
    assert!(accepted_by(&transformer, "AZURE_STORAGE_ACCOUNT_NAME"));
}

#[test]
fn missing_required_variable_is_reported_by_name() {
    let vars: Vars = env_vars(&root().join("env/compose.env"))
        .into_iter()
        .filter(|(k, _)| k != "KAFKA_BROKERS")
        .collect();
    let err = (binary("worker").validate)(vars).expect_err("KAFKA_BROKERS is required");
    assert!(err.starts_with("KAFKA_BROKERS is not set"), "{err}");
}

#[test]
fn env_file_parser_reads_set_and_documented_variables_only() {
    let lines =
        parse_env("# prose: see KAFKA_BROKERS\n# Alternatives: a=b\nA_B=1\n# C_D=\n\nlower=x\n");
    let got: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| (l.key.as_str(), l.commented))
        .collect();
    assert_eq!(got, [("A_B", false), ("C_D", true), ("lower", false)]);
}

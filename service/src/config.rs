//! Typed configuration: one clap struct per service, validated once.
//!
//! A service declares each knob once, as a field of a `clap::Parser` struct:
//! `#[arg(long, env, default_value_t = 1000)] batch_size: usize` is the flag `--batch-size`,
//! the variable `BATCH_SIZE` (clap's `env` names it after the field) and the default, and its
//! doc comment is the `--help` line, to which clap adds `[env: BATCH_SIZE] [default: 1000]`.
//! Flags win over variables, variables over defaults. The binaries read it with [`parse`];
//! tests and benches with [`from_vars`], from `(VAR, value)` pairs alone. Both add what clap
//! does not do:
//!
//! - an empty variable counts as unset, as in env files where `VAR=` documents an optional
//!   knob (clap would parse `""`);
//! - a value that does not parse is a [`ConfigError`] naming the variable (clap names only the
//!   flag);
//! - secrets stay off the command line: an argument hidden from `--help` (`hide = true`) is
//!   env-only, and a flag whose value carries a credential is refused ([`refuse_secret_flag`]);
//!   `--help` never shows a variable's value;
//! - a required argument (a field without a default that is not an `Option`) that is missing
//!   is [`ConfigError::Missing`] naming the variable.
//!
//! [`parse_over`] puts variables under the environment (the bench binaries read env/local.env
//! so). [`arg_env_keys`] lists the variables a struct reads, so env files and compose files are
//! checked against the code, and [`knob_table_problems`] checks a DESIGN knob table against it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

/// A configuration error, naming the variable and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{var} is not set: set {var} in the environment (see env/local.env and --help)")]
    Missing {
        /// The variable.
        var: String,
    },
    /// A variable is set to something that does not parse.
    #[error("{var} is invalid: {problem}; fix {var} (see env/local.env and --help)")]
    Invalid {
        /// The variable.
        var: String,
        /// What is wrong.
        problem: String,
    },
    /// A credential came as a CLI flag, where `ps` and shell history show it. The value itself
    /// is never part of the message.
    #[error(
        "--{flag} carries {what}: command-line arguments are visible to every local user in `ps` and kept in shell history, so secrets are env-only; remove --{flag} and pass the value through the environment as {var} (see env/local.env)"
    )]
    SecretFlag {
        /// The variable to use instead.
        var: String,
        /// The flag it came as, without the dashes.
        flag: String,
        /// What kind of credential (from [`crate::secret::url_credential`]).
        what: &'static str,
    },
}

impl ConfigError {
    /// An invalid value for `var`, for checks done after parsing.
    pub fn invalid(var: &str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Refuses the value of the CLI flag that overrides `var` when it carries a credential (a URL
/// password, a SAS token, a connection-string key): secrets are env-only, like
/// `KAFKA_SASL_PASSWORD`. A credential-free value (`redis://host:6379/0`, `az://raw`) passes.
pub fn refuse_secret_flag(var: &str, value: &str) -> Result<(), ConfigError> {
    match crate::secret::url_credential(value) {
        Some(what) => Err(ConfigError::SecretFlag {
            var: var.to_owned(),
            flag: var.to_ascii_lowercase().replace('_', "-"),
            what,
        }),
        None => Ok(()),
    }
}

/// `T`'s command as the binaries show it: `[env: VAR]` without the variable's value, which
/// may be a credential (clap would print `[env: REDIS_URL=redis://:pw@host]`).
pub fn command<T: CommandFactory>() -> Command {
    T::command().mut_args(|a| a.hide_env_values(true))
}

/// The variables `T` reads (each argument's `env`), in declaration order.
pub fn arg_env_keys<T: CommandFactory>() -> Vec<String> {
    T::command()
        .get_arguments()
        .filter_map(|a| a.get_env()?.to_str().map(str::to_owned))
        .collect()
}

/// Reads `T` from the command line and the process environment, as a binary does at start-up.
/// Like clap's `Parser::parse`, `--help`, `--version` and a bad command line end the process
/// with clap's message.
pub fn parse<T: CommandFactory + FromArgMatches>() -> Result<T, ConfigError> {
    parse_from::<T, _, _>(std::env::args_os())
}

/// [`parse`] with the given arguments (the first is the binary's name).
pub fn parse_from<T, I, A>(args: I) -> Result<T, ConfigError>
where
    T: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    parse_from_over(args, &BTreeMap::new())
}

/// [`parse`] with `base` (`VAR` → value, e.g. an env file's) under the process environment: a
/// variable unset or empty there takes its value from `base`, and flags still win.
pub fn parse_over<T>(base: &BTreeMap<String, String>) -> Result<T, ConfigError>
where
    T: CommandFactory + FromArgMatches,
{
    parse_from_over::<T, _, _>(std::env::args_os(), base)
}

/// [`parse_over`] with the given arguments (the first is the binary's name).
pub fn parse_from_over<T, I, A>(args: I, base: &BTreeMap<String, String>) -> Result<T, ConfigError>
where
    T: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let shown = command::<T>();
    // An empty variable is no variable: clap would parse "" (and fail for a number).
    let env = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    let base = |var: &str| base.get(var).filter(|v| !v.is_empty()).cloned();
    let cmd = shown.clone().mut_args(|a| {
        let Some(var) = a.get_env().and_then(OsStr::to_str).map(str::to_owned) else {
            return a;
        };
        match (env(&var), base(&var)) {
            (Some(_), _) => a,
            // Clap's default, below the (absent) variable and the flag.
            (None, Some(value)) => a.env(None::<&str>).required(false).default_value(value),
            (None, None) => a.env(None::<&str>),
        }
    });
    let matches = match cmd.clone().try_get_matches_from(&args) {
        Ok(m) => m,
        // Rendered by the unchanged command, so that `--help` names every variable.
        Err(e) if e.kind() == ErrorKind::DisplayHelp => match shown.try_get_matches_from(&args) {
            Err(help) => help.exit(),
            Ok(_) => e.exit(),
        },
        Err(e) => {
            let from_vars = |var: &str, value: &str| {
                env(var).or(base(var).map(Into::into)) == Some(value.into())
            };
            let error = missing_var(&shown, &e).or_else(|| invalid_value(&shown, &e, from_vars));
            return Err(error.unwrap_or_else(|| e.exit()));
        }
    };
    refuse_secret_flags(&shown, &matches)?;
    T::from_arg_matches(&matches).map_err(|e| e.exit())
}

/// Refuses a secret given on the command line: any value of a hidden (env-only) argument, and
/// a value of another that carries a credential ([`crate::secret::url_credential`]).
fn refuse_secret_flags(cmd: &Command, matches: &ArgMatches) -> Result<(), ConfigError> {
    for arg in cmd.get_arguments() {
        let (Some(var), Some(flag)) = (arg.get_env().and_then(OsStr::to_str), arg.get_long())
        else {
            continue;
        };
        let id = arg.get_id().as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let values = matches.try_get_raw(id).ok().flatten().into_iter().flatten();
        let credential = values
            .filter_map(|v| crate::secret::url_credential(&v.to_string_lossy()))
            .next();
        if let Some(what) = arg.is_hide_set().then_some("a secret").or(credential) {
            return Err(ConfigError::SecretFlag {
                var: var.to_owned(),
                flag: flag.to_owned(),
                what,
            });
        }
    }
    Ok(())
}

/// Reads `T` from `(VAR, value)` pairs alone, as if they were the whole environment and the
/// command line were empty (tests and benches; the process environment is not read). Each pair
/// is given to clap as the flag of the argument that reads `VAR`; unknown names are ignored and
/// empty values count as unset. Later pairs win.
pub fn from_vars<T, I, K, V>(vars: I) -> Result<T, ConfigError>
where
    T: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let vars: HashMap<String, String> = vars
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let cmd = T::command();
    let mut args = vec![cmd.get_name().to_owned()];
    for arg in cmd.get_arguments() {
        let var = arg.get_env().and_then(OsStr::to_str);
        if let (Some(flag), Some(value)) = (arg.get_long(), var.and_then(|v| vars.get(v))) {
            args.push(format!("--{flag}={value}"));
        }
    }
    let other = |e: clap::Error| ConfigError::invalid("configuration", e.to_string());
    let matches = cmd
        .clone()
        .mut_args(|a| a.env(None::<&str>))
        .try_get_matches_from(args)
        .map_err(|e| {
            (missing_var(&cmd, &e).or_else(|| invalid_value(&cmd, &e, |_, _| true)))
                .unwrap_or_else(|| other(e))
        })?;
    T::from_arg_matches(&matches).map_err(other)
}

/// The variable of the argument clap shows as `shown` (`--batch-size <BATCH_SIZE>`).
fn var_of(cmd: &Command, shown: &str) -> Option<String> {
    let mut cmd = cmd.clone();
    cmd.build(); // an argument's display needs the built command
    let arg = cmd.get_arguments().find(|a| a.to_string() == shown)?;
    Some(arg.get_env()?.to_str()?.to_owned())
}

/// A clap error about a missing required argument, as the missing variable's error. `None`
/// for every other error, and for an argument without a variable.
fn missing_var(cmd: &Command, e: &clap::Error) -> Option<ConfigError> {
    if e.kind() != ErrorKind::MissingRequiredArgument {
        return None;
    }
    let Some(ContextValue::Strings(args)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let var = var_of(cmd, args.first()?)?;
    Some(ConfigError::Missing { var })
}

/// A clap error about a value that came from a variable (`from_env(var, value)`), as the
/// variable's error. `None` for every other error, which clap reports best.
fn invalid_value(
    cmd: &Command,
    e: &clap::Error,
    from_env: impl Fn(&str, &str) -> bool,
) -> Option<ConfigError> {
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return None;
    };
    let var = var_of(cmd, arg)?;
    if !from_env(&var, value) {
        return None;
    }
    let quoted = format!("`{value}`");
    let problem = match (e.get(ContextKind::ValidValue), std::error::Error::source(e)) {
        (Some(ContextValue::Strings(valid)), _) => {
            format!("{quoted} is not one of {}", valid.join(", "))
        }
        // Our own parsers name the value already (`xml` is not a log format ...).
        (_, Some(why)) if why.to_string().contains(&quoted) => why.to_string(),
        (_, Some(why)) => format!("{quoted} does not parse: {why}"),
        _ => format!("{quoted} is not accepted"),
    };
    Some(ConfigError::invalid(&var, problem))
}

/// Problems with the knob table of `design` (docs/DESIGN.md) in the `## ` section whose title
/// ends with `section` (the first table whose first column is headed `variable...`), checked
/// against `cmd`: each variable `cmd` reads has a row and each row names variables it reads
/// (in backquotes, several in one row allowed), and a row's default is clap's where clap has
/// one (`a` / `b` for a row of two variables). Empty when they agree.
pub fn knob_table_problems(design: &str, section: &str, cmd: &Command) -> Vec<String> {
    let rows = design
        .lines()
        .skip_while(|l| !(l.starts_with("## ") && l.trim_end().ends_with(section)))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .skip_while(|l| !l.starts_with("| variable"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (Some(names), Some(default)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let vars: Vec<&str> = names
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|v| {
                !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .collect();
        let defaults: Vec<&str> = match default.split(" / ").collect::<Vec<_>>() {
            split if split.len() == vars.len() => split,
            _ => vec![default; vars.len()],
        };
        for (var, default) in vars.into_iter().zip(defaults) {
            seen.push(var.to_owned());
            let Some(arg) = cmd
                .get_arguments()
                .find(|a| a.get_env() == Some(OsStr::new(var)))
            else {
                problems.push(format!(
                    "{var}: in the table, but {} does not read it",
                    cmd.get_name()
                ));
                continue;
            };
            let clap_default: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let table = default.trim_matches('`');
            if !clap_default.is_empty() && table != clap_default.join(",") {
                problems.push(format!(
                    "{var}: the table says {table}, --help says {}",
                    clap_default.join(",")
                ));
            }
        }
    }
    if seen.is_empty() {
        problems.push(format!("no knob table found in section {section}"));
    }
    for var in cmd.get_arguments().filter_map(|a| a.get_env()?.to_str()) {
        if !seen.iter().any(|s| s == var) {
            problems.push(format!(
                "{var}: {} reads it, the table lacks it",
                cmd.get_name()
            ));
        }
    }
    problems
}

/// The environment variable a CLI flag overrides: `--batch-size` ↔ `BATCH_SIZE`. Every binary's
/// flags follow this rule, so `--help` and the env files name the same knob.
pub fn env_var_of_flag(long_flag: &str) -> String {
    long_flag.replace('-', "_").to_uppercase()
}

/// The items of a comma-separated list (`KAFKA_TOPICS=a, b,` → `a`, `b`), trimmed, empty ones
/// dropped.
pub fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service's knobs, the clap way.
    #[derive(Debug, clap::Parser)]
    #[command(name = "demo")]
    struct Knobs {
        /// Records per batch.
        #[arg(long, env = "DEMO_CFG_BATCH_SIZE", default_value_t = 10)]
        batch_size: usize,
        /// Switch.
        #[arg(long, env = "DEMO_CFG_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
        enabled: bool,
        /// Where to.
        #[arg(long, env = "DEMO_CFG_URL", default_value = "redis://h:1/0")]
        url: String,
        /// Env only.
        #[arg(long, env = "DEMO_CFG_PASSWORD", hide = true)]
        password: Option<crate::secret::Secret>,
        /// Log format.
        #[arg(long, env = "DEMO_CFG_LOG", default_value = "json")]
        log: crate::telemetry::LogFormat,
    }

    /// Knobs with a required one.
    #[derive(Debug, clap::Parser)]
    #[command(name = "needs")]
    struct Needs {
        /// Required.
        #[arg(long, env = "DEMO_CFG_NEEDED")]
        needed: String,
        /// Records per batch.
        #[arg(long, env = "DEMO_CFG_NEEDS_SIZE", default_value_t = 10)]
        size: usize,
    }

    fn knobs(v: &[(&str, &str)]) -> Result<Knobs, ConfigError> {
        from_vars(v.iter().copied())
    }

    #[test]
    fn knobs_come_from_variables_with_defaults_and_empty_means_unset() {
        let k = knobs(&[("DEMO_CFG_BATCH_SIZE", "5"), ("DEMO_CFG_ENABLED", "")]).expect("ok");
        assert_eq!(
            (k.batch_size, k.enabled, k.url.as_str()),
            (5, true, "redis://h:1/0")
        );
        let k = knobs(&[("DEMO_CFG_PASSWORD", "pw"), ("OTHER", "x")]).expect("ok");
        assert_eq!(
            k.password.map(|p| p.expose().to_owned()).as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn a_variable_that_does_not_parse_is_named_with_the_fix() {
        let err = |v| knobs(&[v]).expect_err("invalid").to_string();
        assert_eq!(
            err(("DEMO_CFG_BATCH_SIZE", "lots")),
            "DEMO_CFG_BATCH_SIZE is invalid: `lots` does not parse: invalid digit found in string; fix DEMO_CFG_BATCH_SIZE (see env/local.env and --help)"
        );
        assert!(
            err(("DEMO_CFG_ENABLED", "maybe"))
                .starts_with("DEMO_CFG_ENABLED is invalid: `maybe` is not one of true, false;"),
        );
        assert!(
            err(("DEMO_CFG_LOG", "xml"))
                .starts_with("DEMO_CFG_LOG is invalid: `xml` is not a log format (json or text);"),
        );
    }

    #[test]
    fn a_missing_required_variable_is_named_with_the_fix() {
        let err = from_vars::<Needs, _, _, _>([("DEMO_CFG_NEEDS_SIZE", "3")]).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "DEMO_CFG_NEEDED is not set: set DEMO_CFG_NEEDED in the environment (see env/local.env and --help)"
        );
        let err = parse_from::<Needs, _, _>(["needs"]).expect_err("missing");
        assert!(
            err.to_string().starts_with("DEMO_CFG_NEEDED is not set"),
            "{err}"
        );
    }

    #[test]
    fn base_variables_sit_under_the_environment_and_the_flags() {
        let base: BTreeMap<String, String> =
            [("DEMO_CFG_NEEDED", "b"), ("DEMO_CFG_NEEDS_SIZE", "4")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        let n: Needs = parse_from_over(["needs"], &base).expect("from the base");
        assert_eq!((n.needed.as_str(), n.size), ("b", 4));
        let n: Needs = parse_from_over(["needs", "--size", "5"], &base).expect("flag wins");
        assert_eq!(n.size, 5);
        let bad = [("DEMO_CFG_NEEDED", "b"), ("DEMO_CFG_NEEDS_SIZE", "x")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let err = parse_from_over::<Needs, _, _>(["needs"], &bad).expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("DEMO_CFG_NEEDS_SIZE is invalid: `x` does not parse"),
            "{err}"
        );
    }

    #[test]
    fn flags_parse_and_secrets_stay_off_the_command_line() {
        let k: Knobs =
            parse_from(["demo", "--batch-size", "3", "--url", "redis://h:2/0"]).expect("no secret");
        assert_eq!((k.batch_size, k.url.as_str()), (3, "redis://h:2/0"));
        let err = parse_from::<Knobs, _, _>(["demo", "--password", "hunter2"])
            .expect_err("env only")
            .to_string();
        assert!(
            err.starts_with("--password carries a secret: command-line arguments are visible"),
            "{err}"
        );
        assert!(err.contains("environment as DEMO_CFG_PASSWORD"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_from::<Knobs, _, _>(["demo", "--url=redis://:hunter2@h:1/0"])
            .expect_err("credential")
            .to_string();
        assert!(err.starts_with("--url carries a password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn help_names_variables_and_defaults_but_never_a_value() {
        let help = command::<Knobs>().render_long_help().to_string();
        assert!(help.contains("[env: DEMO_CFG_BATCH_SIZE]"), "{help}");
        assert!(help.contains("[default: 10]"), "{help}");
        assert!(!help.contains("DEMO_CFG_PASSWORD"), "hidden: {help}");
        assert_eq!(
            arg_env_keys::<Knobs>(),
            [
                "DEMO_CFG_BATCH_SIZE",
                "DEMO_CFG_ENABLED",
                "DEMO_CFG_URL",
                "DEMO_CFG_PASSWORD",
                "DEMO_CFG_LOG"
            ]
        );
    }

    #[test]
    fn a_knob_table_is_checked_against_the_command() {
        let design = "## 1. Other\n| variable | default |\n|---|---|\n| `X` | 1 |\n\
            ## 2. Demo\n\ntext\n\n| variable | default | meaning |\n|---|---|---|\n\
            | `DEMO_CFG_BATCH_SIZE` | 10 | m |\n| `DEMO_CFG_ENABLED` / `DEMO_CFG_URL` | true / `redis://h:1/0` | m |\n\
            | `DEMO_CFG_PASSWORD` | – | env only |\n| `DEMO_CFG_LOG` | `json` | m |\n\nafter\n";
        let cmd = Knobs::command();
        assert_eq!(
            knob_table_problems(design, "Demo", &cmd),
            Vec::<String>::new()
        );
        let wrong = design.replace("| 10 |", "| 11 |").replace(
            "| `DEMO_CFG_LOG` | `json` | m |\n",
            "| `DEMO_CFG_LOGS` | – | m |\n",
        );
        assert_eq!(
            knob_table_problems(&wrong, "Demo", &cmd),
            [
                "DEMO_CFG_BATCH_SIZE: the table says 11, --help says 10",
                "DEMO_CFG_LOGS: in the table, but demo does not read it",
                "DEMO_CFG_LOG: demo reads it, the table lacks it",
            ]
        );
    }

    #[test]
    fn a_password_in_a_flag_is_refused_naming_the_variable_without_echoing_it() {
        let err = refuse_secret_flag("REDIS_URL", "redis://:hunter2@h:6379/0")
            .expect_err("a password on the command line");
        let text = err.to_string();
        assert!(
            text.starts_with("--redis-url carries a password: command-line arguments are visible"),
            "{text}"
        );
        assert!(
            text.contains("pass the value through the environment as REDIS_URL"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(refuse_secret_flag("REDIS_URL", "redis://h:6379/0"), Ok(()));
    }

    #[test]
    fn a_flag_names_its_variable() {
        assert_eq!(env_var_of_flag("batch-size"), "BATCH_SIZE");
    }
}

//! Configuration of `dataflow-summary`: env first, CLI flags as overrides, validated once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use service::config::ConfigError;

fn default_raw_url() -> String {
    format!("az://{}", model::RAW_CONTAINER)
}

fn default_standard_url() -> String {
    format!("az://{}", model::STANDARD_CONTAINER)
}

fn default_timeout() -> u64 {
    300
}

/// The environment, one field per variable (lower-case names).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Raw container.
    #[serde(default = "default_raw_url")]
    pub raw_url: String,
    /// Standard container.
    #[serde(default = "default_standard_url")]
    pub standard_url: String,
    /// Simulator manifest; without it the summary covers every blob.
    #[serde(default)]
    pub manifest_path: Option<PathBuf>,
    /// How long to wait for the pipeline to settle.
    #[serde(default = "default_timeout")]
    pub summary_timeout_secs: u64,
}

/// Compare a simulator run (its manifest) with what landed in raw and standard; exit 1 when
/// something is missing, duplicated or misclassified. Every flag overrides its env variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "dataflow-summary", version)]
pub struct Cli {
    /// Raw container URL (az://C, file:///P). Default az://raw. [env: RAW_URL]
    #[arg(long)]
    pub raw_url: Option<String>,
    /// Standard container URL. Default az://standard. [env: STANDARD_URL]
    #[arg(long)]
    pub standard_url: Option<String>,
    /// Simulator manifest (JSON); scopes every check to its offsets. Default: none, check every blob. [env: MANIFEST_PATH]
    #[arg(long, alias = "manifest")]
    pub manifest_path: Option<PathBuf>,
    /// Seconds to wait for every record to land and every blob to be transformed. Default 300. [env: SUMMARY_TIMEOUT_SECS]
    #[arg(long)]
    pub summary_timeout_secs: Option<u64>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Raw container URL.
    pub raw_url: String,
    /// Standard container URL.
    pub standard_url: String,
    /// Manifest file.
    pub manifest_path: Option<PathBuf>,
    /// Wait limit.
    pub timeout: Duration,
}

impl Settings {
    /// Merges the CLI over the environment and validates.
    pub fn merge(env: Config, cli: Cli) -> Result<Settings, ConfigError> {
        let timeout = cli.summary_timeout_secs.unwrap_or(env.summary_timeout_secs);
        if timeout == 0 {
            return Err(ConfigError::invalid(
                "SUMMARY_TIMEOUT_SECS",
                "must be at least 1 second",
            ));
        }
        Ok(Settings {
            raw_url: cli.raw_url.unwrap_or(env.raw_url),
            standard_url: cli.standard_url.unwrap_or(env.standard_url),
            manifest_path: cli.manifest_path.or(env.manifest_path),
            timeout: Duration::from_secs(timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_maps_to_an_env_key_and_back() {
        let keys = service::config::env_keys::<Config>();
        let flags: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help" && *l != "version")
            .map(service::config::env_var_of_flag)
            .collect();
        assert_eq!(
            flags.len(),
            keys.len(),
            "flags {flags:?} vs env keys {keys:?}"
        );
        for k in &keys {
            assert!(flags.contains(k), "{k} has no flag");
        }
        for a in Cli::command()
            .get_arguments()
            .filter(|a| a.get_long().is_some_and(|l| l != "help" && l != "version"))
        {
            let var = service::config::env_var_of_flag(a.get_long().expect("long"));
            let help = a.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(
                help.ends_with(&format!("[env: {var}]")),
                "--{}: {help}",
                a.get_long().expect("long")
            );
        }
    }

    #[test]
    fn zero_timeout_is_rejected_naming_the_variable() {
        let env: Config =
            service::config::from_iter([("SUMMARY_TIMEOUT_SECS".to_owned(), "0".to_owned())])
                .expect("parses");
        let err = Settings::merge(env, Cli::parse_from(["dataflow-summary"])).expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("SUMMARY_TIMEOUT_SECS is invalid"),
            "{err}"
        );
    }

    #[test]
    fn flags_override_the_environment() {
        let env: Config =
            service::config::from_iter([("MANIFEST_PATH".to_owned(), "a.json".to_owned())])
                .expect("parses");
        let s = Settings::merge(
            env,
            Cli::parse_from(["x", "--manifest", "b.json", "--raw-url", "file:///r"]),
        )
        .expect("valid");
        assert_eq!(s.manifest_path, Some(PathBuf::from("b.json")));
        assert_eq!(
            (s.raw_url.as_str(), s.standard_url.as_str()),
            ("file:///r", "az://standard")
        );
        assert_eq!(s.timeout, Duration::from_secs(300));
    }
}

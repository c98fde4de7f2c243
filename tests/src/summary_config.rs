//! Configuration of `dataflow-summary`: the knobs ([`Config`]: flags over environment variables
//! over defaults, each declared once; see `service::config`), validated once into [`Settings`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use service::config::ConfigError;

/// The exit statuses, shown by `--help`.
pub const EXIT_CODES: &str = "\
Exit status:
  0  both verdicts OK
  1  pipeline FAILED: an offset of the manifest's ranges is missing or duplicated in raw or the
     tables, a blob is untransformed or poisoned, a row count disagrees with raw (or with a
     manifest that confirmed every record), a bad record is not dead-lettered (the producer
     verdict may have failed too)
  2  the pipeline did not settle within --summary-timeout-secs
  3  producer only: the pipeline kept its promise, but the simulator's manifest disagrees with
     what Kafka holds (it confirmed fewer deliveries than its offset ranges hold, e.g. timed-out
     delivery reports of stored records, retries; or it saw deliveries fail)";

/// Compare a simulator run (its manifest) with what landed in raw and standard; exit 1 when
/// something is missing, duplicated or misclassified. Every flag overrides its env variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "dataflow-summary", version, after_help = EXIT_CODES)]
pub struct Config {
    /// Raw container URL (az://C, file:///P).
    #[arg(long, env, default_value_t = format!("az://{}", model::RAW_CONTAINER))]
    pub raw_url: String,
    /// Standard container URL.
    #[arg(long, env, default_value_t = format!("az://{}", model::STANDARD_CONTAINER))]
    pub standard_url: String,
    /// Simulator manifest (JSON); scopes every check to its offsets. Unset: check every blob.
    #[arg(long, env, alias = "manifest")]
    pub manifest_path: Option<PathBuf>,
    /// Seconds to wait for every record to land and every blob to be transformed.
    #[arg(long, env, default_value_t = 300)]
    pub summary_timeout_secs: u64,
}

impl Config {
    /// Checks every knob once.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        if self.summary_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "SUMMARY_TIMEOUT_SECS",
                "must be at least 1 second",
            ));
        }
        Ok(Settings {
            raw_url: self.raw_url,
            standard_url: self.standard_url,
            manifest_path: self.manifest_path,
            timeout: Duration::from_secs(self.summary_timeout_secs),
        })
    }
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
    /// Settings from the command line and the environment, as the binary starts.
    pub fn from_args() -> Result<Settings, ConfigError> {
        service::config::parse::<Config>()?.validate()
    }

    /// Settings from `KEY=VALUE` pairs alone (tests; the binary uses [`Settings::from_args`]).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        service::config::from_vars::<Config, _, _, _>(vars)?.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_flag_is_a_variable_and_help_names_it() {
        assert_eq!(
            service::config::arg_env_keys::<Config>(),
            [
                "RAW_URL",
                "STANDARD_URL",
                "MANIFEST_PATH",
                "SUMMARY_TIMEOUT_SECS"
            ]
        );
        let cmd = service::config::command::<Config>();
        let help = cmd.clone().render_long_help().to_string();
        for a in cmd.get_arguments() {
            let Some(var) = a.get_env().and_then(|v| v.to_str()) else {
                assert!(["help", "version"].contains(&a.get_id().as_str()), "{a}");
                continue;
            };
            let flag = a
                .get_long()
                .map(|l| l.replace('-', "_").to_ascii_uppercase());
            assert_eq!(flag.as_deref(), Some(var));
            assert!(
                help.contains(&format!("[env: {var}]")),
                "--help lacks {var}"
            );
        }
        assert!(help.contains("Exit status:"), "{help}");
    }

    #[test]
    fn zero_timeout_is_rejected_naming_the_variable() {
        let err = Settings::from_vars([("SUMMARY_TIMEOUT_SECS", "0")]).expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("SUMMARY_TIMEOUT_SECS is invalid: must be at least 1 second"),
            "{err}"
        );
    }

    #[test]
    fn defaults_and_variables() {
        let s = Settings::from_vars([("MANIFEST_PATH", "")]).expect("valid");
        assert_eq!(
            (s.raw_url.as_str(), s.standard_url.as_str()),
            ("az://raw", "az://standard")
        );
        assert_eq!(s.manifest_path, None);
        assert_eq!(s.timeout, Duration::from_secs(300));
        let s = Settings::from_vars([("MANIFEST_PATH", "a.json")]).expect("valid");
        assert_eq!(s.manifest_path, Some(PathBuf::from("a.json")));
    }

    #[test]
    fn flags_override_the_environment() {
        let base = BTreeMap::from([("MANIFEST_PATH".to_owned(), "a.json".to_owned())]);
        let argv = ["x", "--manifest", "b.json", "--raw-url", "file:///r"];
        let s = service::config::parse_from_over::<Config, _, _>(argv, &base)
            .expect("parses")
            .validate()
            .expect("valid");
        assert_eq!(s.manifest_path, Some(PathBuf::from("b.json")));
        assert_eq!(s.raw_url, "file:///r");
    }
}

//! Typed configuration from the environment.
//!
//! Each service declares one `serde::Deserialize` struct whose field names are the lower-case
//! environment variable names (`batch_size` ← `BATCH_SIZE`), with `#[serde(default = ...)]` for
//! optional knobs. [`from_env`] reads it with envy and turns envy's errors into messages that
//! name the variable and say how to fix it. [`env_keys`] lists the variables a config accepts,
//! so env files and compose files can be checked against the code, not against a hand-kept list.

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, Visitor};

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

/// Reads `T` from the process environment.
pub fn from_env<T: DeserializeOwned>() -> Result<T, ConfigError> {
    from_iter(std::env::vars())
}

/// Reads `T` from the given variables (tests use this instead of mutating the environment).
pub fn from_iter<T, I>(vars: I) -> Result<T, ConfigError>
where
    T: DeserializeOwned,
    I: IntoIterator<Item = (String, String)>,
{
    // Empty values mean "unset", as in env files where `VAR=` documents an optional knob.
    let vars = vars.into_iter().filter(|(_, v)| !v.is_empty());
    envy::from_iter(vars).map_err(|e| match e {
        envy::Error::MissingValue(field) => ConfigError::Missing {
            var: field.to_uppercase(),
        },
        envy::Error::Custom(msg) => {
            // envy says "... provided by KEY" for parse errors.
            let var = msg
                .rsplit_once("provided by ")
                .map(|(_, k)| k.trim().to_uppercase())
                .unwrap_or_else(|| "configuration".to_owned());
            ConfigError::Invalid { var, problem: msg }
        }
    })
}

/// The environment variable names `T` reads, upper-case, in declaration order.
pub fn env_keys<T: DeserializeOwned>() -> Vec<String> {
    struct Probe(Vec<String>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = fields.iter().map(|f| f.to_uppercase()).collect();
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut probe = Probe(Vec::new());
    let _ = T::deserialize(&mut probe);
    probe.0
}

/// The environment variable a CLI flag overrides: `--batch-size` ↔ `BATCH_SIZE`. Every binary's
/// flags follow this rule, so `--help` and the env files name the same knob.
pub fn env_var_of_flag(long_flag: &str) -> String {
    long_flag.replace('-', "_").to_uppercase()
}

/// Deserializes a comma-separated list (`KAFKA_TOPICS=a,b`) into `Vec<String>`.
pub fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok(s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Demo {
        kafka_brokers: String,
        #[serde(default = "ten")]
        batch_size: usize,
        #[serde(default, deserialize_with = "comma_list")]
        kafka_topics: Vec<String>,
    }
    fn ten() -> usize {
        10
    }

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn missing_required_variable_is_named() {
        let err = from_iter::<Demo, _>(vars(&[])).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "KAFKA_BROKERS is not set: set KAFKA_BROKERS in the environment (see env/local.env and --help)"
        );
    }

    #[test]
    fn invalid_value_names_the_variable() {
        let err = from_iter::<Demo, _>(vars(&[("KAFKA_BROKERS", "b"), ("BATCH_SIZE", "lots")]))
            .expect_err("invalid");
        assert!(
            err.to_string().starts_with("BATCH_SIZE is invalid"),
            "{err}"
        );
    }

    #[test]
    fn parses_defaults_and_lists() {
        let d: Demo = from_iter(vars(&[
            ("KAFKA_BROKERS", "b"),
            ("KAFKA_TOPICS", "x, y,"),
            ("BATCH_SIZE", ""),
        ]))
        .expect("ok");
        assert_eq!(d.kafka_brokers, "b");
        assert_eq!(
            (d.batch_size, d.kafka_topics),
            (10, vec!["x".to_owned(), "y".to_owned()])
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

    #[test]
    fn lists_the_variables_a_config_reads() {
        assert_eq!(
            env_keys::<Demo>(),
            ["KAFKA_BROKERS", "BATCH_SIZE", "KAFKA_TOPICS"]
        );
    }
}

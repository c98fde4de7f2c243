//! The worker's configuration: the knobs ([`Config`]: flags over environment variables over
//! defaults, each declared once; see `service::config`), validated once into [`Settings`], a
//! type that can only hold a usable configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Parser};
use service::config::ConfigError;
use service::secret::Secret;
use service::telemetry::LogFormat;

/// Lands Kafka topics exactly once as gzipped JSON-lines batches in the raw container, and
/// expires finished games' Redis keys.
///
/// Every flag overrides the environment variable named in brackets (an empty variable counts as
/// unset). `KAFKA_SASL_PASSWORD` is read from the environment only, and a password or SAS
/// token in `--redis-url` or `--raw-url` is refused (set `REDIS_URL` / `RAW_URL` instead).
#[derive(Debug, Clone, Parser)]
#[command(name = "worker", version, about, long_about = None)]
pub struct Config {
    /// Kafka bootstrap servers, host:port[,host:port]. Required.
    #[arg(long, env)]
    pub kafka_brokers: Option<String>,
    /// Consumer group, shared by every worker process.
    #[arg(long, env, default_value = "superhero_sim")]
    pub kafka_group_id: String,
    /// Comma-separated topics to land.
    #[arg(long, env, default_value_t = format!("{},{}", model::TOPIC_LOBBY, model::TOPIC_GAME))]
    pub kafka_topics: String,
    /// plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(long, env, default_value = "plaintext")]
    pub kafka_security_protocol: String,
    /// SASL mechanism, e.g. PLAIN or SCRAM-SHA-512 (needed with sasl_*).
    #[arg(long, env)]
    pub kafka_sasl_mechanism: Option<String>,
    /// SASL user name (needed with sasl_*).
    #[arg(long, env)]
    pub kafka_sasl_username: Option<String>,
    /// SASL password (needed with sasl_*): a secret, so env only (hidden, refused as a flag).
    #[arg(long, env, hide = true)]
    pub kafka_sasl_password: Option<Secret>,
    /// Group session timeout in ms: how soon a silent worker's partitions move to another.
    #[arg(long, env, default_value_t = 10_000)]
    pub kafka_session_timeout_ms: u64,
    /// Records per batch.
    #[arg(long, env, default_value_t = 1000)]
    pub batch_size: usize,
    /// Uncompressed bytes per batch; a single bigger record lands alone.
    #[arg(long, env, default_value_t = 8 * 1024 * 1024)]
    pub batch_max_bytes: usize,
    /// Longest wait in ms after a batch's first record before it lands.
    #[arg(long, env, default_value_t = 5000)]
    pub batch_max_wait_ms: u64,
    /// Uncompressed bytes buffered across partitions before fetching pauses.
    #[arg(long, env, default_value_t = 64 * 1024 * 1024)]
    pub buffer_max_bytes: usize,
    /// Gzip level 0-9 (1: fastest; ~10x on simulator logs, level 2 ~14x).
    // Measured with the zlib-rs backend (docs/BENCHMARKS.md, gzip-level table): behind a backlog
    // gzip is the worker's largest CPU cost, and level 1 (zlib-rs's "quick" strategy) lands
    // ~5-10 % more records/s at BATCH_SIZE 10 000 than level 2 for blobs ~33 % bigger; levels 6
    // and 9 land clearly slower. Raise it where stored bytes cost more than worker CPU.
    #[arg(long, env, default_value_t = 1)]
    pub gzip_level: u32,
    /// Uploads in flight, at most one per partition.
    #[arg(long, env, default_value_t = 4)]
    pub upload_concurrency: usize,
    /// Raw container URL: az://CONTAINER, file:///ABS/PATH or memory://; one with a SAS token only through the environment.
    #[arg(long, env, default_value = "az://raw")]
    pub raw_url: String,
    /// Redis URL, redis://host:port/db; one with a password only through the environment.
    #[arg(long, env, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: Secret,
    /// Expire finished games' Redis keys.
    #[arg(long, env, default_value_t = true, action = ArgAction::Set)]
    pub cleanup_enabled: bool,
    /// TTL in seconds for cleaned Redis keys.
    #[arg(long, env, default_value_t = 30)]
    pub redis_expiry: u64,
    /// Listen address of /metrics, /healthz, /readyz.
    #[arg(long, env, default_value = "127.0.0.1:9464")]
    pub metrics_addr: String,
    /// Time in ms to flush and commit after SIGTERM/SIGINT.
    #[arg(long, env, default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
    /// Log format: json or text.
    #[arg(long, env, default_value = "json")]
    pub log_format: LogFormat,
    /// Run as a daemon (true) or land one pass and exit (false, or --once).
    #[arg(long, env, default_value_t = true, action = ArgAction::Set)]
    pub batch_continuous: bool,
    /// Land one pass and exit (BATCH_CONTINUOUS=false): every assigned partition up to the high watermark seen at its assignment, then commit and print a JSON summary.
    #[arg(long)]
    pub once: bool,
    /// Bound a pass: stop routing after this many records; 0 means no bound.
    #[arg(long, env, default_value_t = 0, visible_alias = "max-records")]
    pub pass_max_records: u64,
    /// Bound a pass: stop after this many seconds; 0 means no bound.
    #[arg(long, env, default_value_t = 0, visible_alias = "max-seconds")]
    pub pass_max_seconds: u64,
    /// A pass fails (exit 3) when no partition is assigned within this many ms.
    #[arg(long, env, default_value_t = 30_000)]
    pub pass_assign_timeout_ms: u64,
    /// How long a pass keeps taking a partition's records after reaching the high watermark it saw at assignment, in ms (brokers such as Tansu report it below the log end).
    #[arg(long, env, default_value_t = 1000)]
    pub pass_catch_up_ms: u64,
    /// Partition assignment: cooperative-sticky (incremental: only moved partitions stop) or range, roundrobin, range,roundrobin (eager: every membership change stops every partition); the same kind on every worker of a group.
    #[arg(long, env, default_value = "cooperative-sticky")]
    pub kafka_assignment_strategy: String,
    /// Metrics pushed to Application Insights (on Azure, where nothing scrapes `/metrics`).
    #[command(flatten)]
    pub metrics_export: service::appinsights::ExportArgs,
}

impl Config {
    /// Checks every knob once and returns settings that can only be valid.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let metrics_export = self.metrics_export.validate("worker")?;
        let brokers = self.kafka_brokers.filter(|b| !b.trim().is_empty());
        let brokers = brokers.ok_or_else(|| ConfigError::Missing {
            var: "KAFKA_BROKERS".to_owned(),
        })?;
        let topics: Vec<String> = (self.kafka_topics.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        if self.kafka_group_id.trim().is_empty() {
            return Err(ConfigError::invalid("KAFKA_GROUP_ID", "must not be empty"));
        }
        if topics.is_empty() {
            return Err(ConfigError::invalid(
                "KAFKA_TOPICS",
                "names no topic (expected e.g. lib.server.lobby,lib.server.game)",
            ));
        }
        let protocol = self.kafka_security_protocol.to_lowercase();
        let sasl = match protocol.as_str() {
            "plaintext" | "ssl" => None,
            "sasl_plaintext" | "sasl_ssl" => {
                let need = |v: Option<String>, var: &str| {
                    v.filter(|s| !s.is_empty()).ok_or_else(|| {
                        ConfigError::invalid(
                            var,
                            format!("must be set when KAFKA_SECURITY_PROTOCOL={protocol}"),
                        )
                    })
                };
                let mechanism = need(self.kafka_sasl_mechanism, "KAFKA_SASL_MECHANISM")?;
                let username = need(self.kafka_sasl_username, "KAFKA_SASL_USERNAME")?;
                let password = self.kafka_sasl_password.ok_or_else(|| {
                    ConfigError::invalid(
                        "KAFKA_SASL_PASSWORD",
                        format!("must be set when KAFKA_SECURITY_PROTOCOL={protocol}"),
                    )
                })?;
                Some(Sasl {
                    mechanism,
                    username,
                    password,
                })
            }
            other => {
                return Err(ConfigError::invalid(
                    "KAFKA_SECURITY_PROTOCOL",
                    format!("`{other}` is not one of plaintext, ssl, sasl_plaintext, sasl_ssl"),
                ));
            }
        };
        if self.kafka_session_timeout_ms < 1000 {
            return Err(ConfigError::invalid(
                "KAFKA_SESSION_TIMEOUT_MS",
                "must be at least 1000",
            ));
        }
        if self.batch_size == 0 {
            return Err(ConfigError::invalid("BATCH_SIZE", "must be at least 1"));
        }
        if self.batch_max_bytes < 1024 {
            return Err(ConfigError::invalid(
                "BATCH_MAX_BYTES",
                "must be at least 1024",
            ));
        }
        if self.batch_max_wait_ms == 0 {
            return Err(ConfigError::invalid(
                "BATCH_MAX_WAIT_MS",
                "must be at least 1",
            ));
        }
        if self.buffer_max_bytes < self.batch_max_bytes {
            return Err(ConfigError::invalid(
                "BUFFER_MAX_BYTES",
                format!(
                    "{} is smaller than BATCH_MAX_BYTES={}; the buffer must hold at least one batch",
                    self.buffer_max_bytes, self.batch_max_bytes
                ),
            ));
        }
        if self.gzip_level > 9 {
            return Err(ConfigError::invalid(
                "GZIP_LEVEL",
                format!("{} is not a gzip level (0-9)", self.gzip_level),
            ));
        }
        if self.upload_concurrency == 0 {
            return Err(ConfigError::invalid(
                "UPLOAD_CONCURRENCY",
                "must be at least 1",
            ));
        }
        let metrics_addr: SocketAddr = self.metrics_addr.parse().map_err(|_| {
            ConfigError::invalid(
                "METRICS_ADDR",
                format!(
                    "`{}` is not host:port (e.g. 127.0.0.1:9464)",
                    self.metrics_addr
                ),
            )
        })?;
        let cleanup = if self.cleanup_enabled {
            let url = self.redis_url.expose();
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                return Err(ConfigError::invalid(
                    "REDIS_URL",
                    format!(
                        "`{}` is not a redis://, rediss:// or unix:// URL (or set CLEANUP_ENABLED=false)",
                        service::secret::redact_url(url)
                    ),
                ));
            }
            if self.redis_expiry == 0 {
                return Err(ConfigError::invalid(
                    "REDIS_EXPIRY",
                    "must be at least 1 second",
                ));
            }
            Some(CleanupSettings {
                redis_url: self.redis_url,
                expiry_secs: self.redis_expiry,
            })
        } else {
            None
        };
        if self.pass_assign_timeout_ms < 1000 {
            return Err(ConfigError::invalid(
                "PASS_ASSIGN_TIMEOUT_MS",
                "must be at least 1000 (joining a group takes a few seconds)",
            ));
        }
        let assignment = AssignmentStrategy::parse(&self.kafka_assignment_strategy)?;
        let pass = (!self.batch_continuous || self.once).then(|| crate::pass::PassLimits {
            max_records: (self.pass_max_records > 0).then_some(self.pass_max_records),
            max_duration: (self.pass_max_seconds > 0)
                .then(|| Duration::from_secs(self.pass_max_seconds)),
            assign_timeout: Duration::from_millis(self.pass_assign_timeout_ms),
            catch_up: Duration::from_millis(self.pass_catch_up_ms),
        });
        Ok(Settings {
            pass,
            kafka: KafkaSettings {
                brokers,
                group_id: self.kafka_group_id,
                topics,
                security_protocol: protocol,
                sasl,
                session_timeout_ms: self.kafka_session_timeout_ms,
                assignment,
            },
            limits: crate::batch::Limits {
                max_records: self.batch_size,
                max_bytes: self.batch_max_bytes,
                max_wait: Duration::from_millis(self.batch_max_wait_ms),
            },
            buffer_max_bytes: self.buffer_max_bytes,
            gzip_level: self.gzip_level,
            upload_concurrency: self.upload_concurrency,
            raw_url: self.raw_url,
            cleanup,
            metrics_addr,
            metrics_export,
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
            log_format: self.log_format,
        })
    }
}

/// SASL credentials.
#[derive(Debug, Clone)]
pub struct Sasl {
    /// `sasl.mechanism`.
    pub mechanism: String,
    /// `sasl.username`.
    pub username: String,
    /// `sasl.password`.
    pub password: Secret,
}

/// How to reach Kafka.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Consumer group.
    pub group_id: String,
    /// Topics to land.
    pub topics: Vec<String>,
    /// Lower-case security protocol.
    pub security_protocol: String,
    /// Set for `sasl_*` protocols.
    pub sasl: Option<Sasl>,
    /// Group session timeout.
    pub session_timeout_ms: u64,
    /// `KAFKA_ASSIGNMENT_STRATEGY`.
    pub assignment: AssignmentStrategy,
}

/// How the group shares partitions among its members (`KAFKA_ASSIGNMENT_STRATEGY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentStrategy {
    /// Eager assignors (`range`, `roundrobin`, in order of preference): every membership change
    /// revokes every partition of every member, and consumption stops until the group has
    /// re-formed.
    Eager(Vec<EagerAssignor>),
    /// `cooperative-sticky` (KIP-429): a membership change revokes only the partitions that
    /// move; the others keep their epoch, their buffers and their fetch.
    CooperativeSticky,
}

/// An eager assignor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EagerAssignor {
    /// `range`.
    Range,
    /// `roundrobin`.
    RoundRobin,
}

impl AssignmentStrategy {
    const VAR: &'static str = "KAFKA_ASSIGNMENT_STRATEGY";

    fn parse(value: &str) -> Result<Self, ConfigError> {
        let names: Vec<String> = value
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let mut eager = Vec::new();
        for name in &names {
            match name.as_str() {
                "range" => eager.push(EagerAssignor::Range),
                "roundrobin" => eager.push(EagerAssignor::RoundRobin),
                "cooperative-sticky" if names.len() == 1 => {
                    return Ok(AssignmentStrategy::CooperativeSticky);
                }
                "cooperative-sticky" => {
                    return Err(ConfigError::invalid(
                        Self::VAR,
                        format!(
                            "`{value}` mixes cooperative-sticky with eager assignors, which librdkafka refuses; set cooperative-sticky alone"
                        ),
                    ));
                }
                other => {
                    return Err(ConfigError::invalid(
                        Self::VAR,
                        format!(
                            "`{other}` is not one of range, roundrobin (eager, comma-separated in order of preference) or cooperative-sticky"
                        ),
                    ));
                }
            }
        }
        if eager.is_empty() {
            return Err(ConfigError::invalid(
                Self::VAR,
                "names no assignor (expected range, roundrobin or cooperative-sticky)",
            ));
        }
        Ok(AssignmentStrategy::Eager(eager))
    }

    /// librdkafka's `partition.assignment.strategy` value.
    pub fn librdkafka_value(&self) -> String {
        match self {
            AssignmentStrategy::Eager(list) => list
                .iter()
                .map(|a| match a {
                    EagerAssignor::Range => "range",
                    EagerAssignor::RoundRobin => "roundrobin",
                })
                .collect::<Vec<_>>()
                .join(","),
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky".to_owned(),
        }
    }

    /// True for the incremental (cooperative) protocol.
    pub fn is_cooperative(&self) -> bool {
        matches!(self, AssignmentStrategy::CooperativeSticky)
    }
}

/// Redis clean-up, present only when enabled.
#[derive(Debug, Clone)]
pub struct CleanupSettings {
    /// The Redis URL (secret: may carry a password).
    pub redis_url: Secret,
    /// TTL given to cleaned keys.
    pub expiry_secs: u64,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Kafka connection and group.
    pub kafka: KafkaSettings,
    /// Flush triggers of one batch.
    pub limits: crate::batch::Limits,
    /// Memory cap across partitions.
    pub buffer_max_bytes: usize,
    /// 0-9.
    pub gzip_level: u32,
    /// Uploads in flight.
    pub upload_concurrency: usize,
    /// Raw container URL.
    pub raw_url: String,
    /// `None` when `CLEANUP_ENABLED=false`.
    pub cleanup: Option<CleanupSettings>,
    /// Ops listen address (port 0 picks one).
    pub metrics_addr: SocketAddr,
    /// Application Insights export, when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set.
    pub metrics_export: Option<service::appinsights::ExportSettings>,
    /// Drain time after a shutdown request.
    pub shutdown_grace: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// `Some` for a single pass (`BATCH_CONTINUOUS=false`, `--once`), `None` for the daemon.
    pub pass: Option<crate::pass::PassLimits>,
}

impl Settings {
    /// Settings from the command line and the environment, as the binary starts.
    pub fn from_args() -> Result<Settings, ConfigError> {
        service::config::parse::<Config>()?.validate()
    }

    /// Settings from `KEY=VALUE` pairs alone (tests and benches; the binary uses
    /// [`Settings::from_args`]).
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
    use clap::CommandFactory;

    fn settings(extra: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut vars = vec![("KAFKA_BROKERS", "127.0.0.1:9092")];
        vars.extend_from_slice(extra);
        Settings::from_vars(vars)
    }

    fn error_text(extra: &[(&str, &str)]) -> String {
        settings(extra).expect_err("config error").to_string()
    }

    /// The command line alone (and whatever the test process's environment sets).
    fn args(args: &[&str]) -> Result<Settings, ConfigError> {
        let argv = ["worker", "--kafka-brokers", "a:1"].iter().chain(args);
        service::config::parse_from::<Config, _, _>(argv)?.validate()
    }

    #[test]
    fn the_knob_table_in_the_design_is_the_command() {
        let design =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DESIGN.md"))
                .expect("docs/DESIGN.md");
        let problems = service::config::knob_table_problems(&design, "Worker", &Config::command());
        assert!(
            problems.is_empty(),
            "docs/DESIGN.md, worker knobs:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn only_the_sasl_password_is_env_only() {
        let cmd = Config::command();
        let hidden: Vec<&str> = cmd
            .get_arguments()
            .filter(|a| a.is_hide_set())
            .filter_map(|a| a.get_env()?.to_str())
            .collect();
        assert_eq!(hidden, ["KAFKA_SASL_PASSWORD"]);
        let err = args(&["--kafka-sasl-password", "hunter2"])
            .expect_err("refused")
            .to_string();
        assert!(
            err.starts_with("--kafka-sasl-password carries a secret"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn defaults_match_the_design() {
        let s = settings(&[]).expect("valid");
        assert_eq!(s.kafka.group_id, "superhero_sim");
        assert_eq!(s.kafka.topics, ["lib.server.lobby", "lib.server.game"]);
        assert_eq!(s.limits.max_records, 1000);
        assert_eq!(s.limits.max_bytes, 8 << 20);
        assert_eq!(s.limits.max_wait, Duration::from_secs(5));
        assert_eq!(s.buffer_max_bytes, 64 << 20);
        assert_eq!(s.upload_concurrency, 4);
        assert_eq!(s.raw_url, "az://raw");
        let c = s.cleanup.expect("cleanup on by default");
        assert_eq!(
            (c.redis_url.expose(), c.expiry_secs),
            ("redis://127.0.0.1:6379/0", 30)
        );
        assert_eq!(s.metrics_addr.to_string(), "127.0.0.1:9464");
        assert_eq!(s.shutdown_grace, Duration::from_secs(10));
    }

    #[test]
    fn missing_brokers_is_named() {
        let err = Settings::from_vars(Vec::<(String, String)>::new()).expect_err("error");
        assert!(
            err.to_string().starts_with("KAFKA_BROKERS is not set"),
            "{err}"
        );
    }

    #[test]
    fn invalid_values_name_their_variable() {
        assert!(
            error_text(&[("BATCH_SIZE", "0")])
                .starts_with("BATCH_SIZE is invalid: must be at least 1")
        );
        assert!(error_text(&[("BATCH_SIZE", "many")]).starts_with("BATCH_SIZE is invalid"));
        assert!(
            error_text(&[("GZIP_LEVEL", "11")])
                .starts_with("GZIP_LEVEL is invalid: 11 is not a gzip level")
        );
        assert!(error_text(&[("BUFFER_MAX_BYTES", "2048")]).starts_with(
            "BUFFER_MAX_BYTES is invalid: 2048 is smaller than BATCH_MAX_BYTES=8388608"
        ));
        assert!(
            error_text(&[("METRICS_ADDR", "localhost")]).starts_with("METRICS_ADDR is invalid")
        );
        assert!(
            error_text(&[("KAFKA_SECURITY_PROTOCOL", "tls")])
                .starts_with("KAFKA_SECURITY_PROTOCOL is invalid")
        );
        assert!(error_text(&[("KAFKA_TOPICS", " , ")]).starts_with("KAFKA_TOPICS is invalid"));
        assert!(
            error_text(&[("CLEANUP_ENABLED", "maybe")]).starts_with("CLEANUP_ENABLED is invalid")
        );
        assert!(
            error_text(&[("UPLOAD_CONCURRENCY", "0")]).starts_with("UPLOAD_CONCURRENCY is invalid")
        );
    }

    #[test]
    fn sasl_needs_credentials_and_never_prints_the_password() {
        let err = error_text(&[("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")]);
        assert!(
            err.starts_with(
                "KAFKA_SASL_MECHANISM is invalid: must be set when KAFKA_SECURITY_PROTOCOL=sasl_ssl"
            ),
            "{err}"
        );
        let s = settings(&[
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "PLAIN"),
            ("KAFKA_SASL_USERNAME", "u"),
            ("KAFKA_SASL_PASSWORD", "hunter2"),
        ])
        .expect("valid");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn redis_url_errors_are_redacted() {
        let err = error_text(&[("REDIS_URL", "http://:hunter2@h:1")]);
        assert!(err.starts_with("REDIS_URL is invalid"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let s =
            settings(&[("REDIS_URL", "http://x"), ("CLEANUP_ENABLED", "false")]).expect("valid");
        assert!(s.cleanup.is_none());
        assert!(
            !format!("{:?}", settings(&[("REDIS_URL", "redis://:hunter2@h:1/0")]))
                .contains("hunter2")
        );
    }

    #[test]
    fn a_password_bearing_redis_url_flag_is_refused_naming_redis_url() {
        let err = args(&["--redis-url", "redis://:hunter2@h:6379/0"])
            .expect_err("refused")
            .to_string();
        assert!(err.starts_with("--redis-url carries a password"), "{err}");
        assert!(
            err.contains("pass the value through the environment as REDIS_URL"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");

        let sas = "https://acct.blob.core.windows.net/raw?sv=2024-01-01&sig=c2VjcmV0";
        let err = args(&["--raw-url", sas]).expect_err("refused").to_string();
        assert!(
            err.starts_with("--raw-url carries a query parameter"),
            "{err}"
        );
        assert!(err.contains("as RAW_URL"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");

        // Without a credential the flags still work; with one, the environment is the way.
        let s = args(&["--redis-url", "redis://h:6379/1"]).expect("no secret");
        assert_eq!(
            s.cleanup.expect("cleanup").redis_url.expose(),
            "redis://h:6379/1"
        );
        let s = settings(&[("REDIS_URL", "redis://:hunter2@h:6379/0")]).expect("env is fine");
        assert!(s.cleanup.is_some());
    }

    #[test]
    fn flags_set_the_knobs() {
        let s = args(&[
            "--batch-size",
            "20",
            "--kafka-topics",
            "x,y",
            "--cleanup-enabled",
            "false",
            "--kafka-assignment-strategy",
            "cooperative-sticky",
        ])
        .expect("valid");
        assert_eq!(s.limits.max_records, 20);
        assert_eq!(s.kafka.topics, ["x", "y"]);
        assert!(s.cleanup.is_none());
        assert_eq!(s.kafka.brokers, "a:1");
        assert!(s.kafka.assignment.is_cooperative());
        assert!(s.pass.is_none());
        let pass = args(&["--once", "--max-records", "7"]).expect("valid").pass;
        assert_eq!(pass.expect("a pass").max_records, Some(7));
    }

    #[test]
    fn assignment_strategy_is_cooperative_sticky_unless_eager_assignors_are_asked_for() {
        let strategy = |v: &str| {
            settings(&[("KAFKA_ASSIGNMENT_STRATEGY", v)])
                .map(|s| s.kafka.assignment.librdkafka_value())
        };
        let default = settings(&[]).expect("valid").kafka.assignment;
        assert_eq!(default, AssignmentStrategy::CooperativeSticky);
        assert!(default.is_cooperative());
        let range = settings(&[("KAFKA_ASSIGNMENT_STRATEGY", "range")])
            .expect("valid")
            .kafka
            .assignment;
        assert_eq!(range, AssignmentStrategy::Eager(vec![EagerAssignor::Range]));
        assert!(!range.is_cooperative());
        assert_eq!(
            strategy(" Range , roundrobin").expect("valid"),
            "range,roundrobin"
        );
        let cooperative = settings(&[("KAFKA_ASSIGNMENT_STRATEGY", "cooperative-sticky")])
            .expect("valid")
            .kafka
            .assignment;
        assert!(cooperative.is_cooperative());
        assert_eq!(cooperative.librdkafka_value(), "cooperative-sticky");

        let err = strategy("range,cooperative-sticky")
            .expect_err("mixed")
            .to_string();
        assert!(
            err.starts_with(
                "KAFKA_ASSIGNMENT_STRATEGY is invalid: `range,cooperative-sticky` mixes"
            ),
            "{err}"
        );
        let err = strategy("sticky").expect_err("unknown").to_string();
        assert!(
            err.starts_with("KAFKA_ASSIGNMENT_STRATEGY is invalid: `sticky` is not one of"),
            "{err}"
        );
        assert!(strategy(" , ").is_err());
    }
}

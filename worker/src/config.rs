//! The worker's configuration: environment first ([`Config`], read with
//! [`service::config::from_env`]), CLI flags ([`Cli`]) as overrides, validated once into
//! [`Settings`], a type that can only hold a usable configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use service::config::{ConfigError, comma_list};
use service::secret::Secret;
use service::telemetry::LogFormat;

/// Environment configuration. Field names are the lower-case variable names.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `KAFKA_BROKERS`: bootstrap servers, `host:port[,host:port]` (required; `--kafka-brokers`
    /// may supply it, so emptiness is checked in [`Config::validate`]).
    #[serde(default)]
    pub kafka_brokers: String,
    /// `KAFKA_GROUP_ID`: consumer group shared by every worker process.
    #[serde(default = "default_group_id")]
    pub kafka_group_id: String,
    /// `KAFKA_TOPICS`: comma-separated topics to land.
    #[serde(default = "default_topics", deserialize_with = "comma_list")]
    pub kafka_topics: Vec<String>,
    /// `KAFKA_SECURITY_PROTOCOL`: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[serde(default = "default_security_protocol")]
    pub kafka_security_protocol: String,
    /// `KAFKA_SASL_MECHANISM`: e.g. PLAIN, SCRAM-SHA-256 (needed with sasl_*).
    #[serde(default)]
    pub kafka_sasl_mechanism: Option<String>,
    /// `KAFKA_SASL_USERNAME` (needed with sasl_*).
    #[serde(default)]
    pub kafka_sasl_username: Option<String>,
    /// `KAFKA_SASL_PASSWORD` (secret; env only).
    #[serde(default)]
    pub kafka_sasl_password: Option<Secret>,
    /// `KAFKA_SESSION_TIMEOUT_MS`: how long the group waits for a silent member before handing
    /// its partitions to another worker.
    #[serde(default = "default_session_timeout_ms")]
    pub kafka_session_timeout_ms: u64,
    /// `BATCH_SIZE`: records per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `BATCH_MAX_BYTES`: uncompressed bytes per batch.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// `BATCH_MAX_WAIT_MS`: longest a batch waits after its first record.
    #[serde(default = "default_batch_max_wait_ms")]
    pub batch_max_wait_ms: u64,
    /// `BUFFER_MAX_BYTES`: uncompressed bytes held in memory across all partitions.
    #[serde(default = "default_buffer_max_bytes")]
    pub buffer_max_bytes: usize,
    /// `GZIP_LEVEL`: 0 (store) to 9 (smallest).
    #[serde(default = "default_gzip_level")]
    pub gzip_level: u32,
    /// `UPLOAD_CONCURRENCY`: uploads in flight (at most one per partition).
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
    /// `RAW_URL`: where batches land (`az://raw`, `file:///path`, `memory://`).
    #[serde(default = "default_raw_url")]
    pub raw_url: String,
    /// `REDIS_URL`: the simulator's Redis (may carry a password, so it is a secret).
    #[serde(default = "default_redis_url")]
    pub redis_url: Secret,
    /// `CLEANUP_ENABLED`: expire finished games' Redis keys.
    #[serde(default = "default_true")]
    pub cleanup_enabled: bool,
    /// `REDIS_EXPIRY`: TTL in seconds given to cleaned keys.
    #[serde(default = "default_redis_expiry")]
    pub redis_expiry: u64,
    /// `METRICS_ADDR`: listen address of `/metrics`, `/healthz`, `/readyz`.
    #[serde(default = "default_metrics_addr")]
    pub metrics_addr: String,
    /// `SHUTDOWN_GRACE_MS`: time allowed to flush and commit after SIGTERM.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// `LOG_FORMAT`: json or text.
    #[serde(default)]
    pub log_format: LogFormat,
    /// `BATCH_CONTINUOUS`: run as a daemon (true) or land one pass up to the high watermarks
    /// seen at assignment and exit (false; `--once`).
    #[serde(default = "default_true")]
    pub batch_continuous: bool,
    /// `PASS_MAX_RECORDS`: a pass stops routing after this many records (0: no bound).
    #[serde(default)]
    pub pass_max_records: u64,
    /// `PASS_MAX_SECONDS`: a pass stops after this many seconds (0: no bound).
    #[serde(default)]
    pub pass_max_seconds: u64,
    /// `PASS_ASSIGN_TIMEOUT_MS`: a pass fails if no partition is assigned within this long.
    #[serde(default = "default_pass_assign_timeout_ms")]
    pub pass_assign_timeout_ms: u64,
    /// `PASS_CATCH_UP_MS`: how long a pass keeps taking a partition's records after reaching the
    /// high watermark it saw at assignment (brokers such as Tansu report it below the log end).
    #[serde(default = "default_pass_catch_up_ms")]
    pub pass_catch_up_ms: u64,
    /// `KAFKA_ASSIGNMENT_STRATEGY`: how the group shares partitions (librdkafka's
    /// `partition.assignment.strategy`): eager `range`, `roundrobin` (or both, in order of
    /// preference), or the incremental `cooperative-sticky`.
    #[serde(default = "default_assignment_strategy")]
    pub kafka_assignment_strategy: String,
}

fn default_assignment_strategy() -> String {
    "range".to_owned()
}

fn default_pass_catch_up_ms() -> u64 {
    1000
}

fn default_pass_assign_timeout_ms() -> u64 {
    30_000
}
fn default_group_id() -> String {
    "superhero_sim".to_owned()
}
fn default_topics() -> Vec<String> {
    vec![model::TOPIC_LOBBY.to_owned(), model::TOPIC_GAME.to_owned()]
}
fn default_security_protocol() -> String {
    "plaintext".to_owned()
}
fn default_session_timeout_ms() -> u64 {
    10_000
}
fn default_batch_size() -> usize {
    1000
}
fn default_batch_max_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_batch_max_wait_ms() -> u64 {
    5000
}
fn default_buffer_max_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_gzip_level() -> u32 {
    // Measured with the zlib-rs backend (docs/BENCHMARKS.md, gzip-level table): behind a backlog
    // gzip is the worker's largest CPU cost, and level 1 (zlib-rs's "quick" strategy) lands
    // ~5-10 % more records/s at BATCH_SIZE 10 000 than level 2 for blobs ~33 % bigger; levels 6
    // and 9 land clearly slower. Raise it where stored bytes cost more than worker CPU.
    1
}
fn default_upload_concurrency() -> usize {
    4
}
fn default_raw_url() -> String {
    "az://raw".to_owned()
}
fn default_redis_url() -> Secret {
    Secret::new("redis://127.0.0.1:6379/0")
}
fn default_true() -> bool {
    true
}
fn default_redis_expiry() -> u64 {
    30
}
fn default_metrics_addr() -> String {
    "127.0.0.1:9464".to_owned()
}
fn default_shutdown_grace_ms() -> u64 {
    10_000
}

/// Lands Kafka topics exactly once as gzipped JSON-lines batches in the raw container, and
/// expires finished games' Redis keys. Every flag overrides the environment variable named in
/// brackets; `KAFKA_SASL_PASSWORD` is read from the environment only, and a password or SAS
/// token in `--redis-url` or `--raw-url` is refused (set `REDIS_URL` / `RAW_URL` instead).
#[derive(Debug, Default, Parser)]
#[command(name = "worker", version, about, long_about = None)]
pub struct Cli {
    /// Kafka bootstrap servers, host:port[,host:port]. Required. [env: KAFKA_BROKERS]
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// Consumer group id (default superhero_sim). [env: KAFKA_GROUP_ID]
    #[arg(long)]
    pub kafka_group_id: Option<String>,
    /// Comma-separated topics (default lib.server.lobby,lib.server.game). [env: KAFKA_TOPICS]
    #[arg(long)]
    pub kafka_topics: Option<String>,
    /// plaintext, ssl, sasl_plaintext or sasl_ssl (default plaintext). [env: KAFKA_SECURITY_PROTOCOL]
    #[arg(long)]
    pub kafka_security_protocol: Option<String>,
    /// SASL mechanism, e.g. PLAIN or SCRAM-SHA-512 (no default). [env: KAFKA_SASL_MECHANISM]
    #[arg(long)]
    pub kafka_sasl_mechanism: Option<String>,
    /// SASL user name (no default). [env: KAFKA_SASL_USERNAME]
    #[arg(long)]
    pub kafka_sasl_username: Option<String>,
    /// Group session timeout in ms: how soon a dead worker's partitions move (default 10000). [env: KAFKA_SESSION_TIMEOUT_MS]
    #[arg(long)]
    pub kafka_session_timeout_ms: Option<u64>,
    /// Records per batch (default 1000). [env: BATCH_SIZE]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Uncompressed bytes per batch; a single bigger record lands alone (default 8388608). [env: BATCH_MAX_BYTES]
    #[arg(long)]
    pub batch_max_bytes: Option<usize>,
    /// Longest wait in ms after a batch's first record before it lands (default 5000). [env: BATCH_MAX_WAIT_MS]
    #[arg(long)]
    pub batch_max_wait_ms: Option<u64>,
    /// Uncompressed bytes buffered across partitions before fetching pauses (default 67108864). [env: BUFFER_MAX_BYTES]
    #[arg(long)]
    pub buffer_max_bytes: Option<usize>,
    /// Gzip level 0-9 (default 1: fastest; ~10x on simulator logs, level 2 ~14x). [env: GZIP_LEVEL]
    #[arg(long)]
    pub gzip_level: Option<u32>,
    /// Uploads in flight, at most one per partition (default 4). [env: UPLOAD_CONCURRENCY]
    #[arg(long)]
    pub upload_concurrency: Option<usize>,
    /// Raw container URL: az://CONTAINER, file:///ABS/PATH or memory:// (default az://raw); one with a SAS token only through the environment. [env: RAW_URL]
    #[arg(long)]
    pub raw_url: Option<String>,
    /// Redis URL, redis://host:port/db (default redis://127.0.0.1:6379/0); one with a password only through the environment. [env: REDIS_URL]
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Expire finished games' Redis keys: true or false (default true). [env: CLEANUP_ENABLED]
    #[arg(long)]
    pub cleanup_enabled: Option<bool>,
    /// TTL in seconds for cleaned Redis keys (default 30). [env: REDIS_EXPIRY]
    #[arg(long)]
    pub redis_expiry: Option<u64>,
    /// Listen address of /metrics, /healthz, /readyz (default 127.0.0.1:9464). [env: METRICS_ADDR]
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Time in ms to flush and commit after SIGTERM/SIGINT (default 10000). [env: SHUTDOWN_GRACE_MS]
    #[arg(long)]
    pub shutdown_grace_ms: Option<u64>,
    /// Log format: json or text (default json). [env: LOG_FORMAT]
    #[arg(long)]
    pub log_format: Option<LogFormat>,
    /// Run as a daemon (true) or land one pass and exit (false) (default true). [env: BATCH_CONTINUOUS]
    #[arg(long)]
    pub batch_continuous: Option<bool>,
    /// Land one pass and exit: every assigned partition up to the high watermark seen at its assignment, then commit and print a JSON summary. [env: BATCH_CONTINUOUS=false]
    #[arg(long)]
    pub once: bool,
    /// Bound a pass: stop routing after this many records; 0 means no bound (default 0). [env: PASS_MAX_RECORDS]
    #[arg(long, visible_alias = "max-records")]
    pub pass_max_records: Option<u64>,
    /// Bound a pass: stop after this many seconds; 0 means no bound (default 0). [env: PASS_MAX_SECONDS]
    #[arg(long, visible_alias = "max-seconds")]
    pub pass_max_seconds: Option<u64>,
    /// A pass fails (exit 3) when no partition is assigned within this many ms (default 30000). [env: PASS_ASSIGN_TIMEOUT_MS]
    #[arg(long)]
    pub pass_assign_timeout_ms: Option<u64>,
    /// How long a pass keeps taking a partition's records after its high watermark, in ms (default 1000). [env: PASS_CATCH_UP_MS]
    #[arg(long)]
    pub pass_catch_up_ms: Option<u64>,
    /// Partition assignment: range, roundrobin, range,roundrobin (eager: every membership change stops every partition) or cooperative-sticky (incremental: only moved partitions stop) (default range). [env: KAFKA_ASSIGNMENT_STRATEGY]
    #[arg(long)]
    pub kafka_assignment_strategy: Option<String>,
}

impl Config {
    /// Replaces every field the command line sets. A `--redis-url` or `--raw-url` carrying a
    /// credential (password, SAS token) is refused: those come from the environment only.
    pub fn merge(mut self, cli: Cli) -> Result<Self, ConfigError> {
        fn set<T>(slot: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(b) = cli.kafka_brokers {
            self.kafka_brokers = b;
        }
        set(&mut self.kafka_group_id, cli.kafka_group_id);
        if let Some(t) = cli.kafka_topics {
            self.kafka_topics = t
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        set(
            &mut self.kafka_security_protocol,
            cli.kafka_security_protocol,
        );
        if cli.kafka_sasl_mechanism.is_some() {
            self.kafka_sasl_mechanism = cli.kafka_sasl_mechanism;
        }
        if cli.kafka_sasl_username.is_some() {
            self.kafka_sasl_username = cli.kafka_sasl_username;
        }
        set(
            &mut self.kafka_session_timeout_ms,
            cli.kafka_session_timeout_ms,
        );
        set(&mut self.batch_size, cli.batch_size);
        set(&mut self.batch_max_bytes, cli.batch_max_bytes);
        set(&mut self.batch_max_wait_ms, cli.batch_max_wait_ms);
        set(&mut self.buffer_max_bytes, cli.buffer_max_bytes);
        set(&mut self.gzip_level, cli.gzip_level);
        set(&mut self.upload_concurrency, cli.upload_concurrency);
        for (var, value) in [("RAW_URL", &cli.raw_url), ("REDIS_URL", &cli.redis_url)] {
            if let Some(v) = value {
                service::config::refuse_secret_flag(var, v)?;
            }
        }
        set(&mut self.raw_url, cli.raw_url);
        set(&mut self.redis_url, cli.redis_url.map(Secret::new));
        set(&mut self.cleanup_enabled, cli.cleanup_enabled);
        set(&mut self.redis_expiry, cli.redis_expiry);
        set(&mut self.metrics_addr, cli.metrics_addr);
        set(&mut self.shutdown_grace_ms, cli.shutdown_grace_ms);
        set(&mut self.log_format, cli.log_format);
        set(&mut self.batch_continuous, cli.batch_continuous);
        if cli.once {
            self.batch_continuous = false;
        }
        set(&mut self.pass_max_records, cli.pass_max_records);
        set(&mut self.pass_max_seconds, cli.pass_max_seconds);
        set(&mut self.pass_assign_timeout_ms, cli.pass_assign_timeout_ms);
        set(&mut self.pass_catch_up_ms, cli.pass_catch_up_ms);
        set(
            &mut self.kafka_assignment_strategy,
            cli.kafka_assignment_strategy,
        );
        Ok(self)
    }

    /// Checks every knob once and returns settings that can only be valid.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        if self.kafka_brokers.trim().is_empty() {
            return Err(ConfigError::Missing {
                var: "KAFKA_BROKERS".to_owned(),
            });
        }
        if self.kafka_group_id.trim().is_empty() {
            return Err(ConfigError::invalid("KAFKA_GROUP_ID", "must not be empty"));
        }
        if self.kafka_topics.is_empty() {
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
        let pass = (!self.batch_continuous).then(|| crate::pass::PassLimits {
            max_records: (self.pass_max_records > 0).then_some(self.pass_max_records),
            max_duration: (self.pass_max_seconds > 0)
                .then(|| Duration::from_secs(self.pass_max_seconds)),
            assign_timeout: Duration::from_millis(self.pass_assign_timeout_ms),
            catch_up: Duration::from_millis(self.pass_catch_up_ms),
        });
        Ok(Settings {
            pass,
            kafka: KafkaSettings {
                brokers: self.kafka_brokers,
                group_id: self.kafka_group_id,
                topics: self.kafka_topics,
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
    /// Drain time after a shutdown request.
    pub shutdown_grace: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// `Some` for a single pass (`BATCH_CONTINUOUS=false`, `--once`), `None` for the daemon.
    pub pass: Option<crate::pass::PassLimits>,
}

impl Settings {
    /// Settings from `KEY=VALUE` pairs (tests and benches; the binary uses the environment).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let config: Config =
            service::config::from_iter(vars.into_iter().map(|(k, v)| (k.into(), v.into())))?;
        config.validate()
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

    #[test]
    fn every_flag_maps_to_an_env_key_and_back() {
        let keys = service::config::env_keys::<Config>();
        let flags: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help" && *l != "version")
            // `--once` is the shorthand of `--batch-continuous false`.
            .map(|l| {
                service::config::env_var_of_flag(if l == "once" { "batch-continuous" } else { l })
            })
            .collect();
        for f in &flags {
            assert!(keys.contains(f), "flag for {f} has no env key");
        }
        // Secrets are env-only: a password on the command line shows up in `ps`.
        let env_only = ["KAFKA_SASL_PASSWORD"];
        for k in &keys {
            assert!(
                flags.contains(k) || env_only.contains(&k.as_str()),
                "{k} has no flag"
            );
        }
    }

    #[test]
    fn every_flag_documents_its_env_var() {
        for arg in Cli::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let var = match long {
                "once" => "BATCH_CONTINUOUS=false".to_owned(),
                _ => service::config::env_var_of_flag(long),
            };
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.ends_with(&format!("[env: {var}]")), "--{long}: {help}");
        }
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
        let config: Config =
            service::config::from_iter([("KAFKA_BROKERS".to_owned(), "a:1".to_owned())])
                .expect("config");
        let cli = Cli::parse_from(["worker", "--redis-url", "redis://:hunter2@h:6379/0"]);
        let err = config.clone().merge(cli).expect_err("refused").to_string();
        assert!(err.starts_with("--redis-url carries a password"), "{err}");
        assert!(
            err.contains("pass the value through the environment as REDIS_URL"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");

        let sas = "https://acct.blob.core.windows.net/raw?sv=2024-01-01&sig=c2VjcmV0";
        let err = config
            .clone()
            .merge(Cli::parse_from(["worker", "--raw-url", sas]))
            .expect_err("refused")
            .to_string();
        assert!(
            err.starts_with("--raw-url carries a query parameter"),
            "{err}"
        );
        assert!(err.contains("as RAW_URL"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");

        // Without a credential the flags still work; with one, the environment is the way.
        let cli = Cli::parse_from(["worker", "--redis-url", "redis://h:6379/1"]);
        let s = config
            .merge(cli)
            .expect("no secret")
            .validate()
            .expect("valid");
        assert_eq!(
            s.cleanup.expect("cleanup").redis_url.expose(),
            "redis://h:6379/1"
        );
        let s = settings(&[("REDIS_URL", "redis://:hunter2@h:6379/0")]).expect("env is fine");
        assert!(s.cleanup.is_some());
    }

    #[test]
    fn flags_override_the_environment() {
        let config: Config = service::config::from_iter([
            ("KAFKA_BROKERS".to_owned(), "a:1".to_owned()),
            ("BATCH_SIZE".to_owned(), "10".to_owned()),
        ])
        .expect("config");
        let cli = Cli::parse_from([
            "worker",
            "--batch-size",
            "20",
            "--kafka-topics",
            "x,y",
            "--cleanup-enabled",
            "false",
        ]);
        let s = config
            .merge(cli)
            .expect("no secret in the flags")
            .validate()
            .expect("valid");
        assert_eq!(s.limits.max_records, 20);
        assert_eq!(s.kafka.topics, ["x", "y"]);
        assert!(s.cleanup.is_none());
        assert_eq!(s.kafka.brokers, "a:1");
    }

    #[test]
    fn assignment_strategy_is_eager_range_unless_cooperative_sticky_is_asked_for_alone() {
        let strategy = |v: &str| {
            settings(&[("KAFKA_ASSIGNMENT_STRATEGY", v)])
                .map(|s| s.kafka.assignment.librdkafka_value())
        };
        let default = settings(&[]).expect("valid").kafka.assignment;
        assert_eq!(
            default,
            AssignmentStrategy::Eager(vec![EagerAssignor::Range])
        );
        assert!(!default.is_cooperative());
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

        let config: Config =
            service::config::from_iter([("KAFKA_BROKERS".to_owned(), "a:1".to_owned())])
                .expect("config");
        let cli = Cli::parse_from([
            "worker",
            "--kafka-assignment-strategy",
            "cooperative-sticky",
        ]);
        let s = config
            .merge(cli)
            .expect("merged")
            .validate()
            .expect("valid");
        assert!(s.kafka.assignment.is_cooperative());
    }
}

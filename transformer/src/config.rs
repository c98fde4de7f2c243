//! Configuration: environment first ([`Config`], read with `service::config::from_env`), CLI
//! flags as overrides ([`Overrides`]), validated once into [`Settings`], which can only be valid.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use service::config::ConfigError;
use service::secret::Secret;
use service::telemetry::LogFormat;

use crate::delta::{StandardFormat, WriteId};
use crate::transform::{DEFAULT_ROW_GROUP_ROWS, TransformOptions};
use crate::writer::Compression;

/// The transformer's environment, one field per variable (`raw_url` ← `RAW_URL`).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Container of raw blobs.
    #[serde(default = "default_raw_url")]
    pub raw_url: String,
    /// Container for Parquet, dead letters, receipts, leases and poison entries.
    #[serde(default = "default_standard_url")]
    pub standard_url: String,
    /// Parquet compression: zstd, snappy or none (parsed in [`Settings::validate`], so the error
    /// names the variable).
    #[serde(default = "default_compression")]
    pub parquet_compression: String,
    /// Largest record value accepted; larger ones are dead (`value_too_large`).
    #[serde(default = "default_max_value_bytes")]
    pub max_value_bytes: usize,
    /// Rows per Parquet row group. One row group per model is in memory at a time, encoded and
    /// compressed (and written out early at `writer::ROW_GROUP_MAX_BYTES`), so memory does not
    /// grow with the blob.
    #[serde(default = "default_transform_row_group_rows")]
    pub transform_row_group_rows: usize,
    /// What `standard` holds: `delta` tables or plain `parquet` files (parsed in
    /// [`Settings::validate`]).
    #[serde(default = "default_standard_format")]
    pub standard_format: String,
    /// Delta mode: longest time staged blobs wait for their commit (watch, backfill).
    #[serde(default = "default_delta_commit_interval_ms")]
    pub delta_commit_interval_ms: u64,
    /// Watcher: how often to list the raw container.
    #[serde(default = "default_watch_poll_ms")]
    pub watch_poll_ms: u64,
    /// Watcher (and backfill): blobs processed at once.
    #[serde(default = "default_watch_concurrency")]
    pub watch_concurrency: usize,
    /// Watcher: failures of one blob version before it is poisoned.
    #[serde(default = "default_watch_max_attempts")]
    pub watch_max_attempts: u32,
    /// Watcher: first retry delay; doubles per failure, capped at 60 s.
    #[serde(default = "default_watch_backoff_ms")]
    pub watch_backoff_ms: u64,
    /// Watcher: only list raw names under this prefix.
    #[serde(default)]
    pub watch_prefix: Option<String>,
    /// Watcher: longest time between two full listings of the raw container (between them,
    /// each partition's next blob is probed by name every poll).
    #[serde(default = "default_watch_full_list_ms")]
    pub watch_full_list_ms: u64,
    /// Watcher: lifetime of a blob lease; renewed every third of it while the blob is worked on,
    /// so it bounds how long a blob claimed by a dead watcher waits for another one.
    #[serde(default = "default_watch_lease_ttl_ms")]
    pub watch_lease_ttl_ms: u64,
    /// Serve: the port the Functions host calls.
    #[serde(default = "default_port")]
    pub functions_customhandler_port: u16,
    /// Ops endpoints (`/metrics`, `/healthz`, `/readyz`, `/runs`) of watch and backfill.
    #[serde(default = "default_metrics_addr")]
    pub metrics_addr: String,
    /// `/runs`: runs queued or running at once; a `POST /runs` past it answers 429.
    #[serde(default = "default_runs_max_active")]
    pub runs_max_active: usize,
    /// `/runs`: runs kept in memory (active and finished); the oldest finished run is evicted
    /// to make room, and a `POST /runs` with no room left answers 429.
    #[serde(default = "default_runs_max_retained")]
    pub runs_max_retained: usize,
    /// `/runs`: seconds a finished run stays readable with `GET /runs/{id}`.
    #[serde(default = "default_runs_retention_secs")]
    pub runs_retention_secs: u64,
    /// `/runs`: bearer token every `/runs` call must present when set (secret; env only).
    #[serde(default)]
    pub runs_token: Option<Secret>,
    /// Time in-flight work gets to finish after SIGTERM.
    #[serde(default = "default_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// Log format: json or text (parsed in [`Settings::validate`]).
    #[serde(default = "default_log_format")]
    pub log_format: String,
}

fn default_compression() -> String {
    "zstd".to_owned()
}
fn default_log_format() -> String {
    "json".to_owned()
}

fn default_standard_format() -> String {
    "delta".to_owned()
}
/// `DELTA_COMMIT_INTERVAL_MS` default: a row is visible at most this long after its blob was
/// transformed, and a busy hour makes 720 commits per table.
pub const DEFAULT_DELTA_COMMIT_INTERVAL_MS: u64 = 5_000;
fn default_delta_commit_interval_ms() -> u64 {
    DEFAULT_DELTA_COMMIT_INTERVAL_MS
}

fn default_raw_url() -> String {
    "az://raw".to_owned()
}
fn default_standard_url() -> String {
    "az://standard".to_owned()
}
fn default_transform_row_group_rows() -> usize {
    DEFAULT_ROW_GROUP_ROWS
}
/// Smallest `TRANSFORM_ROW_GROUP_ROWS`: parquet-rs encodes in 1024-row mini-batches; smaller
/// row groups only grow the footer.
pub const MIN_TRANSFORM_ROW_GROUP_ROWS: usize = 1024;
/// Largest `TRANSFORM_ROW_GROUP_ROWS` (2^24 rows).
pub const MAX_TRANSFORM_ROW_GROUP_ROWS: usize = 1 << 24;
fn default_max_value_bytes() -> usize {
    1_048_576
}
fn default_watch_poll_ms() -> u64 {
    1000
}
fn default_watch_concurrency() -> usize {
    4
}
fn default_watch_max_attempts() -> u32 {
    5
}
fn default_watch_backoff_ms() -> u64 {
    1000
}
fn default_watch_full_list_ms() -> u64 {
    30_000
}
/// Largest `WATCH_FULL_LIST_MS` (a day), like the lease TTL's bound.
pub const MAX_WATCH_FULL_LIST_MS: u64 = 86_400_000;
/// `WATCH_LEASE_TTL_MS` default: a blob takes seconds to transform, and a watcher killed while
/// holding a lease delays that blob by at most this long.
pub const DEFAULT_WATCH_LEASE_TTL_MS: u64 = 30_000;
/// Smallest `WATCH_LEASE_TTL_MS`: renewals every TTL/3 must fit a storage round trip.
pub const MIN_WATCH_LEASE_TTL_MS: u64 = 1_000;
/// Largest `WATCH_LEASE_TTL_MS` (a day): beyond it a dead watcher's blob waits absurdly long.
pub const MAX_WATCH_LEASE_TTL_MS: u64 = 86_400_000;

fn default_watch_lease_ttl_ms() -> u64 {
    DEFAULT_WATCH_LEASE_TTL_MS
}
fn default_port() -> u16 {
    8080
}
fn default_metrics_addr() -> String {
    "127.0.0.1:9465".to_owned()
}
fn default_grace_ms() -> u64 {
    10_000
}
/// `RUNS_MAX_ACTIVE` default: a replay competes with the watcher for the same CPU and storage.
pub const DEFAULT_RUNS_MAX_ACTIVE: usize = 2;
/// Largest `RUNS_MAX_ACTIVE`: each run transforms up to `WATCH_CONCURRENCY` blobs at once.
pub const MAX_RUNS_MAX_ACTIVE: usize = 64;
/// `RUNS_MAX_RETAINED` default.
pub const DEFAULT_RUNS_MAX_RETAINED: usize = 100;
/// Largest `RUNS_MAX_RETAINED`: a run's status (its errors included) lives in memory.
pub const MAX_RUNS_MAX_RETAINED: usize = 10_000;
/// `RUNS_RETENTION_SECS` default (an hour).
pub const DEFAULT_RUNS_RETENTION_SECS: u64 = 3600;
/// Largest `RUNS_RETENTION_SECS` (a week).
pub const MAX_RUNS_RETENTION_SECS: u64 = 604_800;
/// Shortest `RUNS_TOKEN`: a bearer token must not be guessable.
pub const MIN_RUNS_TOKEN_LEN: usize = 16;

fn default_runs_max_active() -> usize {
    DEFAULT_RUNS_MAX_ACTIVE
}
fn default_runs_max_retained() -> usize {
    DEFAULT_RUNS_MAX_RETAINED
}
fn default_runs_retention_secs() -> u64 {
    DEFAULT_RUNS_RETENTION_SECS
}

/// CLI overrides of [`Config`]; each flag wins over its variable. `RUNS_TOKEN` has no flag (a
/// secret on the command line shows in `ps`), and `--raw-url` / `--standard-url` refuse a URL
/// carrying a SAS token or password ([`Config::with_overrides`]).
#[derive(Debug, Clone, Default, Args)]
pub struct Overrides {
    /// Container of raw blobs (az://C, file:///P, memory://); a SAS token only through the environment. Default az://raw. [env: RAW_URL]
    #[arg(long, global = true)]
    pub raw_url: Option<String>,
    /// Container for Parquet, dead letters, receipts; a SAS token only through the environment. Default az://standard. [env: STANDARD_URL]
    #[arg(long, global = true)]
    pub standard_url: Option<String>,
    /// Parquet compression: zstd (level 3), snappy or none. Default zstd. [env: PARQUET_COMPRESSION]
    #[arg(long, global = true, value_parser = ["zstd", "snappy", "none"])]
    pub parquet_compression: Option<String>,
    /// Largest record value; larger ones are dead letters. Default 1048576. [env: MAX_VALUE_BYTES]
    #[arg(long, global = true)]
    pub max_value_bytes: Option<usize>,
    /// Rows per Parquet row group (1024–16777216); one encoded row group per model is in memory at a time (written out early at 32 MiB). Default 1048576. [env: TRANSFORM_ROW_GROUP_ROWS]
    #[arg(long, global = true)]
    pub transform_row_group_rows: Option<usize>,
    /// What standard holds: delta (one Delta Lake table per model plus _deadletter) or parquet (one file per model per raw blob). Default delta. [env: STANDARD_FORMAT]
    #[arg(long, global = true, value_parser = ["delta", "parquet"])]
    pub standard_format: Option<String>,
    /// Delta mode: longest wait in ms between a blob's transform and its commit (100–3600000); watch and backfill commit at least this often. Default 5000. [env: DELTA_COMMIT_INTERVAL_MS]
    #[arg(long, global = true)]
    pub delta_commit_interval_ms: Option<u64>,
    /// Watcher: raw container listing interval in ms. Default 1000. [env: WATCH_POLL_MS]
    #[arg(long, global = true)]
    pub watch_poll_ms: Option<u64>,
    /// Watcher and backfill: blobs processed at once. Default 4. [env: WATCH_CONCURRENCY]
    #[arg(long, global = true)]
    pub watch_concurrency: Option<usize>,
    /// Watcher: failures of a blob version before it is poisoned. Default 5. [env: WATCH_MAX_ATTEMPTS]
    #[arg(long, global = true)]
    pub watch_max_attempts: Option<u32>,
    /// Watcher: first retry delay in ms, doubling per failure (max 60 s). Default 1000. [env: WATCH_BACKOFF_MS]
    #[arg(long, global = true)]
    pub watch_backoff_ms: Option<u64>,
    /// Watcher: only list raw names under this prefix. Default: the whole container. [env: WATCH_PREFIX]
    #[arg(long, global = true)]
    pub watch_prefix: Option<String>,
    /// Watcher: longest time in ms between full listings of the raw container (10–86400000, never below WATCH_POLL_MS); they run more often when cheap (≤ 1/10 of the time), and every poll in between probes each partition's next blob by name. Default 30000. [env: WATCH_FULL_LIST_MS]
    #[arg(long, global = true)]
    pub watch_full_list_ms: Option<u64>,
    /// Watcher: blob lease lifetime in ms (1000–86400000), renewed every third of it while working; a blob claimed by a killed watcher is taken over after it. Default 30000. [env: WATCH_LEASE_TTL_MS]
    #[arg(long, global = true)]
    pub watch_lease_ttl_ms: Option<u64>,
    /// Serve: port the Functions host calls. Default 8080. [env: FUNCTIONS_CUSTOMHANDLER_PORT]
    #[arg(long, global = true)]
    pub functions_customhandler_port: Option<u16>,
    /// Ops endpoint address (/metrics, /healthz, /readyz, /runs). Default 127.0.0.1:9465. [env: METRICS_ADDR]
    #[arg(long, global = true)]
    pub metrics_addr: Option<String>,
    /// /runs: runs queued or running at once (1–64); POST /runs past it answers 429. Default 2. [env: RUNS_MAX_ACTIVE]
    #[arg(long, global = true)]
    pub runs_max_active: Option<usize>,
    /// /runs: runs kept in memory, finished ones evicted oldest first (RUNS_MAX_ACTIVE–10000). Default 100. [env: RUNS_MAX_RETAINED]
    #[arg(long, global = true)]
    pub runs_max_retained: Option<usize>,
    /// /runs: seconds a finished run stays readable with GET /runs/{id} (1–604800). Default 3600. [env: RUNS_RETENTION_SECS]
    #[arg(long, global = true)]
    pub runs_retention_secs: Option<u64>,
    /// Drain time after SIGTERM in ms. Default 10000. [env: SHUTDOWN_GRACE_MS]
    #[arg(long, global = true)]
    pub shutdown_grace_ms: Option<u64>,
    /// Log format: json or text. Default json. [env: LOG_FORMAT]
    #[arg(long, global = true, value_parser = ["json", "text"])]
    pub log_format: Option<String>,
}

impl Config {
    /// Applies CLI overrides; a `--raw-url` or `--standard-url` carrying a credential (a SAS
    /// token, a password) is refused, naming the variable to set instead.
    pub fn with_overrides(mut self, o: Overrides) -> Result<Self, ConfigError> {
        for (var, value) in [("RAW_URL", &o.raw_url), ("STANDARD_URL", &o.standard_url)] {
            if let Some(v) = value {
                service::config::refuse_secret_flag(var, v)?;
            }
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { self.$f = v; } )* };
        }
        take!(
            raw_url,
            standard_url,
            parquet_compression,
            max_value_bytes,
            transform_row_group_rows,
            standard_format,
            delta_commit_interval_ms,
            watch_poll_ms,
            watch_concurrency,
            watch_max_attempts,
            watch_backoff_ms,
            watch_full_list_ms,
            watch_lease_ttl_ms,
            functions_customhandler_port,
            metrics_addr,
            runs_max_active,
            runs_max_retained,
            runs_retention_secs,
            shutdown_grace_ms,
            log_format
        );
        if o.watch_prefix.is_some() {
            self.watch_prefix = o.watch_prefix;
        }
        Ok(self)
    }
}

/// Watcher knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    /// Listing interval.
    pub poll: Duration,
    /// Blobs at once.
    pub concurrency: usize,
    /// Failures before poisoning.
    pub max_attempts: u32,
    /// First retry delay.
    pub backoff: Duration,
    /// Listed prefix.
    pub prefix: Option<String>,
    /// Longest time between full listings (probes by name in between).
    pub full_list: Duration,
    /// Lease lifetime; renewed every third of it while a blob is worked on.
    pub lease_ttl: Duration,
}

/// Limits and access of the `/runs` API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    /// Runs queued or running at once.
    pub max_active: usize,
    /// Runs kept in memory, active and finished (≥ `max_active`).
    pub max_retained: usize,
    /// How long a finished run stays readable.
    pub retention: Duration,
    /// Bearer token every `/runs` call must present, when set.
    pub token: Option<Secret>,
}

impl Default for RunSettings {
    /// The documented defaults, without a token.
    fn default() -> Self {
        RunSettings {
            max_active: DEFAULT_RUNS_MAX_ACTIVE,
            max_retained: DEFAULT_RUNS_MAX_RETAINED,
            retention: Duration::from_secs(DEFAULT_RUNS_RETENTION_SECS),
            token: None,
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `RAW_URL`.
    pub raw_url: String,
    /// `STANDARD_URL`.
    pub standard_url: String,
    /// Transform knobs.
    pub transform: TransformOptions,
    /// Delta mode: how often staged blobs are committed.
    pub delta_commit_interval: Duration,
    /// Watcher knobs.
    pub watch: WatchSettings,
    /// Functions handler port.
    pub port: u16,
    /// Ops address.
    pub metrics_addr: SocketAddr,
    /// `/runs` limits and token.
    pub runs: RunSettings,
    /// Drain time.
    pub shutdown_grace: Duration,
    /// Log format.
    pub log_format: LogFormat,
}

impl Settings {
    /// Validates `config`; errors name the variable.
    pub fn validate(c: Config) -> Result<Settings, ConfigError> {
        if c.raw_url.trim().is_empty() {
            return Err(ConfigError::invalid(
                "RAW_URL",
                "must be a storage URL such as az://raw",
            ));
        }
        if c.standard_url.trim().is_empty() {
            return Err(ConfigError::invalid(
                "STANDARD_URL",
                "must be a storage URL such as az://standard",
            ));
        }
        if !(MIN_TRANSFORM_ROW_GROUP_ROWS..=MAX_TRANSFORM_ROW_GROUP_ROWS)
            .contains(&c.transform_row_group_rows)
        {
            return Err(ConfigError::invalid(
                "TRANSFORM_ROW_GROUP_ROWS",
                format!(
                    "must be between {MIN_TRANSFORM_ROW_GROUP_ROWS} and {MAX_TRANSFORM_ROW_GROUP_ROWS}, got {}",
                    c.transform_row_group_rows
                ),
            ));
        }
        if c.max_value_bytes == 0 {
            return Err(ConfigError::invalid(
                "MAX_VALUE_BYTES",
                "must be at least 1",
            ));
        }
        if c.watch_poll_ms < 10 {
            return Err(ConfigError::invalid(
                "WATCH_POLL_MS",
                format!("must be at least 10 (ms), got {}", c.watch_poll_ms),
            ));
        }
        if !(1..=256).contains(&c.watch_concurrency) {
            return Err(ConfigError::invalid(
                "WATCH_CONCURRENCY",
                format!("must be between 1 and 256, got {}", c.watch_concurrency),
            ));
        }
        if c.watch_max_attempts == 0 {
            return Err(ConfigError::invalid(
                "WATCH_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        if !(10..=MAX_WATCH_FULL_LIST_MS).contains(&c.watch_full_list_ms) {
            return Err(ConfigError::invalid(
                "WATCH_FULL_LIST_MS",
                format!(
                    "must be between 10 and {MAX_WATCH_FULL_LIST_MS} (ms), got {}",
                    c.watch_full_list_ms
                ),
            ));
        }
        if !(MIN_WATCH_LEASE_TTL_MS..=MAX_WATCH_LEASE_TTL_MS).contains(&c.watch_lease_ttl_ms) {
            return Err(ConfigError::invalid(
                "WATCH_LEASE_TTL_MS",
                format!(
                    "must be between {MIN_WATCH_LEASE_TTL_MS} and {MAX_WATCH_LEASE_TTL_MS} (ms), got {}",
                    c.watch_lease_ttl_ms
                ),
            ));
        }
        let compression = c
            .parquet_compression
            .parse::<Compression>()
            .map_err(|e| ConfigError::invalid("PARQUET_COMPRESSION", e))?;
        let format = c
            .standard_format
            .parse::<StandardFormat>()
            .map_err(|e| ConfigError::invalid("STANDARD_FORMAT", e))?;
        if !(100..=3_600_000).contains(&c.delta_commit_interval_ms) {
            return Err(ConfigError::invalid(
                "DELTA_COMMIT_INTERVAL_MS",
                format!(
                    "must be between 100 and 3600000 (ms), got {}",
                    c.delta_commit_interval_ms
                ),
            ));
        }
        let log_format = c
            .log_format
            .parse::<LogFormat>()
            .map_err(|e| ConfigError::invalid("LOG_FORMAT", e))?;
        let runs = validate_runs(&c)?;
        let metrics_addr = c.metrics_addr.parse::<SocketAddr>().map_err(|e| {
            ConfigError::invalid(
                "METRICS_ADDR",
                format!("`{}` is not host:port ({e})", c.metrics_addr),
            )
        })?;
        Ok(Settings {
            raw_url: c.raw_url,
            standard_url: c.standard_url,
            transform: TransformOptions {
                compression,
                max_value_bytes: c.max_value_bytes,
                row_group_rows: c.transform_row_group_rows,
                format,
                write_id: WriteId::default(),
            },
            delta_commit_interval: Duration::from_millis(c.delta_commit_interval_ms),
            watch: WatchSettings {
                poll: Duration::from_millis(c.watch_poll_ms),
                concurrency: c.watch_concurrency,
                max_attempts: c.watch_max_attempts,
                backoff: Duration::from_millis(c.watch_backoff_ms),
                prefix: c.watch_prefix.filter(|p| !p.is_empty()),
                full_list: Duration::from_millis(c.watch_full_list_ms),
                lease_ttl: Duration::from_millis(c.watch_lease_ttl_ms),
            },
            port: c.functions_customhandler_port,
            metrics_addr,
            runs,
            shutdown_grace: Duration::from_millis(c.shutdown_grace_ms),
            log_format,
        })
    }
}

fn validate_runs(c: &Config) -> Result<RunSettings, ConfigError> {
    if !(1..=MAX_RUNS_MAX_ACTIVE).contains(&c.runs_max_active) {
        return Err(ConfigError::invalid(
            "RUNS_MAX_ACTIVE",
            format!(
                "must be between 1 and {MAX_RUNS_MAX_ACTIVE}, got {}",
                c.runs_max_active
            ),
        ));
    }
    if !(c.runs_max_active..=MAX_RUNS_MAX_RETAINED).contains(&c.runs_max_retained) {
        return Err(ConfigError::invalid(
            "RUNS_MAX_RETAINED",
            format!(
                "must be between RUNS_MAX_ACTIVE ({}) and {MAX_RUNS_MAX_RETAINED}, got {}",
                c.runs_max_active, c.runs_max_retained
            ),
        ));
    }
    if !(1..=MAX_RUNS_RETENTION_SECS).contains(&c.runs_retention_secs) {
        return Err(ConfigError::invalid(
            "RUNS_RETENTION_SECS",
            format!(
                "must be between 1 and {MAX_RUNS_RETENTION_SECS} (s), got {}",
                c.runs_retention_secs
            ),
        ));
    }
    if let Some(token) = &c.runs_token {
        // The value is never echoed: only its shape is described.
        let t = token.expose();
        if t.len() < MIN_RUNS_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::invalid(
                "RUNS_TOKEN",
                format!(
                    "must be at least {MIN_RUNS_TOKEN_LEN} printable ASCII characters without spaces (e.g. `openssl rand -hex 32`), got {} characters",
                    t.chars().count()
                ),
            ));
        }
    }
    Ok(RunSettings {
        max_active: c.runs_max_active,
        max_retained: c.runs_max_retained,
        retention: Duration::from_secs(c.runs_retention_secs),
        token: c.runs_token.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use service::config::{env_keys, from_iter};

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn settings(v: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::validate(from_iter::<Config, _>(vars(v))?)
    }

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        o: Overrides,
    }

    #[test]
    fn every_flag_is_an_env_key_and_every_env_key_a_flag() {
        let keys = env_keys::<Config>();
        let cmd = Probe::command();
        let flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help")
            .map(service::config::env_var_of_flag)
            .collect();
        for f in &flags {
            assert!(keys.contains(f), "flag --{f} has no env key");
        }
        // Secrets are env-only: a token on the command line shows in `ps`.
        let env_only = ["RUNS_TOKEN"];
        for k in &keys {
            assert!(
                flags.contains(k) || env_only.contains(&k.as_str()),
                "env key {k} has no flag"
            );
        }
        for k in env_only {
            assert!(!flags.contains(&k.to_owned()), "{k} must not be a flag");
        }
        for a in cmd.get_arguments().filter(|a| a.get_long() != Some("help")) {
            let help = a.get_help().map(ToString::to_string).unwrap_or_default();
            let var = a
                .get_long()
                .map(service::config::env_var_of_flag)
                .unwrap_or_default();
            assert!(
                help.ends_with(&format!("[env: {var}]")),
                "help of {var}: {help}"
            );
            assert!(
                help.contains("Default"),
                "help of {var} states no default: {help}"
            );
        }
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(
            (s.raw_url.as_str(), s.standard_url.as_str()),
            ("az://raw", "az://standard")
        );
        assert_eq!(
            s.transform,
            TransformOptions {
                format: StandardFormat::Delta,
                ..TransformOptions::default()
            }
        );
        assert_eq!(s.delta_commit_interval, Duration::from_millis(5000));
        assert_eq!(s.watch.poll, Duration::from_millis(1000));
        assert_eq!(
            (s.watch.concurrency, s.watch.max_attempts, s.watch.prefix),
            (4, 5, None)
        );
        assert_eq!(s.watch.lease_ttl, Duration::from_millis(30_000));
        assert_eq!(s.watch.full_list, Duration::from_millis(30_000));
        assert_eq!(s.port, 8080);
        assert_eq!(s.shutdown_grace, Duration::from_millis(10_000));
        assert_eq!(
            s.runs,
            RunSettings {
                max_active: 2,
                max_retained: 100,
                retention: Duration::from_secs(3600),
                token: None,
            }
        );
        assert_eq!(s.runs, RunSettings::default());
    }

    #[test]
    fn ops_and_runs_listen_on_loopback_unless_told_otherwise() {
        // /runs starts replays; outside a container nothing but this host may reach it by
        // default. Containers set METRICS_ADDR=0.0.0.0:9465 explicitly (Dockerfile, compose).
        let s = settings(&[]).expect("defaults are valid");
        assert!(s.metrics_addr.ip().is_loopback(), "{}", s.metrics_addr);
        assert_eq!(s.metrics_addr.to_string(), "127.0.0.1:9465");
    }

    #[test]
    fn invalid_values_name_their_variable() {
        let cases = [
            (
                ("PARQUET_COMPRESSION", "lz4"),
                "PARQUET_COMPRESSION is invalid: `lz4` is not a compression (zstd, snappy or none)",
            ),
            (
                ("STANDARD_FORMAT", "iceberg"),
                "STANDARD_FORMAT is invalid: `iceberg` is not a format (delta or parquet)",
            ),
            (
                ("DELTA_COMMIT_INTERVAL_MS", "99"),
                "DELTA_COMMIT_INTERVAL_MS is invalid: must be between 100 and 3600000 (ms), got 99",
            ),
            (
                ("LOG_FORMAT", "xml"),
                "LOG_FORMAT is invalid: `xml` is not a log format",
            ),
            (
                ("MAX_VALUE_BYTES", "0"),
                "MAX_VALUE_BYTES is invalid: must be at least 1",
            ),
            (
                ("TRANSFORM_ROW_GROUP_ROWS", "1023"),
                "TRANSFORM_ROW_GROUP_ROWS is invalid: must be between 1024 and 16777216, got 1023",
            ),
            (
                ("TRANSFORM_ROW_GROUP_ROWS", "16777217"),
                "TRANSFORM_ROW_GROUP_ROWS is invalid: must be between 1024 and 16777216, got 16777217",
            ),
            (
                ("WATCH_POLL_MS", "1"),
                "WATCH_POLL_MS is invalid: must be at least 10 (ms), got 1",
            ),
            (
                ("WATCH_CONCURRENCY", "0"),
                "WATCH_CONCURRENCY is invalid: must be between 1 and 256, got 0",
            ),
            (
                ("WATCH_MAX_ATTEMPTS", "0"),
                "WATCH_MAX_ATTEMPTS is invalid: must be at least 1",
            ),
            (
                ("WATCH_LEASE_TTL_MS", "0"),
                "WATCH_LEASE_TTL_MS is invalid: must be between 1000 and 86400000 (ms), got 0",
            ),
            (
                ("WATCH_LEASE_TTL_MS", "999"),
                "WATCH_LEASE_TTL_MS is invalid: must be between 1000 and 86400000 (ms), got 999",
            ),
            (
                ("WATCH_LEASE_TTL_MS", "86400001"),
                "WATCH_LEASE_TTL_MS is invalid: must be between 1000 and 86400000 (ms), got 86400001",
            ),
            (
                ("WATCH_FULL_LIST_MS", "9"),
                "WATCH_FULL_LIST_MS is invalid: must be between 10 and 86400000 (ms), got 9",
            ),
            (
                ("WATCH_FULL_LIST_MS", "86400001"),
                "WATCH_FULL_LIST_MS is invalid: must be between 10 and 86400000 (ms), got 86400001",
            ),
            (
                ("METRICS_ADDR", "nowhere"),
                "METRICS_ADDR is invalid: `nowhere` is not host:port",
            ),
            (
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "99999"),
                "FUNCTIONS_CUSTOMHANDLER_PORT is invalid",
            ),
            (
                ("RUNS_MAX_ACTIVE", "0"),
                "RUNS_MAX_ACTIVE is invalid: must be between 1 and 64, got 0",
            ),
            (
                ("RUNS_MAX_RETAINED", "1"),
                "RUNS_MAX_RETAINED is invalid: must be between RUNS_MAX_ACTIVE (2) and 10000, got 1",
            ),
            (
                ("RUNS_RETENTION_SECS", "0"),
                "RUNS_RETENTION_SECS is invalid: must be between 1 and 604800 (s), got 0",
            ),
            (
                ("RUNS_TOKEN", "hunter2"),
                "RUNS_TOKEN is invalid: must be at least 16 printable ASCII characters without spaces",
            ),
        ];
        for ((k, v), want) in cases {
            let err = settings(&[(k, v)]).expect_err(k).to_string();
            assert!(err.starts_with(want), "{k}={v}: {err}");
        }
    }

    #[test]
    fn runs_token_is_read_from_the_environment_and_never_printed() {
        let s = settings(&[("RUNS_TOKEN", "0123456789abcdef0123")]).expect("valid");
        let token = s.runs.token.as_ref().expect("token");
        assert!(token.matches(b"0123456789abcdef0123"));
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
        let err = settings(&[("RUNS_TOKEN", "short-secret")])
            .expect_err("too short")
            .to_string();
        assert!(!err.contains("short-secret"), "{err}");
    }

    #[test]
    fn a_storage_url_flag_with_a_sas_token_is_refused_naming_its_variable() {
        let c: Config = from_iter(vars(&[])).expect("env");
        for (flag, var) in [("--raw-url", "RAW_URL"), ("--standard-url", "STANDARD_URL")] {
            let p = Probe::try_parse_from([
                "x",
                flag,
                "https://acct.blob.core.windows.net/c?sv=2024-01-01&sig=c2VjcmV0",
            ])
            .expect("flags");
            let err = c.clone().with_overrides(p.o).expect_err(flag).to_string();
            assert!(err.starts_with(&format!("{flag} carries")), "{err}");
            assert!(
                err.contains(&format!("pass the value through the environment as {var}")),
                "{err}"
            );
            assert!(!err.contains("c2VjcmV0"), "{err}");
        }
        let p = Probe::try_parse_from(["x", "--raw-url", "az://other"]).expect("flags");
        let s = Settings::validate(c.with_overrides(p.o).expect("no secret")).expect("valid");
        assert_eq!(s.raw_url, "az://other");
    }

    #[test]
    fn flags_override_the_environment() {
        let c: Config = from_iter(vars(&[
            ("WATCH_CONCURRENCY", "2"),
            ("PARQUET_COMPRESSION", "snappy"),
        ]))
        .expect("env");
        let p = Probe::try_parse_from([
            "x",
            "--watch-concurrency",
            "7",
            "--watch-prefix",
            "lib.server.game/",
            "--watch-lease-ttl-ms",
            "1500",
            "--watch-full-list-ms",
            "5000",
            "--transform-row-group-rows",
            "4096",
            "--runs-max-active",
            "3",
            "--runs-retention-secs",
            "60",
        ])
        .expect("flags");
        let s = Settings::validate(c.with_overrides(p.o).expect("no secret")).expect("valid");
        assert_eq!(s.watch.concurrency, 7);
        assert_eq!(s.watch.prefix.as_deref(), Some("lib.server.game/"));
        assert_eq!(s.watch.lease_ttl, Duration::from_millis(1500));
        assert_eq!(s.watch.full_list, Duration::from_millis(5000));
        assert_eq!(
            (s.runs.max_active, s.runs.retention),
            (3, Duration::from_secs(60))
        );
        assert_eq!(s.transform.compression, Compression::Snappy);
        assert_eq!(s.transform.row_group_rows, 4096);
    }
}

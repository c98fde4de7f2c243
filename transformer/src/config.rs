//! The transformer's configuration: the knobs ([`Config`]: flags over environment variables
//! over defaults, each declared once; see `service::config`), validated once into [`Settings`],
//! a type that can only hold a usable configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use service::config::ConfigError;
use service::secret::Secret;
use service::telemetry::LogFormat;

use crate::delta::{StandardFormat, WriteId};
use crate::transform::{DEFAULT_ROW_GROUP_ROWS, TransformOptions};
use crate::writer::Compression;

/// Raw JSON batches → one Delta table (or Parquet file) per log model.
///
/// Every flag overrides the environment variable named in brackets (an empty variable counts as
/// unset). `RUNS_TOKEN` is read from the environment only, and a SAS token or password in
/// `--raw-url` or `--standard-url` is refused (set `RAW_URL` / `STANDARD_URL` instead).
#[derive(Debug, Clone, Parser)]
#[command(name = "transformer", version, about, long_about = None)]
pub struct Config {
    /// Container of raw blobs (az://C, file:///P, memory://); one with a SAS token only through the environment.
    #[arg(long, env, global = true, default_value = "az://raw")]
    pub raw_url: String,
    /// Container for outputs, dead letters, receipts, leases and poison entries; one with a SAS token only through the environment.
    #[arg(long, env, global = true, default_value = "az://standard")]
    pub standard_url: String,
    /// Parquet compression: zstd (level 3), snappy or none.
    #[arg(long, env, global = true, default_value = "zstd")]
    pub parquet_compression: Compression,
    /// Largest record value; larger ones are dead letters (`value_too_large`).
    #[arg(long, env, global = true, default_value_t = 1_048_576)]
    pub max_value_bytes: usize,
    /// Rows per Parquet row group (1024–16777216); one encoded row group per model is in memory at a time (written out early at 32 MiB), so memory does not grow with the blob.
    #[arg(long, env, global = true, default_value_t = DEFAULT_ROW_GROUP_ROWS)]
    pub transform_row_group_rows: usize,
    /// What standard holds: delta (one Delta Lake table per model plus _deadletter) or parquet (one file per model per raw blob).
    #[arg(long, env, global = true, default_value = "delta")]
    pub standard_format: StandardFormat,
    /// Delta mode: longest wait in ms between a blob's transform and its commit (100–3600000); watch and backfill commit at least this often.
    #[arg(long, env, global = true, default_value_t = DEFAULT_DELTA_COMMIT_INTERVAL_MS)]
    pub delta_commit_interval_ms: u64,
    /// Delta mode: a Parquet checkpoint every this many commits (1–1000000), written into the tables this process creates (`delta.checkpointInterval`; existing tables keep theirs).
    #[arg(long, env, global = true, default_value_t = crate::delta::commit::DEFAULT_CHECKPOINT_INTERVAL)]
    pub delta_checkpoint_interval: u64,
    /// Delta mode: size in MiB of the files compaction writes (1–4096); files of 3/4 of it or more are left alone. A compaction holds about 15× this in memory.
    #[arg(long, env, global = true, default_value_t = 128)]
    pub compact_target_mb: u64,
    /// Delta mode: a partition is compacted once its day ended and nothing was committed to it for this long, in ms.
    #[arg(long, env, global = true, default_value_t = 3_600_000)]
    pub compact_min_age_ms: u64,
    /// Delta mode, watch: compact closed partitions every this many ms (0: never; ≥ 60000 otherwise).
    #[arg(long, env, global = true, default_value_t = 3_600_000)]
    pub compact_interval_ms: u64,
    /// Delta mode, watch: vacuum every this many ms (0: never; ≥ 60000 otherwise).
    #[arg(long, env, global = true, default_value_t = 86_400_000)]
    pub vacuum_interval_ms: u64,
    /// Delta mode: vacuum on the timer (watch, the vacuum function) keeps files removed less than this many hours ago (≥ 168, a week; `transformer vacuum --force` goes below).
    #[arg(long, env, global = true, default_value_t = 168)]
    pub vacuum_retention_hours: u64,
    /// Watcher: raw container probe interval in ms (≥ 10).
    #[arg(long, env, global = true, default_value_t = 1000)]
    pub watch_poll_ms: u64,
    /// Watcher, serve and backfill: blobs processed at once (1–256).
    #[arg(long, env, global = true, default_value_t = 4)]
    pub watch_concurrency: usize,
    /// Watcher: failures of a blob version before it is poisoned (≥ 1).
    #[arg(long, env, global = true, default_value_t = 5)]
    pub watch_max_attempts: u32,
    /// Watcher: first retry delay in ms, doubling per failure (max 60 s).
    #[arg(long, env, global = true, default_value_t = 1000)]
    pub watch_backoff_ms: u64,
    /// Watcher: only list raw names under this prefix; unset: the whole container.
    #[arg(long, env, global = true)]
    pub watch_prefix: Option<String>,
    /// Watcher: time in ms between full listings of the raw container (10–86400000), the safety net for blob versions dated into hours the checkpoint settled (rewrites, offset gaps); a start-up without a checkpoint, and `watch --once`, begin with one.
    #[arg(long, env, global = true, default_value_t = 3_600_000)]
    pub watch_full_list_ms: u64,
    /// Watcher: longest time in ms between listings of each topic's unsettled hours (10–86400000, never below WATCH_POLL_MS); they run more often when cheap (≤ 1/10 of the time), and every poll in between probes each partition's next blob by name.
    #[arg(long, env, global = true, default_value_t = 30_000)]
    pub watch_list_ms: u64,
    /// Watcher: blob lease lifetime in ms (1000–86400000), renewed every third of it while working; a blob claimed by a killed watcher is taken over after it.
    #[arg(long, env, global = true, default_value_t = DEFAULT_WATCH_LEASE_TTL_MS)]
    pub watch_lease_ttl_ms: u64,
    /// Serve: port the Functions host calls.
    #[arg(long, env, global = true, default_value_t = 8080)]
    pub functions_customhandler_port: u16,
    /// Ops endpoint address (/metrics, /healthz, /readyz, /runs) of watch and backfill.
    #[arg(long, env, global = true, default_value = "127.0.0.1:9465")]
    pub metrics_addr: String,
    /// /runs: runs queued or running at once (1–64); POST /runs past it answers 429.
    #[arg(long, env, global = true, default_value_t = DEFAULT_RUNS_MAX_ACTIVE)]
    pub runs_max_active: usize,
    /// /runs: runs kept in memory, finished ones evicted oldest first (RUNS_MAX_ACTIVE–10000); POST /runs with no room left answers 429.
    #[arg(long, env, global = true, default_value_t = DEFAULT_RUNS_MAX_RETAINED)]
    pub runs_max_retained: usize,
    /// /runs: seconds a finished run stays readable with GET /runs/{id} (1–604800).
    #[arg(long, env, global = true, default_value_t = DEFAULT_RUNS_RETENTION_SECS)]
    pub runs_retention_secs: u64,
    /// /runs: bearer token every call must present when set: a secret, so env only (hidden, refused as a flag).
    #[arg(long, env, global = true, hide = true)]
    pub runs_token: Option<Secret>,
    /// Drain time in ms after SIGTERM/SIGINT.
    #[arg(long, env, global = true, default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
    /// Log format: json or text.
    #[arg(long, env, global = true, default_value = "json")]
    pub log_format: LogFormat,
    /// Metrics pushed to Application Insights (on Azure, where nothing scrapes `/metrics`).
    #[command(flatten)]
    pub metrics_export: service::appinsights::ExportArgs,
}

/// `DELTA_COMMIT_INTERVAL_MS` default: a row is visible at most this long after its blob was
/// transformed, and a busy hour makes 720 commits per table.
pub const DEFAULT_DELTA_COMMIT_INTERVAL_MS: u64 = 5_000;
/// Smallest `TRANSFORM_ROW_GROUP_ROWS`: parquet-rs encodes in 1024-row mini-batches; smaller
/// row groups only grow the footer.
pub const MIN_TRANSFORM_ROW_GROUP_ROWS: usize = 1024;
/// Largest `TRANSFORM_ROW_GROUP_ROWS` (2^24 rows).
pub const MAX_TRANSFORM_ROW_GROUP_ROWS: usize = 1 << 24;
/// Largest `WATCH_FULL_LIST_MS` and `WATCH_LIST_MS` (a day), like the lease TTL's bound.
pub const MAX_WATCH_FULL_LIST_MS: u64 = 86_400_000;
/// `WATCH_LEASE_TTL_MS` default: a blob takes seconds to transform, and a watcher killed while
/// holding a lease delays that blob by at most this long.
pub const DEFAULT_WATCH_LEASE_TTL_MS: u64 = 30_000;
/// Smallest `WATCH_LEASE_TTL_MS`: renewals every TTL/3 must fit a storage round trip.
pub const MIN_WATCH_LEASE_TTL_MS: u64 = 1_000;
/// Largest `WATCH_LEASE_TTL_MS` (a day): beyond it a dead watcher's blob waits absurdly long.
pub const MAX_WATCH_LEASE_TTL_MS: u64 = 86_400_000;
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
    /// Time between full listings of the raw container.
    pub full_list: Duration,
    /// Longest time between listings of the unsettled hours (probes by name in between).
    pub list: Duration,
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
    /// Delta mode: checkpoints, compaction and vacuum.
    pub maintenance: crate::maintenance::Maintenance,
    /// Watcher knobs.
    pub watch: WatchSettings,
    /// Functions handler port.
    pub port: u16,
    /// Ops address.
    pub metrics_addr: SocketAddr,
    /// `/runs` limits and token.
    pub runs: RunSettings,
    /// Application Insights export, when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set.
    pub metrics_export: Option<service::appinsights::ExportSettings>,
    /// Drain time.
    pub shutdown_grace: Duration,
    /// Log format.
    pub log_format: LogFormat,
}

impl Config {
    /// Checks every knob once and returns settings that can only be valid; errors name the
    /// variable.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let c = self;
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
        if !(10..=MAX_WATCH_FULL_LIST_MS).contains(&c.watch_list_ms) {
            return Err(ConfigError::invalid(
                "WATCH_LIST_MS",
                format!(
                    "must be between 10 and {MAX_WATCH_FULL_LIST_MS} (ms), got {}",
                    c.watch_list_ms
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
        if !(100..=3_600_000).contains(&c.delta_commit_interval_ms) {
            return Err(ConfigError::invalid(
                "DELTA_COMMIT_INTERVAL_MS",
                format!(
                    "must be between 100 and 3600000 (ms), got {}",
                    c.delta_commit_interval_ms
                ),
            ));
        }
        let maintenance = validate_maintenance(&c)?;
        let runs = validate_runs(&c)?;
        let metrics_export = c.metrics_export.validate("transformer")?;
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
                compression: c.parquet_compression,
                max_value_bytes: c.max_value_bytes,
                row_group_rows: c.transform_row_group_rows,
                format: c.standard_format,
                write_id: WriteId::default(),
            },
            delta_commit_interval: Duration::from_millis(c.delta_commit_interval_ms),
            maintenance,
            watch: WatchSettings {
                poll: Duration::from_millis(c.watch_poll_ms),
                concurrency: c.watch_concurrency,
                max_attempts: c.watch_max_attempts,
                backoff: Duration::from_millis(c.watch_backoff_ms),
                prefix: c.watch_prefix.filter(|p| !p.is_empty()),
                full_list: Duration::from_millis(c.watch_full_list_ms),
                list: Duration::from_millis(c.watch_list_ms),
                lease_ttl: Duration::from_millis(c.watch_lease_ttl_ms),
            },
            port: c.functions_customhandler_port,
            metrics_addr,
            runs,
            metrics_export,
            shutdown_grace: Duration::from_millis(c.shutdown_grace_ms),
            log_format: c.log_format,
        })
    }
}

impl Settings {
    /// Settings from `KEY=VALUE` pairs alone (tests and benches; the binary parses its command
    /// line, [`Config`] flattened into it, with `service::config::parse`).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        service::config::from_vars::<Config, _, _, _>(vars)?.validate()
    }
}

fn validate_maintenance(c: &Config) -> Result<crate::maintenance::Maintenance, ConfigError> {
    if !(1..=1_000_000).contains(&c.delta_checkpoint_interval) {
        return Err(ConfigError::invalid(
            "DELTA_CHECKPOINT_INTERVAL",
            format!(
                "must be between 1 and 1000000 (commits), got {}",
                c.delta_checkpoint_interval
            ),
        ));
    }
    if !(1..=4096).contains(&c.compact_target_mb) {
        return Err(ConfigError::invalid(
            "COMPACT_TARGET_MB",
            format!(
                "must be between 1 and 4096 (MiB), got {}",
                c.compact_target_mb
            ),
        ));
    }
    let timer = |key: &'static str, ms: u64| {
        if ms != 0 && ms < 60_000 {
            return Err(ConfigError::invalid(
                key,
                format!("must be 0 (off) or at least 60000 (ms), got {ms}"),
            ));
        }
        Ok((ms > 0).then(|| Duration::from_millis(ms)))
    };
    let compact_every = timer("COMPACT_INTERVAL_MS", c.compact_interval_ms)?;
    let vacuum_every = timer("VACUUM_INTERVAL_MS", c.vacuum_interval_ms)?;
    let min_retention = crate::delta::vacuum::SAFE_RETENTION.as_secs() / 3600;
    if c.vacuum_retention_hours < min_retention {
        return Err(ConfigError::invalid(
            "VACUUM_RETENTION_HOURS",
            format!(
                "must be at least {min_retention} (a week: readers of older snapshots and time travel need the files), got {}; `transformer vacuum --retention-hours N --force` goes below by hand",
                c.vacuum_retention_hours
            ),
        ));
    }
    Ok(crate::maintenance::Maintenance {
        checkpoint_interval: c.delta_checkpoint_interval,
        compact_target_bytes: c.compact_target_mb << 20,
        compact_min_age: Duration::from_millis(c.compact_min_age_ms),
        compact_every,
        vacuum_every,
        vacuum_retention: Duration::from_secs(c.vacuum_retention_hours.saturating_mul(3600)),
    })
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
    use clap::CommandFactory;

    fn settings(v: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_vars(v.iter().copied())
    }

    /// The command line over `vars` (and whatever the test process's environment sets), with a
    /// subcommand as the binary has (knobs are global: before or after it).
    fn args(vars: &[(&str, &str)], args: &[&str]) -> Result<Settings, ConfigError> {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
            #[command(subcommand)]
            command: Option<Sub>,
        }
        #[derive(Debug, clap::Subcommand)]
        enum Sub {
            Watch,
        }
        let base = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let argv = ["transformer"].iter().chain(args);
        service::config::parse_from_over::<Cli, _, _>(argv, &base.collect())?
            .config
            .validate()
    }

    #[test]
    fn the_knob_table_in_the_design_is_the_command() {
        let design =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DESIGN.md"))
                .expect("docs/DESIGN.md");
        let problems =
            service::config::knob_table_problems(&design, "Transformer", &Config::command());
        assert!(
            problems.is_empty(),
            "docs/DESIGN.md, transformer knobs:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn every_knob_is_a_variable_and_a_flag_but_the_runs_token_is_env_only() {
        // Secrets are env-only: a token on the command line shows in `ps`.
        let cmd = service::config::command::<Config>();
        let hidden: Vec<&str> = cmd
            .get_arguments()
            .filter(|a| a.is_hide_set())
            .filter_map(|a| a.get_env()?.to_str())
            .collect();
        assert_eq!(hidden, ["RUNS_TOKEN"]);
        let help = cmd.clone().render_long_help().to_string();
        for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let Some(var) = a.get_env().and_then(|v| v.to_str()) else {
                assert!(["help", "version"].contains(&a.get_id().as_str()), "{a}");
                continue;
            };
            assert_eq!(
                a.get_long()
                    .map(service::config::env_var_of_flag)
                    .as_deref(),
                Some(var)
            );
            assert!(
                help.contains(&format!("[env: {var}]")),
                "--help lacks {var}"
            );
            let doc = a.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(
                !a.get_default_values().is_empty() || doc.contains("unset"),
                "help of {var} states no default: {doc}"
            );
        }
        let err = args(&[], &["--runs-token", "0123456789abcdef0123"])
            .expect_err("refused")
            .to_string();
        assert!(err.starts_with("--runs-token carries a secret"), "{err}");
        assert!(!err.contains("0123456789abcdef"), "{err}");
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
        assert_eq!(s.watch.full_list, Duration::from_millis(3_600_000));
        assert_eq!(s.watch.list, Duration::from_millis(30_000));
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
                ("WATCH_LIST_MS", "9"),
                "WATCH_LIST_MS is invalid: must be between 10 and 86400000 (ms), got 9",
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
        let sas = "https://acct.blob.core.windows.net/c?sv=2024-01-01&sig=c2VjcmV0";
        for (flag, var) in [("--raw-url", "RAW_URL"), ("--standard-url", "STANDARD_URL")] {
            for argv in [[flag, sas, "watch"], ["watch", flag, sas]] {
                let err = args(&[], &argv).expect_err(flag).to_string();
                assert!(err.starts_with(&format!("{flag} carries")), "{err}");
                assert!(
                    err.contains(&format!("pass the value through the environment as {var}")),
                    "{err}"
                );
                assert!(!err.contains("c2VjcmV0"), "{err}");
            }
            // Through the environment it is the way.
            settings(&[(var, sas)]).expect("a SAS token in the environment");
        }
        let s = args(&[], &["watch", "--raw-url", "az://other"]).expect("no secret");
        assert_eq!(s.raw_url, "az://other");
    }

    #[test]
    fn flags_override_the_environment() {
        let vars = [
            ("WATCH_CONCURRENCY", "2"),
            ("PARQUET_COMPRESSION", "snappy"),
        ];
        let s = args(
            &vars,
            &[
                "--watch-concurrency",
                "7",
                "--watch-prefix",
                "lib.server.game/",
                "--watch-lease-ttl-ms",
                "1500",
                "watch",
                "--watch-full-list-ms",
                "5000",
                "--transform-row-group-rows",
                "4096",
                "--runs-max-active",
                "3",
                "--runs-retention-secs",
                "60",
            ],
        )
        .expect("valid");
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
        assert_eq!(args(&vars, &[]).expect("valid").watch.concurrency, 2);
    }
}

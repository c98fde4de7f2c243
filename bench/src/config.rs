//! The knobs of the bench binaries: environment first (one `Deserialize` struct per binary, field
//! names = lower-case variable names), CLI flags as overrides, validated once into a plan that can
//! only be valid.
//!
//! Variables come from `env/local.env` (through [`testkit::env`]), then the process environment,
//! then the flags; the later source wins. So `bench-latency` runs as-is against the local stack.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser};
use serde::Deserialize;
use service::config::ConfigError;

/// Default of `BENCH_RESULTS`: the JSON-line results file `bench/run` collects.
pub const DEFAULT_RESULTS: &str = "bench/results.jsonl";
/// Default of `BENCH_SVG`.
pub const DEFAULT_SVG: &str = "docs/bench/throughput-vs-batch-size.svg";
/// Default of `BENCH_MARKDOWN`.
pub const DEFAULT_MARKDOWN: &str = "docs/BENCHMARKS.md";
/// Default of `BENCH_TEMPLATE`: the hand-written report template, read when the report is made.
pub const DEFAULT_TEMPLATE: &str = "bench/BENCHMARKS.template.md";

/// `bench-latency`'s variables.
#[derive(Debug, Clone, Deserialize)]
pub struct LatencyConfig {
    /// `KAFKA_BROKERS` (required; env/local.env has the local broker).
    pub kafka_brokers: String,
    /// `BENCH_RATE`: records per second sent during the measurement.
    #[serde(default = "default_rate")]
    pub bench_rate: u32,
    /// `BENCH_DURATION_S`: seconds of sending at `BENCH_RATE`.
    #[serde(default = "default_duration")]
    pub bench_duration_s: u64,
    /// `BENCH_LOBBY_PARTITIONS`: partitions of the lobby-shaped topic.
    #[serde(default = "default_lobby_partitions")]
    pub bench_lobby_partitions: i32,
    /// `BENCH_GAME_PARTITIONS`: partitions of the game-shaped topic.
    #[serde(default = "default_game_partitions")]
    pub bench_game_partitions: i32,
    /// `BATCH_SIZE` handed to the worker.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `BATCH_MAX_WAIT_MS` handed to the worker.
    #[serde(default = "default_max_wait")]
    pub batch_max_wait_ms: u64,
    /// `WATCH_POLL_MS` handed to `transformer watch`.
    #[serde(default = "default_watch_poll")]
    pub watch_poll_ms: u64,
    /// `BENCH_POLL_MS`: how often the bench lists `standard/buffer_meta/` (its own resolution).
    #[serde(default = "default_poll")]
    pub bench_poll_ms: u64,
    /// `BENCH_DRAIN_TIMEOUT_S`: how long to wait after sending for the last records to show.
    #[serde(default = "default_drain")]
    pub bench_drain_timeout_s: u64,
    /// `DATAFLOW_BIN_DIR`: folder with the `worker` and `transformer` binaries.
    #[serde(default)]
    pub dataflow_bin_dir: Option<PathBuf>,
    /// `BENCH_RESULTS`: JSON-lines file the result line is appended to.
    #[serde(default = "default_results")]
    pub bench_results: PathBuf,
    /// `BENCH_LOG_DIR`: where the children's stdout/stderr go.
    #[serde(default = "default_log_dir")]
    pub bench_log_dir: PathBuf,
}

fn default_rate() -> u32 {
    200
}
fn default_duration() -> u64 {
    60
}
fn default_lobby_partitions() -> i32 {
    2
}
fn default_game_partitions() -> i32 {
    4
}
fn default_batch_size() -> usize {
    1000
}
fn default_max_wait() -> u64 {
    1000
}
fn default_watch_poll() -> u64 {
    500
}
fn default_poll() -> u64 {
    100
}
fn default_drain() -> u64 {
    120
}
fn default_results() -> PathBuf {
    PathBuf::from(DEFAULT_RESULTS)
}
fn default_log_dir() -> PathBuf {
    PathBuf::from("bench/out/logs")
}

/// End-to-end latency at a fixed rate: produce → worker → raw → transformer watch → Parquet
/// visible in `standard/buffer_meta/`. Every flag overrides the environment variable in brackets;
/// env/local.env supplies the local stack's addresses.
#[derive(Debug, Parser)]
#[command(name = "bench-latency", version)]
pub struct LatencyCli {
    /// Kafka bootstrap servers; required (env/local.env sets 127.0.0.1:9092). [env: KAFKA_BROKERS]
    #[arg(long, value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,
    /// Records per second during the measurement; default 200. [env: BENCH_RATE]
    #[arg(long, value_name = "PER_SECOND")]
    pub bench_rate: Option<String>,
    /// Seconds of sending; default 60. [env: BENCH_DURATION_S]
    #[arg(long, value_name = "SECONDS")]
    pub bench_duration_s: Option<String>,
    /// Partitions of the lobby-shaped topic; default 2. [env: BENCH_LOBBY_PARTITIONS]
    #[arg(long, value_name = "N")]
    pub bench_lobby_partitions: Option<String>,
    /// Partitions of the game-shaped topic; default 4. [env: BENCH_GAME_PARTITIONS]
    #[arg(long, value_name = "N")]
    pub bench_game_partitions: Option<String>,
    /// Worker records per batch; default 1000. [env: BATCH_SIZE]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<String>,
    /// Worker max wait in ms after a batch's first record; default 1000. [env: BATCH_MAX_WAIT_MS]
    #[arg(long, value_name = "MS")]
    pub batch_max_wait_ms: Option<String>,
    /// Transformer watch poll interval in ms; default 500. [env: WATCH_POLL_MS]
    #[arg(long, value_name = "MS")]
    pub watch_poll_ms: Option<String>,
    /// How often the bench lists the Parquet outputs, in ms (its resolution); default 100. [env: BENCH_POLL_MS]
    #[arg(long, value_name = "MS")]
    pub bench_poll_ms: Option<String>,
    /// Seconds to wait after sending for the last records; default 120. [env: BENCH_DRAIN_TIMEOUT_S]
    #[arg(long, value_name = "SECONDS")]
    pub bench_drain_timeout_s: Option<String>,
    /// Folder with the worker and transformer binaries; default target/release, else target/debug. [env: DATAFLOW_BIN_DIR]
    #[arg(long, value_name = "DIR")]
    pub dataflow_bin_dir: Option<String>,
    /// JSON-lines file the result is appended to; default bench/results.jsonl. [env: BENCH_RESULTS]
    #[arg(long, value_name = "PATH")]
    pub bench_results: Option<String>,
    /// Folder for the children's logs; default bench/out/logs. [env: BENCH_LOG_DIR]
    #[arg(long, value_name = "DIR")]
    pub bench_log_dir: Option<String>,
}

/// A validated latency run.
#[derive(Debug, Clone)]
pub struct LatencyPlan {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Records per second.
    pub rate: u32,
    /// Sending time.
    pub duration: Duration,
    /// Lobby-shaped and game-shaped topic partitions.
    pub partitions: [i32; 2],
    /// Worker `BATCH_SIZE`.
    pub batch_size: usize,
    /// Worker `BATCH_MAX_WAIT_MS`.
    pub batch_max_wait: Duration,
    /// Transformer `WATCH_POLL_MS`.
    pub watch_poll: Duration,
    /// The bench's own listing interval.
    pub poll: Duration,
    /// Drain timeout.
    pub drain_timeout: Duration,
    /// Folder holding `worker` and `transformer`.
    pub bin_dir: PathBuf,
    /// Results file.
    pub results: PathBuf,
    /// Children's log folder.
    pub log_dir: PathBuf,
}

impl LatencyConfig {
    /// Checks the values once; errors name the variable.
    pub fn validate(self) -> Result<LatencyPlan, ConfigError> {
        if self.bench_rate == 0 {
            return Err(ConfigError::invalid(
                "BENCH_RATE",
                "must be at least 1 record per second",
            ));
        }
        if self.bench_duration_s == 0 {
            return Err(ConfigError::invalid(
                "BENCH_DURATION_S",
                "must be at least 1 second",
            ));
        }
        for (var, n) in [
            ("BENCH_LOBBY_PARTITIONS", self.bench_lobby_partitions),
            ("BENCH_GAME_PARTITIONS", self.bench_game_partitions),
        ] {
            if !(1..=64).contains(&n) {
                return Err(ConfigError::invalid(
                    var,
                    format!("{n} partitions: use 1 to 64"),
                ));
            }
        }
        if self.bench_poll_ms == 0 {
            return Err(ConfigError::invalid(
                "BENCH_POLL_MS",
                "must be at least 1 ms",
            ));
        }
        let bin_dir = resolve_bin_dir(self.dataflow_bin_dir.as_deref(), &testkit::root())?;
        Ok(LatencyPlan {
            brokers: self.kafka_brokers,
            rate: self.bench_rate,
            duration: Duration::from_secs(self.bench_duration_s),
            partitions: [self.bench_lobby_partitions, self.bench_game_partitions],
            batch_size: self.batch_size,
            batch_max_wait: Duration::from_millis(self.batch_max_wait_ms),
            watch_poll: Duration::from_millis(self.watch_poll_ms),
            poll: Duration::from_millis(self.bench_poll_ms),
            drain_timeout: Duration::from_secs(self.bench_drain_timeout_s),
            bin_dir,
            results: self.bench_results,
            log_dir: self.bench_log_dir,
        })
    }
}

/// The binaries the latency bench starts.
pub const CHILD_BINARIES: [&str; 2] = ["worker", "transformer"];

/// `DATAFLOW_BIN_DIR` if set (it must hold both binaries), else `target/release` when it holds
/// both, else `target/debug`.
pub fn resolve_bin_dir(configured: Option<&Path>, root: &Path) -> Result<PathBuf, ConfigError> {
    let holds_all = |dir: &Path| CHILD_BINARIES.iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = configured {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            root.join(dir)
        };
        if !holds_all(&dir) {
            return Err(ConfigError::invalid(
                "DATAFLOW_BIN_DIR",
                format!(
                    "{} does not hold both `worker` and `transformer`: build them (cargo build --workspace --bins) or point at another folder",
                    dir.display()
                ),
            ));
        }
        return Ok(dir);
    }
    ["release", "debug"]
        .iter()
        .map(|p| root.join("target").join(p))
        .find(|d| holds_all(d))
        .ok_or_else(|| {
            ConfigError::invalid(
                "DATAFLOW_BIN_DIR",
                "unset, and neither target/release nor target/debug holds `worker` and `transformer`: run cargo build --workspace --bins",
            )
        })
}

/// `bench-backlog`'s variables.
#[derive(Debug, Clone, Deserialize)]
pub struct BacklogConfig {
    /// `KAFKA_BROKERS` (required; env/local.env has the local broker).
    pub kafka_brokers: String,
    /// `BENCH_TOPICS`: comma-separated topics holding the backlog (required).
    #[serde(deserialize_with = "service::config::comma_list")]
    pub bench_topics: Vec<String>,
    /// `BENCH_RECORDS`: records in those topics (required).
    pub bench_records: u64,
    /// `BATCH_SIZE` handed to the worker.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `BATCH_MAX_WAIT_MS` handed to the worker (the final partial batches wait this long).
    #[serde(default = "default_max_wait")]
    pub batch_max_wait_ms: u64,
    /// `GZIP_LEVEL` handed to the worker (unset: the worker's default).
    #[serde(default)]
    pub gzip_level: Option<u32>,
    /// `BENCH_LABEL`: the result's `bench` field.
    #[serde(default = "default_backlog_label")]
    pub bench_label: String,
    /// `BENCH_TIMEOUT_S`: give up after this many seconds.
    #[serde(default = "default_backlog_timeout")]
    pub bench_timeout_s: u64,
    /// `DATAFLOW_BIN_DIR`: folder with the `worker` binary.
    #[serde(default)]
    pub dataflow_bin_dir: Option<PathBuf>,
    /// `BENCH_RESULTS`: JSON-lines file the result line is appended to.
    #[serde(default = "default_results")]
    pub bench_results: PathBuf,
    /// `BENCH_LOG_DIR`: where the worker's stdout/stderr go.
    #[serde(default = "default_log_dir")]
    pub bench_log_dir: PathBuf,
    /// `BENCH_BROKER_PID`: the broker's process, for its CPU per record (unset: not measured).
    #[serde(default)]
    pub bench_broker_pid: Option<u32>,
    /// `BENCH_STORAGE_PID`: the storage emulator's process, for its CPU per record.
    #[serde(default)]
    pub bench_storage_pid: Option<u32>,
}

fn default_backlog_timeout() -> u64 {
    900
}
fn default_backlog_label() -> String {
    "worker_lag".to_owned()
}

/// The worker binary behind a backlog: a fresh group on topics that already hold
/// BENCH_RECORDS records; reports the worker's peak RSS and landing rate. Every flag overrides
/// the environment variable in brackets.
#[derive(Debug, Parser)]
#[command(name = "bench-backlog", version)]
pub struct BacklogCli {
    /// Kafka bootstrap servers; required (env/local.env sets 127.0.0.1:9092). [env: KAFKA_BROKERS]
    #[arg(long, value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,
    /// Comma-separated topics holding the backlog; required. [env: BENCH_TOPICS]
    #[arg(long, value_name = "TOPICS")]
    pub bench_topics: Option<String>,
    /// Records in those topics (the run ends when all are landed); required. [env: BENCH_RECORDS]
    #[arg(long, value_name = "N")]
    pub bench_records: Option<String>,
    /// Worker records per batch; default 1000. [env: BATCH_SIZE]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<String>,
    /// Worker max wait in ms after a batch's first record (the last partial batches wait it); default 1000. [env: BATCH_MAX_WAIT_MS]
    #[arg(long, value_name = "MS")]
    pub batch_max_wait_ms: Option<String>,
    /// Worker gzip level 0-9; default: unset, the worker's own default. [env: GZIP_LEVEL]
    #[arg(long, value_name = "LEVEL")]
    pub gzip_level: Option<String>,
    /// The result's `bench` field; default worker_lag (bench/run uses worker_gzip for the gzip sweep). [env: BENCH_LABEL]
    #[arg(long, value_name = "NAME")]
    pub bench_label: Option<String>,
    /// Seconds before giving up; default 900. [env: BENCH_TIMEOUT_S]
    #[arg(long, value_name = "SECONDS")]
    pub bench_timeout_s: Option<String>,
    /// Folder with the worker binary; default target/release, else target/debug. [env: DATAFLOW_BIN_DIR]
    #[arg(long, value_name = "DIR")]
    pub dataflow_bin_dir: Option<String>,
    /// JSON-lines file the result is appended to; default bench/results.jsonl. [env: BENCH_RESULTS]
    #[arg(long, value_name = "PATH")]
    pub bench_results: Option<String>,
    /// Folder for the worker's log; default bench/out/logs. [env: BENCH_LOG_DIR]
    #[arg(long, value_name = "DIR")]
    pub bench_log_dir: Option<String>,
    /// The broker's pid, to read its CPU per landed record; default: not measured. [env: BENCH_BROKER_PID]
    #[arg(long, value_name = "PID")]
    pub bench_broker_pid: Option<String>,
    /// The storage emulator's pid, to read its CPU per landed record; default: not measured. [env: BENCH_STORAGE_PID]
    #[arg(long, value_name = "PID")]
    pub bench_storage_pid: Option<String>,
}

impl BacklogConfig {
    /// Checks the values once; errors name the variable.
    pub fn validate(self) -> Result<crate::backlog::BacklogPlan, ConfigError> {
        if self.bench_topics.is_empty() {
            return Err(ConfigError::invalid(
                "BENCH_TOPICS",
                "name at least one topic",
            ));
        }
        if self.bench_records == 0 {
            return Err(ConfigError::invalid(
                "BENCH_RECORDS",
                "must be at least 1 record",
            ));
        }
        Ok(crate::backlog::BacklogPlan {
            brokers: self.kafka_brokers,
            topics: self.bench_topics,
            records: self.bench_records,
            batch_size: self.batch_size,
            batch_max_wait_ms: self.batch_max_wait_ms,
            gzip_level: self.gzip_level,
            label: self.bench_label,
            bin_dir: resolve_bin_dir(self.dataflow_bin_dir.as_deref(), &testkit::root())?,
            log_dir: self.bench_log_dir,
            timeout: Duration::from_secs(self.bench_timeout_s),
            broker_pid: self.bench_broker_pid,
            storage_pid: self.bench_storage_pid,
        })
    }
}

/// `bench-baseline`'s variables.
#[derive(Debug, Clone, Deserialize)]
pub struct BaselineConfig {
    /// `KAFKA_BROKERS` (required; env/local.env has the local broker).
    pub kafka_brokers: String,
    /// `BENCH_TOPICS`: comma-separated topics to read (required).
    #[serde(deserialize_with = "service::config::comma_list")]
    pub bench_topics: Vec<String>,
    /// `BENCH_RECORDS`: records in those topics (required).
    pub bench_records: u64,
    /// `BATCH_SIZE`: the worker batch size this baseline is paired with in the report.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `BENCH_TIMEOUT_S`: give up after this many seconds.
    #[serde(default = "default_backlog_timeout")]
    pub bench_timeout_s: u64,
    /// `BENCH_RESULTS`: JSON-lines file the result line is appended to.
    #[serde(default = "default_results")]
    pub bench_results: PathBuf,
    /// `BENCH_LABEL`: the result's `bench` field (`worker_baseline_after` for the run after the
    /// worker's).
    #[serde(default = "default_baseline_label")]
    pub bench_label: String,
    /// `BENCH_BROKER_PID`: the broker's process, for its CPU per record (unset: not measured).
    #[serde(default)]
    pub bench_broker_pid: Option<u32>,
}

fn default_baseline_label() -> String {
    "worker_baseline".to_owned()
}

/// Consume-and-discard baseline: the worker's consumer settings with a fresh group, reading
/// BENCH_RECORDS records and dropping them. Every flag overrides the variable in brackets.
#[derive(Debug, Parser)]
#[command(name = "bench-baseline", version)]
pub struct BaselineCli {
    /// Kafka bootstrap servers; required (env/local.env sets 127.0.0.1:9092). [env: KAFKA_BROKERS]
    #[arg(long, value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,
    /// Comma-separated topics to read; required. [env: BENCH_TOPICS]
    #[arg(long, value_name = "TOPICS")]
    pub bench_topics: Option<String>,
    /// Records in those topics (the run ends when all are read); required. [env: BENCH_RECORDS]
    #[arg(long, value_name = "N")]
    pub bench_records: Option<String>,
    /// Worker batch size this baseline is paired with in the report; default 1000. [env: BATCH_SIZE]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<String>,
    /// Seconds before giving up; default 900. [env: BENCH_TIMEOUT_S]
    #[arg(long, value_name = "SECONDS")]
    pub bench_timeout_s: Option<String>,
    /// JSON-lines file the result is appended to; default bench/results.jsonl. [env: BENCH_RESULTS]
    #[arg(long, value_name = "PATH")]
    pub bench_results: Option<String>,
    /// The result's `bench` field; default worker_baseline (bench/run uses worker_baseline_after for the run after the worker). [env: BENCH_LABEL]
    #[arg(long, value_name = "NAME")]
    pub bench_label: Option<String>,
    /// The broker's pid, to read its CPU per record; default: not measured. [env: BENCH_BROKER_PID]
    #[arg(long, value_name = "PID")]
    pub bench_broker_pid: Option<String>,
}

/// `bench-topic`'s variables.
#[derive(Debug, Clone, Deserialize)]
pub struct TopicConfig {
    /// `KAFKA_BROKERS` (required; env/local.env has the local broker).
    pub kafka_brokers: String,
    /// `BENCH_TOPIC`: the topic to create (required).
    pub bench_topic: String,
    /// `BENCH_PARTITIONS`: its partition count.
    #[serde(default = "default_game_partitions")]
    pub bench_partitions: i32,
}

/// Creates a topic (idempotent) and waits until the broker knows it; `bench/run` uses it for the
/// flood topic that kcat and the worker bench read. Every flag overrides the variable in brackets.
#[derive(Debug, Parser)]
#[command(name = "bench-topic", version)]
pub struct TopicCli {
    /// Kafka bootstrap servers; required (env/local.env sets 127.0.0.1:9092). [env: KAFKA_BROKERS]
    #[arg(long, value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,
    /// Topic to create; required. [env: BENCH_TOPIC]
    #[arg(long, value_name = "NAME")]
    pub bench_topic: Option<String>,
    /// Partitions of the topic; default 4. [env: BENCH_PARTITIONS]
    #[arg(long, value_name = "N")]
    pub bench_partitions: Option<String>,
}

impl TopicConfig {
    /// Checks the partition count; the error names `BENCH_PARTITIONS`.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if !(1..=64).contains(&self.bench_partitions) {
            return Err(ConfigError::invalid(
                "BENCH_PARTITIONS",
                format!("{} partitions: use 1 to 64", self.bench_partitions),
            ));
        }
        Ok(self)
    }
}

/// `bench-collect`'s variables.
#[derive(Debug, Clone, Deserialize)]
pub struct CollectConfig {
    /// `BENCH_NAME`: the `bench` field of lines that have none (required).
    pub bench_name: String,
    /// `BENCH_RUN`: the run id every line is tagged with (required).
    pub bench_run: String,
    /// `BENCH_RESULTS`: the file appended to.
    #[serde(default = "default_results")]
    pub bench_results: PathBuf,
}

/// Appends a bench tool's results (stdin) to the results file: its JSON lines, or, when it prints
/// none, one object per Markdown table row. Every flag overrides the variable in brackets.
#[derive(Debug, Parser)]
#[command(name = "bench-collect", version)]
pub struct CollectCli {
    /// `bench` field for lines without one, e.g. transformer; required. [env: BENCH_NAME]
    #[arg(long, value_name = "NAME")]
    pub bench_name: Option<String>,
    /// Run id every line is tagged with (bench/run uses the UTC start time); required. [env: BENCH_RUN]
    #[arg(long, value_name = "ID")]
    pub bench_run: Option<String>,
    /// JSON-lines file appended to; default bench/results.jsonl. [env: BENCH_RESULTS]
    #[arg(long, value_name = "PATH")]
    pub bench_results: Option<String>,
}

/// `bench-plot`'s and `bench-report`'s variables.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportConfig {
    /// `BENCH_RESULTS`: the JSON-lines results.
    #[serde(default = "default_results")]
    pub bench_results: PathBuf,
    /// `BENCH_SVG`: the throughput plot.
    #[serde(default = "default_svg")]
    pub bench_svg: PathBuf,
    /// `BENCH_MARKDOWN`: the generated report.
    #[serde(default = "default_markdown")]
    pub bench_markdown: PathBuf,
    /// `BENCH_TEMPLATE`: the template the report is rendered from.
    #[serde(default = "default_template")]
    pub bench_template: PathBuf,
}

fn default_svg() -> PathBuf {
    PathBuf::from(DEFAULT_SVG)
}
fn default_markdown() -> PathBuf {
    PathBuf::from(DEFAULT_MARKDOWN)
}
fn default_template() -> PathBuf {
    PathBuf::from(DEFAULT_TEMPLATE)
}

/// Files of `bench-plot` and `bench-report`; every flag overrides the variable in brackets.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON-lines results to read; default bench/results.jsonl. [env: BENCH_RESULTS]
    #[arg(long, value_name = "PATH")]
    pub bench_results: Option<String>,
    /// SVG plot of throughput against batch size; default docs/bench/throughput-vs-batch-size.svg. [env: BENCH_SVG]
    #[arg(long, value_name = "PATH")]
    pub bench_svg: Option<String>,
    /// Markdown report; default docs/BENCHMARKS.md. [env: BENCH_MARKDOWN]
    #[arg(long, value_name = "PATH")]
    pub bench_markdown: Option<String>,
    /// Template the report is rendered from, read at run time (edit it, not the report); default bench/BENCHMARKS.template.md. [env: BENCH_TEMPLATE]
    #[arg(long, value_name = "PATH")]
    pub bench_template: Option<String>,
}

/// Throughput plot from the results file (records/s of the consume-and-discard baseline and
/// the worker against batch size, log x axis).
#[derive(Debug, Parser)]
#[command(name = "bench-plot", version)]
pub struct PlotCli {
    /// The files.
    #[command(flatten)]
    pub files: ReportArgs,
}

/// Regenerates docs/BENCHMARKS.md from the results file.
#[derive(Debug, Parser)]
#[command(name = "bench-report", version)]
pub struct ReportCli {
    /// The files.
    #[command(flatten)]
    pub files: ReportArgs,
}

/// The flags given on the command line, as `(VARIABLE, value)` pairs (`--bench-rate` → `BENCH_RATE`).
pub fn overrides(cmd: &clap::Command, matches: &ArgMatches) -> Vec<(String, String)> {
    cmd.get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let id = arg.get_id().as_str();
            if matches.value_source(id) != Some(ValueSource::CommandLine) {
                return None;
            }
            let values = matches.try_get_raw(id).ok()??;
            let value: Vec<String> = values.map(|v| v.to_string_lossy().into_owned()).collect();
            Some((env_name(long), value.join(",")))
        })
        .collect()
}

/// `--bench-rate` → `BENCH_RATE`.
pub fn env_name(long_flag: &str) -> String {
    service::config::env_var_of_flag(long_flag)
}

/// env/local.env, then the process environment, then `overrides`: the later wins.
pub fn merged(
    process: impl IntoIterator<Item = (String, String)>,
    overrides: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut vars: BTreeMap<String, String> = testkit::env().clone();
    vars.extend(process);
    vars.extend(overrides);
    vars.into_iter().collect()
}

/// Parses `C` from env/local.env, the environment and the flags of `P`.
pub fn load<P: clap::CommandFactory, C: serde::de::DeserializeOwned>() -> Result<C, ConfigError> {
    let cmd = P::command();
    let matches = cmd.clone().get_matches();
    service::config::from_iter(merged(std::env::vars(), overrides(&cmd, &matches)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::CommandFactory;
    use service::config::{env_keys, from_iter};

    use super::*;

    fn long_flags(cmd: &clap::Command) -> BTreeSet<String> {
        cmd.get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| !["help", "version"].contains(l))
            .map(env_name)
            .collect()
    }

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_latency_flag_is_a_variable_and_every_variable_has_a_flag() {
        let flags = long_flags(&LatencyCli::command());
        let keys: BTreeSet<String> = env_keys::<LatencyConfig>().into_iter().collect();
        assert_eq!(flags, keys);
        let help = LatencyCli::command().render_long_help().to_string();
        for key in &keys {
            assert!(
                help.contains(&format!("[env: {key}]")),
                "--help does not name {key}"
            );
        }
    }

    #[test]
    fn every_report_flag_is_a_variable_and_every_variable_has_a_flag() {
        let keys: BTreeSet<String> = env_keys::<ReportConfig>().into_iter().collect();
        assert_eq!(long_flags(&PlotCli::command()), keys);
        assert_eq!(long_flags(&ReportCli::command()), keys);
    }

    #[test]
    fn every_topic_flag_is_a_variable_and_every_variable_has_a_flag() {
        let keys: BTreeSet<String> = env_keys::<TopicConfig>().into_iter().collect();
        assert_eq!(long_flags(&TopicCli::command()), keys);
    }

    #[test]
    fn every_collect_flag_is_a_variable_and_every_variable_has_a_flag() {
        let keys: BTreeSet<String> = env_keys::<CollectConfig>().into_iter().collect();
        assert_eq!(long_flags(&CollectCli::command()), keys);
    }

    #[test]
    fn every_backlog_flag_is_a_variable_and_every_variable_has_a_flag() {
        let keys: BTreeSet<String> = env_keys::<BacklogConfig>().into_iter().collect();
        assert_eq!(long_flags(&BacklogCli::command()), keys);
    }

    #[test]
    fn an_empty_backlog_is_rejected_naming_bench_records() {
        let c: BacklogConfig = from_iter(vars(&[
            ("KAFKA_BROKERS", "b"),
            ("BENCH_TOPICS", "t"),
            ("BENCH_RECORDS", "0"),
        ]))
        .expect("parses");
        let err = c.validate().expect_err("zero records");
        assert!(
            err.to_string().starts_with("BENCH_RECORDS is invalid"),
            "{err}"
        );
    }

    #[test]
    fn every_baseline_flag_is_a_variable_and_every_variable_has_a_flag() {
        let keys: BTreeSet<String> = env_keys::<BaselineConfig>().into_iter().collect();
        assert_eq!(long_flags(&BaselineCli::command()), keys);
    }

    #[test]
    fn flags_override_the_environment() {
        let cmd = LatencyCli::command();
        let matches = cmd
            .clone()
            .try_get_matches_from(["bench-latency", "--bench-rate", "50"])
            .expect("parses");
        let merged = merged(vars(&[("BENCH_RATE", "7")]), overrides(&cmd, &matches));
        let c: LatencyConfig = from_iter(merged).expect("valid");
        assert_eq!(
            (c.bench_rate, c.bench_duration_s, c.batch_max_wait_ms),
            (50, 60, 1000)
        );
    }

    #[test]
    fn zero_rate_is_rejected_naming_bench_rate() {
        let c: LatencyConfig =
            from_iter(vars(&[("KAFKA_BROKERS", "b"), ("BENCH_RATE", "0")])).expect("parses");
        let err = c.validate().expect_err("zero rate");
        assert_eq!(
            err.to_string(),
            "BENCH_RATE is invalid: must be at least 1 record per second; fix BENCH_RATE (see env/local.env and --help)"
        );
    }

    #[test]
    fn partitions_out_of_range_name_the_variable() {
        let c: LatencyConfig = from_iter(vars(&[
            ("KAFKA_BROKERS", "b"),
            ("BENCH_GAME_PARTITIONS", "0"),
        ]))
        .expect("parses");
        let err = c.validate().expect_err("zero partitions");
        assert!(
            err.to_string()
                .starts_with("BENCH_GAME_PARTITIONS is invalid: 0 partitions"),
            "{err}"
        );
    }

    #[test]
    fn a_bin_dir_without_the_binaries_is_rejected_naming_dataflow_bin_dir() {
        let empty = std::env::temp_dir().join(testkit::unique("bench-empty-bin"));
        std::fs::create_dir_all(&empty).expect("temp dir");
        let err = resolve_bin_dir(Some(&empty), Path::new("/")).expect_err("no binaries");
        assert!(
            err.to_string().starts_with("DATAFLOW_BIN_DIR is invalid:"),
            "{err}"
        );
        for b in CHILD_BINARIES {
            std::fs::write(empty.join(b), b"").expect("fake binary");
        }
        assert_eq!(
            resolve_bin_dir(Some(&empty), Path::new("/")).expect("both present"),
            empty
        );
        std::fs::remove_dir_all(&empty).expect("clean up");
    }
}

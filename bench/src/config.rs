//! The knobs of the `bench` binary: one clap struct per subcommand (each knob declared once, flag
//! over environment variable over default; see `service::config`), the knobs several subcommands
//! share declared once in a struct they flatten, validated once into a plan that can only be
//! valid.
//!
//! [`load`] puts env/local.env (through [`testkit::env`]) under the process environment, and the
//! flags over both. So `bench latency` runs as-is against the local stack.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use service::config::ConfigError;

use crate::backlog::BacklogPlan;
use crate::baseline::BaselinePlan;
use crate::children::resolve_bin_dir;
use crate::landing::LandingPlan;
use crate::large_blob::BlobTopic;
use crate::latency::LatencyPlan;

/// Default of `BENCH_RESULTS`: the JSON-line results file `bench/run` collects.
pub const DEFAULT_RESULTS: &str = "bench/results.jsonl";
/// Default of `BENCH_SVG`.
pub const DEFAULT_SVG: &str = "docs/bench/throughput-vs-batch-size.svg";
/// Default of `BENCH_MARKDOWN`.
pub const DEFAULT_MARKDOWN: &str = "docs/BENCHMARKS.md";
/// Default of `BENCH_TEMPLATE`: the hand-written report template, read when the report is made.
pub const DEFAULT_TEMPLATE: &str = "bench/BENCHMARKS.template.md";

/// The benchmark harness of the superhero dataflow; `bench/run` drives it.
///
/// Every option of a subcommand overrides the environment variable named in brackets, which
/// overrides env/local.env (an empty variable counts as unset).
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, each with its own knobs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// End-to-end latency: produce → worker → raw → transformer watch → Parquet visible.
    Latency(LatencyConfig),
    /// The worker binary behind a backlog: landing rate, peak RSS, CPU per record.
    Backlog(BacklogConfig),
    /// Consume-and-discard with the worker's consumer settings.
    Baseline(BaselineConfig),
    /// A tool's output on stdin → result lines tagged with the run id.
    Collect(CollectConfig),
    /// The throughput plot (SVG) from the results file.
    Plot(ReportConfig),
    /// docs/BENCHMARKS.md from its template and the results file.
    Report(ReportConfig),
    /// Creates a topic (idempotent) and waits until the broker knows it.
    Topic(TopicConfig),
    /// By hand: does `transformer watch` keep up with a stream of raw blobs? (flags only)
    Watch(crate::watch::WatchArgs),
    /// Throughput and memory of the transform on generated raw blobs (flags only).
    Transformer(crate::transform::TransformArgs),
    /// The worker binary per batch size against a consume-and-discard baseline, on records of
    /// its own; and the worker's gzip per level.
    Landing(LandingConfig),
    /// One large generated raw blob in a fresh Azurite container (the transformer's memory on
    /// big blobs).
    LargeBlob(LargeBlobConfig),
}

/// Reads the subcommand and its knobs from the command line, the process environment and
/// env/local.env (in that order of precedence), as `bench` starts.
pub fn load() -> Result<Command, ConfigError> {
    load_from(std::env::args_os(), testkit::env())
}

/// [`load`] with the given arguments (the first is the binary's name) over `base`.
pub fn load_from<A: Into<OsString>>(
    args: impl IntoIterator<Item = A>,
    base: &BTreeMap<String, String>,
) -> Result<Command, ConfigError> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let name = args.get(1).and_then(|a| a.to_str()).unwrap_or_default();
    Ok(match name {
        "latency" => Command::Latency(subcommand(&args, base)?),
        "backlog" => Command::Backlog(subcommand(&args, base)?),
        "baseline" => Command::Baseline(subcommand(&args, base)?),
        "collect" => Command::Collect(subcommand(&args, base)?),
        "plot" => Command::Plot(subcommand(&args, base)?),
        "report" => Command::Report(subcommand(&args, base)?),
        "topic" => Command::Topic(subcommand(&args, base)?),
        "watch" => Command::Watch(subcommand(&args, base)?),
        "transformer" => Command::Transformer(subcommand(&args, base)?),
        "landing" => Command::Landing(subcommand(&args, base)?),
        "large-blob" => Command::LargeBlob(subcommand(&args, base)?),
        // No subcommand, an unknown one, `help …`, `--help`, `--version`: clap's own answer.
        _ => Cli::parse_from(&args).command,
    })
}

/// `bench NAME FLAGS…` read as NAME's own command, so that `service::config`'s rules (env/local.env
/// underneath, an empty variable unset, errors naming the variable) hold for its knobs.
fn subcommand<T: CommandFactory + FromArgMatches>(
    args: &[OsString],
    base: &BTreeMap<String, String>,
) -> Result<T, ConfigError> {
    let name = args.get(1).map(|n| n.to_string_lossy().into_owned());
    let bin = OsString::from(format!("bench {}", name.unwrap_or_default()));
    let rest = args.iter().skip(2).cloned();
    service::config::parse_from_over(std::iter::once(bin).chain(rest), base)
}

/// The broker, for the subcommands that talk to Kafka.
#[derive(Debug, Clone, Args)]
pub struct Kafka {
    /// Kafka bootstrap servers (env/local.env sets 127.0.0.1:9092).
    #[arg(long, env, value_name = "HOSTS")]
    pub kafka_brokers: String,
}

/// The results file: the measurements append to it, the plot and the report read it.
#[derive(Debug, Clone, Args)]
pub struct ResultsFile {
    /// JSON-lines results file (a measurement appends its result; plot and report read it).
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_RESULTS)]
    pub bench_results: PathBuf,
}

/// The worker batch size a measurement runs the worker with (or, for `baseline`, is paired with
/// in the report).
#[derive(Debug, Clone, Args)]
pub struct Batch {
    /// Worker records per batch.
    #[arg(long, env, value_name = "N", default_value_t = 1000)]
    pub batch_size: usize,
}

/// The child processes of `latency` and `backlog`.
#[derive(Debug, Clone, Args)]
pub struct Children {
    /// Worker max wait in ms after a batch's first record (the last partial batches wait it).
    #[arg(long, env, value_name = "MS", default_value_t = 1000)]
    pub batch_max_wait_ms: u64,
    /// Their binaries and logs.
    #[command(flatten)]
    pub binaries: Binaries,
}

/// Where the children's binaries are and their logs go (`latency`, `backlog`, `landing`).
#[derive(Debug, Clone, Args)]
pub struct Binaries {
    /// Folder with the worker and transformer binaries; unset: target/release, else target/debug.
    #[arg(long, env, value_name = "DIR")]
    pub dataflow_bin_dir: Option<PathBuf>,
    /// Folder for the children's stdout/stderr.
    #[arg(long, env, value_name = "DIR", default_value = "bench/out/logs")]
    pub bench_log_dir: PathBuf,
}

impl Binaries {
    /// The folder with the binaries ([`resolve_bin_dir`]); the error names `DATAFLOW_BIN_DIR`.
    fn bin_dir(&self) -> Result<PathBuf, ConfigError> {
        resolve_bin_dir(self.dataflow_bin_dir.as_deref(), &testkit::root())
    }
}

/// How long a measurement waits for its records (`backlog`, `baseline`, `landing`).
#[derive(Debug, Clone, Args)]
pub struct Timeout {
    /// Seconds before giving up.
    #[arg(long, env, value_name = "SECONDS", default_value_t = 900)]
    pub bench_timeout_s: u64,
}

impl Timeout {
    /// The limit.
    fn duration(&self) -> Duration {
        Duration::from_secs(self.bench_timeout_s)
    }
}

/// The backlog `backlog` and `baseline` read: topics that already hold the records.
#[derive(Debug, Clone, Args)]
pub struct Backlog {
    /// Comma-separated topics holding the backlog.
    #[arg(long, env, value_name = "TOPICS")]
    pub bench_topics: String,
    /// Records in those topics (the run ends when all are read, or landed).
    #[arg(long, env, value_name = "N")]
    pub bench_records: u64,
    /// How long to wait for them.
    #[command(flatten)]
    pub timeout: Timeout,
    /// The broker's pid, to read its CPU per record; unset: not measured.
    #[arg(long, env, value_name = "PID")]
    pub bench_broker_pid: Option<u32>,
}

impl Backlog {
    /// The topics, checked with the record count; errors name the variable.
    fn topics(&self) -> Result<Vec<String>, ConfigError> {
        let topics = service::config::comma_list(&self.bench_topics);
        if topics.is_empty() {
            let problem = "name at least one topic";
            return Err(ConfigError::invalid("BENCH_TOPICS", problem));
        }
        at_least_one("BENCH_RECORDS", self.bench_records, "record")?;
        Ok(topics)
    }
}

/// End-to-end latency at a fixed rate: produce → worker → raw → transformer watch → Parquet
/// visible in `standard/buffer_meta/`. Every flag overrides the environment variable in
/// brackets; env/local.env supplies the local stack's addresses.
#[derive(Debug, Clone, Parser)]
#[command(name = "latency", version)]
pub struct LatencyConfig {
    /// The broker.
    #[command(flatten)]
    pub kafka: Kafka,
    /// The worker's batch size.
    #[command(flatten)]
    pub batch: Batch,
    /// The children.
    #[command(flatten)]
    pub children: Children,
    /// Where the result goes.
    #[command(flatten)]
    pub results: ResultsFile,
    /// Records per second during the measurement.
    #[arg(long, env, value_name = "PER_SECOND", default_value_t = 200)]
    pub bench_rate: u32,
    /// Seconds of sending at BENCH_RATE.
    #[arg(long, env, value_name = "SECONDS", default_value_t = 60)]
    pub bench_duration_s: u64,
    /// Partitions of the lobby-shaped topic.
    #[arg(long, env, value_name = "N", default_value_t = 2)]
    pub bench_lobby_partitions: i32,
    /// Partitions of the game-shaped topic.
    #[arg(long, env, value_name = "N", default_value_t = 4)]
    pub bench_game_partitions: i32,
    /// Transformer watch poll interval in ms.
    #[arg(long, env, value_name = "MS", default_value_t = 500)]
    pub watch_poll_ms: u64,
    /// How often the bench lists `standard/buffer_meta/`, in ms (its own resolution).
    #[arg(long, env, value_name = "MS", default_value_t = 100)]
    pub bench_poll_ms: u64,
    /// Seconds to wait after sending for the last records to show.
    #[arg(long, env, value_name = "SECONDS", default_value_t = 120)]
    pub bench_drain_timeout_s: u64,
}

impl LatencyConfig {
    /// Checks the values once; errors name the variable.
    pub fn validate(self) -> Result<LatencyPlan, ConfigError> {
        at_least_one("BENCH_RATE", self.bench_rate.into(), "record per second")?;
        at_least_one("BENCH_DURATION_S", self.bench_duration_s, "second")?;
        partitions("BENCH_LOBBY_PARTITIONS", self.bench_lobby_partitions)?;
        partitions("BENCH_GAME_PARTITIONS", self.bench_game_partitions)?;
        at_least_one("BENCH_POLL_MS", self.bench_poll_ms, "ms")?;
        let children = self.children;
        Ok(LatencyPlan {
            bin_dir: children.binaries.bin_dir()?,
            brokers: self.kafka.kafka_brokers,
            rate: self.bench_rate,
            duration: Duration::from_secs(self.bench_duration_s),
            partitions: [self.bench_lobby_partitions, self.bench_game_partitions],
            batch_size: self.batch.batch_size,
            batch_max_wait: Duration::from_millis(children.batch_max_wait_ms),
            watch_poll: Duration::from_millis(self.watch_poll_ms),
            poll: Duration::from_millis(self.bench_poll_ms),
            drain_timeout: Duration::from_secs(self.bench_drain_timeout_s),
            results: self.results.bench_results,
            log_dir: children.binaries.bench_log_dir,
        })
    }
}

/// At least 1 `unit`; the error names `var`.
fn at_least_one(var: &str, n: u64, unit: &str) -> Result<(), ConfigError> {
    let problem = format!("must be at least 1 {unit}");
    if n == 0 {
        return Err(ConfigError::invalid(var, problem));
    }
    Ok(())
}

/// 1 to 64 partitions; the error names `var`.
fn partitions(var: &str, n: i32) -> Result<(), ConfigError> {
    let problem = format!("{n} partitions: use 1 to 64");
    if !(1..=64).contains(&n) {
        return Err(ConfigError::invalid(var, problem));
    }
    Ok(())
}

/// The worker binary behind a backlog: a fresh group on topics that already hold
/// BENCH_RECORDS records; reports the worker's peak RSS and landing rate. Every flag overrides
/// the environment variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "backlog", version)]
pub struct BacklogConfig {
    /// The broker.
    #[command(flatten)]
    pub kafka: Kafka,
    /// The backlog.
    #[command(flatten)]
    pub backlog: Backlog,
    /// The worker's batch size.
    #[command(flatten)]
    pub batch: Batch,
    /// The worker child.
    #[command(flatten)]
    pub children: Children,
    /// Where the result goes.
    #[command(flatten)]
    pub results: ResultsFile,
    /// Worker gzip level 0-9; unset: the worker's own default.
    #[arg(long, env, value_name = "LEVEL")]
    pub gzip_level: Option<u32>,
    /// The result's `bench` field (bench/run uses worker_gzip for the gzip sweep).
    #[arg(long, env, value_name = "NAME", default_value = "worker_lag")]
    pub bench_label: String,
    /// The storage emulator's pid, to read its CPU per landed record; unset: not measured.
    #[arg(long, env, value_name = "PID")]
    pub bench_storage_pid: Option<u32>,
}

impl BacklogConfig {
    /// Checks the values once; errors name the variable.
    pub fn validate(self) -> Result<BacklogPlan, ConfigError> {
        Ok(BacklogPlan {
            topics: self.backlog.topics()?,
            brokers: self.kafka.kafka_brokers,
            records: self.backlog.bench_records,
            batch_size: self.batch.batch_size,
            batch_max_wait_ms: self.children.batch_max_wait_ms,
            gzip_level: self.gzip_level,
            label: self.bench_label,
            bin_dir: self.children.binaries.bin_dir()?,
            log_dir: self.children.binaries.bench_log_dir,
            timeout: self.backlog.timeout.duration(),
            broker_pid: self.backlog.bench_broker_pid,
            storage_pid: self.bench_storage_pid,
        })
    }
}

/// Consume-and-discard baseline: the worker's consumer settings with a fresh group, reading
/// BENCH_RECORDS records and dropping them. Every flag overrides the variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "baseline", version)]
pub struct BaselineConfig {
    /// The broker.
    #[command(flatten)]
    pub kafka: Kafka,
    /// The backlog.
    #[command(flatten)]
    pub backlog: Backlog,
    /// The worker batch size this baseline is paired with in the report.
    #[command(flatten)]
    pub batch: Batch,
    /// Where the result goes.
    #[command(flatten)]
    pub results: ResultsFile,
    /// The result's `bench` field (bench/run uses worker_baseline_after for the run after the worker).
    #[arg(long, env, value_name = "NAME", default_value = "worker_baseline")]
    pub bench_label: String,
}

impl BaselineConfig {
    /// Checks the values once; errors name the variable.
    pub fn validate(self) -> Result<BaselinePlan, ConfigError> {
        Ok(BaselinePlan {
            topics: self.backlog.topics()?,
            brokers: self.kafka.kafka_brokers,
            records: self.backlog.bench_records,
            batch_size: self.batch.batch_size,
            timeout: self.backlog.timeout.duration(),
            label: self.bench_label,
            broker_pid: self.backlog.bench_broker_pid,
        })
    }
}

/// The worker binary per batch size against a consume-and-discard baseline, on records of its
/// own: produces LANDING_RECORDS simulator-shaped records into a fresh topic, times the worker's
/// gzip per level on a sample, reads the topic with the baseline, then lands it with the worker
/// (the worker's default BATCH_MAX_WAIT_MS) once per batch size. Prints JSON lines, then tables.
/// Every flag overrides the variable in brackets; the flags it had as the worker crate's bench
/// (--records, --partitions, --batch-sizes) still work.
#[derive(Debug, Clone, Parser)]
#[command(name = "landing", version)]
pub struct LandingConfig {
    /// The broker.
    #[command(flatten)]
    pub kafka: Kafka,
    /// The worker's binary and log.
    #[command(flatten)]
    pub binaries: Binaries,
    /// Limit of the baseline and of each worker run.
    #[command(flatten)]
    pub timeout: Timeout,
    /// Records produced into the fresh topic (and landed per batch size).
    #[arg(
        long,
        env,
        value_name = "N",
        default_value_t = 1_000_000,
        visible_alias = "records"
    )]
    pub landing_records: u64,
    /// Partitions of the fresh topic.
    #[arg(
        long,
        env,
        value_name = "N",
        default_value_t = 4,
        visible_alias = "partitions"
    )]
    pub landing_partitions: i32,
    /// Worker BATCH_SIZEs, comma-separated: one worker run each.
    #[arg(
        long,
        env,
        value_name = "N,…",
        value_delimiter = ',',
        default_values_t = [100, 1_000, 10_000, 100_000],
        visible_alias = "batch-sizes"
    )]
    pub landing_batch_sizes: Vec<usize>,
    /// Worker gzip level 0-9 of every worker run (the worker's own default is 1).
    #[arg(long, env, value_name = "LEVEL", default_value_t = 1)]
    pub gzip_level: u32,
}

impl LandingConfig {
    /// Checks the values once; errors name the variable.
    pub fn validate(self) -> Result<LandingPlan, ConfigError> {
        at_least_one("LANDING_RECORDS", self.landing_records, "record")?;
        partitions("LANDING_PARTITIONS", self.landing_partitions)?;
        if self.landing_batch_sizes.is_empty() || self.landing_batch_sizes.contains(&0) {
            let problem = "batch sizes must be at least 1 record";
            return Err(ConfigError::invalid("LANDING_BATCH_SIZES", problem));
        }
        if self.gzip_level > 9 {
            let problem = format!("{} is not a gzip level (0-9)", self.gzip_level);
            return Err(ConfigError::invalid("GZIP_LEVEL", problem));
        }
        Ok(LandingPlan {
            bin_dir: self.binaries.bin_dir()?,
            brokers: self.kafka.kafka_brokers,
            records: self.landing_records,
            partitions: self.landing_partitions,
            batch_sizes: self.landing_batch_sizes,
            gzip_level: self.gzip_level,
            log_dir: self.binaries.bench_log_dir,
            timeout: self.timeout.duration(),
        })
    }
}

/// One large raw blob of generated records (those of `bench transformer`, with tokens per game)
/// streamed gzipped into a fresh Azurite container, next to a fresh standard container; prints
/// both URLs and the blob name for `transformer transform`. Every flag overrides the variable in
/// brackets; the flags it had as the transformer crate's example (--records, --topic) still work.
#[derive(Debug, Clone, Parser)]
#[command(name = "large-blob", version)]
pub struct LargeBlobConfig {
    /// Records in the blob.
    #[arg(
        long,
        env,
        value_name = "N",
        default_value_t = 1_000_000,
        visible_alias = "records"
    )]
    pub blob_records: u64,
    /// Whose records: game (lib.server.game) or lobby (lib.server.lobby).
    #[arg(
        long,
        env,
        value_name = "TOPIC",
        value_enum,
        default_value_t = BlobTopic::Game,
        visible_alias = "topic"
    )]
    pub blob_topic: BlobTopic,
}

impl LargeBlobConfig {
    /// Checks the record count; the error names `BLOB_RECORDS`.
    pub fn validate(self) -> Result<Self, ConfigError> {
        at_least_one("BLOB_RECORDS", self.blob_records, "record")?;
        Ok(self)
    }
}

/// Creates a topic (idempotent) and waits until the broker knows it; `bench/run` uses it for the
/// flood topic that kcat and the worker bench read. Every flag overrides the variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "topic", version)]
pub struct TopicConfig {
    /// The broker.
    #[command(flatten)]
    pub kafka: Kafka,
    /// Topic to create.
    #[arg(long, env, value_name = "NAME")]
    pub bench_topic: String,
    /// Partitions of the topic.
    #[arg(long, env, value_name = "N", default_value_t = 4)]
    pub bench_partitions: i32,
}

impl TopicConfig {
    /// Checks the partition count; the error names `BENCH_PARTITIONS`.
    pub fn validate(self) -> Result<Self, ConfigError> {
        partitions("BENCH_PARTITIONS", self.bench_partitions)?;
        Ok(self)
    }
}

/// Appends a bench tool's results (stdin) to the results file: its JSON lines, or, when it prints
/// none, one object per Markdown table row. Every flag overrides the variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "collect", version)]
pub struct CollectConfig {
    /// `bench` field for lines without one, e.g. transformer.
    #[arg(long, env, value_name = "NAME")]
    pub bench_name: String,
    /// Run id every line is tagged with (bench/run uses the UTC start time).
    #[arg(long, env, value_name = "ID")]
    pub bench_run: String,
    /// Where the lines go.
    #[command(flatten)]
    pub results: ResultsFile,
}

/// The files of `bench plot` and `bench report` (both read all four); every flag overrides the
/// variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "report", version)]
pub struct ReportConfig {
    /// The results read.
    #[command(flatten)]
    pub results: ResultsFile,
    /// SVG plot of throughput against batch size.
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_SVG)]
    pub bench_svg: PathBuf,
    /// Markdown report.
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_MARKDOWN)]
    pub bench_markdown: PathBuf,
    /// Template the report is rendered from, read at run time (edit it, not the report).
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_TEMPLATE)]
    pub bench_template: PathBuf,
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use service::config::from_vars;

    use super::*;

    /// The subcommands that read variables, as they parse (`plot` reads `report`'s files).
    fn commands() -> Vec<clap::Command> {
        vec![
            LatencyConfig::command(),
            BacklogConfig::command(),
            BaselineConfig::command(),
            TopicConfig::command(),
            CollectConfig::command(),
            ReportConfig::command().name("plot"),
            ReportConfig::command(),
            LandingConfig::command(),
            LargeBlobConfig::command(),
        ]
    }

    /// Problems with the row of `cmd`'s subcommand in the bench table of docs/DESIGN.md: its last
    /// cell names each variable the subcommand reads and no other, and a default in parentheses
    /// right after a variable (up to a comma) is clap's, where clap has one.
    fn design_row_problems(design: &str, cmd: &clap::Command) -> Vec<String> {
        let name = format!("bench {}", cmd.get_name());
        let Some(row) = design
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
        else {
            return vec![format!("{name}: no row in the bench table")];
        };
        let knobs = row.trim_end().trim_end_matches('|').rsplit('|').next();
        let parts: Vec<&str> = knobs.unwrap_or_default().split('`').skip(1).collect();
        let mut problems = Vec::new();
        let mut seen = Vec::new();
        for pair in parts.chunks(2) {
            let (var, after) = (pair[0], pair.get(1).copied().unwrap_or_default());
            seen.push(var.to_owned());
            let Some(arg) = cmd
                .get_arguments()
                .find(|a| a.get_env() == Some(OsStr::new(var)))
            else {
                problems.push(format!(
                    "{name}: the table names {var}, which it does not read"
                ));
                continue;
            };
            let table = after.trim_start().strip_prefix('(').and_then(|d| {
                let end = d.find([',', ')'])?;
                Some(&d[..end])
            });
            if let (Some(table), [clap]) = (table, arg.get_default_values())
                && table != clap.to_string_lossy()
            {
                problems.push(format!(
                    "{name}: {var}: the table says {table}, --help says {}",
                    clap.to_string_lossy()
                ));
            }
        }
        for var in cmd.get_arguments().filter_map(|a| a.get_env()?.to_str()) {
            if !seen.iter().any(|s| s == var) {
                problems.push(format!("{name}: reads {var}, the table lacks it"));
            }
        }
        problems
    }

    #[test]
    fn the_knob_table_in_the_design_is_the_command() {
        let design =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DESIGN.md"))
                .expect("docs/DESIGN.md");
        let problems: Vec<String> = commands()
            .iter()
            .flat_map(|cmd| design_row_problems(&design, cmd))
            .collect();
        assert!(
            problems.is_empty(),
            "docs/DESIGN.md, bench knobs:\n{}",
            problems.join("\n")
        );
        let wrong = design.replace("`BENCH_RATE` (200)", "`BENCH_RATE` (20), `BENCH_RAT`");
        assert_eq!(
            design_row_problems(&wrong, &LatencyConfig::command()),
            [
                "bench latency: BENCH_RATE: the table says 20, --help says 200",
                "bench latency: the table names BENCH_RAT, which it does not read",
            ]
        );
    }

    #[test]
    fn every_flag_is_a_variable_and_every_variable_has_a_flag() {
        for cmd in commands() {
            // As `bench` shows it (`service::config::command`): no variable's value.
            let mut shown = cmd.clone().mut_args(|a| a.hide_env_values(true));
            let help = shown.render_long_help().to_string();
            for a in cmd.get_arguments() {
                let Some(var) = a.get_env().and_then(OsStr::to_str) else {
                    assert!(["help", "version"].contains(&a.get_id().as_str()), "{a}");
                    continue;
                };
                let flag = a.get_long().map(service::config::env_var_of_flag);
                assert_eq!(flag.as_deref(), Some(var), "{}", cmd.get_name());
                assert!(
                    help.contains(&format!("[env: {var}]")),
                    "--help does not name {var}"
                );
            }
        }
    }

    #[test]
    fn each_subcommand_is_read_by_its_own_struct() {
        let base =
            "KAFKA_BROKERS=b BENCH_TOPICS=t BENCH_RECORDS=1 BENCH_TOPIC=t BENCH_NAME=n BENCH_RUN=r";
        let base = base.split(' ').filter_map(|kv| kv.split_once('='));
        let base = base.map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Cli::command().debug_assert();
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        assert_eq!(names.len(), 11, "{names:?}");
        for name in names {
            let read = load_from(["bench", name.as_str()], &base).expect(&name);
            let variant = format!("{read:?}").to_lowercase();
            let prefix = format!("{}(", name.replace('-', ""));
            assert!(variant.starts_with(&prefix), "{variant}");
        }
    }

    #[test]
    fn flags_override_the_environment_through_the_subcommand() {
        let vars = [("KAFKA_BROKERS", "b"), ("BENCH_RATE", "7")];
        let vars = vars.map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        let latency = |args: &[&str]| {
            let args = ["bench", "latency"].iter().chain(args);
            match load_from(args, &vars) {
                Ok(Command::Latency(c)) => c,
                other => panic!("{other:?}"),
            }
        };
        let c = latency(&["--bench-rate", "50"]);
        let waits = (c.bench_duration_s, c.children.batch_max_wait_ms);
        assert_eq!((c.bench_rate, waits), (50, (60, 1000)));
        assert_eq!(latency(&[]).bench_rate, 7);
    }

    #[test]
    fn landing_and_large_blob_keep_the_flags_they_had_before_they_were_subcommands() {
        let vars = BTreeMap::from([("KAFKA_BROKERS".to_owned(), "b".to_owned())]);
        let read = |args: &[&str]| load_from(["bench"].iter().chain(args), &vars);
        let old = ["landing", "--records", "2000", "--batch-sizes", "100,1000"];
        let Ok(Command::Landing(c)) = read(&[&old[..], &["--partitions", "2"]].concat()) else {
            panic!("landing with its old flags");
        };
        let sizes = (
            c.landing_records,
            c.landing_batch_sizes,
            c.landing_partitions,
        );
        assert_eq!((sizes, c.gzip_level), ((2000, vec![100, 1000], 2), 1));
        let Ok(Command::Landing(c)) = read(&["landing"]) else {
            panic!("landing with its defaults");
        };
        assert_eq!(c.landing_batch_sizes, [100, 1000, 10_000, 100_000]);
        assert_eq!((c.landing_records, c.landing_partitions), (1_000_000, 4));
        let Ok(Command::LargeBlob(c)) = read(&["large-blob", "--records", "5", "--topic", "lobby"])
        else {
            panic!("large-blob with its old flags");
        };
        assert_eq!((c.blob_records, c.blob_topic), (5, BlobTopic::Lobby));
    }

    /// The error of reading `T` from `vars` alone and validating it, as text ("" when none).
    fn error<T, P>(vars: &[(&str, &str)], validate: fn(T) -> Result<P, ConfigError>) -> String
    where
        T: CommandFactory + FromArgMatches,
    {
        let read = from_vars::<T, _, _, _>(vars.iter().copied()).and_then(validate);
        read.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn missing_and_invalid_values_are_errors_naming_the_variable() {
        let b = ("KAFKA_BROKERS", "b");
        let latency = |vars: &[(&str, &str)]| error(vars, LatencyConfig::validate);
        let baseline = |vars: &[(&str, &str)]| error(vars, BaselineConfig::validate);
        let landing = |vars: &[(&str, &str)]| error(vars, LandingConfig::validate);
        let errors = [
            latency(&[("BENCH_RATE", "7")]),
            latency(&[b, ("BENCH_GAME_PARTITIONS", "0")]),
            baseline(&[b, ("BENCH_TOPICS", "t")]),
            baseline(&[b, ("BENCH_TOPICS", "t"), ("BENCH_RECORDS", "0")]),
            baseline(&[b, ("BENCH_TOPICS", " , "), ("BENCH_RECORDS", "1")]),
            landing(&[b, ("LANDING_BATCH_SIZES", "100,0")]),
            landing(&[b, ("GZIP_LEVEL", "10")]),
        ];
        let starts = [
            "KAFKA_BROKERS is not set",
            "BENCH_GAME_PARTITIONS is invalid: 0 partitions",
            "BENCH_RECORDS is not set",
            "BENCH_RECORDS is invalid",
            "BENCH_TOPICS is invalid",
            "LANDING_BATCH_SIZES is invalid",
            "GZIP_LEVEL is invalid: 10 is not a gzip level",
        ];
        for (error, start) in errors.iter().zip(starts) {
            assert!(
                error.starts_with(start),
                "{error:?} should start with {start}"
            );
        }
        assert_eq!(
            latency(&[b, ("BENCH_RATE", "0")]),
            "BENCH_RATE is invalid: must be at least 1 record per second; fix BENCH_RATE (see env/local.env and --help)"
        );
    }
}

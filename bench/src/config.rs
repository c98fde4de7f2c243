//! The knobs of the bench binaries: one clap struct per binary (each knob declared once, flag
//! over environment variable over default; see `service::config`), validated once into a plan
//! that can only be valid.
//!
//! [`load`] puts env/local.env (through [`testkit::env`]) under the process environment, and the
//! flags over both. So `bench-latency` runs as-is against the local stack.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use service::config::ConfigError;

/// Default of `BENCH_RESULTS`: the JSON-line results file `bench/run` collects.
pub const DEFAULT_RESULTS: &str = "bench/results.jsonl";
/// Default of `BENCH_SVG`.
pub const DEFAULT_SVG: &str = "docs/bench/throughput-vs-batch-size.svg";
/// Default of `BENCH_MARKDOWN`.
pub const DEFAULT_MARKDOWN: &str = "docs/BENCHMARKS.md";
/// Default of `BENCH_TEMPLATE`: the hand-written report template, read when the report is made.
pub const DEFAULT_TEMPLATE: &str = "bench/BENCHMARKS.template.md";
/// Default of `BENCH_LOG_DIR`.
const DEFAULT_LOG_DIR: &str = "bench/out/logs";

/// Reads `T` from the flags, the process environment and env/local.env (in that order of
/// precedence), as a bench binary starts.
pub fn load<T: CommandFactory + FromArgMatches>() -> Result<T, ConfigError> {
    service::config::parse_over(testkit::env())
}

/// End-to-end latency at a fixed rate: produce → worker → raw → transformer watch → Parquet
/// visible in `standard/buffer_meta/`. Every flag overrides the environment variable in
/// brackets; env/local.env supplies the local stack's addresses.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench-latency", version)]
pub struct LatencyConfig {
    /// Kafka bootstrap servers (env/local.env sets 127.0.0.1:9092).
    #[arg(long, env, value_name = "HOSTS")]
    pub kafka_brokers: String,
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
    /// Worker records per batch.
    #[arg(long, env, value_name = "N", default_value_t = 1000)]
    pub batch_size: usize,
    /// Worker max wait in ms after a batch's first record.
    #[arg(long, env, value_name = "MS", default_value_t = 1000)]
    pub batch_max_wait_ms: u64,
    /// Transformer watch poll interval in ms.
    #[arg(long, env, value_name = "MS", default_value_t = 500)]
    pub watch_poll_ms: u64,
    /// How often the bench lists `standard/buffer_meta/`, in ms (its own resolution).
    #[arg(long, env, value_name = "MS", default_value_t = 100)]
    pub bench_poll_ms: u64,
    /// Seconds to wait after sending for the last records to show.
    #[arg(long, env, value_name = "SECONDS", default_value_t = 120)]
    pub bench_drain_timeout_s: u64,
    /// Folder with the worker and transformer binaries; unset: target/release, else target/debug.
    #[arg(long, env, value_name = "DIR")]
    pub dataflow_bin_dir: Option<PathBuf>,
    /// JSON-lines file the result is appended to.
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_RESULTS)]
    pub bench_results: PathBuf,
    /// Folder for the children's stdout/stderr.
    #[arg(long, env, value_name = "DIR", default_value = DEFAULT_LOG_DIR)]
    pub bench_log_dir: PathBuf,
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

/// The worker binary behind a backlog: a fresh group on topics that already hold
/// BENCH_RECORDS records; reports the worker's peak RSS and landing rate. Every flag overrides
/// the environment variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench-backlog", version)]
pub struct BacklogConfig {
    /// Kafka bootstrap servers (env/local.env sets 127.0.0.1:9092).
    #[arg(long, env, value_name = "HOSTS")]
    pub kafka_brokers: String,
    /// Comma-separated topics holding the backlog.
    #[arg(long, env, value_name = "TOPICS")]
    pub bench_topics: String,
    /// Records in those topics (the run ends when all are landed).
    #[arg(long, env, value_name = "N")]
    pub bench_records: u64,
    /// Worker records per batch.
    #[arg(long, env, value_name = "N", default_value_t = 1000)]
    pub batch_size: usize,
    /// Worker max wait in ms after a batch's first record (the last partial batches wait it).
    #[arg(long, env, value_name = "MS", default_value_t = 1000)]
    pub batch_max_wait_ms: u64,
    /// Worker gzip level 0-9; unset: the worker's own default.
    #[arg(long, env, value_name = "LEVEL")]
    pub gzip_level: Option<u32>,
    /// The result's `bench` field (bench/run uses worker_gzip for the gzip sweep).
    #[arg(long, env, value_name = "NAME", default_value = "worker_lag")]
    pub bench_label: String,
    /// Seconds before giving up.
    #[arg(long, env, value_name = "SECONDS", default_value_t = 900)]
    pub bench_timeout_s: u64,
    /// Folder with the worker binary; unset: target/release, else target/debug.
    #[arg(long, env, value_name = "DIR")]
    pub dataflow_bin_dir: Option<PathBuf>,
    /// JSON-lines file the result is appended to.
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_RESULTS)]
    pub bench_results: PathBuf,
    /// Folder for the worker's stdout/stderr.
    #[arg(long, env, value_name = "DIR", default_value = DEFAULT_LOG_DIR)]
    pub bench_log_dir: PathBuf,
    /// The broker's pid, to read its CPU per landed record; unset: not measured.
    #[arg(long, env, value_name = "PID")]
    pub bench_broker_pid: Option<u32>,
    /// The storage emulator's pid, to read its CPU per landed record; unset: not measured.
    #[arg(long, env, value_name = "PID")]
    pub bench_storage_pid: Option<u32>,
}

impl BacklogConfig {
    /// Checks the values once; errors name the variable.
    pub fn validate(self) -> Result<crate::backlog::BacklogPlan, ConfigError> {
        let topics = service::config::comma_list(&self.bench_topics);
        if topics.is_empty() {
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
            topics,
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

/// Consume-and-discard baseline: the worker's consumer settings with a fresh group, reading
/// BENCH_RECORDS records and dropping them. Every flag overrides the variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench-baseline", version)]
pub struct BaselineConfig {
    /// Kafka bootstrap servers (env/local.env sets 127.0.0.1:9092).
    #[arg(long, env, value_name = "HOSTS")]
    pub kafka_brokers: String,
    /// Comma-separated topics to read.
    #[arg(long, env, value_name = "TOPICS")]
    pub bench_topics: String,
    /// Records in those topics (the run ends when all are read).
    #[arg(long, env, value_name = "N")]
    pub bench_records: u64,
    /// Worker batch size this baseline is paired with in the report.
    #[arg(long, env, value_name = "N", default_value_t = 1000)]
    pub batch_size: usize,
    /// Seconds before giving up.
    #[arg(long, env, value_name = "SECONDS", default_value_t = 900)]
    pub bench_timeout_s: u64,
    /// JSON-lines file the result is appended to.
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_RESULTS)]
    pub bench_results: PathBuf,
    /// The result's `bench` field (bench/run uses worker_baseline_after for the run after the worker).
    #[arg(long, env, value_name = "NAME", default_value = "worker_baseline")]
    pub bench_label: String,
    /// The broker's pid, to read its CPU per record; unset: not measured.
    #[arg(long, env, value_name = "PID")]
    pub bench_broker_pid: Option<u32>,
}

/// Creates a topic (idempotent) and waits until the broker knows it; `bench/run` uses it for the
/// flood topic that kcat and the worker bench read. Every flag overrides the variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench-topic", version)]
pub struct TopicConfig {
    /// Kafka bootstrap servers (env/local.env sets 127.0.0.1:9092).
    #[arg(long, env, value_name = "HOSTS")]
    pub kafka_brokers: String,
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
        if !(1..=64).contains(&self.bench_partitions) {
            return Err(ConfigError::invalid(
                "BENCH_PARTITIONS",
                format!("{} partitions: use 1 to 64", self.bench_partitions),
            ));
        }
        Ok(self)
    }
}

/// Appends a bench tool's results (stdin) to the results file: its JSON lines, or, when it prints
/// none, one object per Markdown table row. Every flag overrides the variable in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench-collect", version)]
pub struct CollectConfig {
    /// `bench` field for lines without one, e.g. transformer.
    #[arg(long, env, value_name = "NAME")]
    pub bench_name: String,
    /// Run id every line is tagged with (bench/run uses the UTC start time).
    #[arg(long, env, value_name = "ID")]
    pub bench_run: String,
    /// JSON-lines file appended to.
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_RESULTS)]
    pub bench_results: PathBuf,
}

/// The files of `bench-plot` and `bench-report` (both read all four); every flag overrides the
/// variable in brackets.
#[derive(Debug, Clone, Args)]
pub struct ReportConfig {
    /// JSON-lines results to read.
    #[arg(long, env, value_name = "PATH", default_value = DEFAULT_RESULTS)]
    pub bench_results: PathBuf,
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

/// Throughput plot from the results file (records/s of the consume-and-discard baseline and
/// the worker against batch size, log x axis).
#[derive(Debug, Parser)]
#[command(name = "bench-plot", version)]
pub struct PlotCli {
    /// The files.
    #[command(flatten)]
    pub files: ReportConfig,
}

/// Regenerates docs/BENCHMARKS.md from the results file.
#[derive(Debug, Parser)]
#[command(name = "bench-report", version)]
pub struct ReportCli {
    /// The files.
    #[command(flatten)]
    pub files: ReportConfig,
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use service::config::{arg_env_keys, from_vars};

    use super::*;

    fn commands() -> Vec<clap::Command> {
        vec![
            LatencyConfig::command(),
            BacklogConfig::command(),
            BaselineConfig::command(),
            TopicConfig::command(),
            CollectConfig::command(),
            PlotCli::command(),
            ReportCli::command(),
        ]
    }

    /// Problems with the row of `cmd`'s binary in the bench table of docs/DESIGN.md: its last
    /// cell names each variable the binary reads and no other, and a default in parentheses
    /// right after a variable (up to a comma) is clap's, where clap has one.
    fn design_row_problems(design: &str, cmd: &clap::Command) -> Vec<String> {
        let name = cmd.get_name();
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
                "bench-latency: BENCH_RATE: the table says 20, --help says 200",
                "bench-latency: the table names BENCH_RAT, which it does not read",
            ]
        );
    }

    #[test]
    fn every_flag_is_a_variable_and_every_variable_has_a_flag() {
        for cmd in commands() {
            // As the binaries show it (`service::config::command`): no variable's value.
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
        assert_eq!(arg_env_keys::<PlotCli>(), arg_env_keys::<ReportCli>());
    }

    #[test]
    fn required_variables_are_named_when_missing() {
        let err =
            from_vars::<LatencyConfig, _, _, _>([("BENCH_RATE", "7")]).expect_err("no broker");
        assert!(
            err.to_string().starts_with("KAFKA_BROKERS is not set"),
            "{err}"
        );
        let err =
            from_vars::<BacklogConfig, _, _, _>([("KAFKA_BROKERS", "b"), ("BENCH_TOPICS", "t")])
                .expect_err("no record count");
        assert!(
            err.to_string().starts_with("BENCH_RECORDS is not set"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_backlog_is_rejected_naming_bench_records() {
        let c: BacklogConfig = from_vars([
            ("KAFKA_BROKERS", "b"),
            ("BENCH_TOPICS", "t"),
            ("BENCH_RECORDS", "0"),
        ])
        .expect("parses");
        let err = c.validate().expect_err("zero records");
        assert!(
            err.to_string().starts_with("BENCH_RECORDS is invalid"),
            "{err}"
        );
        let c: BacklogConfig = from_vars([
            ("KAFKA_BROKERS", "b"),
            ("BENCH_TOPICS", " , "),
            ("BENCH_RECORDS", "1"),
        ])
        .expect("parses");
        let err = c.validate().expect_err("no topic");
        assert!(
            err.to_string().starts_with("BENCH_TOPICS is invalid"),
            "{err}"
        );
    }

    #[test]
    fn flags_override_the_environment() {
        let vars = [("KAFKA_BROKERS", "b"), ("BENCH_RATE", "7")];
        let vars = vars.map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        let c: LatencyConfig =
            service::config::parse_from_over(["bench-latency", "--bench-rate", "50"], &vars)
                .expect("valid");
        assert_eq!(
            (c.bench_rate, c.bench_duration_s, c.batch_max_wait_ms),
            (50, 60, 1000)
        );
        let c: LatencyConfig =
            service::config::parse_from_over(["bench-latency"], &vars).expect("valid");
        assert_eq!(c.bench_rate, 7);
    }

    #[test]
    fn zero_rate_is_rejected_naming_bench_rate() {
        let c: LatencyConfig =
            from_vars([("KAFKA_BROKERS", "b"), ("BENCH_RATE", "0")]).expect("parses");
        let err = c.validate().expect_err("zero rate");
        assert_eq!(
            err.to_string(),
            "BENCH_RATE is invalid: must be at least 1 record per second; fix BENCH_RATE (see env/local.env and --help)"
        );
    }

    #[test]
    fn partitions_out_of_range_name_the_variable() {
        let c: LatencyConfig =
            from_vars([("KAFKA_BROKERS", "b"), ("BENCH_GAME_PARTITIONS", "0")]).expect("parses");
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

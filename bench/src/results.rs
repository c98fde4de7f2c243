//! The results file: one JSON object per line, each with a `bench` field naming what measured it
//! and a `run` field naming the `bench/run` run that collected it. `bench/run` appends every
//! tool's JSON lines to one file; the plot and the report read it back as [`Results`]: each line
//! typed by its `bench` kind, fields named as in the lines (`Option` where older lines lack one).
//! The kinds this crate measures are read with the structs that wrote them ([`LatencyResult`],
//! [`BacklogResult`], [`BaselineResult`], `bench landing`'s [`Produce`], [`Gzip`], [`Baseline`]
//! and [`Worker`]); a line of any other kind, or of a known kind whose
//! fields do not parse, is kept whole in [`Results::other`] and shown as it is.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::backlog::BacklogResult;
use crate::baseline::BaselineResult;
use crate::landing::{Baseline, Gzip, Produce, Worker};
use crate::latency::LatencyResult;

/// Errors reading or appending the results file.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read.
    #[error("reading results {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("appending to results {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A result did not serialize.
    #[error("serializing a result for {path}: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// Appends `result` as one JSON line to `path`, creating its folder.
pub fn append(path: &Path, result: &impl Serialize) -> Result<(), ResultsError> {
    append_line(path, &encode(path, result)?)
}

/// A subcommand's result: one JSON line on stdout, and the same line appended to `path`.
pub fn publish(path: &Path, result: &impl Serialize) -> Result<(), ResultsError> {
    let line = encode(path, result)?;
    println!("{line}");
    append_line(path, &line)
}

fn encode(path: &Path, result: &impl Serialize) -> Result<String, ResultsError> {
    serde_json::to_string(result).map_err(|source| ResultsError::Encode {
        path: path.to_owned(),
        source,
    })
}

fn append_line(path: &Path, line: &str) -> Result<(), ResultsError> {
    let write = |source| ResultsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write)?;
    writeln!(file, "{line}").map_err(write)
}

/// Every result line of `path`, typed ([`Results::parse`]).
pub fn read(path: &Path) -> Result<Results, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(Results::parse(&text))
}

/// The JSON object lines of `text`; other lines (tables, progress text) are skipped, because the
/// benches print human-readable output next to their JSON lines.
pub fn objects(text: &str) -> Vec<Map<String, Value>> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Map<String, Value>>(l).ok())
        .collect()
}

/// One result line: the run that collected it and what it measured.
#[derive(Debug, Clone)]
pub struct Tagged<T> {
    /// The `run` field (`bench/run`'s run id; absent on hand-made lines).
    pub run: Option<String>,
    /// The measurement.
    pub result: T,
}

/// Every line of a results file by its `bench` kind, each kind in file order.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// `machine`: the machine and command of a run (`bench/run`).
    pub machine: Vec<Tagged<Machine>>,
    /// `simulator_flood`: the simulator's flood rate line (`bench/run`).
    pub simulator_flood: Vec<Tagged<Flood>>,
    /// `kcat`: kcat reading the flood's topics (`bench/run`).
    pub kcat: Vec<Tagged<Kcat>>,
    /// `worker_baseline`: consume-and-discard just before a worker run (`bench baseline`).
    pub worker_baseline: Vec<Tagged<BaselineResult>>,
    /// `worker_baseline_after`: the same just after it.
    pub worker_baseline_after: Vec<Tagged<BaselineResult>>,
    /// `worker_lag`: the worker behind the flood's backlog (`bench backlog`).
    pub worker_lag: Vec<Tagged<BacklogResult>>,
    /// `worker_gzip`: the same per `GZIP_LEVEL`.
    pub worker_gzip: Vec<Tagged<BacklogResult>>,
    /// `produce`: `bench landing` producing its records (only its run counts).
    pub produce: Vec<Tagged<Produce>>,
    /// `baseline`: `bench landing`'s consume-and-discard.
    pub baseline: Vec<Tagged<Baseline>>,
    /// `worker`: `bench landing`'s worker per batch size.
    pub worker: Vec<Tagged<Worker>>,
    /// `gzip`: `bench landing`'s in-memory gzip per level.
    pub gzip: Vec<Tagged<Gzip>>,
    /// `transformer`: a row of `bench transformer`'s table.
    pub transformer: Vec<Tagged<Transform>>,
    /// `latency`: an end-to-end run (`bench latency`).
    pub latency: Vec<Tagged<LatencyResult>>,
    /// Every other line, as it was recorded.
    pub other: Vec<Map<String, Value>>,
}

impl Results {
    /// Every JSON object line of `text` ([`objects`]), typed by its `bench` field.
    pub fn parse(text: &str) -> Self {
        let mut results = Results::default();
        for line in objects(text) {
            results.push(line);
        }
        results
    }

    fn push(&mut self, line: Map<String, Value>) {
        let kept = match line
            .get("bench")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "machine" => keep(&mut self.machine, &line),
            "simulator_flood" => keep(&mut self.simulator_flood, &line),
            "kcat" => keep(&mut self.kcat, &line),
            "worker_baseline" => keep(&mut self.worker_baseline, &line),
            "worker_baseline_after" => keep(&mut self.worker_baseline_after, &line),
            "worker_lag" => keep(&mut self.worker_lag, &line),
            "worker_gzip" => keep(&mut self.worker_gzip, &line),
            "produce" => keep(&mut self.produce, &line),
            "baseline" => keep(&mut self.baseline, &line),
            "worker" => keep(&mut self.worker, &line),
            "gzip" => keep(&mut self.gzip, &line),
            "transformer" => keep(&mut self.transformer, &line),
            "latency" => keep(&mut self.latency, &line),
            _ => false,
        };
        if !kept {
            self.other.push(line);
        }
    }
}

/// Appends `line` to `kind` when it parses as `T`; false when it does not.
fn keep<T: DeserializeOwned>(kind: &mut Vec<Tagged<T>>, line: &Map<String, Value>) -> bool {
    let Ok(result) = serde_json::from_value(Value::Object(line.clone())) else {
        return false;
    };
    let run = line.get("run").and_then(Value::as_str).map(str::to_owned);
    kind.push(Tagged { run, result });
    true
}

/// A `machine` line: what ran a `bench/run` run, and how.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Machine {
    /// Start of the run, UTC.
    pub date: Option<String>,
    /// CPU model.
    pub cpu: Option<String>,
    /// Cores.
    pub cores: Option<f64>,
    /// Memory, GiB.
    pub memory_gib: Option<f64>,
    /// Load average over the minute before the run.
    pub load_1m: Option<f64>,
    /// Broker and version.
    pub broker: Option<String>,
    /// `release` or `debug`.
    pub binaries: Option<String>,
    /// The command that reproduces the run, as it was spelled then.
    pub command: Option<String>,
}

/// A `simulator_flood` line: the simulator's `flood:` rate line.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Flood {
    /// Records delivered.
    pub records: f64,
    /// Their value MB.
    pub mb: f64,
    /// Seconds to the last delivery report.
    pub seconds: f64,
    /// Records per second.
    pub records_per_s: f64,
    /// Value MB per second.
    pub mb_per_s: f64,
}

/// A `kcat` line: kcat reading the flood's topics, one simple consumer per topic.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Kcat {
    /// Which kcat and librdkafka.
    pub kcat: Option<String>,
    /// Records read.
    pub records: f64,
    /// Seconds, process start included.
    pub seconds: f64,
    /// Records per second.
    pub records_per_s: f64,
    /// Value MB per second.
    pub mb_per_s: f64,
}

/// A `transformer` line: one row of `bench transformer`'s Markdown table (`bench collect` keys
/// it by the normalized header, and leaves out `-` cells).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Transform {
    /// The blob's topic, or `azurite end-to-end`.
    pub topic: Option<String>,
    /// Records per blob.
    pub records: Option<f64>,
    /// Parquet compression.
    pub compression: Option<String>,
    /// Inflated raw JSON, MB.
    pub raw_json_mb: Option<f64>,
    /// The gzipped blob, MB.
    pub gz_mb: Option<f64>,
    /// MB of raw JSON per second and core.
    pub mb_s_core: Option<f64>,
    /// Records per second.
    pub records_s: Option<f64>,
    /// `lib_server_*` rows per second (absent end to end).
    pub rows_s_model_rows: Option<f64>,
    /// Peak RSS of the process so far, MB.
    pub peak_rss_mb: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_non_json_lines_and_keeps_unknown_kinds_whole() {
        let text = "| table | row |\n{\"bench\":\"kcat\",\"records\":5,\"seconds\":1,\"records_per_s\":5,\"mb_per_s\":0.1}\nnot json {\n{broken\n{\"bench\":\"mystery\",\"x\":1}\n";
        let results = Results::parse(text);
        assert_eq!(results.kcat.len(), 1);
        assert_eq!(results.kcat[0].result.records, 5.0);
        assert_eq!(results.other.len(), 1);
        assert_eq!(results.other[0]["bench"], "mystery");
    }

    #[test]
    fn a_known_kind_whose_fields_do_not_parse_is_kept_as_other() {
        let results = Results::parse("{\"bench\":\"kcat\",\"run\":\"r\",\"records\":\"many\"}");
        assert!(results.kcat.is_empty());
        assert_eq!(results.other[0]["records"], "many");
    }

    #[test]
    fn every_line_of_the_tracked_results_file_parses_as_its_kind() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results.jsonl");
        let text = std::fs::read_to_string(&path).expect("bench/results.jsonl");
        let r = Results::parse(&text);
        assert!(r.other.is_empty(), "lines not typed: {:?}", r.other);
        let typed = [
            r.machine.len(),
            r.simulator_flood.len(),
            r.kcat.len(),
            r.worker_baseline.len(),
            r.worker_baseline_after.len(),
            r.worker_lag.len(),
            r.worker_gzip.len(),
            r.produce.len(),
            r.baseline.len(),
            r.worker.len(),
            r.gzip.len(),
            r.transformer.len(),
            r.latency.len(),
        ];
        assert_eq!(typed.iter().sum::<usize>(), objects(&text).len());
        assert!(
            typed.iter().all(|n| *n > 0),
            "every kind is there: {typed:?}"
        );
    }

    #[test]
    fn append_then_read_round_trips() {
        let path = std::env::temp_dir()
            .join(testkit::unique("bench-results"))
            .join("r.jsonl");
        let line = |bench| serde_json::json!({"bench": bench, "run": "r1", "level": 1, "input_bytes": 10, "mb_per_s": 2.5, "ratio": 1.5});
        append(&path, &line("gzip")).expect("append");
        append(&path, &line("other")).expect("append");
        let results = read(&path).expect("read");
        assert_eq!(results.gzip[0].run.as_deref(), Some("r1"));
        assert_eq!(results.gzip[0].result.ratio, Some(1.5));
        assert_eq!(results.other[0]["bench"], "other");
        std::fs::remove_dir_all(path.parent().expect("dir")).expect("clean up");
    }
}

//! The worker binary behind a backlog: a fresh consumer group on topics that already hold
//! `BENCH_RECORDS` records (the simulator flood's), landing into a fresh Azurite container. The
//! run ends when the worker's own `worker_landed_records_total` reaches the backlog; its peak RSS
//! (`VmHWM` of the child) is the memory with that much lag, its rate is measured from the first
//! consumed record to the last landed one (so Tansu's ~5 s group join is not counted, but the
//! final partial batches' `BATCH_MAX_WAIT_MS` is), and its sustained rate between 10 % and 90 %
//! of the backlog landed. Over that same window it reads the CPU time the worker, the broker and
//! the storage emulator spent per landed record, and how busy the machine was ([`crate::cpu`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::children::{self, ChildError};
use crate::config::BacklogConfig;
use crate::cpu::{self, Snapshot};
use crate::stats::{WINDOW_FROM, WINDOW_TO, window_rate};

/// Metric the worker counts landed records in.
pub const LANDED_METRIC: &str = "worker_landed_records_total";
/// Uncompressed JSON-line bytes landed.
pub const LANDED_BYTES_METRIC: &str = "worker_landed_bytes_total";
/// Gzipped bytes stored.
pub const STORED_BYTES_METRIC: &str = "worker_stored_bytes_total";
/// Records taken from Kafka (before batching): the clock starts at the first one.
pub const CONSUMED_METRIC: &str = "worker_consumed_records_total";
/// Batches cut (all flush reasons).
pub const BATCHES_METRIC: &str = "worker_batches_total";

/// How often `/metrics` and `VmHWM` are read.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Errors of a backlog run.
#[derive(Debug, thiserror::Error)]
pub enum BacklogError {
    /// Setting up the container failed.
    #[error("creating the raw container: {0}")]
    Container(anyhow::Error),
    /// No free port for the worker's metrics.
    #[error("finding a free port for METRICS_ADDR: {0}")]
    Port(std::io::Error),
    /// A child failed.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// The worker did not land the backlog in time.
    #[error("the worker landed {landed} of {expected} records within {timeout:?}; see {log}")]
    Timeout {
        /// Landed so far.
        landed: u64,
        /// The backlog.
        expected: u64,
        /// The limit.
        timeout: Duration,
        /// The worker's log.
        log: PathBuf,
    },
    /// Interrupted.
    #[error("interrupted")]
    Interrupted,
}

/// What a backlog run needs.
#[derive(Debug, Clone)]
pub struct BacklogPlan {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topics holding the backlog.
    pub topics: Vec<String>,
    /// Records in them.
    pub records: u64,
    /// Worker `BATCH_SIZE`.
    pub batch_size: usize,
    /// Worker `BATCH_MAX_WAIT_MS`.
    pub batch_max_wait_ms: u64,
    /// Worker `GZIP_LEVEL` (the worker's default when `None`).
    pub gzip_level: Option<u32>,
    /// The result's `bench` field (`worker_lag`, or `worker_gzip` for the gzip-level sweep).
    pub label: String,
    /// Folder holding `worker`.
    pub bin_dir: PathBuf,
    /// Children's log folder.
    pub log_dir: PathBuf,
    /// Give up after this long.
    pub timeout: Duration,
    /// The broker's process (for its CPU per record), when known.
    pub broker_pid: Option<u32>,
    /// The storage emulator's process, when known.
    pub storage_pid: Option<u32>,
}

/// The result line (`bench` = `worker_lag`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BacklogResult {
    /// `worker_lag` (or the plan's label).
    pub bench: String,
    /// Records of lag at start.
    pub lag_records: u64,
    /// Worker `BATCH_SIZE`.
    pub batch_size: usize,
    /// Worker `BATCH_MAX_WAIT_MS`.
    pub batch_max_wait_ms: u64,
    /// Worker `GZIP_LEVEL`, when set (otherwise the worker's default).
    pub gzip_level: Option<u32>,
    /// Records the worker reported landed.
    pub landed: u64,
    /// Seconds from start to all landed (group join included).
    pub total_seconds: f64,
    /// Seconds from the first consumed record to the last landed one.
    pub landing_seconds: f64,
    /// Landed records per second over `landing_seconds`.
    pub records_per_s: f64,
    /// Landed records per second between 10 % and 90 % of the backlog landed
    /// ([`crate::stats::window_rate`] over the `/metrics` samples): the sustained rate.
    #[serde(default)]
    pub sustained_records_per_s: Option<f64>,
    /// Uncompressed JSON-line MB landed (`worker_landed_bytes_total`).
    pub landed_mb: f64,
    /// Gzipped MB stored (`worker_stored_bytes_total`).
    pub stored_mb: f64,
    /// Uncompressed JSON-line MB landed per second over `landing_seconds`.
    pub landed_mb_per_s: f64,
    /// Blobs written (`worker_batches_total`): with large `BATCH_SIZE` the byte budget
    /// (`BATCH_MAX_BYTES`) or memory pressure cuts batches first.
    pub batches: u64,
    /// Mean records per blob.
    pub records_per_blob: f64,
    /// Peak resident memory of the worker process (`VmHWM`), MB.
    pub peak_rss_mb: f64,
    /// CPU microseconds the worker spent per landed record over the sustained window.
    #[serde(default)]
    pub worker_cpu_us_per_record: Option<f64>,
    /// CPU microseconds the broker spent per landed record over the same window.
    #[serde(default)]
    pub broker_cpu_us_per_record: Option<f64>,
    /// CPU microseconds the storage emulator spent per landed record over the same window.
    #[serde(default)]
    pub storage_cpu_us_per_record: Option<f64>,
    /// Share of the machine's cores busy over the same window, percent.
    #[serde(default)]
    pub machine_busy_pct: Option<f64>,
    /// Cores of the machine.
    #[serde(default)]
    pub cores: Option<usize>,
    /// `release` or `debug`.
    pub binaries: String,
}

/// Sum of every series of `metric` in a Prometheus text exposition.
pub fn metric_sum(exposition: &str, metric: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `VmHWM` of a process in MB (from `/proc/{pid}/status`).
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The worker's consumed and landed records, landed bytes, stored bytes and batches, from its
/// `/metrics`.
async fn counters(client: &reqwest::Client, url: &str) -> Option<(u64, u64, f64, f64, f64)> {
    let text = client.get(url).send().await.ok()?.text().await.ok()?;
    Some((
        metric_sum(&text, CONSUMED_METRIC) as u64,
        metric_sum(&text, LANDED_METRIC) as u64,
        metric_sum(&text, LANDED_BYTES_METRIC),
        metric_sum(&text, STORED_BYTES_METRIC),
        metric_sum(&text, BATCHES_METRIC),
    ))
}

/// `bench backlog`: runs the worker behind the backlog, prints the result as one JSON line on
/// stdout and appends it to `BENCH_RESULTS`.
pub async fn command(config: BacklogConfig) -> anyhow::Result<()> {
    let results = config.results.bench_results.clone();
    let plan = config.validate()?;
    let result = run(&plan, service::shutdown::on_signals()).await?;
    crate::results::publish(&results, &result)?;
    eprintln!(
        "bench backlog: {} records of lag landed in {:.1} s ({:.0} records/s after the group join); worker peak RSS {:.0} MB",
        result.landed, result.total_seconds, result.records_per_s, result.peak_rss_mb
    );
    Ok(())
}

/// Runs the worker until it has landed the backlog.
pub async fn run(
    plan: &BacklogPlan,
    shutdown: CancellationToken,
) -> Result<BacklogResult, BacklogError> {
    let (raw_url, _) = testkit::new_container("bench-lag-raw").map_err(BacklogError::Container)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(BacklogError::Port)?
        .port();
    let mut env = testkit::azure_env();
    env.extend([
        ("KAFKA_BROKERS".to_owned(), plan.brokers.clone()),
        (
            "KAFKA_GROUP_ID".to_owned(),
            testkit::unique("bench-lag-group"),
        ),
        ("KAFKA_TOPICS".to_owned(), plan.topics.join(",")),
        ("BATCH_SIZE".to_owned(), plan.batch_size.to_string()),
        (
            "BATCH_MAX_WAIT_MS".to_owned(),
            plan.batch_max_wait_ms.to_string(),
        ),
        ("RAW_URL".to_owned(), raw_url),
        ("CLEANUP_ENABLED".to_owned(), "false".to_owned()),
        ("METRICS_ADDR".to_owned(), format!("127.0.0.1:{port}")),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
    ]);
    if let Some(level) = plan.gzip_level {
        env.push(("GZIP_LEVEL".to_owned(), level.to_string()));
    }
    let started = Instant::now();
    let mut worker = children::start(
        "worker-backlog",
        &plan.bin_dir,
        "worker",
        &[],
        &env,
        &plan.log_dir,
    )?;
    let pid = worker.id();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let client = reqwest::Client::new();
    let mut first_consumed: Option<Instant> = None;
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let mut cpu_samples: Vec<Snapshot> = Vec::new();
    let watched = [pid, plan.broker_pid, plan.storage_pid];
    let mut peak = 0.0f64;
    let (mut bytes, mut batches) = ((0.0, 0.0), 0u64);
    let outcome = loop {
        if let Err(e) = worker.check_alive() {
            break Err(e.into());
        }
        if let Some(mb) = pid.and_then(peak_rss_mb) {
            peak = peak.max(mb);
        }
        let (consumed, n, landed_bytes, stored_bytes, cut) =
            counters(&client, &url).await.unwrap_or_default();
        (bytes, batches) = ((landed_bytes, stored_bytes), cut as u64);
        if consumed > 0 && first_consumed.is_none() {
            first_consumed = Some(Instant::now());
        }
        samples.push((started.elapsed().as_secs_f64(), n as f64));
        cpu_samples.push(Snapshot::take(&watched, n));
        if n >= plan.records {
            break Ok(n);
        }
        if started.elapsed() > plan.timeout {
            break Err(BacklogError::Timeout {
                landed: n,
                expected: plan.records,
                timeout: plan.timeout,
                log: worker.log().to_owned(),
            });
        }
        if shutdown.is_cancelled() {
            break Err(BacklogError::Interrupted);
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    };
    let done = Instant::now();
    // VmHWM is a high-water mark: one last read before the kill catches the final peak.
    if let Some(mb) = pid.and_then(peak_rss_mb) {
        peak = peak.max(mb);
    }
    worker.kill().await?;
    let landed = outcome?;
    let landing = first_consumed.map_or(Duration::ZERO, |t| done.saturating_duration_since(t));
    let window = cpu::window_of(&cpu_samples, landed, WINDOW_FROM, WINDOW_TO).unwrap_or_default();
    let per_record = |i: usize| window.us_per_record.get(i).copied().flatten();
    Ok(BacklogResult {
        bench: plan.label.clone(),
        lag_records: plan.records,
        batch_size: plan.batch_size,
        batch_max_wait_ms: plan.batch_max_wait_ms,
        gzip_level: plan.gzip_level,
        landed,
        total_seconds: done.duration_since(started).as_secs_f64(),
        landing_seconds: landing.as_secs_f64(),
        records_per_s: landed as f64 / landing.as_secs_f64().max(1e-3),
        sustained_records_per_s: window_rate(&samples, landed as f64, WINDOW_FROM, WINDOW_TO),
        landed_mb: bytes.0 / 1e6,
        stored_mb: bytes.1 / 1e6,
        landed_mb_per_s: bytes.0 / 1e6 / landing.as_secs_f64().max(1e-3),
        batches,
        records_per_blob: landed as f64 / batches.max(1) as f64,
        peak_rss_mb: peak,
        worker_cpu_us_per_record: per_record(0),
        broker_cpu_us_per_record: per_record(1),
        storage_cpu_us_per_record: per_record(2),
        machine_busy_pct: window.machine_busy_pct,
        cores: Some(cpu::cores()),
        binaries: plan
            .bin_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_series_of_the_metric_and_nothing_else() {
        let text = "# TYPE worker_landed_records_total counter\nworker_landed_records_total{topic=\"a\"} 10\nworker_landed_records_total{topic=\"b\"} 5\nworker_landed_records_total_other 99\nworker_consumed_records_total 7\n";
        assert_eq!(metric_sum(text, LANDED_METRIC), 15.0);
        assert_eq!(
            metric_sum("worker_landed_records_total 3\n", LANDED_METRIC),
            3.0
        );
    }

    #[test]
    fn reads_this_process_peak_rss() {
        let mb = peak_rss_mb(std::process::id()).expect("VmHWM of ourselves");
        assert!(mb > 1.0 && mb < 10_000.0, "{mb}");
    }
}

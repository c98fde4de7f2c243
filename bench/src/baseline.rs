//! The consume-and-discard baseline: an rdkafka consumer with the worker's own consumer settings
//! (fresh group, manual commits, `earliest`, eager `range`, the same pre-fetch budget) reading the
//! same backlog and dropping every record. Its rate is what the broker and librdkafka allow on
//! this machine; the worker's rate is read against it. `bench/run` reads it before and after each
//! worker run (labels `worker_baseline` and `worker_baseline_after`): the broker's speed drifts
//! between runs, and the report compares the worker with the mean of the two. Over the sustained
//! window it also reads the CPU the consumer (this process) and the broker spent per record.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::BaselineConfig;
use crate::cpu::{self, Snapshot};
use crate::stats::{WINDOW_FROM, WINDOW_TO};

/// The worker's pre-fetch budget with its default `BUFFER_MAX_BYTES` (64 MiB / 4), in kB.
pub const PREFETCH_KBYTES: &str = "16384";

/// Errors of the baseline.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The consumer could not be created or subscribed.
    #[error("consumer for {topics} on {brokers}: {source}")]
    Consumer {
        /// Topics.
        topics: String,
        /// Bootstrap servers.
        brokers: String,
        /// Why.
        source: KafkaError,
    },
    /// Receiving failed.
    #[error("receiving from {topics}: {source}")]
    Receive {
        /// Topics.
        topics: String,
        /// Why.
        source: KafkaError,
    },
    /// Not all records arrived in time.
    #[error("read {read} of {expected} records from {topics} within {timeout:?}")]
    Timeout {
        /// Read so far.
        read: u64,
        /// Expected.
        expected: u64,
        /// Topics.
        topics: String,
        /// The limit.
        timeout: Duration,
    },
    /// Interrupted.
    #[error("interrupted")]
    Interrupted,
}

/// What a baseline run reads.
#[derive(Debug, Clone)]
pub struct BaselinePlan {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topics holding the backlog.
    pub topics: Vec<String>,
    /// Records in them.
    pub records: u64,
    /// The worker `BATCH_SIZE` this baseline is paired with.
    pub batch_size: usize,
    /// Give up after this long.
    pub timeout: Duration,
    /// The result's `bench` field (`worker_baseline`, or `worker_baseline_after`).
    pub label: String,
    /// The broker's process (for its CPU per record), when known.
    pub broker_pid: Option<u32>,
}

/// The result line (`bench` = `worker_baseline` or `worker_baseline_after`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineResult {
    /// `worker_baseline` (before the worker run) or `worker_baseline_after`.
    pub bench: String,
    /// The worker `BATCH_SIZE` this baseline is paired with in the report (the baseline itself
    /// does not batch; it is rerun next to each worker run so both see the same machine state).
    pub batch_size: usize,
    /// Records read.
    pub records: u64,
    /// Value bytes read.
    pub bytes: u64,
    /// Seconds from the first record to the last (group join excluded).
    pub seconds: f64,
    /// Records per second.
    pub records_per_s: f64,
    /// Records per second between the 10 % and the 90 % record: the sustained rate, measured
    /// like the worker's.
    #[serde(default)]
    pub sustained_records_per_s: Option<f64>,
    /// Value MB per second.
    pub mb_per_s: f64,
    /// CPU microseconds the consumer (this process) spent per record over the sustained window.
    #[serde(default)]
    pub consumer_cpu_us_per_record: Option<f64>,
    /// CPU microseconds the broker spent per record over the same window.
    #[serde(default)]
    pub broker_cpu_us_per_record: Option<f64>,
    /// Share of the machine's cores busy over the same window, percent.
    #[serde(default)]
    pub machine_busy_pct: Option<f64>,
}

/// `bench baseline`: reads the backlog and drops it, prints the rate as one JSON line on stdout
/// and appends it to `BENCH_RESULTS`.
pub async fn command(config: BaselineConfig) -> anyhow::Result<()> {
    let results = config.results.bench_results.clone();
    let plan = config.validate()?;
    let result = run(&plan, &service::shutdown::on_signals()).await?;
    crate::results::publish(&results, &result)?;
    eprintln!(
        "bench baseline: {} records in {:.2} s: {:.0} records/s, {:.1} MB/s",
        result.records, result.seconds, result.records_per_s, result.mb_per_s
    );
    Ok(())
}

/// Reads `expected` records from `topics` with a fresh group and drops them.
pub async fn run(
    plan: &BaselinePlan,
    shutdown: &CancellationToken,
) -> Result<BaselineResult, BaselineError> {
    let (brokers, topics, expected, timeout) =
        (&plan.brokers, &plan.topics, plan.records, plan.timeout);
    let names = topics.join(",");
    let consumer_err = |source| BaselineError::Consumer {
        topics: names.clone(),
        brokers: brokers.to_owned(),
        source,
    };
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers.as_str())
        .set("group.id", testkit::unique("bench-baseline"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3333")
        .set("queued.max.messages.kbytes", PREFETCH_KBYTES)
        .create()
        .map_err(consumer_err)?;
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs).map_err(consumer_err)?;
    let started = Instant::now();
    let (mut records, mut bytes, mut first) = (0u64, 0u64, None::<Instant>);
    let marks = (
        (WINDOW_FROM * expected as f64).ceil() as u64,
        (WINDOW_TO * expected as f64).ceil() as u64,
    );
    let (mut from, mut to) = (None::<Instant>, None::<Instant>);
    let watched = [Some(std::process::id()), plan.broker_pid];
    let (mut cpu_from, mut cpu_to) = (None::<Snapshot>, None::<Snapshot>);
    while records < expected {
        let left = timeout.saturating_sub(started.elapsed());
        let msg = tokio::select! {
            m = tokio::time::timeout(left, consumer.recv()) => m,
            () = shutdown.cancelled() => return Err(BaselineError::Interrupted),
        };
        match msg {
            Ok(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                records += 1;
                bytes += m.payload_len() as u64;
                if records == marks.0 {
                    from = Some(Instant::now());
                    cpu_from = Some(Snapshot::take(&watched, records));
                }
                if records == marks.1 {
                    to = Some(Instant::now());
                    cpu_to = Some(Snapshot::take(&watched, records));
                }
            }
            Ok(Err(source)) => {
                return Err(BaselineError::Receive {
                    topics: names,
                    source,
                });
            }
            Err(_) => {
                return Err(BaselineError::Timeout {
                    read: records,
                    expected,
                    topics: names,
                    timeout,
                });
            }
        }
    }
    let seconds = first.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-3);
    let window = cpu_from
        .zip(cpu_to)
        .and_then(|(a, b)| cpu::window(&a, &b))
        .unwrap_or_default();
    let per_record = |i: usize| window.us_per_record.get(i).copied().flatten();
    Ok(BaselineResult {
        bench: plan.label.clone(),
        batch_size: plan.batch_size,
        records,
        bytes,
        seconds,
        records_per_s: records as f64 / seconds,
        sustained_records_per_s: from.zip(to).and_then(|(f, t)| {
            let secs = t.duration_since(f).as_secs_f64();
            (secs > 0.0).then(|| (marks.1 - marks.0) as f64 / secs)
        }),
        mb_per_s: bytes as f64 / seconds / 1e6,
        consumer_cpu_us_per_record: per_record(0),
        broker_cpu_us_per_record: per_record(1),
        machine_busy_pct: window.machine_busy_pct,
    })
}

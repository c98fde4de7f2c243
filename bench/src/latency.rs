//! The end-to-end latency run: fresh topics and containers, the worker and `transformer watch`
//! as children, a warm-up until the whole pipeline answers, then records at a fixed rate and
//! the time until each one is visible in `standard/buffer_meta/`.
//!
//! Latency of a record = first listing that shows its Parquet row − the instant it was handed to
//! the producer. It therefore includes the producer's linger, the worker's batching
//! (`BATCH_MAX_WAIT_MS` dominates at low rates), the upload, the watcher's poll
//! (`WATCH_POLL_MS`), the transform, and this bench's own poll (`BENCH_POLL_MS`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::children::{self, ChildError, Running};
use crate::config::LatencyConfig;
use crate::load::{self, LoadError, Mix, Target};
use crate::stats::{self, Summary};
use crate::topics::{self, TopicError};
use crate::visibility::{RecordKey, Visibility, VisibilityError};

/// A validated latency run ([`LatencyConfig::validate`]).
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

/// How long the warm-up may take: group join (~5 s on Tansu) + first batch + first transform,
/// with room for a cold debug build.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(180);

/// Errors of a latency run.
#[derive(Debug, thiserror::Error)]
pub enum LatencyError {
    /// Setting up a topic or container failed.
    #[error("setting up {what}: {source}")]
    Setup {
        /// Which resource.
        what: String,
        /// Why.
        source: anyhow::Error,
    },
    /// The producer could not be created.
    #[error("creating the producer for {brokers}: {source}")]
    Producer {
        /// Bootstrap servers.
        brokers: String,
        /// Why.
        source: rdkafka::error::KafkaError,
    },
    /// A topic could not be created.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// A child failed.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// Sending failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Reading the outputs failed.
    #[error(transparent)]
    Visibility(#[from] VisibilityError),
    /// The pipeline never delivered the warm-up records.
    #[error("warm-up: {seen} of {sent} records visible after {timeout:?}; see the logs in {logs}")]
    Warmup {
        /// Rows visible.
        seen: usize,
        /// Rows sent.
        sent: usize,
        /// The limit.
        timeout: Duration,
        /// Children's log folder.
        logs: String,
    },
    /// Interrupted.
    #[error("interrupted")]
    Interrupted,
}

/// The result line of a latency run (`bench` = `latency`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyResult {
    /// Always `latency`.
    pub bench: String,
    /// Offered records per second.
    pub rate_per_s: u32,
    /// Seconds of sending.
    pub duration_s: u64,
    /// Lobby + game topic partitions, e.g. `2+4`.
    pub partitions: String,
    /// Worker `BATCH_SIZE`.
    pub batch_size: usize,
    /// Worker `BATCH_MAX_WAIT_MS`.
    pub batch_max_wait_ms: u64,
    /// Transformer `WATCH_POLL_MS`.
    pub watch_poll_ms: u64,
    /// The bench's own listing interval.
    pub poll_ms: u64,
    /// Records delivered to the broker.
    pub records_sent: usize,
    /// Delivery failures.
    pub records_failed: u64,
    /// Sent records that never became visible within the drain timeout.
    pub records_missing: usize,
    /// Rows seen in more than one Parquet file (must be 0).
    pub duplicate_rows: u64,
    /// Value bytes sent.
    pub bytes_sent: u64,
    /// Largest sender slip behind the fixed schedule, ms.
    pub max_send_slip_ms: f64,
    /// `buffer_meta` files read.
    pub parquet_files: usize,
    /// Latency percentiles of the visible records (absent when none became visible).
    pub latency: Option<Summary>,
    /// Median latency of each tenth of the run, in send order: flat when the pipeline keeps up,
    /// rising when a stage falls behind the offered rate.
    pub p50_by_tenth_ms: Vec<f64>,
    /// `release` or `debug`: the folder the children came from.
    pub binaries: String,
}

/// `bench latency`: runs the measurement, prints its result as one JSON line on stdout and appends
/// it to `BENCH_RESULTS`; fails when a record went missing, showed twice or was not delivered.
pub async fn command(config: LatencyConfig) -> anyhow::Result<()> {
    let plan = config.validate()?;
    let result = run(&plan, service::shutdown::on_signals()).await?;
    crate::results::publish(&plan.results, &result)?;
    match &result.latency {
        Some(s) => eprintln!(
            "bench latency: {} records at {}/s: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} missing, {} duplicate rows",
            result.records_sent,
            result.rate_per_s,
            s.p50_ms,
            s.p90_ms,
            s.p99_ms,
            s.max_ms,
            result.records_missing,
            result.duplicate_rows
        ),
        None => eprintln!("bench latency: no record became visible"),
    }
    if result.records_missing > 0 || result.duplicate_rows > 0 || result.records_failed > 0 {
        anyhow::bail!(
            "{} records missing, {} duplicate rows, {} failed deliveries (result recorded in {})",
            result.records_missing,
            result.duplicate_rows,
            result.records_failed,
            plan.results.display()
        );
    }
    Ok(())
}

/// Runs the whole measurement and returns its result line.
pub async fn run(
    plan: &LatencyPlan,
    shutdown: CancellationToken,
) -> Result<LatencyResult, LatencyError> {
    let setup = |what: String| move |source| LatencyError::Setup { what, source };
    let lobby = testkit::unique("bench-lat-lobby");
    let game = testkit::unique("bench-lat-game");
    topics::create(&plan.brokers, &lobby, plan.partitions[0]).await?;
    topics::create(&plan.brokers, &game, plan.partitions[1]).await?;
    let (raw_url, _) =
        testkit::new_container("bench-lat-raw").map_err(setup("raw container".into()))?;
    let (standard_url, standard) =
        testkit::new_container("bench-lat-std").map_err(setup("standard container".into()))?;
    eprintln!(
        "bench latency: topics {lobby} ({}), {game} ({}); {raw_url} → {standard_url}",
        plan.partitions[0], plan.partitions[1]
    );

    let mut common: Vec<(String, String)> = testkit::azure_env();
    common.push(("LOG_FORMAT".into(), "json".into()));
    // Port 0: several benches or tests may run at once; nothing here scrapes the children.
    common.push(("METRICS_ADDR".into(), "127.0.0.1:0".into()));
    let mut worker_env = common.clone();
    worker_env.extend([
        ("KAFKA_BROKERS".into(), plan.brokers.clone()),
        ("KAFKA_GROUP_ID".into(), testkit::unique("bench-lat-group")),
        ("KAFKA_TOPICS".into(), format!("{lobby},{game}")),
        ("BATCH_SIZE".into(), plan.batch_size.to_string()),
        (
            "BATCH_MAX_WAIT_MS".into(),
            plan.batch_max_wait.as_millis().to_string(),
        ),
        ("RAW_URL".into(), raw_url.clone()),
        ("CLEANUP_ENABLED".into(), "false".into()),
    ]);
    let mut transformer_env = common;
    transformer_env.extend([
        ("RAW_URL".into(), raw_url),
        ("STANDARD_URL".into(), standard_url),
        (
            "WATCH_POLL_MS".into(),
            plan.watch_poll.as_millis().to_string(),
        ),
    ]);
    let log_dir = plan.log_dir.join(&lobby);
    let mut worker = children::start(
        "worker",
        &plan.bin_dir,
        "worker",
        &[],
        &worker_env,
        &log_dir,
    )?;
    let mut transformer = children::start(
        "transformer",
        &plan.bin_dir,
        "transformer",
        &["watch"],
        &transformer_env,
        &log_dir,
    )?;

    let outcome = measure(
        plan,
        &lobby,
        &game,
        standard,
        &mut [&mut worker, &mut transformer],
        &shutdown,
    )
    .await;
    // Kill before returning, whatever happened: a stray worker would keep consuming.
    let killed = (worker.kill().await, transformer.kill().await);
    let result = outcome?;
    killed.0?;
    killed.1?;
    Ok(result)
}

async fn measure(
    plan: &LatencyPlan,
    lobby: &str,
    game: &str,
    standard: Arc<dyn ObjectStore>,
    children: &mut [&mut Running],
    shutdown: &CancellationToken,
) -> Result<LatencyResult, LatencyError> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &plan.brokers)
        .set("linger.ms", "1")
        .set("message.timeout.ms", "30000")
        .create()
        .map_err(|source| LatencyError::Producer {
            brokers: plan.brokers.clone(),
            source,
        })?;
    let target = Target {
        lobby: lobby.to_owned(),
        game: game.to_owned(),
        partitions: plan.partitions,
    };
    let mut mix = Mix::new(lobby, game, 0xbe4c);
    let mut visible = Visibility::new(standard);

    // Warm-up: enough records that every partition very likely gets one, then wait until the
    // whole pipeline has shown them (group joined, first blob landed and transformed). Their
    // latencies are excluded: they measure start-up, not steady state.
    let warm_count = 8 * (plan.partitions[0] + plan.partitions[1]) as u64;
    let warm = load::send_at_rate(&producer, &target, &mut mix, warm_count, 1000, shutdown).await?;
    let started = Instant::now();
    eprintln!(
        "bench latency: warm-up, {} records sent; waiting for the pipeline",
        warm.sent.len()
    );
    loop {
        for c in children.iter_mut() {
            c.check_alive()?;
        }
        visible.poll().await?;
        if visible.rows() >= warm.sent.len() {
            break;
        }
        if started.elapsed() > WARMUP_TIMEOUT || shutdown.is_cancelled() {
            return Err(LatencyError::Warmup {
                seen: visible.rows(),
                sent: warm.sent.len(),
                timeout: WARMUP_TIMEOUT,
                logs: plan.log_dir.display().to_string(),
            });
        }
        tokio::time::sleep(plan.poll).await;
    }
    eprintln!(
        "bench latency: pipeline ready after {:.1} s; sending {} records/s for {:?}",
        started.elapsed().as_secs_f64(),
        plan.rate,
        plan.duration
    );

    // Measurement: the sender runs on its own task so the poller's GETs never delay a send.
    let count = u64::from(plan.rate) * plan.duration.as_secs();
    let sender = {
        let (producer, target, rate, shutdown) = (
            producer.clone(),
            target.clone(),
            plan.rate,
            shutdown.clone(),
        );
        tokio::spawn(async move {
            load::send_at_rate(&producer, &target, &mut mix, count, rate, &shutdown).await
        })
    };
    let mut sender = Some(sender);
    let mut sending = None;
    let mut drain_started: Option<Instant> = None;
    loop {
        for c in children.iter_mut() {
            c.check_alive()?;
        }
        visible.poll().await?;
        if sender
            .as_ref()
            .is_some_and(tokio::task::JoinHandle::is_finished)
            && let Some(handle) = sender.take()
        {
            let done = handle.await.map_err(|e| LatencyError::Setup {
                what: "sender task".into(),
                source: e.into(),
            })??;
            drain_started = Some(Instant::now());
            sending = Some(done);
        }
        if let Some(done) = &sending {
            let all_seen = done
                .sent
                .iter()
                .all(|s| visible.first_seen(&key(s)).is_some());
            if all_seen || drain_started.is_some_and(|d| d.elapsed() > plan.drain_timeout) {
                break;
            }
        }
        if shutdown.is_cancelled() {
            return Err(LatencyError::Interrupted);
        }
        tokio::time::sleep(plan.poll).await;
    }
    let mut done = sending.unwrap_or_default();
    done.sent.sort_by_key(|s| s.sent_at);
    let latencies: Vec<f64> = done
        .sent
        .iter()
        .filter_map(|s| {
            visible
                .first_seen(&key(s))
                .map(|t| t.saturating_duration_since(s.sent_at).as_secs_f64() * 1e3)
        })
        .collect();
    let missing = done.sent.len() - latencies.len();
    for e in &done.errors {
        eprintln!("bench latency: delivery failed: {e}");
    }
    Ok(LatencyResult {
        bench: "latency".into(),
        rate_per_s: plan.rate,
        duration_s: plan.duration.as_secs(),
        partitions: format!("{}+{}", plan.partitions[0], plan.partitions[1]),
        batch_size: plan.batch_size,
        batch_max_wait_ms: plan.batch_max_wait.as_millis() as u64,
        watch_poll_ms: plan.watch_poll.as_millis() as u64,
        poll_ms: plan.poll.as_millis() as u64,
        records_sent: done.sent.len(),
        records_failed: done.failed,
        records_missing: missing,
        duplicate_rows: visible.duplicates(),
        bytes_sent: done.bytes,
        max_send_slip_ms: done.max_slip.as_secs_f64() * 1e3,
        parquet_files: visible.files(),
        p50_by_tenth_ms: tenths(&latencies),
        latency: stats::summarize(latencies),
        binaries: plan
            .bin_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

/// The median of each tenth of `values` (in their order).
pub fn tenths(values: &[f64]) -> Vec<f64> {
    let chunk = values.len().div_ceil(10).max(1);
    values
        .chunks(chunk)
        .filter_map(|c| stats::summarize(c.to_vec()).map(|s| s.p50_ms))
        .collect()
}

fn key(s: &load::Sent) -> RecordKey {
    (s.topic.clone(), s.partition, s.offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_show_a_rising_latency_as_rising_medians() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let t = tenths(&values);
        assert_eq!(t.len(), 10);
        assert_eq!((t[0], t[9]), (5.0, 95.0));
        assert!(tenths(&[]).is_empty());
    }
}

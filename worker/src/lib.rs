//! The worker: lands every Kafka record of the configured topics exactly once in the raw
//! container, as gzipped JSON-lines batches, and expires finished games' Redis keys.
//!
//! Exactly-once rests on two rules (argued in `docs/DESIGN.md`, section 5): per partition, blobs
//! form a chain of contiguous offset ranges named by their first record and written
//! create-only, which every writer walks the same way ([`sink`]); and an offset is committed
//! only after the blobs below it are durable (and, with clean-up on, the Redis clean-ups of
//! the records below it applied), never by a writer that lost the partition ([`frontier`]).
//!
//! # Layout
//! - [`config`]: the knobs, flags over environment variables ([`config::Config`]), validated
//!   into [`config::Settings`].
//! - [`consumer`]: rdkafka consumer settings and the rebalance context (ownership epochs,
//!   commit on revoke, lag from statistics).
//! - [`batch`]: per-partition batches encoded as raw lines as records arrive; cut rules.
//! - [`buffers`]: batch bodies' and gzip buffers, reused instead of faulted in afresh.
//! - [`gzip`]: a batch body's gzip, with the deflate state reused per thread.
//! - [`sink`]: gzip + create-only upload with offset metadata; walking the blob chain.
//! - [`fingerprint`]: what identifies a blob's first record, so that a blob of another
//!   incarnation of the topic (offsets handed out again) stops the worker instead of being
//!   taken as landed.
//! - [`pipeline`]: the consume loop: routing, timers, memory cap, scheduling, shutdown.
//! - [`upload`]: one upload task with retries and the ownership (epoch) check.
//! - [`frontier`]: partition ownership (epochs) and commit frontiers: durable, seen, and no
//!   pending clean-up below.
//! - [`partition`]: [`partition::PartitionId`], the key of per-partition state.
//! - [`commit`]: sends commit frontiers that moved (after batches, on a timer, at shutdown).
//! - [`cleanup`]: the Redis clean-up task; its queue never drops a request.
//! - [`headers`]: record headers as bytes, names whole (librdkafka's C API, audited).
//! - [`health`]: `/readyz` probes.
//! - [`telemetry`]: metric names and named events (each bumps its metric and logs its line),
//!   per-record lines rate-limited.
//! - [`pass`]: a single pass (`--once`): its end condition, tally and JSON summary.

pub mod batch;
pub mod buffers;
pub mod cleanup;
pub mod commit;
pub mod config;
pub mod consumer;
pub mod fingerprint;
pub mod frontier;
pub mod gzip;
pub mod headers;
pub mod health;
pub mod partition;
pub mod pass;
pub mod pipeline;
pub mod sink;
pub mod telemetry;
pub mod upload;

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

pub use config::Settings;
pub use pipeline::Report;

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The raw container URL is unusable.
    #[error(transparent)]
    Storage(#[from] service::storage::StorageError),
    /// The consumer could not be created.
    #[error(transparent)]
    Consumer(#[from] consumer::ConsumerError),
    /// `REDIS_URL` is not a Redis URL the client accepts.
    #[error("REDIS_URL={url} cannot be used: {source}")]
    Redis {
        /// Redacted URL.
        url: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// The ops endpoints cannot listen.
    #[error(transparent)]
    Ops(#[from] service::ops::OpsError),
    /// The pipeline task panicked.
    #[error("the worker's pipeline task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A partition could not be landed and retrying cannot help (e.g. a raw blob of another
    /// incarnation of the topic): the worker landed and committed what it could, then stopped.
    #[error("the worker stopped: a partition cannot be landed")]
    Stopped(#[source] Arc<sink::SinkError>),
}

/// A started worker.
#[derive(Debug)]
pub struct Running {
    /// Where `/metrics`, `/healthz` and `/readyz` answer.
    pub ops_addr: SocketAddr,
    task: tokio::task::JoinHandle<Report>,
}

impl Running {
    /// Waits until the worker has stopped and returns its report, whatever happened (a
    /// failed partition's error is in [`Report::failed`], a pass's summary in [`Report::pass`]).
    pub async fn report(self) -> Result<Report, WorkerError> {
        Ok(self.task.await?)
    }

    /// Waits until the worker has stopped (after `shutdown` was cancelled, or a partition
    /// failed for good, and it drained). The error of a failed partition is returned.
    pub async fn wait(self) -> Result<Report, WorkerError> {
        let report = self.task.await?;
        match &report.failed {
            Some(e) => Err(WorkerError::Stopped(e.clone())),
            None => Ok(report),
        }
    }
}

/// Starts the worker; it stops when `shutdown` is cancelled, landing what it buffered within
/// `SHUTDOWN_GRACE_MS`.
pub async fn start(
    settings: Settings,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<Running, WorkerError> {
    telemetry::describe();
    let store = service::storage::open("RAW_URL", &settings.raw_url)?;
    let sink = Arc::new(sink::Sink::new(store.clone(), settings.gzip_level));
    // With clean-up on, commits wait for clean-ups (see `frontier`).
    let ownership = Arc::new(frontier::Ownership::new(settings.cleanup.is_some()));
    // librdkafka's pre-fetch queue: a quarter of the buffer cap, at most its 64 MiB default.
    let prefetch_kbytes = (settings.buffer_max_bytes / 4 / 1024).clamp(1024, 65_536);
    let consumer = Arc::new(consumer::create(
        &settings.kafka,
        ownership.clone(),
        prefetch_kbytes,
    )?);

    let cleanup_stop = CancellationToken::new();
    let cleanup = match &settings.cleanup {
        Some(c) => Some(
            cleanup::spawn(c, ownership.clone(), cleanup_stop.clone()).map_err(|source| {
                WorkerError::Redis {
                    url: service::secret::redact_url(c.redis_url.expose()),
                    source,
                }
            })?,
        ),
        None => None,
    };

    let ops_stop = CancellationToken::new();
    let probes = health::probes(
        Arc::downgrade(&consumer),
        settings.kafka.brokers.clone(),
        store,
        settings.raw_url.clone(),
        settings.cleanup.clone(),
    );
    let (ops_addr, serve) = service::ops::bind(
        settings.metrics_addr,
        service::ops::router(metrics, probes),
        ops_stop.clone(),
    )
    .await?;
    let ops = tokio::spawn(serve);

    tracing::info!(
        event = "worker_started",
        brokers = settings.kafka.brokers,
        group = settings.kafka.group_id,
        topics = ?settings.kafka.topics,
        raw_url = settings.raw_url,
        batch_size = settings.limits.max_records,
        batch_max_bytes = settings.limits.max_bytes,
        batch_max_wait_ms = settings.limits.max_wait.as_millis() as u64,
        buffer_max_bytes = settings.buffer_max_bytes,
        gzip_level = settings.gzip_level,
        upload_concurrency = settings.upload_concurrency,
        redis_url = settings.cleanup.as_ref().map(|c| service::secret::redact_url(c.redis_url.expose())),
        ops_addr = %ops_addr,
    );

    let loop_settings = pipeline::LoopSettings {
        limits: settings.limits,
        buffer_max_bytes: settings.buffer_max_bytes,
        upload_concurrency: settings.upload_concurrency,
        // The rest of the grace period is for queued clean-ups and leaving the group.
        shutdown_grace: settings.shutdown_grace * 4 / 5,
        cleanup_grace: settings.shutdown_grace / 10,
    };
    let pass_limits = settings.pass;
    let task = tokio::spawn(async move {
        let (cleaner, cleanup_task) = cleanup.unzip();
        let mut pipeline =
            pipeline::Pipeline::new(loop_settings, consumer.clone(), ownership, sink, cleaner);
        if let Some(limits) = pass_limits {
            pipeline = pipeline.with_pass(pass::Pass::new(limits));
        }
        let report = pipeline.run(shutdown).await;
        // The pipeline gave queued clean-ups their grace and committed what they released;
        // what is left (Redis down) is abandoned: those records stay uncommitted.
        cleanup_stop.cancel();
        if let Some(task) = cleanup_task {
            let _ = task.await;
        }
        ops_stop.cancel();
        let _ = ops.await;
        // Leaving the group (and its final revoke commit) happens when the consumer drops.
        drop(consumer);
        report
    });
    Ok(Running { ops_addr, task })
}

/// [`start`], then wait until it stops.
pub async fn run(
    settings: Settings,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<Report, WorkerError> {
    start(settings, metrics, shutdown).await?.wait().await
}

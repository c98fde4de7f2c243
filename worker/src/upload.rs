//! One upload task: lands a sealed batch, retrying with backoff until it succeeds, the
//! partition moves away (epoch no longer current), shutdown gives up, or the sink says retrying
//! cannot help (a blob of another incarnation of the topic: [`SinkError::is_fatal`]). At most
//! one runs per partition, so a partition's blobs and commits advance in offset order.

use std::sync::Arc;
use std::time::Duration;

use service::retry::Backoff;
use tokio_util::sync::CancellationToken;

use crate::batch::{CleanupRequest, Sealed};
use crate::frontier::Ownership;
use crate::sink::{Landed, Sink, SinkError};
use crate::telemetry;

/// Longest wait between retries of a failing upload.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How an upload ended.
#[derive(Debug)]
pub enum Outcome {
    /// Durable (by us or found in storage).
    Landed(Landed),
    /// The partition moved away (or shutdown gave up) before the upload finished.
    Abandoned,
    /// Landing cannot succeed (logged as `incarnation_mismatch`): the partition must stop,
    /// nothing of this batch is durable or may be committed.
    Failed(Arc<SinkError>),
}

/// What an upload task hands back to the pipeline.
#[derive(Debug)]
pub struct UploadDone {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The ownership epoch it ran under.
    pub epoch: u64,
    /// Memory the batch held (released now).
    pub bytes: usize,
    /// Clean-ups of the batch's records, due once they are durable.
    pub cleanups: Vec<CleanupRequest>,
    /// How it ended.
    pub outcome: Outcome,
    /// The batch's span (topic, partition, first offset): the pipeline enters it for what
    /// follows the upload (the commit).
    pub span: tracing::Span,
}

/// Lands one batch, retrying with backoff until it succeeds, the partition moves away, or
/// shutdown gives up. Run inside the batch's span ([`telemetry::batch_span`]), which
/// [`UploadDone::span`] hands back.
pub async fn upload(
    sink: Arc<Sink>,
    ownership: Arc<Ownership>,
    mut batch: Sealed,
    frontier: i64,
    epoch: u64,
    abort: CancellationToken,
) -> UploadDone {
    let topic = batch.topic.clone();
    let partition = batch.partition;
    let bytes = batch.original_bytes;
    let cleanups = std::mem::take(&mut batch.cleanups);
    let span = tracing::Span::current();
    let done = |outcome| UploadDone {
        topic: topic.clone(),
        partition,
        epoch,
        bytes,
        cleanups: cleanups.clone(),
        outcome,
        span: span.clone(),
    };
    let started = std::time::Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
    loop {
        if !ownership.is_current(&topic, partition, epoch) {
            telemetry::upload_abandoned(&topic, partition);
            return done(Outcome::Abandoned);
        }
        let result = tokio::select! {
            _ = abort.cancelled() => return done(Outcome::Abandoned),
            r = sink.land(&mut batch, frontier) => r,
        };
        match result {
            Ok(landed) => {
                // Recorded here, not when the pipeline takes the result: a revoke in between
                // commits it (the pipeline's own copy is for routing, see `crate::pipeline`).
                ownership.advance(&topic, partition, epoch, &landed.positions);
                let latency = started.elapsed();
                let reason = batch.reason.as_str();
                match &landed.written {
                    Some(w) => telemetry::batch_landed(
                        &topic,
                        partition,
                        w.event(),
                        reason,
                        landed.skipped,
                        latency,
                    ),
                    None => telemetry::batch_already_landed(
                        &topic,
                        partition,
                        landed.skipped,
                        landed.frontier,
                        reason,
                        latency,
                    ),
                }
                return done(Outcome::Landed(landed));
            }
            Err(e) if e.is_fatal() => {
                // `is_fatal` is exactly this variant.
                if let SinkError::Incarnation {
                    blob,
                    offset,
                    stored,
                    fetched,
                    ..
                } = &e
                {
                    telemetry::incarnation_mismatch(
                        &topic, partition, *offset, blob, stored, fetched, &e,
                    );
                }
                return done(Outcome::Failed(Arc::new(e)));
            }
            Err(e) => {
                let delay = backoff.delay();
                telemetry::upload_failed(&topic, partition, &e, delay);
                tokio::select! {
                    _ = abort.cancelled() => return done(Outcome::Abandoned),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

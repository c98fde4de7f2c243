//! One upload task: lands a sealed batch, retrying with backoff until it succeeds, the
//! partition moves away (epoch no longer current), shutdown gives up, or the sink says retrying
//! cannot help (a blob of another incarnation of the topic: [`SinkError::is_fatal`]). At most
//! one runs per partition, so a partition's blobs and commits advance in offset order.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::batch::{CleanupRequest, Sealed};
use crate::frontier::Ownership;
use crate::metrics as m;
use crate::sink::{Landed, Sink, SinkError};

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
}

/// Lands one batch, retrying with backoff until it succeeds, the partition moves away, or
/// shutdown gives up.
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
    let done = |outcome| UploadDone {
        topic: topic.clone(),
        partition,
        epoch,
        bytes,
        cleanups: cleanups.clone(),
        outcome,
    };
    let started = std::time::Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        if !ownership.is_current(&topic, partition, epoch) {
            tracing::info!(event = "upload_abandoned", topic = %topic, partition, reason = "revoked");
            return done(Outcome::Abandoned);
        }
        let result = tokio::select! {
            _ = abort.cancelled() => return done(Outcome::Abandoned),
            r = sink.land(&mut batch, frontier) => r,
        };
        match result {
            Ok(landed) => {
                ownership.advance(&topic, partition, epoch, &landed.positions);
                let duration_ms = started.elapsed().as_millis() as u64;
                metrics::histogram!(m::BATCH_LATENCY_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                if landed.skipped > 0 {
                    metrics::counter!(m::SKIPPED_RECORDS, "topic" => topic.to_string())
                        .increment(landed.skipped as u64);
                }
                match &landed.written {
                    Some(w) => {
                        metrics::counter!(m::LANDED_RECORDS, "topic" => topic.to_string())
                            .increment(w.records as u64);
                        metrics::counter!(m::LANDED_BYTES, "topic" => topic.to_string())
                            .increment(w.bytes as u64);
                        metrics::counter!(m::STORED_BYTES, "topic" => topic.to_string())
                            .increment(w.stored_bytes as u64);
                        tracing::info!(
                            event = "batch_landed",
                            topic = %topic,
                            partition,
                            first_offset = w.first_offset,
                            last_offset = w.last_offset,
                            records = w.records,
                            bytes = w.bytes,
                            stored_bytes = w.stored_bytes,
                            blob = w.blob,
                            reason = batch.reason.as_str(),
                            skipped = landed.skipped,
                            duration_ms,
                        );
                    }
                    None => tracing::info!(
                        event = "batch_already_landed",
                        topic = %topic,
                        partition,
                        skipped = landed.skipped,
                        frontier = landed.frontier,
                        reason = batch.reason.as_str(),
                        duration_ms,
                    ),
                }
                return done(Outcome::Landed(landed));
            }
            Err(e) if e.is_fatal() => {
                metrics::counter!(m::ERRORS, "kind" => "incarnation_mismatch").increment(1);
                if let SinkError::Incarnation {
                    blob,
                    offset,
                    stored,
                    fetched,
                    ..
                } = &e
                {
                    tracing::error!(
                        event = "incarnation_mismatch",
                        topic = %topic,
                        partition,
                        offset,
                        blob,
                        stored_fingerprint = %stored,
                        fetched_fingerprint = %fetched,
                        error = %e,
                    );
                }
                return done(Outcome::Failed(Arc::new(e)));
            }
            Err(e) => {
                metrics::counter!(m::ERRORS, "kind" => "upload").increment(1);
                tracing::warn!(
                    event = "upload_failed",
                    topic = %topic,
                    partition,
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                );
                tokio::select! {
                    _ = abort.cancelled() => return done(Outcome::Abandoned),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

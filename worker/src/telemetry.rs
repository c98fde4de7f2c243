//! The worker's telemetry, one way: named events, each updating its metric(s) and logging its
//! line (event name, fields and level) in one place, so that a call site calls one function.
//! Metric names (Prometheus, prefix `worker_`) are the constants below, with their descriptions
//! ([`describe`]). Labels stay low-cardinality: topic, partition, reason, kind.
//!
//! Lines that can repeat once per record (an unreadable clean-up task, a consume error, a
//! clean-up Redis rejects for its data) are rate-limited ([`RateLimited`]): at most
//! [`LOG_LIMIT_LINES`] per event every [`LOG_LIMIT_INTERVAL`]; the next line that passes carries
//! `suppressed = n`, the lines held back since. Their metrics still count every occurrence.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaResult;

/// Records consumed, by `topic` and value `kind` (json, text, binary, null).
pub const RECORDS: &str = "worker_records_total";
/// Records taken from Kafka (counted as they arrive, before batching).
pub const CONSUMED: &str = "worker_consumed_records_total";
/// Records landed in new blobs, by `topic`.
pub const LANDED_RECORDS: &str = "worker_landed_records_total";
/// Uncompressed bytes landed, by `topic`.
pub const LANDED_BYTES: &str = "worker_landed_bytes_total";
/// Stored (gzip) bytes landed, by `topic`.
pub const STORED_BYTES: &str = "worker_stored_bytes_total";
/// Batches cut, by `topic` and flush `reason` (count, bytes, max_wait, memory, revoke, shutdown).
pub const BATCHES: &str = "worker_batches_total";
/// Seconds of one create-only upload.
pub const UPLOAD_SECONDS: &str = "worker_upload_seconds";
/// Seconds of the look-up of an existing blob's last offset after a refused upload.
pub const HEAD_SECONDS: &str = "worker_head_seconds";
/// Seconds from a batch's cut to its commit.
pub const BATCH_LATENCY_SECONDS: &str = "worker_batch_latency_seconds";
/// Blobs found already landed (by a previous run or another worker), by `topic` and `how`
/// (head, conflict).
pub const RECONCILIATIONS: &str = "worker_reconciliations_total";
/// Records not landed again because storage already held them, by `topic`.
pub const SKIPPED_RECORDS: &str = "worker_skipped_records_total";
/// Offset commits, by `result` (ok, error) and `what` (batch, timer, retry, revoke, shutdown).
pub const COMMITS: &str = "worker_commits_total";
/// High watermark minus committed offset, by `topic` and `partition`, for the partitions this
/// worker owns (from librdkafka statistics); 0 from the revoke on, when the partition moved
/// away (its new owner reports it), so a sum over workers is the group's lag.
pub const CONSUMER_LAG: &str = "worker_consumer_lag";
/// Uncompressed bytes held in memory (open, waiting and uploading batches).
pub const BUFFERED_BYTES: &str = "worker_buffered_bytes";
/// 1 while fetching is paused because the buffer is full.
pub const PAUSED: &str = "worker_fetch_paused";
/// Times the loop stopped taking records because the buffers were full (a hold; see
/// `pipeline::pressure`).
pub const HOLDS: &str = "worker_fetch_holds_total";
/// Rebalance events, by `kind` (assign, revoke, error).
pub const REBALANCES: &str = "worker_rebalances_total";
/// Redis clean-ups done, by `scope` (user, game).
pub const CLEANUPS: &str = "worker_cleanups_total";
/// Failed Redis clean-up attempts (each is retried).
pub const CLEANUP_ERRORS: &str = "worker_cleanup_errors_total";
/// Clean-ups queued for the Redis task and not taken yet.
pub const CLEANUP_QUEUE: &str = "worker_cleanup_queue";
/// Clean-ups registered on owned partitions and not applied yet; each holds its partition's
/// commit at or below its record's offset.
pub const CLEANUP_PENDING: &str = "worker_cleanup_pending";
/// Commits (after a batch landed) held below the durable frontier by a pending clean-up.
pub const COMMITS_HELD: &str = "worker_commits_held_total";
/// Errors by `kind` (kafka, upload, upload_task, cleanup_task, cleanup_rejected, stale_message,
/// pause, incarnation_mismatch, commit_refused: an async offset commit the broker refused).
pub const ERRORS: &str = "worker_errors_total";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(RECORDS, "Records consumed, by topic and value kind.");
    describe_counter!(CONSUMED, "Records taken from Kafka.");
    describe_counter!(LANDED_RECORDS, "Records landed in new raw blobs.");
    describe_counter!(LANDED_BYTES, Unit::Bytes, "Uncompressed bytes landed.");
    describe_counter!(STORED_BYTES, Unit::Bytes, "Gzip bytes stored.");
    describe_counter!(BATCHES, "Batches cut, by flush reason.");
    describe_histogram!(
        UPLOAD_SECONDS,
        Unit::Seconds,
        "Create-only upload time of one blob."
    );
    describe_histogram!(
        HEAD_SECONDS,
        Unit::Seconds,
        "Existence check before an upload."
    );
    describe_histogram!(
        BATCH_LATENCY_SECONDS,
        Unit::Seconds,
        "Cut to commit of one batch."
    );
    describe_counter!(RECONCILIATIONS, "Blobs found already landed.");
    describe_counter!(
        SKIPPED_RECORDS,
        "Records skipped because they were already landed."
    );
    describe_counter!(COMMITS, "Offset commits by result.");
    describe_gauge!(
        CONSUMER_LAG,
        "High watermark minus committed offset of an owned partition (0 once revoked)."
    );
    describe_gauge!(
        BUFFERED_BYTES,
        Unit::Bytes,
        "Uncompressed bytes held in memory."
    );
    describe_gauge!(PAUSED, "1 while fetching is paused by BUFFER_MAX_BYTES.");
    describe_counter!(
        HOLDS,
        "Times the worker stopped taking records because its buffers were full (paused if it lasts 2 s)."
    );
    describe_counter!(REBALANCES, "Rebalance events.");
    describe_counter!(CLEANUPS, "Redis clean-ups done.");
    describe_counter!(CLEANUP_ERRORS, "Failed Redis clean-up attempts (retried).");
    describe_gauge!(CLEANUP_QUEUE, "Redis clean-ups queued for the Redis task.");
    describe_gauge!(
        CLEANUP_PENDING,
        "Redis clean-ups not applied yet; each holds its partition's commit."
    );
    describe_counter!(
        COMMITS_HELD,
        "Commits held below the durable frontier by a pending Redis clean-up."
    );
    describe_counter!(ERRORS, "Errors by kind.");
}

// ----- Rate limit of per-record lines -----

/// Lines of one rate-limited event logged per [`LOG_LIMIT_INTERVAL`].
pub const LOG_LIMIT_LINES: u32 = 10;
/// The window of [`LOG_LIMIT_LINES`].
pub const LOG_LIMIT_INTERVAL: Duration = Duration::from_secs(10);

/// At most `max` lines per key in each window of `interval` (a window opens with the first line
/// after the last one closed). The lines held back are counted and handed to the next line that
/// passes, which logs them as `suppressed = n`. Callers count their metric for every occurrence
/// and ask the limiter only whether to log.
#[derive(Debug)]
pub struct RateLimited {
    max: u32,
    interval: Duration,
    windows: Mutex<BTreeMap<&'static str, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    passed: u32,
    suppressed: u64,
}

impl RateLimited {
    /// A limiter letting `max` lines per key through every `interval`.
    pub const fn new(max: u32, interval: Duration) -> Self {
        RateLimited {
            max,
            interval,
            windows: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether a line of `key` may be logged at `now`: `Some(n)`, with `n` the lines of `key`
    /// held back since the last one that passed, or `None` when this one is held back (and
    /// counted).
    pub fn check(&self, key: &'static str, now: Instant) -> Option<u64> {
        // Each update is one entry: a poisoned lock is still consistent.
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let w = windows.entry(key).or_insert(Window {
            start: now,
            passed: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(w.start) >= self.interval {
            w.start = now;
            w.passed = 0;
        }
        if w.passed < self.max {
            w.passed += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed += 1;
            None
        }
    }
}

static LOG_LIMIT: RateLimited = RateLimited::new(LOG_LIMIT_LINES, LOG_LIMIT_INTERVAL);

/// `Some(suppressed)` when a line of `event` may be logged now (`suppressed`: the lines held back
/// before it, `None` when there were none, so that the field is left out), `None` when it is
/// held back.
fn may_log(event: &'static str) -> Option<Option<u64>> {
    LOG_LIMIT
        .check(event, Instant::now())
        .map(|n| (n > 0).then_some(n))
}

// ----- Spans -----

/// The span of one batch's upload and of the commit after it (the pipeline enters it again
/// when the upload is done).
pub fn batch_span(
    topic: &str,
    partition: i32,
    first_offset: Option<i64>,
    epoch: u64,
) -> tracing::Span {
    tracing::info_span!("batch", topic = %topic, partition, first_offset, epoch)
}

/// The span of one blob's create-only upload (gzip and put), and of the look-up of the blob
/// already under its name.
pub fn blob_span(blob: &str, first_offset: i64) -> tracing::Span {
    tracing::info_span!("blob", blob, first_offset)
}

// ----- Kafka client -----

/// A librdkafka log line, at its level. `COMMITFAIL` means the broker refused one of our async
/// commits (e.g. Tansu during a rebalance: "generation id is not valid"); librdkafka does not
/// retry it, the committer sends the frontier again when statistics do not confirm it
/// (`crate::commit`): it also counts `worker_errors_total{kind="commit_refused"}`.
pub fn kafka_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    if facility == "COMMITFAIL" {
        metrics::counter!(ERRORS, "kind" => "commit_refused").increment(1);
    }
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(event = "kafka_log", facility, message)
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(event = "kafka_log", facility, message)
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(event = "kafka_log", facility, message)
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(event = "kafka_log", facility, message)
        }
    }
}

/// A client error librdkafka reported.
pub fn kafka_error(error: &dyn Display, reason: &str) {
    metrics::counter!(ERRORS, "kind" => "kafka").increment(1);
    tracing::warn!(event = "kafka_error", error = %error, reason);
}

/// The group refused our JoinGroup because its members use the other rebalance protocol
/// (measured on Tansu: every ~3 s while they stay; they keep every partition, nothing is lost).
pub fn group_protocol_mismatch(error: &dyn Display, reason: &str) {
    metrics::counter!(ERRORS, "kind" => "kafka").increment(1);
    tracing::warn!(
        event = "group_protocol_mismatch",
        error = %error,
        reason,
        hint = "the group's current members use another KAFKA_ASSIGNMENT_STRATEGY (eager and cooperative-sticky cannot share a group): this worker joins once they have left; set the same value on every worker of the group",
    );
}

/// The consumer stream returned an error instead of a record (rate-limited: it can repeat per
/// record).
pub fn consume_error(error: &dyn Display) {
    metrics::counter!(ERRORS, "kind" => "kafka").increment(1);
    if let Some(suppressed) = may_log("consume_error") {
        tracing::warn!(event = "consume_error", error = %error, suppressed);
    }
}

/// Records taken from the consumer (one drain of the stream).
pub fn consumed(records: u64) {
    metrics::counter!(CONSUMED).increment(records);
}

/// A record of a partition this process does not own (fetched before a revoke).
pub fn stale_message() {
    metrics::counter!(ERRORS, "kind" => "stale_message").increment(1);
}

/// Records not landed again because storage already holds them.
pub fn records_skipped(topic: &str, records: u64) {
    metrics::counter!(SKIPPED_RECORDS, "topic" => topic.to_owned()).increment(records);
}

/// The committed-offset lag of a partition (0 once it is revoked: its next owner reports it).
pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    metrics::gauge!(CONSUMER_LAG, "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(lag as f64);
}

// ----- Rebalances -----

fn rebalance(kind: &'static str) {
    metrics::counter!(REBALANCES, "kind" => kind).increment(1);
}

/// Partitions were revoked; `committed` (what was durable and cleaned) was committed with
/// `result` (`what` = revoke).
pub fn partitions_revoked(
    partitions: &str,
    protocol: &'static str,
    lost: bool,
    owned: &str,
    committed: &[(String, i32, i64)],
    result: &KafkaResult<()>,
) {
    rebalance("revoke");
    commit(result, "revoke");
    tracing::info!(
        event = "partitions_revoked",
        partitions = %partitions,
        protocol,
        lost,
        owned = %owned,
        committed = ?committed,
        commit_error = result.as_ref().err().map(|e| e.to_string()),
    );
}

/// Partitions were assigned (eager: the whole assignment; cooperative: the ones added).
pub fn partitions_assigned(partitions: &str, protocol: &'static str, owned: &str) {
    rebalance("assign");
    tracing::info!(
        event = "partitions_assigned",
        partitions = %partitions,
        protocol,
        owned = %owned,
    );
}

/// librdkafka reported a rebalance error.
pub fn rebalance_error(error: &dyn Display) {
    rebalance("error");
    tracing::warn!(event = "rebalance_error", error = %error);
}

// ----- Commits -----

/// An offset commit and its result, by `what` (batch, timer, retry, revoke, shutdown).
pub fn commit(result: &KafkaResult<()>, what: &'static str) {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(COMMITS, "result" => outcome, "what" => what).increment(1);
}

/// An async commit (`batch`, `timer`, `retry`) of `offsets`; logged when librdkafka refused it
/// at once.
pub fn async_commit(result: &KafkaResult<()>, what: &'static str, offsets: &[(String, i32, i64)]) {
    commit(result, what);
    if let Err(e) = result {
        tracing::warn!(event = "commit_failed", what, offsets = ?offsets, error = %e);
    }
}

/// librdkafka reports the failure of a commit it made itself (ours are reported as
/// `COMMITFAIL` instead, see [`kafka_log`]).
pub fn commit_callback_failed(error: &dyn Display, offsets: &str) {
    tracing::warn!(event = "commit_failed", error = %error, offsets = %offsets);
}

/// After a batch landed, a pending clean-up (at `pending_offset`) holds the partition's commit
/// below what is durable.
pub fn commit_held_for_cleanup(
    topic: &str,
    partition: i32,
    durable: i64,
    committed: Option<i64>,
    pending_offset: i64,
    pending: usize,
) {
    metrics::counter!(COMMITS_HELD).increment(1);
    tracing::info!(
        event = "commit_held_for_cleanup",
        topic = %topic,
        partition,
        durable,
        committed,
        pending_offset,
        pending,
    );
}

// ----- Batches -----

/// A batch was cut for `reason` (count, bytes, max_wait, memory, shutdown), with its records'
/// counts by value kind (`json`, `text`, `binary`, `null`).
pub fn batch_cut(
    topic: &str,
    reason: &'static str,
    kinds: impl IntoIterator<Item = (&'static str, u64)>,
) {
    metrics::counter!(BATCHES, "topic" => topic.to_owned(), "reason" => reason).increment(1);
    for (kind, n) in kinds {
        if n > 0 {
            metrics::counter!(RECORDS, "topic" => topic.to_owned(), "kind" => kind).increment(n);
        }
    }
}

/// A revoked partition's buffers were dropped, `batches` of them (open or waiting) with
/// `reason="revoke"`: not landed, not committed, its next owner reads their records again.
pub fn partition_dropped(topic: &str, partition: i32, epoch: u64, batches: u64) {
    if batches > 0 {
        metrics::counter!(BATCHES, "topic" => topic.to_owned(), "reason" => "revoke")
            .increment(batches);
    }
    tracing::info!(event = "partition_dropped", topic = %topic, partition, epoch);
}

/// The blob an upload wrote, as [`batch_landed`] reports it.
#[derive(Debug, Clone, Copy)]
pub struct BlobWritten<'a> {
    /// Blob name.
    pub blob: &'a str,
    /// First offset.
    pub first_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// Records.
    pub records: usize,
    /// Uncompressed bytes.
    pub bytes: usize,
    /// Stored (gzip) bytes.
    pub stored_bytes: usize,
}

/// What every landed batch counts: its latency and the records storage already held.
fn batch_durable(topic: &str, skipped: usize, latency: Duration) {
    metrics::histogram!(BATCH_LATENCY_SECONDS).record(latency.as_secs_f64());
    if skipped > 0 {
        records_skipped(topic, skipped as u64);
    }
}

/// A batch (cut for `reason`) landed in a new blob, `latency` after its upload task started;
/// `skipped` of its records were already in storage.
pub fn batch_landed(
    topic: &str,
    partition: i32,
    w: BlobWritten<'_>,
    reason: &'static str,
    skipped: usize,
    latency: Duration,
) {
    batch_durable(topic, skipped, latency);
    metrics::counter!(LANDED_RECORDS, "topic" => topic.to_owned()).increment(w.records as u64);
    metrics::counter!(LANDED_BYTES, "topic" => topic.to_owned()).increment(w.bytes as u64);
    metrics::counter!(STORED_BYTES, "topic" => topic.to_owned()).increment(w.stored_bytes as u64);
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
        reason,
        skipped,
        duration_ms = latency.as_millis() as u64,
    );
}

/// Every record of a batch was found already in storage (`frontier`: the chain position past
/// them).
pub fn batch_already_landed(
    topic: &str,
    partition: i32,
    skipped: usize,
    frontier: i64,
    reason: &'static str,
    latency: Duration,
) {
    batch_durable(topic, skipped, latency);
    tracing::info!(
        event = "batch_already_landed",
        topic = %topic,
        partition,
        skipped,
        frontier,
        reason,
        duration_ms = latency.as_millis() as u64,
    );
}

/// An upload task stopped because its partition moved away.
pub fn upload_abandoned(topic: &str, partition: i32) {
    tracing::info!(event = "upload_abandoned", topic = %topic, partition, reason = "revoked");
}

/// An upload failed; it is retried in `retry_in`.
pub fn upload_failed(topic: &str, partition: i32, error: &dyn Display, retry_in: Duration) {
    metrics::counter!(ERRORS, "kind" => "upload").increment(1);
    tracing::warn!(
        event = "upload_failed",
        topic = %topic,
        partition,
        error = %error,
        retry_in_ms = retry_in.as_millis() as u64,
    );
}

/// A blob of another incarnation of the topic holds the batch's name: the partition stops.
pub fn incarnation_mismatch(
    topic: &str,
    partition: i32,
    offset: i64,
    blob: &str,
    stored: &dyn Display,
    fetched: &dyn Display,
    error: &dyn Display,
) {
    metrics::counter!(ERRORS, "kind" => "incarnation_mismatch").increment(1);
    tracing::error!(
        event = "incarnation_mismatch",
        topic = %topic,
        partition,
        offset,
        blob,
        stored_fingerprint = %stored,
        fetched_fingerprint = %fetched,
        error = %error,
    );
}

/// An upload task panicked: its partition stays "uploading" and stops, visibly.
pub fn upload_task_failed(error: &dyn Display) {
    metrics::counter!(ERRORS, "kind" => "upload_task").increment(1);
    tracing::error!(event = "upload_task_failed", error = %error);
}

// ----- Blobs -----

/// One create-only upload took `took`.
pub fn blob_uploaded(took: Duration) {
    metrics::histogram!(UPLOAD_SECONDS).record(took.as_secs_f64());
}

/// The look-up of an existing blob after a refused upload took `took`.
pub fn blob_head(took: Duration) {
    metrics::histogram!(HEAD_SECONDS).record(took.as_secs_f64());
}

/// A blob was found already landed (`how`: conflict), its first record checked (`fingerprint`:
/// same, absent).
pub fn blob_already_landed(
    topic: &str,
    partition: i32,
    first_offset: i64,
    last_offset: i64,
    blob: &str,
    how: &'static str,
    fingerprint: &'static str,
) {
    tracing::info!(
        event = "blob_already_landed",
        topic = %topic,
        partition,
        first_offset,
        last_offset,
        blob,
        how,
        fingerprint,
    );
    metrics::counter!(RECONCILIATIONS, "topic" => topic.to_owned(), "how" => how).increment(1);
}

/// The store refuses user metadata (a local folder): blobs land without it.
pub fn blob_metadata_unsupported(blob: &str) {
    tracing::warn!(event = "blob_metadata_unsupported", blob);
}

// ----- Memory and fetching -----

/// Uncompressed bytes held in memory.
pub fn buffered_bytes(bytes: usize) {
    metrics::gauge!(BUFFERED_BYTES).set(bytes as f64);
}

/// The loop stopped taking records because its buffers are full.
pub fn fetch_held() {
    metrics::counter!(HOLDS).increment(1);
}

/// Fetching was paused (`pause`) or resumed; `again` re-applies a pause to a new assignment
/// (the gauge only, no line).
pub fn fetch_pause(
    pause: bool,
    again: bool,
    buffered_bytes: usize,
    buffer_max_bytes: usize,
    cleanup_backlog: usize,
) {
    metrics::gauge!(PAUSED).set(if pause { 1.0 } else { 0.0 });
    if !again {
        tracing::info!(
            event = if pause {
                "fetch_paused"
            } else {
                "fetch_resumed"
            },
            buffered_bytes,
            buffer_max_bytes,
            cleanup_backlog,
        );
    }
}

/// Pausing (or resuming) the assignment failed.
pub fn pause_failed(pause: bool, error: &dyn Display) {
    metrics::counter!(ERRORS, "kind" => "pause").increment(1);
    tracing::warn!(event = "pause_failed", pause, error = %error);
}

/// The assignment to pause or resume could not be read.
pub fn assignment_unknown(error: &dyn Display) {
    tracing::warn!(event = "assignment_unknown", error = %error);
}

// ----- Redis clean-ups -----

/// A `Cleaning Game Records` record's task does not parse (rate-limited: once per record).
pub fn cleanup_task_unreadable(error: &dyn Display) {
    metrics::counter!(ERRORS, "kind" => "cleanup_task").increment(1);
    if let Some(suppressed) = may_log("cleanup_task_unreadable") {
        tracing::warn!(event = "cleanup_task_unreadable", error = %error, suppressed);
    }
}

/// `n` clean-ups registered on an owned partition, holding its commit.
pub fn cleanups_held(n: usize) {
    metrics::gauge!(CLEANUP_PENDING).increment(n as f64);
}

/// `n` pending clean-ups were applied, or left with their partition.
pub fn cleanups_released(n: usize) {
    metrics::gauge!(CLEANUP_PENDING).decrement(n as f64);
}

/// A clean-up was queued for the Redis task.
pub fn cleanup_queued() {
    metrics::gauge!(CLEANUP_QUEUE).increment(1.0);
}

/// The Redis task took a clean-up off its queue.
pub fn cleanup_dequeued() {
    metrics::gauge!(CLEANUP_QUEUE).decrement(1.0);
}

/// A clean-up was applied (`scope`: game when the user was the game's host, else user).
pub fn game_cleaned(game: &str, user: &str, scope: &'static str) {
    metrics::counter!(CLEANUPS, "scope" => scope).increment(1);
    tracing::debug!(event = "game_cleaned", game, user, scope);
}

/// Redis refused a clean-up for its data (retrying cannot help): counted and given up
/// (rate-limited: once per record).
pub fn cleanup_rejected(error: &dyn Display, topic: &str, partition: i32, offset: i64) {
    metrics::counter!(ERRORS, "kind" => "cleanup_rejected").increment(1);
    if let Some(suppressed) = may_log("cleanup_rejected") {
        tracing::warn!(
            event = "cleanup_rejected",
            error = %error,
            topic = %topic,
            partition,
            offset,
            suppressed,
        );
    }
}

/// A clean-up attempt failed; it is retried in `retry_in`.
pub fn cleanup_failed(
    error: &dyn Display,
    attempt: u32,
    retry_in: Duration,
    topic: &str,
    partition: i32,
    offset: i64,
) {
    metrics::counter!(CLEANUP_ERRORS).increment(1);
    tracing::warn!(
        event = "cleanup_failed",
        error = %error,
        attempt,
        retry_in_ms = retry_in.as_millis() as u64,
        topic = %topic,
        partition,
        offset,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn at_most_max_lines_per_window_then_the_next_one_reports_those_held_back() {
        let limit = RateLimited::new(2, 10 * S);
        let t0 = Instant::now();
        assert_eq!(limit.check("a", t0), Some(0));
        assert_eq!(limit.check("a", t0 + S), Some(0));
        assert_eq!(limit.check("a", t0 + 2 * S), None);
        assert_eq!(limit.check("a", t0 + 9 * S), None);
        assert_eq!(limit.check("a", t0 + 9 * S), None);
        // A new window: the first line carries the three held back, and the count starts over.
        assert_eq!(limit.check("a", t0 + 10 * S), Some(3));
        assert_eq!(limit.check("a", t0 + 11 * S), Some(0));
        assert_eq!(limit.check("a", t0 + 12 * S), None);
        assert_eq!(limit.check("a", t0 + 25 * S), Some(1));
    }

    #[test]
    fn keys_are_limited_apart() {
        let limit = RateLimited::new(1, 10 * S);
        let t0 = Instant::now();
        assert_eq!(limit.check("a", t0), Some(0));
        assert_eq!(limit.check("a", t0), None);
        // b's window opens with its own first line, a second later.
        assert_eq!(limit.check("b", t0 + S), Some(0));
        assert_eq!(limit.check("b", t0 + 2 * S), None);
        assert_eq!(limit.check("a", t0 + 10 * S), Some(1));
        assert_eq!(limit.check("b", t0 + 10 * S), None);
        assert_eq!(limit.check("b", t0 + 11 * S), Some(2));
    }

    #[test]
    fn a_window_opens_with_the_first_line_after_a_quiet_spell() {
        let limit = RateLimited::new(1, 10 * S);
        let t0 = Instant::now();
        assert_eq!(limit.check("a", t0), Some(0));
        // Long after: a new window starts at this line, not on a fixed grid.
        assert_eq!(limit.check("a", t0 + 95 * S), Some(0));
        assert_eq!(limit.check("a", t0 + 104 * S), None);
        assert_eq!(limit.check("a", t0 + 105 * S), Some(1));
    }

    #[test]
    fn zero_lines_hold_everything_back() {
        let limit = RateLimited::new(0, 10 * S);
        let t0 = Instant::now();
        assert_eq!(limit.check("a", t0), None);
        assert_eq!(limit.check("a", t0 + 20 * S), None);
    }

    #[test]
    fn the_shared_limiter_lets_the_first_lines_through_without_a_suppressed_field() {
        // A key of its own: other tests may log real events through the same limiter.
        for _ in 0..LOG_LIMIT_LINES {
            assert_eq!(may_log("telemetry_test_event"), Some(None));
        }
        assert_eq!(may_log("telemetry_test_event"), None);
    }
}

//! Metric names (Prometheus, prefix `worker_`) and their descriptions. Labels stay
//! low-cardinality: topic, partition, reason, kind.

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

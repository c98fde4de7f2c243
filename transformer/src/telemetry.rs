//! Named telemetry events: each logs structured fields and bumps a low-cardinality metric.
//!
//! Metric names (all prefixed `transformer_`):
//! - `transformer_blobs_total{trigger, outcome}`: blobs processed (`ok`) or failed (failure kind).
//! - `transformer_records_total{class}`: records by `good` / `dead` / `unreadable`.
//! - `transformer_rows_total{model}`: rows written per model.
//! - `transformer_dead_letters_total{reason}`: dead letters by reason code.
//! - `transformer_transform_seconds{trigger}`: histogram of per-blob wall time.
//! - `transformer_bytes_in_total{kind}`: `compressed` blob bytes and inflated `raw_json` bytes.
//! - `transformer_poison_total`: poison entries written by the watcher.
//! - `transformer_receipts_total`: receipts written.
//! - `transformer_watch_lag_seconds`: histogram of blob `last_modified` → processing start.
//! - `transformer_ignored_blobs_total`: non-raw names seen by the watcher.
//! - `transformer_leases_total{outcome}`: lease claims (`acquired`, `taken_over`, `busy`) and
//!   renewals (`renewed`, `lost`, `renew_failed`).
//! - `transformer_run_requests_rejected_total{reason}`: `/runs` calls refused
//!   (`missing_token`, `wrong_token`, `too_many_active`, `too_many_retained`).
//! - `transformer_runs_evicted_total{why}`: runs forgotten (`expired`, `room`).
//! - `transformer_delta_commits_total{table}`, `transformer_delta_files_total{table, action}`
//!   (`add`, `remove`), `transformer_delta_rows_total{table}`: Delta commits and what they held.
//! - `transformer_delta_commit_seconds{table}`: histogram of commit latency (write of the log
//!   entry, after the decision).
//! - `transformer_delta_conflicts_total{table}`: lost commit races (each re-read and retried).
//! - `transformer_delta_staged_blobs`: gauge of manifests waiting after the last round.
//! - `transformer_delta_rounds_total{outcome}`, `transformer_delta_round_seconds`: committer
//!   rounds.
//! - `transformer_delta_manifests_unreadable_total`: manifests that do not parse (left in place).
//! - `transformer_delta_quarantined_total`: blobs whose files delta-rs refused, set aside in
//!   `_delta_quarantine/` so that they cannot stall the committer.

// Plain values only from `process` and `ledger` (which log through here): no import loop.
use crate::transform::Counts;

/// Blobs processed.
pub const BLOBS: &str = "transformer_blobs_total";
/// Records by class.
pub const RECORDS: &str = "transformer_records_total";
/// Rows by model.
pub const ROWS: &str = "transformer_rows_total";
/// Dead letters by reason.
pub const DEAD_LETTERS: &str = "transformer_dead_letters_total";
/// Per-blob latency.
pub const TRANSFORM_SECONDS: &str = "transformer_transform_seconds";
/// Bytes read.
pub const BYTES_IN: &str = "transformer_bytes_in_total";
/// Poison entries.
pub const POISON: &str = "transformer_poison_total";
/// Receipts.
pub const RECEIPTS: &str = "transformer_receipts_total";
/// Watch lag.
pub const WATCH_LAG: &str = "transformer_watch_lag_seconds";
/// Lease claims and renewals.
pub const LEASES: &str = "transformer_leases_total";
/// Refused `/runs` calls.
pub const RUN_REQUESTS_REJECTED: &str = "transformer_run_requests_rejected_total";
/// Runs forgotten by the registry.
pub const RUNS_EVICTED: &str = "transformer_runs_evicted_total";

/// Delta commits.
pub const DELTA_COMMITS: &str = "transformer_delta_commits_total";
/// Delta files added or removed.
pub const DELTA_FILES: &str = "transformer_delta_files_total";
/// Delta rows added.
pub const DELTA_ROWS: &str = "transformer_delta_rows_total";
/// Delta commit latency.
pub const DELTA_COMMIT_SECONDS: &str = "transformer_delta_commit_seconds";
/// Lost Delta commit races.
pub const DELTA_CONFLICTS: &str = "transformer_delta_conflicts_total";
/// Manifests waiting.
pub const DELTA_STAGED: &str = "transformer_delta_staged_blobs";
/// Committer rounds.
pub const DELTA_ROUNDS: &str = "transformer_delta_rounds_total";
/// Committer round latency.
pub const DELTA_ROUND_SECONDS: &str = "transformer_delta_round_seconds";
/// Unreadable manifests.
pub const DELTA_MANIFESTS_UNREADABLE: &str = "transformer_delta_manifests_unreadable_total";

/// A Delta table did not exist and was created.
pub fn delta_table_created(table: &'static str) {
    tracing::info!(event = "delta_table_created", table);
}

/// One table's commit landed.
pub fn delta_commit(
    table: &'static str,
    version: i64,
    added: usize,
    removed: usize,
    rows: u64,
    took: std::time::Duration,
) {
    tracing::info!(
        event = "delta_commit",
        table,
        version,
        files_added = added,
        files_removed = removed,
        rows,
        commit_ms = took.as_millis() as u64,
    );
    metrics::counter!(DELTA_COMMITS, "table" => table).increment(1);
    metrics::counter!(DELTA_FILES, "table" => table, "action" => "add").increment(added as u64);
    metrics::counter!(DELTA_FILES, "table" => table, "action" => "remove")
        .increment(removed as u64);
    metrics::counter!(DELTA_ROWS, "table" => table).increment(rows);
    metrics::histogram!(DELTA_COMMIT_SECONDS, "table" => table).record(took.as_secs_f64());
}

/// Another committer took the version first; the table is re-read.
pub fn delta_conflict(table: &'static str, attempt: u32) {
    tracing::debug!(event = "delta_conflict", table, attempt);
    metrics::counter!(DELTA_CONFLICTS, "table" => table).increment(1);
}

/// A committer round finished.
pub fn delta_round(s: &crate::delta::RoundSummary, took: std::time::Duration) {
    tracing::info!(
        event = "delta_round",
        manifests = s.manifests,
        blobs = s.blobs,
        commits = s.commits,
        files_added = s.files_added,
        files_removed = s.files_removed,
        rows = s.rows_added,
        conflicts = s.conflicts,
        already_live = s.already_live,
        round_ms = took.as_millis() as u64,
    );
    metrics::counter!(DELTA_ROUNDS, "outcome" => "ok").increment(1);
    metrics::histogram!(DELTA_ROUND_SECONDS).record(took.as_secs_f64());
}

/// A committer round failed; its manifests stay for the next one.
pub fn delta_round_failed(e: &crate::delta::CommitError) {
    tracing::warn!(event = "delta_round_failed", error = %e);
    metrics::counter!(DELTA_ROUNDS, "outcome" => "failed").increment(1);
}

/// Staged stats that failed the check before the commit.
pub const DELTA_STATS_DROPPED: &str = "transformer_delta_stats_dropped_total";

/// A staged file's stats did not pass [`crate::delta::stats::check`]: it is committed without.
pub fn delta_stats_dropped(table: &'static str, path: &str, why: &str) {
    tracing::warn!(event = "delta_stats_dropped", table, path, reason = why);
    metrics::counter!(DELTA_STATS_DROPPED, "table" => table).increment(1);
}

/// Files vacuumed.
pub const DELTA_VACUUMED: &str = "transformer_delta_vacuumed_files_total";

/// Vacuum deleted (or, on a dry run, would delete) `files` of `table`.
pub fn delta_vacuumed(table: &'static str, files: usize, dry_run: bool) {
    tracing::info!(event = "delta_vacuumed", table, files, dry_run);
    if !dry_run {
        metrics::counter!(DELTA_VACUUMED, "table" => table).increment(files as u64);
    }
}

/// Compaction runs, by outcome.
pub const DELTA_COMPACTIONS: &str = "transformer_delta_compactions_total";
/// Bytes read by compaction.
pub const DELTA_COMPACTED_BYTES: &str = "transformer_delta_compacted_bytes_total";
/// Live data files per table.
pub const DELTA_TABLE_FILES: &str = "transformer_delta_table_files";
/// Live bytes per table.
pub const DELTA_TABLE_BYTES: &str = "transformer_delta_table_bytes";
/// Live files smaller than 3/4 of `COMPACT_TARGET_MB` per table.
pub const DELTA_TABLE_SMALL_FILES: &str = "transformer_delta_table_small_files";
/// Commits since the table's last checkpoint (what opening it replays as JSON).
pub const DELTA_COMMITS_SINCE_CHECKPOINT: &str = "transformer_delta_commits_since_checkpoint";

/// One partition compacted (or abandoned after a replay replaced a file it rewrote).
pub fn delta_compacted(c: &crate::delta::compact::Compacted) {
    tracing::info!(
        event = "delta_compacted",
        table = c.table,
        date = %c.date,
        outcome = ?c.outcome,
        files_removed = c.files_removed,
        files_added = c.files_added,
        bytes_read = c.bytes_read,
        bytes_written = c.bytes_written,
        rows = c.rows,
        version = c.version,
        compact_ms = c.millis,
    );
    let outcome = match c.outcome {
        crate::delta::compact::CompactOutcome::Committed => "committed",
        crate::delta::compact::CompactOutcome::Abandoned => "abandoned",
    };
    metrics::counter!(DELTA_COMPACTIONS, "table" => c.table, "outcome" => outcome).increment(1);
    if c.outcome == crate::delta::compact::CompactOutcome::Committed {
        metrics::counter!(DELTA_COMPACTED_BYTES, "table" => c.table).increment(c.bytes_read);
    }
}

/// A compaction or vacuum run on the timer failed; the next one retries.
pub fn delta_maintenance_failed(task: &'static str, error: &dyn std::fmt::Display) {
    tracing::warn!(event = "delta_maintenance_failed", task, error = %error);
    metrics::counter!(DELTA_COMPACTIONS, "table" => "*", "outcome" => "failed").increment(1);
}

/// A table's shape: live files, bytes, small files, commits since its last checkpoint.
pub fn delta_table_shape(s: &crate::delta::compact::TableShape) {
    tracing::info!(
        event = "delta_table_shape",
        table = s.table,
        version = s.version,
        files = s.files,
        bytes = s.bytes,
        small_files = s.small_files,
        commits_since_checkpoint = s.commits_since_checkpoint,
    );
    metrics::gauge!(DELTA_TABLE_FILES, "table" => s.table).set(s.files as f64);
    metrics::gauge!(DELTA_TABLE_BYTES, "table" => s.table).set(s.bytes as f64);
    metrics::gauge!(DELTA_TABLE_SMALL_FILES, "table" => s.table).set(s.small_files as f64);
    metrics::gauge!(DELTA_COMMITS_SINCE_CHECKPOINT, "table" => s.table)
        .set(s.commits_since_checkpoint as f64);
}

/// Quarantined manifests.
pub const DELTA_QUARANTINED: &str = "transformer_delta_quarantined_total";

/// delta-rs refused a blob's files; its manifest was set aside in `_delta_quarantine/`.
pub fn delta_quarantined(blob: &str, why: &str) {
    tracing::error!(event = "delta_quarantined", blob, reason = why);
    metrics::counter!(DELTA_QUARANTINED).increment(1);
}

/// Manifests waiting after a round.
pub fn delta_staged(n: usize) {
    metrics::gauge!(DELTA_STAGED).set(n as f64);
}

/// A staging manifest does not parse (left in place; an operator removes it).
pub fn delta_manifest_unreadable(path: &str) {
    tracing::error!(event = "delta_manifest_unreadable", path);
    metrics::counter!(DELTA_MANIFESTS_UNREADABLE).increment(1);
}

/// A blob was transformed and its outputs written (`etl_id`, `c`, `duration`: what
/// `process::Processed` says of it).
pub fn blob_transformed(
    trigger: &'static str,
    blob: &str,
    etl_id: &str,
    c: &Counts,
    duration: std::time::Duration,
) {
    let rows: u64 = c.rows.values().sum();
    tracing::info!(
        event = "blob_transformed",
        trigger,
        blob = %blob,
        etl_id = %etl_id,
        records = c.records,
        rows,
        dead = c.dead_letters(),
        duration_ms = duration.as_millis() as u64,
    );
    metrics::counter!(BLOBS, "trigger" => trigger, "outcome" => "ok").increment(1);
    metrics::counter!(RECORDS, "class" => "good").increment(c.good);
    metrics::counter!(RECORDS, "class" => "dead").increment(c.dead);
    metrics::counter!(RECORDS, "class" => "unreadable").increment(c.unreadable);
    for (model, n) in &c.rows {
        metrics::counter!(ROWS, "model" => *model).increment(*n);
    }
    for (reason, n) in &c.dead_by_reason {
        metrics::counter!(DEAD_LETTERS, "reason" => *reason).increment(*n);
    }
    metrics::histogram!(TRANSFORM_SECONDS, "trigger" => trigger).record(duration.as_secs_f64());
    metrics::counter!(BYTES_IN, "kind" => "compressed").increment(c.blob_bytes);
    metrics::counter!(BYTES_IN, "kind" => "raw_json").increment(c.raw_json_bytes);
}

/// A blob failed as a whole; `kind` is the error's `process::ProcessError::kind`.
pub fn blob_failed(
    trigger: &'static str,
    blob: &str,
    kind: &'static str,
    err: &dyn std::fmt::Display,
) {
    tracing::warn!(event = "blob_failed", trigger, blob, kind, error = %err);
    metrics::counter!(BLOBS, "trigger" => trigger, "outcome" => kind).increment(1);
}

/// The watcher gave up on a blob version.
pub fn blob_poisoned(blob: &str, etag: &str, attempts: u32, error: &str) {
    tracing::error!(event = "blob_poisoned", blob, etag, attempts, error);
    metrics::counter!(POISON).increment(1);
}

/// A receipt was written.
pub fn receipt_written(blob: &str, etag: &str) {
    tracing::debug!(event = "receipt_written", blob, etag);
    metrics::counter!(RECEIPTS).increment(1);
}

/// A lease claim outcome.
pub fn lease(blob: &str, outcome: &'static str) {
    tracing::debug!(event = "lease", blob, outcome);
    metrics::counter!(LEASES, "outcome" => outcome).increment(1);
}

/// A renewal found our lease taken over by another watcher (we were presumed dead): the work
/// goes on, and at worst the blob is transformed twice into identical files.
pub fn lease_lost(blob: &str, owner: &str) {
    tracing::warn!(event = "lease_lost", blob, owner);
    metrics::counter!(LEASES, "outcome" => "lost").increment(1);
}

/// A renewal failed on I/O; it is tried again at the next tick.
pub fn lease_renew_failed(blob: &str, err: &dyn std::fmt::Display) {
    tracing::warn!(event = "lease_renew_failed", blob, error = %err);
    metrics::counter!(LEASES, "outcome" => "renew_failed").increment(1);
}

/// Seconds between a blob's write and the start of its processing.
pub fn watch_lag(seconds: f64) {
    metrics::histogram!(WATCH_LAG).record(seconds.max(0.0));
}

/// A `/runs` call was refused: 401 (`missing_token`, `wrong_token`) or 429 (`too_many_active`,
/// `too_many_retained`).
pub fn run_request_rejected(reason: &'static str) {
    tracing::warn!(event = "run_request_rejected", reason);
    metrics::counter!(RUN_REQUESTS_REJECTED, "reason" => reason).increment(1);
}

/// The registry forgot a run: finished longer than `RUNS_RETENTION_SECS` ago (`expired`), or
/// the oldest finished one when `RUNS_MAX_RETAINED` runs were kept (`room`).
pub fn run_evicted(run: &str, why: &'static str) {
    tracing::debug!(event = "run_evicted", run, why);
    metrics::counter!(RUNS_EVICTED, "why" => why).increment(1);
}

/// `/runs` is served on a non-loopback address without `RUNS_TOKEN`: anyone who reaches it can
/// start replays.
pub fn runs_unauthenticated(addr: std::net::SocketAddr) {
    tracing::warn!(
        event = "runs_unauthenticated",
        %addr,
        "POST /runs is reachable beyond this host without a token; set RUNS_TOKEN"
    );
}

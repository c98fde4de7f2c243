//! Run summary: what a simulator run produced (its [`Manifest`](simulator::Manifest)) against what landed in `raw`
//! and `standard`, record for record, as two verdicts ([`Summary::ok`] and
//! [`Summary::producer_ok`]).
//!
//! The checks are scoped to each manifest partition's offset range `[min_offset, max_offset]`,
//! so they hold on containers and topics that other runs also used (`scripts/run` reuses the
//! stack's real topics and containers). Kafka offsets are contiguous, so that range is what the
//! broker holds, whether or not the producer saw every delivery confirmed.
//!
//! **Pipeline** (the dataflow's promise; `Summary::pipeline`):
//! - raw: every offset of each range is in exactly one raw line (blobs are decoded; only blobs
//!   whose offset range can touch the scope are read);
//! - every raw blob that holds scoped records has a receipt (`_receipts/{raw}.json`) and no
//!   poison entry, and its outputs are read back with the parquet crate;
//! - every scoped raw record has exactly one `buffer_meta` row; `buffer_meta` rows = records in
//!   raw, `log_meta` rows + dead letters = records in raw, `etl_meta` rows = raw blobs;
//! - the manifest's injected bad records are dead letters, each with a reason the simulator's
//!   kind maps to ([`expected_reasons`]).
//!
//! **Producer** (the simulator's manifest; `Summary::producer`): each partition's confirmed
//! deliveries = the records its range holds (a timed-out delivery report or a retry makes the
//! manifest undercount), no failed deliveries.
//!
//! The content counts (`log_meta` = good records, `lib_server_lobby` = `participant_rows`,
//! `lib_server_game` = `attack_rows`, dead letters = injected bad records) count for the pipeline
//! when the manifest confirmed every offset of its ranges, for the producer when it undercounts.
//!
//! Raw blobs are immutable (create-only), so the waiting loop ([`wait_and_summarize`]) decodes
//! each one once and keeps the result in a [`Scan`].
//!
//! # Layout
//! - `scope`: which records a summary is about ([`Scope`]: a manifest's offsets, or everything).
//! - `raw`: decoding raw blobs once ([`Scan`], [`read_raw`]) and the offsets still missing
//!   ([`raw_gaps`]).
//! - `standard`: reading the outputs back (Parquet `msg_id`s and footers, dead letters,
//!   poison entries).
//! - `manifest`: what the simulator's manifest implies ([`expected_reasons`],
//!   [`merge_manifests`]).
//! - `verdict`: the two verdicts ([`Summary`], [`summarize`], [`judge`]).
//! - `wait`: polling until the run settles ([`wait_and_summarize`]).
//! - `report`: the Markdown-ish text of a [`Summary`] (`Display`): tables, each verdict under
//!   its heading, a `VERDICT:` line naming which failed.

mod manifest;
mod raw;
mod report;
mod scope;
mod standard;
mod verdict;
mod wait;

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

pub use manifest::{expected_reasons, merge_manifests};
pub use raw::{RawBlob, Scan, raw_gaps, read_raw};
pub use scope::Scope;
pub use standard::{
    DeadLetter, Standard, parquet_msg_ids, parquet_rows, poisoned, read_standard, split_msg_id,
};
pub use verdict::{ModelRows, Summary, TopicRecords, judge, summarize};
pub use wait::wait_and_summarize;

/// Prefix of the transformer's receipts in `standard`.
pub const RECEIPTS_PREFIX: &str = "_receipts";
/// Prefix of the transformer's poison entries in `standard`.
pub const POISON_PREFIX: &str = "_poison";

/// Errors while reading the containers.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// Listing or reading a blob failed.
    #[error("{op} {path}: {source}")]
    Store {
        /// What we were doing.
        op: &'static str,
        /// The blob or prefix.
        path: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
    /// A raw blob is not gzip.
    #[error("raw blob {blob} does not gunzip: {source}")]
    Gunzip {
        /// The raw blob.
        blob: String,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file does not read.
    #[error("Parquet file {path} does not read: {source}")]
    Parquet {
        /// The Parquet blob.
        path: String,
        /// The reader's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A Parquet batch does not read.
    #[error("Parquet file {path} does not decode: {source}")]
    Arrow {
        /// The Parquet blob.
        path: String,
        /// The reader's error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A Delta table's snapshot could not be read.
    #[error(transparent)]
    Delta(#[from] transformer::delta::CommitError),
    /// A file live in a Delta snapshot is not in storage (a table that lost data).
    #[error("{path} is live in the {table} snapshot but missing from storage")]
    LiveFileMissing {
        /// The data file.
        path: String,
        /// The table.
        table: &'static str,
    },
    /// The run did not settle in time.
    #[error("timed out after {timeout:?} waiting for the pipeline: {pending}")]
    Timeout {
        /// How long we waited.
        timeout: Duration,
        /// What was still missing.
        pending: String,
    },
}

fn store_err(
    op: &'static str,
    path: impl Into<String>,
) -> impl FnOnce(object_store::Error) -> SummaryError {
    let path = path.into();
    move |source| SummaryError::Store { op, path, source }
}

async fn list(store: &dyn ObjectStore, prefix: Option<&str>) -> Result<Vec<String>, SummaryError> {
    let p = prefix.map(Path::from);
    store
        .list(p.as_ref())
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .map_err(store_err("listing", prefix.unwrap_or("/")))
}

async fn exists(store: &dyn ObjectStore, path: &str) -> Result<bool, SummaryError> {
    match store.head(&Path::from(path)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(store_err("checking", path)(e)),
    }
}

async fn get(store: &dyn ObjectStore, path: &str) -> Result<Option<Bytes>, SummaryError> {
    match store.get(&Path::from(path)).await {
        Ok(got) => got
            .bytes()
            .await
            .map(Some)
            .map_err(store_err("reading", path)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_err("reading", path)(e)),
    }
}

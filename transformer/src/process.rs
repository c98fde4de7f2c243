//! One blob end to end: read it from `raw`, transform it, overwrite its outputs in `standard`.
//!
//! Every trigger (Functions handler, watcher, backfill) goes through [`process_blob`], so they
//! all write the same bytes to the same names: a redelivery, a second watcher or a replay only
//! overwrites identical files (`PutMode::Overwrite` at deterministic names).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use model::naming::{NameError, RawBlobName};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use crate::telemetry;
use crate::transform::{Counts, TransformError, TransformOptions, transform};

/// The two containers.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Where raw blobs are read (`RAW_URL`).
    pub raw: Arc<dyn ObjectStore>,
    /// Where Parquet, dead letters, receipts, leases and poison entries go (`STANDARD_URL`).
    pub standard: Arc<dyn ObjectStore>,
}

/// Why a blob failed as a whole (the caller retries it; bad records never get here).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The name is not a raw blob name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Reading the raw blob failed (missing, unreachable, forbidden).
    #[error("reading raw blob {blob}: {source}")]
    Read {
        /// The raw blob.
        blob: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
    /// The blob could not be transformed (not gzip, …).
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// The transform task panicked or was cancelled.
    #[error("transform of {blob} did not finish: {source}")]
    Join {
        /// The raw blob.
        blob: String,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// Writing an output failed.
    #[error("writing {path} to standard: {source}")]
    Write {
        /// The output name.
        path: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
}

impl ProcessError {
    /// The metric label of the failure.
    pub fn kind(&self) -> &'static str {
        match self {
            ProcessError::Name(_) => "bad_name",
            ProcessError::Read { .. } => "read_failed",
            ProcessError::Transform(_) | ProcessError::Join { .. } => "transform_failed",
            ProcessError::Write { .. } => "write_failed",
        }
    }

    /// Storage failed, not the blob: reading it (other than "not found") or writing an output.
    /// The blob is fine, so a watcher retries it without counting towards its poison entry.
    pub fn is_storage(&self) -> bool {
        match self {
            ProcessError::Read { source, .. } => {
                !matches!(source, object_store::Error::NotFound { .. })
            }
            ProcessError::Write { .. } => true,
            ProcessError::Name(_) | ProcessError::Transform(_) | ProcessError::Join { .. } => false,
        }
    }
}

/// The result of one processed blob.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The raw blob name.
    pub blob: String,
    /// Its etl id.
    pub etl_id: String,
    /// The ETag of the version that was read.
    pub etag: Option<String>,
    /// When that version was written.
    pub last_modified: DateTime<Utc>,
    /// Rows and dead letters.
    pub counts: Counts,
    /// Names written in `standard`.
    pub outputs: Vec<String>,
    /// Wall time.
    pub duration: Duration,
}

/// Reads, transforms and writes one raw blob. `trigger` labels telemetry (`serve`, `watch`, …).
pub async fn process_blob(
    stores: &Stores,
    raw_name: &str,
    opts: TransformOptions,
    trigger: &'static str,
) -> Result<Processed, ProcessError> {
    let started = Instant::now();
    let result = run(stores, raw_name, opts, started).await;
    match &result {
        Ok(p) => telemetry::blob_transformed(trigger, p),
        Err(e) => telemetry::blob_failed(trigger, raw_name, e),
    }
    result
}

async fn run(
    stores: &Stores,
    raw_name: &str,
    opts: TransformOptions,
    started: Instant,
) -> Result<Processed, ProcessError> {
    let name = RawBlobName::parse(raw_name)?;
    let read_err = |source| ProcessError::Read {
        blob: raw_name.to_owned(),
        source,
    };
    let got = stores
        .raw
        .get(&Path::from(raw_name))
        .await
        .map_err(read_err)?;
    let meta = got.meta.clone();
    let gz = got.bytes().await.map_err(read_err)?;

    // Inflating and encoding is CPU work: keep it off the async workers.
    let owned_name = raw_name.to_owned();
    let parsed = name.clone();
    let output = tokio::task::spawn_blocking(move || transform(&parsed, &owned_name, &gz, opts))
        .await
        .map_err(|source| ProcessError::Join {
            blob: raw_name.to_owned(),
            source,
        })??;

    let mut outputs: Vec<String> = output.files.iter().map(|f| f.path.clone()).collect();
    let puts = output
        .files
        .iter()
        .map(|f| put(&stores.standard, &f.path, f.bytes.clone()));
    try_join_all(puts).await?;
    match &output.deadletter {
        Some(bytes) => {
            put(&stores.standard, &output.deadletter_path, bytes.clone()).await?;
            outputs.push(output.deadletter_path.clone());
        }
        None => {
            // A replay of a rewritten blob without dead records must not leave stale ones behind.
            match stores
                .standard
                .delete(&Path::from(output.deadletter_path.as_str()))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(ProcessError::Write {
                        path: output.deadletter_path.clone(),
                        source,
                    });
                }
            }
        }
    }
    Ok(Processed {
        blob: raw_name.to_owned(),
        etl_id: name.etl_id().to_owned(),
        etag: meta.e_tag,
        last_modified: meta.last_modified,
        counts: output.counts,
        outputs,
        duration: started.elapsed(),
    })
}

async fn put(
    store: &Arc<dyn ObjectStore>,
    path: &str,
    bytes: bytes::Bytes,
) -> Result<(), ProcessError> {
    store
        .put(&Path::from(path), PutPayload::from_bytes(bytes))
        .await
        .map(|_| ())
        .map_err(|source| ProcessError::Write {
            path: path.to_owned(),
            source,
        })
}

//! One blob end to end: read it from `raw`, transform it, overwrite its outputs in `standard`.
//!
//! Every trigger (Functions handler, watcher, backfill) goes through [`process_blob`], so they
//! all write the same bytes to the same names: a redelivery, a second watcher or a replay only
//! overwrites identical files (`PutMode::Overwrite` at deterministic names).
//!
//! Both ends stream ([`crate::body`], [`crate::upload`]): the GET body is inflated as it arrives and each output
//! is uploaded while it is written, so memory does not grow with the blob. Outputs become
//! visible only after the whole blob transformed, in a fixed order: every Parquet file, then the
//! dead-letter file (or the deletion of a stale one); the caller writes its receipt after that.
//! A blob that fails leaves its previous outputs as they were.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use model::naming::{NameError, RawBlobName};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use crate::body;
use crate::delta::Lakehouse;
use crate::delta::commit::Pending;
use crate::delta::schema::DEADLETTER_TABLE;
use crate::delta::staged::{blob_key, partition_date};
use crate::delta::stats::FileStats;
use crate::delta::{StagedBlob, StagedFile, StandardFormat, WriteId};
use crate::ledger::{self, LedgerError};
use crate::telemetry;
use crate::transform::{Counts, TransformError, TransformOptions, transform_to};
use crate::upload::{self, Upload, UploadOptions, Uploads};

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
    /// Delta mode: the staged files, for the committer.
    pub staged: Option<StagedBlob>,
    /// Wall time.
    pub duration: Duration,
}

/// Delta mode: how a transform's staged files reach the committer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// A manifest in `_delta_staging/` (a committer in another process or invocation: the
    /// Functions timer, `transformer commit`).
    Manifest,
    /// In memory ([`Processed::staged`]): the caller hands it to its own committer
    /// ([`crate::delta::Lakehouse::hand_over`]) and writes no receipt until it is committed;
    /// a crash before the commit leaves no receipt, so the blob is transformed again.
    InProcess,
}

/// Why a blob is processed: it decides, in delta mode, what happens to rows of the blob that
/// are already in the tables (see [`crate::delta::commit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A new blob, or the same blob again (redelivery, a second watcher): rows already
    /// committed stay, the new files are not committed.
    First,
    /// A replay (`backfill`, `POST /runs`, a rewritten blob): the new files replace the blob's
    /// rows in one commit per table.
    Replay,
}

impl Handoff {
    /// [`Handoff::InProcess`] for a caller with a committer of its own, else a manifest.
    pub fn to(committer: Option<&Lakehouse>) -> Handoff {
        match committer {
            Some(_) => Handoff::InProcess,
            None => Handoff::Manifest,
        }
    }
}

/// After a transform: with a committer of its own, the staged files go to it and the receipt
/// (`etag`, `owner`) follows their commit; without one, or in parquet mode (nothing staged),
/// the receipt is written now. The blob's counts come back either way.
pub async fn hand_over_or_receipt(
    standard: &dyn ObjectStore,
    committer: Option<&Lakehouse>,
    p: Processed,
    etag: String,
    owner: &str,
) -> Result<Counts, LedgerError> {
    match (committer, p.staged) {
        (Some(lakehouse), Some(blob)) => {
            lakehouse.hand_over(Pending {
                blob,
                etag,
                owner: owner.to_owned(),
                counts: p.counts.clone(),
            });
            Ok(p.counts)
        }
        _ => {
            ledger::write_receipt(standard, &p.blob, &etag, owner, &p.counts).await?;
            Ok(p.counts)
        }
    }
}

/// Reads, transforms and writes one raw blob delivered for the first time (or redelivered).
/// `trigger` labels telemetry (`serve`, `watch`, …).
pub async fn process_blob(
    stores: &Stores,
    raw_name: &str,
    opts: TransformOptions,
    trigger: &'static str,
) -> Result<Processed, ProcessError> {
    process_blob_as(stores, raw_name, opts, trigger, Delivery::First).await
}

/// Reads, transforms and writes one raw blob. In delta mode the outputs are data files and a
/// staging manifest ([`crate::delta::staged`]), committed later by [`crate::delta::Lakehouse`].
pub async fn process_blob_as(
    stores: &Stores,
    raw_name: &str,
    opts: TransformOptions,
    trigger: &'static str,
    delivery: Delivery,
) -> Result<Processed, ProcessError> {
    process_blob_to(stores, raw_name, opts, trigger, delivery, Handoff::Manifest).await
}

/// [`process_blob_as`] with the delta-mode hand-off chosen by the caller.
pub async fn process_blob_to(
    stores: &Stores,
    raw_name: &str,
    mut opts: TransformOptions,
    trigger: &'static str,
    delivery: Delivery,
    handoff: Handoff,
) -> Result<Processed, ProcessError> {
    let started = Instant::now();
    if opts.format == StandardFormat::Delta {
        opts.write_id = WriteId::new();
    }
    let result = run(stores, raw_name, opts, delivery, handoff, started).await;
    match &result {
        Ok(p) => telemetry::blob_transformed(trigger, &p.blob, &p.etl_id, &p.counts, p.duration),
        Err(e) => telemetry::blob_failed(trigger, raw_name, e.kind(), e),
    }
    result
}

async fn run(
    stores: &Stores,
    raw_name: &str,
    opts: TransformOptions,
    delivery: Delivery,
    handoff: Handoff,
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
    let (reader, feed) = body::reader(got.into_stream());
    let (mut sink, queue) = upload::upload_sink();
    let uploads = Uploads::run(stores.standard.clone(), queue, UploadOptions::default());

    // Inflating and encoding is CPU work: keep it off the async workers. The sink (and every
    // file it made) is dropped when the task ends, which ends `uploads`.
    let owned_name = raw_name.to_owned();
    let parsed = name.clone();
    let transform = tokio::task::spawn_blocking(move || {
        transform_to(&parsed, &owned_name, reader, opts, &mut sink).map(|s| {
            let mut staged: Vec<StagedFile> = s
                .files
                .iter()
                .filter_map(|w| {
                    let stats = w.stats.as_ref()?;
                    Some(staged_file(w.model.name(), &w.path, w.size, stats))
                })
                .collect();
            if let Some((size, stats)) = &s.deadletter_stats {
                staged.push(staged_file(
                    DEADLETTER_TABLE,
                    &s.deadletter_path,
                    *size,
                    stats,
                ));
            }
            let files: Vec<String> = s.files.into_iter().map(|w| w.path).collect();
            (
                files,
                s.deadletter_path,
                s.deadletter.is_some(),
                s.counts,
                staged,
            )
        })
    });
    let (fed, uploads, transformed) = tokio::join!(feed, uploads, transform);

    // The first failure in the chain names the cause: a failed upload or a cut body makes the
    // transform fail too, but it is storage that failed, not the blob.
    let mut uploads = uploads.map_err(|e| write_error(e.path, e.source))?;
    let result = match (fed, transformed) {
        (Err(source), _) => Err(read_err(source)),
        (Ok(()), Err(source)) => Err(ProcessError::Join {
            blob: raw_name.to_owned(),
            source,
        }),
        (Ok(()), Ok(result)) => result.map_err(ProcessError::from),
    };
    let (files, deadletter_path, has_deadletter, counts, staged) = match result {
        Ok(done) => done,
        Err(e) => {
            uploads.abort().await;
            return Err(e);
        }
    };

    let mut outputs = files;
    if has_deadletter {
        outputs.push(deadletter_path.clone());
    }
    let mut staged_blob = None;
    let finished = match opts.format {
        StandardFormat::Parquet => {
            finish_outputs(
                stores,
                &mut uploads,
                &outputs[..outputs.len() - usize::from(has_deadletter)],
                &deadletter_path,
                has_deadletter,
            )
            .await
        }
        StandardFormat::Delta => {
            let manifest = StagedBlob {
                blob: raw_name.to_owned(),
                key: blob_key(&name),
                etag: meta.e_tag.clone(),
                write_id: opts.write_id,
                date: partition_date(&name),
                replace: delivery == Delivery::Replay,
                staged_at: Utc::now(),
                files: staged,
            };
            let staged = stage(stores, &mut uploads, &outputs, &manifest, handoff).await;
            if staged.is_ok() && handoff == Handoff::Manifest {
                outputs.push(manifest.manifest_path().to_string());
            }
            staged_blob = Some(manifest);
            staged
        }
    };
    uploads.abort().await;
    finished?;
    Ok(Processed {
        blob: raw_name.to_owned(),
        etl_id: name.etl_id().to_owned(),
        etag: meta.e_tag,
        last_modified: meta.last_modified,
        counts,
        outputs,
        staged: staged_blob,
        duration: started.elapsed(),
    })
}

/// Makes the outputs visible: the Parquet files together, then the dead-letter file or the
/// deletion of a stale one.
async fn finish_outputs(
    stores: &Stores,
    uploads: &mut Uploads,
    files: &[String],
    deadletter_path: &str,
    has_deadletter: bool,
) -> Result<(), ProcessError> {
    finish_all(uploads, files).await?;
    if has_deadletter {
        return take(uploads, deadletter_path)?
            .finish()
            .await
            .map_err(|source| write_error(deadletter_path.to_owned(), source));
    }
    // A replay of a rewritten blob without dead records must not leave stale ones behind.
    match stores.standard.delete(&Path::from(deadletter_path)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(source) => Err(write_error(deadletter_path.to_owned(), source)),
    }
}

/// Delta mode: finishes every data file, then (with [`Handoff::Manifest`]) writes the staging
/// manifest naming them: a file is never handed to a committer before it is whole.
async fn stage(
    stores: &Stores,
    uploads: &mut Uploads,
    files: &[String],
    manifest: &StagedBlob,
    handoff: Handoff,
) -> Result<(), ProcessError> {
    finish_all(uploads, files).await?;
    if handoff == Handoff::InProcess {
        return Ok(());
    }
    let path = manifest.manifest_path();
    let body = serde_json::to_vec(manifest).expect("a manifest serializes");
    stores
        .standard
        .put(&path, PutPayload::from(body))
        .await
        .map_err(|source| write_error(path.to_string(), source))?;
    Ok(())
}

fn staged_file(table: &str, path: &str, size: u64, stats: &FileStats) -> StagedFile {
    StagedFile {
        table: table.to_owned(),
        // The path relative to the table's root.
        path: path
            .strip_prefix(table)
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or(path)
            .to_owned(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        rows: stats.rows(),
        stats: stats.to_json(),
    }
}

/// Completes the uploads of `paths` together (each becomes visible as it completes).
async fn finish_all(uploads: &mut Uploads, paths: &[String]) -> Result<(), ProcessError> {
    let parts = paths
        .iter()
        .map(|path| take(uploads, path))
        .collect::<Result<Vec<_>, _>>()?;
    try_join_all(parts.into_iter().map(|u| async move {
        let path = u.path().to_owned();
        u.finish().await.map_err(|source| write_error(path, source))
    }))
    .await?;
    Ok(())
}

/// The upload of an output the transform wrote (the sink opened it before writing to it).
fn take(uploads: &mut Uploads, path: &str) -> Result<Upload, ProcessError> {
    uploads.take(path).ok_or_else(|| {
        write_error(
            path.to_owned(),
            object_store::Error::Generic {
                store: "upload",
                source: "the transform wrote an output that was never opened".into(),
            },
        )
    })
}

fn write_error(path: String, source: object_store::Error) -> ProcessError {
    ProcessError::Write { path, source }
}

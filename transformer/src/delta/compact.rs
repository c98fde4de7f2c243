//! Compaction: a closed partition's small data files rewritten into few large ones.
//!
//! For each table and `date` partition that is closed (its day ended and its newest file was
//! committed more than `COMPACT_MIN_AGE` ago), the files we wrote that are smaller than 3/4 of the
//! target are packed, in name order, into groups of about `COMPACT_TARGET_MB`; each group of two
//! or more files becomes one file sorted for the queries analysts run ([`sort_columns`]). The
//! partition's groups are committed as one transaction of `remove`s and `add`s with
//! `dataChange = false` (an `OPTIMIZE` in the table history): every snapshot has the same rows,
//! before and after.
//!
//! A compacted file holds the rows of many blobs, so its name no longer tells the committer which
//! blobs it holds. A keys file beside the tables, `_delta_compacted/{table}/{path}.json`, written
//! before the commit, lists the `(blob key, write id)` of every blob in it. The committer reads
//! the keys files of the live compacted files in the dates of its round: a redelivered blob
//! found there is live (nothing to commit), and a replayed one is removed from the compacted
//! file by rewriting that file without its rows (`etl_id`, or `source_blob` for dead letters) in
//! the same commit that adds its new rows ([`Lakehouse::rewrite_without`]).
//!
//! Races: commits run with `max_retries(0)`. A compaction that lost the race re-reads the table:
//! if every file it rewrote is still live it commits again (the rewritten files still hold
//! exactly their rows); if one was removed meanwhile (a replay) it gives up on the partition and
//! deletes what it wrote. Files written by a compaction that never committed (a kill) are never
//! referenced: vacuum removes them, and keys files whose data file is gone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::Array;
use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::{
    SortColumn, SortOptions, concat, filter_record_batch, interleave_record_batch,
    lexsort_to_indices,
};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add, Remove};
use deltalake::protocol::DeltaOperation;
use futures::{StreamExt, TryStreamExt};
use model::naming::RawBlobName;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::commit::{
    CommitError, Lakehouse, MAX_COMMIT_ATTEMPTS, add_action, delta_err, try_commit,
};
use super::schema::{PARTITION_COLUMN, Table};
use super::staged::{WriteId, blob_key, parse_data_file};
use crate::telemetry;
use crate::upload::{Upload, UploadOptions};
use crate::writer::{Compression, ModelWriter};

/// Prefix of the keys files of compacted data files in `standard`.
pub const COMPACTED_PREFIX: &str = "_delta_compacted";

/// Rows per row group of a compacted file (fewer when one reaches 32 MiB first).
const COMPACTED_ROW_GROUP_ROWS: usize = 1 << 20;

/// Source files read at once.
const READS: usize = 8;

/// A blob's write: which transform of which blob.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobWrite {
    /// The blob key ([`super::staged::blob_key`]).
    pub key: String,
    /// The transform that wrote its rows.
    pub write_id: WriteId,
}

/// The keys file of a compacted data file: the blobs whose rows it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactedKeys {
    /// The table's folder name.
    pub table: String,
    /// The data file, relative to the table.
    pub path: String,
    /// Its blobs.
    pub blobs: Vec<BlobWrite>,
}

/// `date={date}/compacted-{write}-{n:04}.parquet`.
pub fn compacted_file(date: &str, write: WriteId, n: usize) -> String {
    format!(
        "{PARTITION_COLUMN}={date}/compacted-{}-{n:04}.parquet",
        write.to_hex()
    )
}

/// A compacted data file (by name).
pub fn is_compacted(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|f| f.starts_with("compacted-") && f.ends_with(".parquet"))
}

/// The keys file of a table's compacted data file.
pub fn keys_path(table: Table, path: &str) -> Path {
    Path::from(format!("{COMPACTED_PREFIX}/{}/{path}.json", table.name()))
}

/// The `date` partition of a data file we named (`date=yyyy-mm-dd/…`).
pub fn date_of(path: &str) -> Option<&str> {
    path.strip_prefix("date=")?.split('/').next()
}

/// The columns a compacted file of `table` is sorted by, and why: game tables are read per game
/// in time order (damage per game, a game's timeline), so rows of one game sit together and
/// Parquet statistics prune row groups by `game_token`; `log_meta` is read by time; `buffer_meta`
/// by partition and offset (lag, gaps); `etl_meta` and dead letters by blob.
pub fn sort_columns(table: Table) -> &'static [&'static str] {
    match table.name() {
        "lib_server_game" | "lib_server_lobby" => &["game_token", "timestamp"],
        "log_meta" => &["timestamp"],
        "buffer_meta" => &["topic", "partition", "offset"],
        "etl_meta" => &["etl_id"],
        _ => &["source_blob", "line"],
    }
}

/// What `compact` does.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Size of the files written (`COMPACT_TARGET_MB`); files of 3/4 of it or more are left
    /// alone.
    pub target_bytes: u64,
    /// A partition is compacted once its day ended and its newest file is older than this
    /// (`COMPACT_MIN_AGE`).
    pub min_age: Duration,
    /// Only this table.
    pub table: Option<Table>,
    /// Only this partition (`yyyy-mm-dd`), compacted now whatever its age (an operator's
    /// choice: compaction is safe on an open partition, it only rewrites files again later).
    pub partition: Option<String>,
    /// Compression of the files written.
    pub compression: Compression,
}

/// What happened to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactOutcome {
    /// The rewrite is committed.
    Committed,
    /// A file it rewrote was replaced meanwhile (a replay): nothing committed, its files deleted.
    Abandoned,
}

/// One partition's compaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compacted {
    /// The table.
    pub table: &'static str,
    /// The partition.
    pub date: String,
    /// Files rewritten.
    pub files_removed: usize,
    /// Files written.
    pub files_added: usize,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Rows rewritten.
    pub rows: u64,
    /// Committed or not.
    pub outcome: CompactOutcome,
    /// The version committed.
    pub version: Option<i64>,
    /// Time taken, ms.
    pub millis: u64,
}

/// Why a compaction (or a replay's rewrite of a compacted file) failed. What it wrote is not
/// referenced by any snapshot; vacuum removes it.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// Reading or writing a table.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// A data or keys file could not be read or written.
    #[error("{op} {path} in standard: {source}")]
    Store {
        /// What we were doing.
        op: &'static str,
        /// The file.
        path: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
    /// A data file could not be decoded or encoded.
    #[error("rewriting {path}: {message}")]
    Rewrite {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A keys file does not parse.
    #[error("keys file {path}: {source}")]
    Keys {
        /// The keys file.
        path: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
}

/// A live file of the partition being compacted.
#[derive(Debug, Clone)]
struct Source {
    path: String,
    size: i64,
    remove: Remove,
    /// When it was committed (its `add`'s modification time).
    modified: DateTime<Utc>,
}

/// A file written by a rewrite, not committed yet.
#[derive(Debug, Clone)]
pub(crate) struct Rewritten {
    pub(crate) add: Add,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

impl Lakehouse {
    /// Compacts every closed partition (of `opts.table`, or every table): see the module docs.
    pub async fn compact(&self, opts: &CompactOptions) -> Result<Vec<Compacted>, CompactError> {
        let mut out = Vec::new();
        for table in Table::ALL {
            if opts.table.is_some_and(|t| t != table) {
                continue;
            }
            let Some(mut t) = self.load(table).await? else {
                continue;
            };
            let now = Utc::now();
            let partitions = partitions(&t, table)?;
            for (date, files) in partitions {
                if opts.partition.as_ref().is_some_and(|p| *p != date) {
                    continue;
                }
                if !closed(&date, &files, opts, now) {
                    continue;
                }
                let groups = pack(&files, opts.target_bytes);
                if groups.is_empty() {
                    continue;
                }
                out.push(
                    self.compact_partition(&mut t, table, &date, groups, opts)
                        .await?,
                );
            }
        }
        Ok(out)
    }

    async fn compact_partition(
        &self,
        t: &mut DeltaTable,
        table: Table,
        date: &str,
        groups: Vec<Vec<Source>>,
        opts: &CompactOptions,
    ) -> Result<Compacted, CompactError> {
        let started = Instant::now();
        let write = WriteId::new();
        let mut done = Compacted {
            table: table.name(),
            date: date.to_owned(),
            files_removed: 0,
            files_added: 0,
            bytes_read: 0,
            bytes_written: 0,
            rows: 0,
            outcome: CompactOutcome::Committed,
            version: None,
            millis: 0,
        };
        let mut actions = Vec::new();
        let mut written = Vec::new();
        let mut sources = HashSet::new();
        for (n, group) in groups.iter().enumerate() {
            let paths: Vec<String> = group.iter().map(|s| s.path.clone()).collect();
            let dest = compacted_file(date, write, n);
            let rewritten = self
                .rewrite(
                    table,
                    date,
                    &paths,
                    &dest,
                    &HashSet::new(),
                    opts.compression,
                )
                .await;
            let rewritten = match rewritten {
                Ok(r) => r,
                Err(e) => {
                    self.delete_written(table, &written).await;
                    return Err(e);
                }
            };
            for s in group {
                let mut remove = s.remove.clone();
                remove.data_change = false;
                remove.deletion_timestamp = Some(Utc::now().timestamp_millis());
                actions.push(Action::Remove(remove));
                sources.insert(s.path.clone());
                done.files_removed += 1;
                done.bytes_read += u64::try_from(s.size).unwrap_or(0);
            }
            if let Some(mut r) = rewritten {
                r.add.data_change = false;
                done.rows += r.rows;
                done.bytes_written += r.bytes;
                done.files_added += 1;
                written.push(r.add.path.clone());
                actions.push(Action::Add(r.add));
            }
        }
        let delta = |op| delta_err(op, table);
        for attempt in 1..=MAX_COMMIT_ATTEMPTS {
            t.update_incremental(None).await.map_err(delta("reading"))?;
            let live: HashSet<String> = t
                .snapshot()
                .map_err(delta("reading"))?
                .log_data()
                .iter()
                .map(|f| f.path().into_owned())
                .collect();
            if !sources.iter().all(|p| live.contains(p)) {
                self.delete_written(table, &written).await;
                done.outcome = CompactOutcome::Abandoned;
                done.millis = started.elapsed().as_millis() as u64;
                telemetry::delta_compacted(&done);
                return Ok(done);
            }
            let operation = DeltaOperation::Optimize {
                predicate: Some(format!("{PARTITION_COLUMN} = '{date}'")),
                target_size: i64::try_from(opts.target_bytes).unwrap_or(i64::MAX),
            };
            let metadata = json!({ "compacted": date });
            let committed =
                try_commit(t, table, actions.clone(), operation, metadata, attempt).await;
            match committed {
                Ok(Some(version)) => {
                    done.version = Some(version);
                    done.millis = started.elapsed().as_millis() as u64;
                    telemetry::delta_compacted(&done);
                    return Ok(done);
                }
                Ok(None) => {}
                // Not known to be absent from the log (the commit may have landed): keep the
                // files; vacuum removes them if they are not referenced.
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommitError::Contended {
            table: table.name(),
            attempts: MAX_COMMIT_ATTEMPTS,
        }
        .into())
    }

    /// Deletes files a rewrite wrote that will not be committed, with their keys files (best
    /// effort: vacuum removes what is left).
    pub(crate) async fn delete_written(&self, table: Table, paths: &[String]) {
        for path in paths {
            for p in [
                Path::from(format!("{}/{path}", table.name())),
                keys_path(table, path),
            ] {
                if let Err(e) = self.standard().delete(&p).await {
                    tracing::debug!(event = "delta_orphan_delete_failed", path = %p, error = %e);
                }
            }
        }
    }

    /// The blobs of live data files `paths` of `table`: from their names, or from the keys files
    /// of compacted ones.
    async fn blobs_of(
        &self,
        table: Table,
        paths: &[String],
    ) -> Result<Vec<BlobWrite>, CompactError> {
        let mut blobs = Vec::new();
        for path in paths {
            if let Some((key, write_id)) = parse_data_file(path) {
                blobs.push(BlobWrite {
                    key: key.to_owned(),
                    write_id,
                });
            } else if is_compacted(path) {
                blobs.extend(
                    self.compacted_keys(table, path)
                        .await?
                        .blobs
                        .iter()
                        .cloned(),
                );
            }
        }
        blobs.sort();
        blobs.dedup();
        Ok(blobs)
    }

    /// The keys file of a compacted data file (cached: keys files never change).
    pub(crate) async fn compacted_keys(
        &self,
        table: Table,
        path: &str,
    ) -> Result<Arc<CompactedKeys>, CompactError> {
        let at = keys_path(table, path);
        if let Some(k) = self.keys_cache().get(at.as_ref()) {
            return Ok(k.clone());
        }
        let store_err = |source| CompactError::Store {
            op: "reading",
            path: at.to_string(),
            source,
        };
        let bytes = self
            .standard()
            .get(&at)
            .await
            .map_err(store_err)?
            .bytes()
            .await
            .map_err(store_err)?;
        let keys: Arc<CompactedKeys> = Arc::new(serde_json::from_slice(&bytes).map_err(
            |source| CompactError::Keys {
                path: at.to_string(),
                source,
            },
        )?);
        let mut cache = self.keys_cache();
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(at.to_string(), keys.clone());
        Ok(keys)
    }

    /// Rewrites the live data files `sources` of one partition of `table` into one file `dest`
    /// (relative to the table), without the rows of the blobs in `dropped`, sorted by
    /// [`sort_columns`]; writes its keys file; returns its `add` (`dataChange = true`), or `None`
    /// when no row is left (then nothing is written).
    pub(crate) async fn rewrite(
        &self,
        table: Table,
        date: &str,
        sources: &[String],
        dest: &str,
        dropped: &HashSet<String>,
        compression: Compression,
    ) -> Result<Option<Rewritten>, CompactError> {
        let blobs: Vec<BlobWrite> = self
            .blobs_of(table, sources)
            .await?
            .into_iter()
            .filter(|b| !dropped.contains(&b.key))
            .collect();
        let store = self.standard();
        let read: Vec<(String, Bytes)> = futures::stream::iter(sources.iter().cloned())
            .map(|p| {
                let store = store.clone();
                async move {
                    let at = Path::from(format!("{}/{p}", table.name()));
                    let got = match store.get(&at).await {
                        Ok(g) => g.bytes().await,
                        Err(e) => Err(e),
                    };
                    got.map(|b| (p, b)).map_err(|source| CompactError::Store {
                        op: "reading",
                        path: at.to_string(),
                        source,
                    })
                }
            })
            .buffered(READS)
            .try_collect()
            .await?;
        let dropped = dropped.clone();
        let dest_owned = dest.to_owned();
        let encoded = tokio::task::spawn_blocking(move || {
            sort_and_encode(table, read, &dropped, compression, &dest_owned)
        })
        .await
        .map_err(|e| CompactError::Rewrite {
            path: dest.to_owned(),
            message: format!("the rewrite task failed: {e}"),
        })??;
        let Some(encoded) = encoded else {
            return Ok(None);
        };
        let keys = CompactedKeys {
            table: table.name().to_owned(),
            path: dest.to_owned(),
            blobs,
        };
        let full = format!("{}/{dest}", table.name());
        let mut upload = Upload::new(store.clone(), &full, UploadOptions::default());
        let size = encoded.bytes.len() as u64;
        let put_err = |source| CompactError::Store {
            op: "writing",
            path: full.clone(),
            source,
        };
        let mut rest = Bytes::from(encoded.bytes);
        while !rest.is_empty() {
            let chunk = rest.split_to(rest.len().min(4 << 20));
            upload.put(chunk).await.map_err(put_err)?;
        }
        upload.finish().await.map_err(put_err)?;
        let at = keys_path(table, dest);
        store
            .put(&at, serde_json::to_vec(&keys).expect("json").into())
            .await
            .map_err(|source| CompactError::Store {
                op: "writing",
                path: at.to_string(),
                source,
            })?;
        self.keys_cache().insert(at.to_string(), Arc::new(keys));
        let add = add_action(
            dest.to_owned(),
            date,
            i64::try_from(size).unwrap_or(i64::MAX),
            Some(encoded.stats),
            Utc::now().timestamp_millis(),
        );
        Ok(Some(Rewritten {
            add,
            rows: encoded.rows,
            bytes: size,
        }))
    }
}

/// A table's shape, for the metrics and the compaction's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableShape {
    /// The table.
    pub table: &'static str,
    /// Its version.
    pub version: i64,
    /// Live data files.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Live files under 3/4 of the compaction target.
    pub small_files: usize,
    /// Versions committed since the last checkpoint (all of them when there is none).
    pub commits_since_checkpoint: i64,
}

impl Lakehouse {
    /// The shape of every existing table (files under 3/4 of `target_bytes` count as small),
    /// also set as gauges.
    pub async fn table_shapes(&self, target_bytes: u64) -> Result<Vec<TableShape>, CommitError> {
        let mut out = Vec::new();
        for table in Table::ALL {
            let Some(t) = self.load(table).await? else {
                continue;
            };
            let version = t.version().unwrap_or_default();
            let snapshot = t.snapshot().map_err(delta_err("reading", table))?;
            let (mut files, mut bytes, mut small) = (0usize, 0u64, 0usize);
            for f in snapshot.log_data().iter() {
                let size = u64::try_from(f.size()).unwrap_or(0);
                files += 1;
                bytes += size;
                small += usize::from(is_small(size, target_bytes));
            }
            let last = Path::from(format!("{}/_delta_log/_last_checkpoint", table.name()));
            let checkpoint = match self.standard().get(&last).await {
                Ok(g) => g
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v.get("version").and_then(serde_json::Value::as_i64)),
                Err(_) => None,
            };
            let shape = TableShape {
                table: table.name(),
                version,
                files,
                bytes,
                small_files: small,
                commits_since_checkpoint: version - checkpoint.unwrap_or(-1),
            };
            telemetry::delta_table_shape(&shape);
            out.push(shape);
        }
        Ok(out)
    }

    /// Deletes the keys files of `table` whose data file is gone (vacuumed, or never written).
    pub(crate) async fn delete_stale_keys(&self, table: Table) -> Result<usize, CompactError> {
        let prefix = Path::from(format!("{COMPACTED_PREFIX}/{}", table.name()));
        let listed: Vec<object_store::ObjectMeta> = self
            .standard()
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| CompactError::Store {
                op: "listing",
                path: prefix.to_string(),
                source,
            })?;
        let mut deleted = 0;
        for meta in listed {
            let Some(data) = meta
                .location
                .as_ref()
                .strip_prefix(&format!("{COMPACTED_PREFIX}/"))
                .and_then(|p| p.strip_suffix(".json"))
                .map(Path::from)
            else {
                continue;
            };
            match self.standard().head(&data).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    match self.standard().delete(&meta.location).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                        Err(source) => {
                            return Err(CompactError::Store {
                                op: "deleting",
                                path: meta.location.to_string(),
                                source,
                            });
                        }
                    }
                }
                Err(source) => {
                    return Err(CompactError::Store {
                        op: "reading",
                        path: data.to_string(),
                        source,
                    });
                }
            }
        }
        Ok(deleted)
    }
}

/// A rewritten file in memory.
struct Encoded {
    bytes: Vec<u8>,
    rows: u64,
    stats: String,
}

/// Rows per batch written to a compacted file: the sorted output is assembled chunk by chunk.
const OUTPUT_CHUNK_ROWS: usize = 64 * 1024;

/// Decodes `files`, drops the rows of the blobs in `dropped`, sorts and encodes (blocking).
///
/// Memory: the decoded rows once (each file's bytes are dropped after it is decoded), a copy of
/// the sort columns, one output chunk and the encoded file; the sorted order is assembled chunk
/// by chunk from the decoded batches (`interleave`), never as a second copy of the whole group.
fn sort_and_encode(
    table: Table,
    files: Vec<(String, Bytes)>,
    dropped: &HashSet<String>,
    compression: Compression,
    dest: &str,
) -> Result<Option<Encoded>, CompactError> {
    let err = |path: &str| {
        let path = path.to_owned();
        move |e: &dyn std::fmt::Display| CompactError::Rewrite {
            path: path.clone(),
            message: e.to_string(),
        }
    };
    let schema = table.file_schema();
    let mut batches = Vec::new();
    for (path, bytes) in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.with_batch_size(OUTPUT_CHUNK_ROWS).build())
            .map_err(|e| err(&path)(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| err(&path)(&e))?;
            let batch = if dropped.is_empty() {
                batch
            } else {
                let keep = keep_mask(table, &batch, dropped).map_err(|e| err(&path)(&e))?;
                filter_record_batch(&batch, &keep).map_err(|e| err(&path)(&e))?
            };
            if batch.num_rows() > 0 {
                // Same columns in the table's file schema (field metadata may differ).
                batches.push(
                    RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                        .map_err(|e| err(&path)(&e))?,
                );
            }
        }
    }
    if batches.is_empty() {
        return Ok(None);
    }
    let order = sorted_order(table, &batches).map_err(|e| err(dest)(&e))?;
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let mut w = ModelWriter::delta(
        table.name(),
        schema,
        Vec::new(),
        compression,
        COMPACTED_ROW_GROUP_ROWS,
    )
    .map_err(|e| err(dest)(&e))?;
    for chunk in order.chunks(OUTPUT_CHUNK_ROWS) {
        let out = interleave_record_batch(&refs, chunk).map_err(|e| err(dest)(&e))?;
        w.write(&out).map_err(|e| err(dest)(&e))?;
    }
    let rows = order.len();
    let finished = w.finish_file().map_err(|e| err(dest)(&e))?;
    let stats = finished
        .stats
        .map(|s| s.to_json())
        .unwrap_or_else(|| json!({ "numRecords": rows }).to_string());
    Ok(Some(Encoded {
        bytes: finished.sink,
        rows: rows as u64,
        stats,
    }))
}

/// The rows of `batches` in [`sort_columns`] order, as (batch, row) pairs.
fn sorted_order(
    table: Table,
    batches: &[RecordBatch],
) -> Result<Vec<(usize, usize)>, arrow::error::ArrowError> {
    let mut starts = Vec::with_capacity(batches.len());
    let mut total = 0usize;
    for b in batches {
        starts.push(total);
        total += b.num_rows();
    }
    let locate = |i: usize| {
        let batch = starts.partition_point(|s| *s <= i) - 1;
        (batch, i - starts[batch])
    };
    let mut keys = Vec::new();
    for name in sort_columns(table) {
        let Ok(col) = batches[0].schema().index_of(name) else {
            continue;
        };
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(col).as_ref()).collect();
        keys.push(SortColumn {
            values: concat(&parts)?,
            options: Some(SortOptions::default()),
        });
    }
    if keys.is_empty() {
        return Ok((0..total).map(locate).collect());
    }
    let indices = lexsort_to_indices(&keys, None)?;
    Ok(indices
        .values()
        .iter()
        .map(|i| locate(*i as usize))
        .collect())
}

/// `true` for the rows of `batch` whose blob is not in `drop`: model rows by `etl_id`, dead
/// letters by `source_blob`.
fn keep_mask(
    table: Table,
    batch: &RecordBatch,
    drop: &HashSet<String>,
) -> Result<BooleanArray, String> {
    let (column, is_name) = match table.model() {
        Some(_) => ("etl_id", false),
        None => ("source_blob", true),
    };
    let col = batch
        .column_by_name(column)
        .ok_or_else(|| format!("no {column} column"))?;
    let values = col
        .as_string_opt::<i32>()
        .ok_or_else(|| format!("{column} is not a string column"))?;
    Ok(values
        .iter()
        .map(|v| {
            let Some(v) = v else { return Some(true) };
            let key = if is_name {
                RawBlobName::parse(v).map_or_else(|_| v.to_owned(), |n| blob_key(&n))
            } else {
                v.replace('+', "-")
            };
            Some(!drop.contains(&key))
        })
        .collect())
}

/// The live files we named of each partition.
fn partitions(t: &DeltaTable, table: Table) -> Result<BTreeMap<String, Vec<Source>>, CommitError> {
    let mut out: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    let snapshot = t.snapshot().map_err(delta_err("reading", table))?;
    for f in snapshot.log_data().iter() {
        let path = f.path().into_owned();
        if parse_data_file(&path).is_none() && !is_compacted(&path) {
            continue; // not ours: its schema and blob are unknown
        }
        let Some(date) = date_of(&path).map(str::to_owned) else {
            continue;
        };
        let modified = DateTime::from_timestamp_millis(f.modification_time()).unwrap_or_default();
        out.entry(date).or_default().push(Source {
            size: f.size(),
            remove: f.remove_action(true),
            path,
            modified,
        });
    }
    Ok(out)
}

/// The day ended `min_age` ago and nothing was committed to it for `min_age`; or the operator
/// named the partition.
fn closed(date: &str, files: &[Source], opts: &CompactOptions, now: DateTime<Utc>) -> bool {
    if opts.partition.is_some() {
        return true;
    }
    let min_age = chrono::Duration::from_std(opts.min_age).unwrap_or(chrono::Duration::MAX);
    let newest = files.iter().map(|s| s.modified).max().unwrap_or_default();
    if newest + min_age > now {
        return false;
    }
    let Ok(day) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
        return false;
    };
    let end = day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc());
    end.is_some_and(|end| end + min_age <= now)
}

/// A file compaction rewrites: under 3/4 of the target.
pub fn is_small(size: u64, target: u64) -> bool {
    size < target / 4 * 3
}

/// Groups of small files ([`is_small`]) in name order, each about the target; a group of one
/// file is left out (rewriting it gains nothing).
fn pack(files: &[Source], target: u64) -> Vec<Vec<Source>> {
    let mut small: Vec<&Source> = files
        .iter()
        .filter(|s| is_small(u64::try_from(s.size).unwrap_or(0), target))
        .collect();
    small.sort_by(|a, b| a.path.cmp(&b.path));
    let mut groups: Vec<Vec<Source>> = Vec::new();
    let mut current: Vec<Source> = Vec::new();
    let mut bytes = 0u64;
    for s in small {
        let size = u64::try_from(s.size).unwrap_or(0);
        if !current.is_empty() && bytes + size > target {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(s.clone());
    }
    groups.push(current);
    groups.retain(|g| g.len() > 1);
    groups
}

/// Rewrites planned by a commit round: compacted files that hold rows of replayed blobs.
#[derive(Debug, Default)]
pub(crate) struct Rewrites {
    /// Per compacted file (relative path): its `remove` and the blob keys to drop.
    pub(crate) files: BTreeMap<String, (Remove, BTreeSet<String>)>,
}

impl Rewrites {
    /// Nothing to rewrite.
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// A cache of the rewrites made for one table's commit, reused when a lost race re-plans the
/// same rewrite.
pub(crate) type RewriteCache = HashMap<(String, BTreeSet<String>), Option<Rewritten>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str, size: i64) -> Source {
        Source {
            path: path.to_owned(),
            size,
            remove: Remove {
                path: path.to_owned(),
                data_change: true,
                deletion_timestamp: None,
                extended_file_metadata: None,
                partition_values: None,
                size: Some(size),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            },
            modified: DateTime::from_timestamp(0, 0).expect("epoch"),
        }
    }

    #[test]
    fn packs_small_files_into_groups_of_about_the_target() {
        let files: Vec<_> = (0..10)
            .map(|i| source(&format!("date=2026-01-01/f{i}.parquet"), 30))
            .chain([source("date=2026-01-01/big.parquet", 80)])
            .collect();
        let groups = pack(&files, 100);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        // 75 is "small"; 80 stays; 10 × 30 in groups of at most 100 bytes: 3+3+3, the last one
        // alone is left out.
        assert_eq!(sizes, vec![3, 3, 3]);
        assert!(
            groups
                .iter()
                .flatten()
                .all(|s| s.path != "date=2026-01-01/big.parquet")
        );
    }

    #[test]
    fn a_partition_is_closed_a_min_age_after_its_day_and_its_last_commit() {
        let mut opts = CompactOptions {
            target_bytes: 100,
            min_age: Duration::from_secs(3600),
            table: None,
            partition: None,
            compression: Compression::Zstd,
        };
        let files = vec![source("date=2026-01-01/a.parquet", 1)];
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
        assert!(!closed(
            "2026-01-01",
            &files,
            &opts,
            at("2026-01-02T00:59:59Z")
        ));
        assert!(closed(
            "2026-01-01",
            &files,
            &opts,
            at("2026-01-02T01:00:00Z")
        ));
        // Committed to 30 minutes ago: still open, an hour after the day ended.
        let mut fresh = files.clone();
        fresh[0].modified = at("2026-01-02T00:30:00Z");
        assert!(!closed(
            "2026-01-01",
            &fresh,
            &opts,
            at("2026-01-02T01:00:00Z")
        ));
        assert!(closed(
            "2026-01-01",
            &fresh,
            &opts,
            at("2026-01-02T01:30:00Z")
        ));
        // Named by the operator: compacted now.
        opts.partition = Some("2026-01-01".to_owned());
        assert!(closed(
            "2026-01-01",
            &fresh,
            &opts,
            at("2026-01-01T12:00:00Z")
        ));
    }

    #[test]
    fn compacted_names_are_not_blob_names() {
        let w = WriteId::new();
        let p = compacted_file("2026-01-01", w, 3);
        assert!(is_compacted(&p), "{p}");
        assert_eq!(parse_data_file(&p), None);
        assert_eq!(date_of(&p), Some("2026-01-01"));
        assert!(!is_compacted(
            "date=2026-01-01/lib.server.game-0-00000000000000000001.x.parquet"
        ));
    }
}

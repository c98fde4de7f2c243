//! The committer: staged blobs into the tables' logs, exactly once per blob and table.
//!
//! One round ([`Lakehouse::commit_staged`]) reads every manifest under `_delta_staging/`, keeps
//! one per blob (the newest; a replay if any of them is one), and commits to each table in
//! [`Table::ALL`] order one transaction holding, for every blob, either nothing, its `add`s, or
//! the `remove`s of its live files and its `add`s. Which of the three is decided from the live
//! files of the snapshot the commit is based on, by name ([`super::staged::parse_data_file`]):
//! - the blob's files from this very write are live → nothing (a round that died after this
//!   table's commit is being redone);
//! - other files of the blob are live → nothing for a redelivery; for a replay, remove them and
//!   add the new ones (one commit: no snapshot has the blob's rows twice or not at all);
//! - nothing of the blob is live → add.
//!
//! delta-rs would rebase an append over a concurrent append (appends never conflict for it), but
//! our decision reads the snapshot, so commits run with `max_retries(0)`: on a lost race (the
//! version exists) the table is re-read and the decision made again, up to
//! [`MAX_COMMIT_ATTEMPTS`] times. Every commit is therefore decided on the snapshot it follows.
//! Manifests are deleted only after every table committed; a round cut short anywhere is redone
//! by the next round, which finds the committed tables already holding the write.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::errors::DeltaTableError;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::logstore::{StorageConfig, default_logstore};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableConfig, TableProperty};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore};
use serde_json::json;
use tokio::sync::Mutex;
use url::Url;

use super::compact::{CompactError, CompactedKeys, RewriteCache, Rewrites, date_of, is_compacted};
use super::schema::{PARTITION_COLUMN, Table};
use super::staged::{STAGING_PREFIX, StagedBlob, WriteId, parse_data_file};
use crate::telemetry;
use crate::writer::Compression;

/// Attempts at one table's commit before the round fails (each lost race re-reads the table).
pub const MAX_COMMIT_ATTEMPTS: u32 = 100;

/// `DELTA_CHECKPOINT_INTERVAL` default: Delta's own (a Parquet checkpoint every 100 commits, so
/// opening a table replays at most 99 JSON commits after it).
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 100;

/// Manifests read at once.
const MANIFEST_READS: usize = 32;

/// Manifests read per round at most (the rest wait for the next round).
pub const MAX_BLOBS_PER_ROUND: usize = 2000;

/// Why a round failed. The manifests stay; the next round redoes it.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Listing, reading or deleting a manifest failed.
    #[error("{op} {path} in standard: {source}")]
    Store {
        /// What we were doing.
        op: &'static str,
        /// The manifest or prefix.
        path: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
    /// delta-rs failed on a table (other than a lost race).
    #[error("{op} Delta table {table}: {source}")]
    Delta {
        /// What we were doing.
        op: &'static str,
        /// The table.
        table: &'static str,
        /// delta-rs's error (boxed: it is large).
        #[source]
        source: Box<DeltaTableError>,
    },
    /// Other committers kept winning.
    #[error(
        "Delta table {table}: lost the commit race {attempts} times in a row; the next round retries"
    )]
    Contended {
        /// The table.
        table: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// A committed blob's receipt could not be written (the next round writes it again).
    #[error("writing a receipt after the commit: {0}")]
    Receipt(#[source] Box<crate::ledger::LedgerError>),
    /// A replay's rewrite of a compacted file failed (the next round retries).
    #[error("rewriting a compacted file for a replay: {0}")]
    Rewrite(#[source] Box<CompactError>),
    /// A table's schema cannot be expressed in Delta (a bug).
    #[error("schema of Delta table {table}: {source}")]
    Schema {
        /// The table.
        table: &'static str,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },
}

impl CommitError {
    /// delta-rs refused the commit for what it holds (not a lost race, not storage).
    pub fn is_refusal(&self) -> bool {
        match self {
            CommitError::Delta { source, .. } => !matches!(
                source.as_ref(),
                DeltaTableError::ObjectStore { .. } | DeltaTableError::Io { .. }
            ),
            CommitError::Schema { .. } => true,
            CommitError::Store { .. }
            | CommitError::Contended { .. }
            | CommitError::Receipt(_)
            | CommitError::Rewrite(_) => false,
        }
    }
}

/// Prefix of manifests delta-rs refused, with the reason.
pub const QUARANTINE_PREFIX: &str = "_delta_quarantine";

/// What a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RoundSummary {
    /// Manifests read.
    pub manifests: usize,
    /// Blobs they stood for.
    pub blobs: usize,
    /// Manifests that did not parse (left in place, reported).
    pub unreadable: usize,
    /// Commits made.
    pub commits: usize,
    /// Files added.
    pub files_added: usize,
    /// Files removed (replays).
    pub files_removed: usize,
    /// Rows added.
    pub rows_added: u64,
    /// Lost races, each followed by a re-read.
    pub conflicts: u32,
    /// Staged files not committed because the blob's rows were already live.
    pub already_live: usize,
    /// Blobs whose manifest delta-rs refused, set aside in `_delta_quarantine/`.
    pub quarantined: usize,
}

/// A live data file of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    /// Its name in `standard` (`{table}/date=…/….parquet`).
    pub path: String,
    /// Bytes.
    pub size: i64,
    /// Rows, from its statistics.
    pub rows: Option<u64>,
}

/// A table's snapshot: its version and live files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFiles {
    /// The version read; `None` when the table does not exist yet.
    pub version: Option<i64>,
    /// The live files.
    pub files: Vec<LiveFile>,
}

/// Commits after which the committer reads a table afresh instead of following its log: each
/// incremental update keeps the new commits' actions as Arrow batches of their own (~720
/// commits an hour per table at the default interval), so a long-running committer would grow
/// without bound; a fresh load reads the last checkpoint and at most its interval of commits
/// after it. 100 let a watcher grow ~7 MB/min for 8 minutes between reloads (BENCHMARKS, soak);
/// 25 cuts that sawtooth to a quarter for a fresh load every ~2 minutes per table.
const RELOAD_AFTER: i64 = 25;

/// A table the committer holds open, and the version it was last read afresh at.
#[derive(Debug)]
struct OpenTable {
    table: DeltaTable,
    loaded_at: i64,
}

/// A blob staged by this process and handed over in memory ([`Lakehouse::hand_over`]), with the
/// receipt to write once it is committed.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The staged files.
    pub blob: StagedBlob,
    /// The receipt's ETag (the version that was read).
    pub etag: String,
    /// The receipt's owner.
    pub owner: String,
    /// The receipt's counts.
    pub counts: crate::transform::Counts,
}

/// The Delta tables in `standard`, opened once and kept up to date.
///
/// Use it from a multi-threaded tokio runtime (the binaries' `#[tokio::main]`): on a
/// current-thread runtime delta-rs runs its reads on a background runtime of its own, whose HTTP
/// connections outlive it in the store's pool and fail the next request.
#[derive(Debug)]
pub struct Lakehouse {
    standard: Arc<dyn ObjectStore>,
    base: Url,
    tables: Mutex<HashMap<Table, OpenTable>>,
    /// One round at a time per process.
    round: Mutex<()>,
    /// Blobs handed over in memory since the last round.
    pending: std::sync::Mutex<Vec<Pending>>,
    /// Keys files of compacted data files read so far (they never change).
    keys: std::sync::Mutex<HashMap<String, Arc<CompactedKeys>>>,
    /// Compression of the files rewritten by compaction and replays.
    compression: Compression,
    /// `delta.checkpointInterval` of the tables this process creates.
    checkpoint_interval: u64,
}

impl Lakehouse {
    /// The tables under `standard_url` (the container `standard` refers to).
    pub fn new(standard: Arc<dyn ObjectStore>, standard_url: &str) -> Self {
        let base = Url::parse(&format!("{}/", standard_url.trim_end_matches('/')))
            .unwrap_or_else(|_| Url::parse("memory:///").expect("a valid URL"));
        Lakehouse {
            standard,
            base,
            tables: Mutex::new(HashMap::new()),
            round: Mutex::new(()),
            pending: std::sync::Mutex::new(Vec::new()),
            keys: std::sync::Mutex::new(HashMap::new()),
            compression: Compression::default(),
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }

    /// Tables created from now on write a checkpoint every `commits` commits
    /// (`delta.checkpointInterval`; existing tables keep theirs).
    pub fn with_checkpoint_interval(mut self, commits: u64) -> Self {
        self.checkpoint_interval = commits.max(1);
        self
    }

    /// Files rewritten by compaction and replays are compressed with `compression`.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The cache of keys files.
    pub(crate) fn keys_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CompactedKeys>>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `standard` container.
    pub fn standard(&self) -> Arc<dyn ObjectStore> {
        self.standard.clone()
    }

    pub(crate) fn log_store(&self, table: Table) -> deltalake::logstore::LogStoreRef {
        let prefixed: Arc<dyn ObjectStore> =
            Arc::new(PrefixStore::new(self.standard.clone(), table.name()));
        let location = self
            .base
            .join(&format!("{}/", table.name()))
            .unwrap_or_else(|_| self.base.clone());
        default_logstore(
            prefixed,
            self.standard.clone(),
            &location,
            &StorageConfig::default(),
        )
    }

    /// The table, created if missing (several creators at once: one wins, the others load it).
    pub async fn open(&self, table: Table) -> Result<DeltaTable, CommitError> {
        if let Some(t) = self.load(table).await? {
            return Ok(t);
        }
        let columns = table.columns().map_err(|source| CommitError::Schema {
            table: table.name(),
            source,
        })?;
        let created = CreateBuilder::new()
            .with_log_store(self.log_store(table))
            .with_table_name(table.name())
            .with_columns(columns)
            .with_partition_columns([PARTITION_COLUMN])
            .with_configuration_property(
                TableProperty::CheckpointInterval,
                Some(self.checkpoint_interval.to_string()),
            )
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(t) => {
                telemetry::delta_table_created(table.name());
                Ok(t)
            }
            Err(_) => {
                // Another creator won the race for version 0: load theirs.
                let mut t = DeltaTable::new(self.log_store(table), DeltaTableConfig::default());
                t.load().await.map_err(delta_err("loading", table))?;
                Ok(t)
            }
        }
    }

    /// The table at its latest version; `None` when it does not exist yet.
    pub(crate) async fn load(&self, table: Table) -> Result<Option<DeltaTable>, CommitError> {
        let mut t = DeltaTable::new(self.log_store(table), DeltaTableConfig::default());
        match t.load().await {
            Ok(()) => Ok(Some(t)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(delta_err("loading", table)(e)),
        }
    }

    /// The live files of `table` at its latest version (an empty list for a table not created
    /// yet), for readers: the summary, the tests.
    pub async fn live_files(&self, table: Table) -> Result<TableFiles, CommitError> {
        let Some(t) = self.load(table).await? else {
            return Ok(TableFiles::default());
        };
        let snapshot = t.snapshot().map_err(delta_err("reading", table))?;
        let files = snapshot
            .log_data()
            .iter()
            .map(|f| LiveFile {
                path: format!("{}/{}", table.name(), f.path()),
                size: f.size(),
                rows: f.num_records().map(|n| n as u64),
            })
            .collect();
        Ok(TableFiles {
            version: Some(t.version().unwrap_or_default()),
            files,
        })
    }

    /// Lists the staged manifests (at most [`MAX_BLOBS_PER_ROUND`]).
    pub async fn staged(&self) -> Result<Vec<ObjectMeta>, CommitError> {
        let mut listed = self.all_staged().await?;
        listed.truncate(MAX_BLOBS_PER_ROUND);
        Ok(listed)
    }

    /// Lists every staged manifest, in name order.
    pub(crate) async fn all_staged(&self) -> Result<Vec<ObjectMeta>, CommitError> {
        let prefix = Path::from(STAGING_PREFIX);
        let mut listed: Vec<ObjectMeta> = self
            .standard
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| CommitError::Store {
                op: "listing",
                path: STAGING_PREFIX.to_owned(),
                source,
            })?;
        listed.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(listed)
    }

    /// Hands a blob staged in memory ([`crate::process::Handoff::InProcess`]) to the next round,
    /// which commits it and then writes its receipt.
    pub fn hand_over(&self, p: Pending) {
        self.handed().push(p);
    }

    /// Blobs handed over and not committed yet.
    pub fn pending(&self) -> usize {
        self.handed().len()
    }

    /// The handed-over blobs (a panic elsewhere while holding the lock leaves a valid list).
    fn handed(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One round: commits every staged blob (manifests and blobs handed over in memory) to
    /// every table, then deletes the manifests and writes the handed-over blobs' receipts.
    /// A round that fails keeps everything for the next one.
    pub async fn commit_staged(&self) -> Result<RoundSummary, CommitError> {
        let _round = self.round.lock().await;
        let handed: Vec<Pending> = std::mem::take(&mut *self.handed());
        let result = self.round(&handed).await;
        if result.is_err() {
            self.handed().splice(0..0, handed);
        }
        result
    }

    async fn round(&self, handed: &[Pending]) -> Result<RoundSummary, CommitError> {
        let started = Instant::now();
        let mut summary = RoundSummary::default();
        let listed = self.staged().await?;
        if listed.is_empty() && handed.is_empty() {
            return Ok(summary);
        }
        let mut manifests = self.read_manifests(&listed, &mut summary).await?;
        let from_files = manifests.len();
        manifests.extend(handed.iter().map(|p| p.blob.clone()));
        summary.manifests = manifests.len();
        let mut chosen = choose(&manifests);
        summary.blobs = chosen.len();
        let mut quarantined: Vec<(String, String)> = Vec::new();
        for table in Table::ALL {
            let Err(e) = self.commit_table(table, &chosen, &mut summary).await else {
                continue;
            };
            // delta-rs refused the commit itself (not a lost race, not storage): find the blobs
            // it refuses, one commit each, and set them aside so they cannot stall the rest.
            if !e.is_refusal() || chosen.len() < 2 {
                return Err(e);
            }
            let mut refused = Vec::new();
            for key in chosen.keys().cloned().collect::<Vec<_>>() {
                let one: BTreeMap<String, Chosen<'_>> = chosen
                    .get_key_value(&key)
                    .map(|(k, c)| (k.clone(), *c))
                    .into_iter()
                    .collect();
                if let Err(e) = self.commit_table(table, &one, &mut summary).await {
                    if !e.is_refusal() {
                        return Err(e);
                    }
                    refused.push((key, e.to_string()));
                }
            }
            if refused.len() == chosen.len() {
                return Err(e);
            }
            for (key, why) in refused {
                chosen.remove(&key);
                quarantined.push((key, why));
            }
        }
        for (key, why) in &quarantined {
            for m in manifests.iter().filter(|m| &m.key == key) {
                self.quarantine(m, why).await?;
            }
        }
        summary.quarantined = quarantined.len();
        let manifests = &manifests[..from_files];
        // One request each: Azurite hung on Blob Batch deletes of a few hundred manifests
        // (object_store's `delete_stream`), so no batching until it is measured on Azure.
        let store = self.standard.clone();
        futures::stream::iter(manifests.iter().map(StagedBlob::manifest_path))
            .map(move |p| {
                let store = store.clone();
                async move {
                    match store.delete(&p).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(source) => Err(CommitError::Store {
                            op: "deleting",
                            path: p.to_string(),
                            source,
                        }),
                    }
                }
            })
            .buffer_unordered(MANIFEST_READS)
            .try_collect::<Vec<()>>()
            .await?;
        // Receipts of the blobs handed over, now that they are in every table.
        let store = self.standard.clone();
        let receipts: Vec<Pending> = handed.to_vec();
        futures::stream::iter(receipts)
            .map(move |p| {
                let store = store.clone();
                async move {
                    crate::ledger::write_receipt(
                        store.as_ref(),
                        &p.blob.blob,
                        &p.etag,
                        &p.owner,
                        &p.counts,
                    )
                    .await
                }
            })
            .buffer_unordered(MANIFEST_READS)
            .try_collect::<Vec<()>>()
            .await
            .map_err(|e| CommitError::Receipt(Box::new(e)))?;
        telemetry::delta_round(&summary, started.elapsed());
        telemetry::delta_staged(self.pending());
        Ok(summary)
    }

    /// Copies a manifest delta-rs refused to `_delta_quarantine/` with the reason (its original
    /// is deleted with the round's): an operator fixes and re-stages it, or replays the blob.
    async fn quarantine(&self, m: &StagedBlob, why: &str) -> Result<(), CommitError> {
        let path = Path::from(format!(
            "{QUARANTINE_PREFIX}/{}",
            m.manifest_path().filename().unwrap_or_default()
        ));
        let body = serde_json::json!({ "manifest": m, "reason": why });
        telemetry::delta_quarantined(&m.blob, why);
        self.standard
            .put(&path, serde_json::to_vec(&body).expect("json").into())
            .await
            .map(|_| ())
            .map_err(|source| CommitError::Store {
                op: "writing",
                path: path.to_string(),
                source,
            })
    }

    /// Reads the manifests `listed`; one gone since the listing was committed by another
    /// round and is skipped, one that does not parse is counted in `summary.unreadable`.
    pub(crate) async fn read_manifests(
        &self,
        listed: &[ObjectMeta],
        summary: &mut RoundSummary,
    ) -> Result<Vec<StagedBlob>, CommitError> {
        let store = self.standard.clone();
        let paths: Vec<Path> = listed.iter().map(|m| m.location.clone()).collect();
        let read: Vec<(Path, Result<bytes::Bytes, object_store::Error>)> =
            futures::stream::iter(paths)
                .map(move |p| {
                    let store = store.clone();
                    async move {
                        let got = match store.get(&p).await {
                            Ok(g) => g.bytes().await,
                            Err(e) => Err(e),
                        };
                        (p, got)
                    }
                })
                .buffer_unordered(MANIFEST_READS)
                .collect()
                .await;
        let mut manifests = Vec::with_capacity(read.len());
        for (path, got) in read {
            let bytes = match got {
                Ok(b) => b,
                // Committed and deleted by another round since the listing.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(source) => {
                    return Err(CommitError::Store {
                        op: "reading",
                        path: path.to_string(),
                        source,
                    });
                }
            };
            match serde_json::from_slice::<StagedBlob>(&bytes) {
                Ok(m) if m.manifest_path() == path => manifests.push(m),
                Ok(_) | Err(_) => {
                    summary.unreadable += 1;
                    telemetry::delta_manifest_unreadable(path.as_ref());
                }
            }
        }
        Ok(manifests)
    }

    async fn commit_table(
        &self,
        table: Table,
        chosen: &BTreeMap<String, Chosen<'_>>,
        summary: &mut RoundSummary,
    ) -> Result<(), CommitError> {
        let mut tables = self.tables.lock().await;
        let mut open = match tables.remove(&table) {
            // Read afresh (the last checkpoint and what follows) every RELOAD_AFTER commits.
            Some(o) if o.table.version().unwrap_or_default() - o.loaded_at < RELOAD_AFTER => o,
            _ => {
                let table_now = self.open(table).await?;
                OpenTable {
                    loaded_at: table_now.version().unwrap_or_default(),
                    table: table_now,
                }
            }
        };
        let result = self
            .commit_table_with(&mut open.table, table, chosen, summary)
            .await;
        tables.insert(table, open);
        result
    }

    async fn commit_table_with(
        &self,
        t: &mut DeltaTable,
        table: Table,
        chosen: &BTreeMap<String, Chosen<'_>>,
        summary: &mut RoundSummary,
    ) -> Result<(), CommitError> {
        let delta = |op| delta_err(op, table);
        let dates: HashSet<&str> = chosen.values().map(|c| c.blob.date.as_str()).collect();
        let mut rewritten = RewriteCache::new();
        for attempt in 1..=MAX_COMMIT_ATTEMPTS {
            t.update_incremental(None).await.map_err(delta("reading"))?;
            let compacted = self.live_compacted(t, table, &dates).await?;
            let mut plan = plan(t, table, chosen, &compacted).map_err(delta("reading"))?;
            if !plan.rewrites.is_empty() {
                self.rewrite_for_replays(table, &mut plan, &mut rewritten)
                    .await?;
            }
            if plan.actions.is_empty() {
                summary.already_live += plan.already_live;
                return Ok(());
            }
            let started = Instant::now();
            let operation = DeltaOperation::Write {
                mode: if plan.removed > 0 {
                    SaveMode::Overwrite
                } else {
                    SaveMode::Append
                },
                partition_by: Some(vec![PARTITION_COLUMN.to_owned()]),
                predicate: None,
            };
            let metadata = json!({ "blobs": plan.blobs });
            match try_commit(t, table, plan.actions, operation, metadata, attempt).await? {
                Some(version) => {
                    summary.commits += 1;
                    summary.files_added += plan.added;
                    summary.files_removed += plan.removed;
                    summary.rows_added += plan.rows;
                    summary.already_live += plan.already_live;
                    telemetry::delta_commit(
                        table.name(),
                        version,
                        plan.added,
                        plan.removed,
                        plan.rows,
                        started.elapsed(),
                    );
                    return Ok(());
                }
                None => summary.conflicts += 1,
            }
        }
        Err(CommitError::Contended {
            table: table.name(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }
}

/// One attempt at committing `actions` to `t`, decided on the snapshot `t` holds: with
/// `max_retries(0)`, so a lost race (the version exists) is never rebased by delta-rs. Returns the
/// version written, or `None` after a lost race (reported, and paused for a jitter growing with
/// `attempt`): the caller re-reads the table and decides again.
pub(crate) async fn try_commit(
    t: &DeltaTable,
    table: Table,
    actions: Vec<Action>,
    operation: DeltaOperation,
    mut metadata: serde_json::Value,
    attempt: u32,
) -> Result<Option<i64>, CommitError> {
    let snapshot = t.snapshot().map_err(delta_err("reading", table))?;
    metadata["writer"] = json!("superhero-dataflow transformer");
    let props = CommitProperties::default()
        .with_max_retries(0)
        .with_metadata([("dataflow".to_owned(), metadata)]);
    let committed = CommitBuilder::from(props)
        .with_actions(actions)
        .build(Some(snapshot), t.log_store(), operation)
        .await;
    match committed {
        Ok(done) => Ok(Some(done.version())),
        Err(e) if is_lost_race(&e) => {
            telemetry::delta_conflict(table.name(), attempt);
            tokio::time::sleep(rand_jitter(attempt)).await;
            Ok(None)
        }
        Err(e) => Err(delta_err("committing to", table)(e)),
    }
}

/// The `add` of a data file we wrote, in partition `date`, committed at `now` (ms).
pub(crate) fn add_action(
    path: String,
    date: &str,
    size: i64,
    stats: Option<String>,
    now: i64,
) -> Add {
    Add {
        path,
        partition_values: [(PARTITION_COLUMN.to_owned(), Some(date.to_owned()))]
            .into_iter()
            .collect(),
        size,
        modification_time: now,
        data_change: true,
        stats,
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    }
}

/// Maps a delta-rs error on `table` while doing `op` to [`CommitError::Delta`].
pub(crate) fn delta_err(
    op: &'static str,
    table: Table,
) -> impl FnOnce(DeltaTableError) -> CommitError {
    move |source| CommitError::Delta {
        op,
        table: table.name(),
        source: Box::new(source),
    }
}

/// Another writer took the version we meant to write.
fn is_lost_race(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_)
                    | TransactionError::CommitConflict(_)
                    | TransactionError::VersionAlreadyExists(_),
            }
    )
}

/// A random pause before re-reading a table after a lost race, growing with the attempts.
fn rand_jitter(attempt: u32) -> Duration {
    let cap = 10u64 * u64::from(attempt.min(20));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Duration::from_millis(u64::from(nanos) % cap.max(1))
}

/// The manifest acted on for a blob.
#[derive(Debug, Clone, Copy)]
struct Chosen<'a> {
    blob: &'a StagedBlob,
    replace: bool,
}

/// One manifest per blob: the newest (by time, then write id); a replay if any was one.
fn choose(manifests: &[StagedBlob]) -> BTreeMap<String, Chosen<'_>> {
    let mut chosen: BTreeMap<String, Chosen<'_>> = BTreeMap::new();
    for m in manifests {
        match chosen.get_mut(&m.key) {
            None => {
                chosen.insert(
                    m.key.clone(),
                    Chosen {
                        blob: m,
                        replace: m.replace,
                    },
                );
            }
            Some(c) => {
                let replace = c.replace || m.replace;
                if (m.staged_at, &m.write_id) > (c.blob.staged_at, &c.blob.write_id) {
                    c.blob = m;
                }
                c.replace = replace;
            }
        }
    }
    chosen
}

/// The actions of one table's commit.
#[derive(Debug, Default)]
struct Plan {
    actions: Vec<Action>,
    blobs: usize,
    added: usize,
    removed: usize,
    rows: u64,
    already_live: usize,
    /// Compacted files holding rows of replayed blobs: rewritten without them, in this commit.
    rewrites: Rewrites,
}

/// Where a blob's live rows are.
#[derive(Debug)]
enum Holder {
    /// In a file of its own (named after it).
    Own(Remove),
    /// Among other blobs' rows in a compacted file.
    Compacted(String),
}

/// The live compacted files of `t` in `dates`, with their keys files.
type LiveCompacted = Vec<(Remove, Arc<CompactedKeys>)>;

impl Lakehouse {
    /// The live compacted files of `table` in the partitions `dates` and their keys files.
    async fn live_compacted(
        &self,
        t: &DeltaTable,
        table: Table,
        dates: &HashSet<&str>,
    ) -> Result<LiveCompacted, CommitError> {
        let files: Vec<Remove> = t
            .snapshot()
            .map_err(delta_err("reading", table))?
            .log_data()
            .iter()
            .filter(|f| {
                let p = f.path();
                is_compacted(&p) && date_of(&p).is_some_and(|d| dates.contains(d))
            })
            .map(|f| f.remove_action(true))
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for remove in files {
            let keys = self
                .compacted_keys(table, &remove.path)
                .await
                .map_err(|e| CommitError::Rewrite(Box::new(e)))?;
            out.push((remove, keys));
        }
        Ok(out)
    }

    /// Rewrites the compacted files of `plan.rewrites` without the replayed blobs' rows (reusing
    /// rewrites made for an earlier attempt) and adds their `remove`s and `add`s to the plan.
    async fn rewrite_for_replays(
        &self,
        table: Table,
        plan: &mut Plan,
        cache: &mut RewriteCache,
    ) -> Result<(), CommitError> {
        let now = chrono::Utc::now().timestamp_millis();
        for (path, (remove, dropped)) in std::mem::take(&mut plan.rewrites.files) {
            let cache_key = (path.clone(), dropped.clone());
            if !cache.contains_key(&cache_key) {
                let date = date_of(&path).unwrap_or_default().to_owned();
                let dest = super::compact::compacted_file(&date, WriteId::new(), 0);
                let drop_set: HashSet<String> = dropped.iter().cloned().collect();
                let rewritten = self
                    .rewrite(
                        table,
                        &date,
                        std::slice::from_ref(&path),
                        &dest,
                        &drop_set,
                        self.compression,
                    )
                    .await
                    .map_err(|e| CommitError::Rewrite(Box::new(e)))?;
                cache.insert(cache_key.clone(), rewritten);
            }
            let mut remove = remove;
            remove.deletion_timestamp = Some(now);
            plan.actions.push(Action::Remove(remove));
            plan.removed += 1;
            if let Some(r) = cache.get(&cache_key).and_then(Option::as_ref) {
                plan.actions.push(Action::Add(r.add.clone()));
                plan.added += 1;
            }
        }
        Ok(())
    }
}

fn plan(
    t: &DeltaTable,
    table: Table,
    chosen: &BTreeMap<String, Chosen<'_>>,
    compacted: &LiveCompacted,
) -> Result<Plan, DeltaTableError> {
    // The live rows of the blobs in this round, by blob key.
    let mut live: HashMap<String, Vec<(WriteId, Holder)>> = HashMap::new();
    for f in t.snapshot()?.log_data().iter() {
        let path = f.path();
        if let Some((key, write)) = parse_data_file(&path)
            && chosen.contains_key(key)
        {
            live.entry(key.to_owned())
                .or_default()
                .push((write, Holder::Own(f.remove_action(true))));
        }
    }
    let mut compacted_removes: HashMap<&str, &Remove> = HashMap::new();
    for (remove, keys) in compacted {
        compacted_removes.insert(remove.path.as_str(), remove);
        for b in &keys.blobs {
            if chosen.contains_key(&b.key) {
                live.entry(b.key.clone())
                    .or_default()
                    .push((b.write_id, Holder::Compacted(remove.path.clone())));
            }
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut plan = Plan::default();
    for (key, c) in chosen {
        let live = live.remove(key).unwrap_or_default();
        if live.iter().any(|(w, _)| *w == c.blob.write_id) {
            continue; // this write is in already
        }
        let file = c.blob.file(table);
        if !live.is_empty() {
            if !c.replace {
                plan.already_live += usize::from(file.is_some());
                continue;
            }
            for (_, holder) in live {
                match holder {
                    Holder::Own(mut remove) => {
                        remove.deletion_timestamp = Some(now);
                        plan.actions.push(Action::Remove(remove));
                        plan.removed += 1;
                    }
                    Holder::Compacted(path) => {
                        let Some(remove) = compacted_removes.get(path.as_str()) else {
                            continue;
                        };
                        plan.rewrites
                            .files
                            .entry(path)
                            .or_insert_with(|| ((*remove).clone(), BTreeSet::new()))
                            .1
                            .insert(key.clone());
                    }
                }
            }
        }
        if let Some(f) = file {
            let stats = match super::stats::check(&f.stats, &table.file_schema()) {
                Ok(()) => Some(f.stats.clone()),
                Err(why) => {
                    telemetry::delta_stats_dropped(table.name(), &f.path, &why);
                    None
                }
            };
            plan.actions.push(Action::Add(add_action(
                f.path.clone(),
                &c.blob.date,
                f.size,
                stats,
                now,
            )));
            plan.added += 1;
            plan.rows += f.rows;
        }
        plan.blobs += 1;
    }
    Ok(plan)
}

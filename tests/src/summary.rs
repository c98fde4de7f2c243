//! Run summary: what a simulator run produced (its [`Manifest`]) against what landed in `raw`
//! and `standard`, record for record.
//!
//! The checks are scoped to the manifest's offsets, so they hold on containers and topics that
//! other runs also used (`scripts/run` reuses the stack's real topics and containers):
//!
//! - raw: every offset in each manifest partition's `[min_offset, max_offset]` is in exactly one
//!   raw line (blobs are decoded; only blobs whose offset range can touch the scope are read);
//! - every raw blob that holds scoped records has a receipt (`_receipts/{raw}.json`) and no
//!   poison entry, and its outputs are read back with the parquet crate;
//! - `buffer_meta` has each scoped `msg_id` exactly once; `log_meta` rows = good records;
//!   `lib_server_lobby` rows = `participant_rows`; `lib_server_game` rows = `attack_rows`;
//!   `etl_meta` rows = raw blobs; dead letters = injected bad records, each with a reason the
//!   simulator's kind maps to ([`expected_reasons`]).
//!
//! Raw blobs are immutable (create-only), so the waiting loop ([`wait_and_summarize`]) decodes
//! each one once and keeps the result in a [`Scan`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, StringArray};
use bytes::Bytes;
use futures::TryStreamExt;
use model::naming::RawBlobName;
use model::raw::RawLine;
use model::schema::LogModel;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;
use simulator::Manifest;

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

/// Which records a summary is about: per (topic, partition) an inclusive offset range.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `None`: every record of every raw blob.
    ranges: Option<BTreeMap<(String, i32), (i64, i64)>>,
}

impl Scope {
    /// Every record in the containers.
    pub fn everything() -> Self {
        Scope { ranges: None }
    }

    /// The records a manifest says the broker confirmed.
    pub fn of(manifest: &Manifest) -> Self {
        let ranges = manifest
            .topics
            .iter()
            .flat_map(|(t, parts)| {
                parts
                    .iter()
                    .map(move |(p, s)| ((t.clone(), *p), (s.min_offset, s.max_offset)))
            })
            .collect();
        Scope {
            ranges: Some(ranges),
        }
    }

    /// Whether a record is in scope.
    pub fn contains(&self, topic: &str, partition: i32, offset: i64) -> bool {
        match &self.ranges {
            None => true,
            Some(r) => r
                .get(&(topic.to_owned(), partition))
                .is_some_and(|(lo, hi)| (*lo..=*hi).contains(&offset)),
        }
    }

    fn range(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        match &self.ranges {
            None => Some((i64::MIN, i64::MAX)),
            Some(r) => r.get(&(topic.to_owned(), partition)).copied(),
        }
    }

    fn topics(&self) -> Option<BTreeSet<String>> {
        self.ranges
            .as_ref()
            .map(|r| r.keys().map(|(t, _)| t.clone()).collect())
    }
}

/// What one raw blob holds.
#[derive(Debug, Clone)]
pub struct RawBlob {
    /// Name in the raw container.
    pub name: String,
    /// The parsed name.
    pub parsed: RawBlobName,
    /// Offsets of its lines (all of them, in line order).
    pub offsets: Vec<i64>,
    /// Lines that did not decode as raw lines.
    pub unreadable: u64,
}

/// One dead letter as the transformer writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct DeadLetter {
    /// `topic+partition+offset`, `None` for an undecodable raw line.
    pub msg_id: Option<String>,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: Option<i32>,
    /// Offset.
    pub offset: Option<i64>,
    /// Reason code.
    pub reason: String,
}

/// What was read from `standard` for the raw blobs in scope.
#[derive(Debug, Clone, Default)]
pub struct Standard {
    /// Scoped rows per model (`etl_meta`: one per raw blob in scope).
    pub rows: BTreeMap<&'static str, u64>,
    /// How often each scoped `msg_id` appears in `buffer_meta`.
    pub buffer_msg_ids: HashMap<String, u32>,
    /// Scoped dead letters.
    pub dead_letters: Vec<DeadLetter>,
}

/// Incremental view of the containers (raw blobs are decoded once).
#[derive(Debug, Default)]
pub struct Scan {
    raw: BTreeMap<String, RawBlob>,
    receipts: BTreeSet<String>,
    /// Raw names that were listed but not decoded because they cannot touch the scope.
    skipped: u64,
}

impl Scan {
    /// Raw blobs read so far that hold scoped records.
    pub fn blobs_in<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a RawBlob> + 'a {
        self.raw.values().filter(move |b| {
            b.offsets
                .iter()
                .any(|o| scope.contains(&b.parsed.topic, b.parsed.partition, *o))
        })
    }

    /// Lists raw, decodes new blobs that can touch the scope, and looks for their receipts.
    pub async fn refresh(
        &mut self,
        raw: &dyn ObjectStore,
        standard: &dyn ObjectStore,
        scope: &Scope,
    ) -> Result<(), SummaryError> {
        let names = match scope.topics() {
            None => list(raw, None).await?,
            Some(topics) => {
                let mut all = Vec::new();
                for t in topics {
                    all.extend(list(raw, Some(&format!("{t}/"))).await?);
                }
                all
            }
        };
        // Per partition, blobs sorted by first offset: a blob covers [first, next first - 1], so
        // only those that can overlap the scoped range need reading.
        let mut parts: BTreeMap<(String, i32), Vec<Listed>> = BTreeMap::new();
        for n in names {
            if let Ok(p) = RawBlobName::parse(&n) {
                parts
                    .entry((p.topic.clone(), p.partition))
                    .or_default()
                    .push((p.first_offset, n, p));
            }
        }
        self.skipped = 0;
        for ((topic, partition), mut blobs) in parts {
            let Some((lo, hi)) = scope.range(&topic, partition) else {
                self.skipped += blobs.len() as u64;
                continue;
            };
            blobs.sort_by_key(|b| b.0);
            let nexts: Vec<Option<i64>> = blobs
                .iter()
                .skip(1)
                .map(|b| Some(b.0))
                .chain([None])
                .collect();
            for ((first, name, parsed), next) in blobs.into_iter().zip(nexts) {
                let touches = first <= hi && next.is_none_or(|n| n > lo);
                if !touches {
                    self.skipped += 1;
                    continue;
                }
                if let std::collections::btree_map::Entry::Vacant(slot) = self.raw.entry(name) {
                    let blob = read_raw(raw, slot.key(), parsed).await?;
                    slot.insert(blob);
                }
            }
        }
        let pending: Vec<String> = self
            .blobs_in(scope)
            .filter(|b| !self.receipts.contains(&b.name))
            .map(|b| b.name.clone())
            .collect();
        for name in pending {
            if exists(standard, &format!("{RECEIPTS_PREFIX}/{name}.json")).await? {
                self.receipts.insert(name);
            }
        }
        Ok(())
    }
}

/// A listed raw blob: first offset, name, parsed name.
type Listed = (i64, String, RawBlobName);

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

/// Reads and decodes one raw blob.
pub async fn read_raw(
    raw: &dyn ObjectStore,
    name: &str,
    parsed: RawBlobName,
) -> Result<RawBlob, SummaryError> {
    let gz = get(raw, name).await?.unwrap_or_default();
    let gunzip = |source| SummaryError::Gunzip {
        blob: name.to_owned(),
        source,
    };
    let mut reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(&gz[..]));
    let mut blob = RawBlob {
        name: name.to_owned(),
        parsed,
        offsets: Vec::new(),
        unreadable: 0,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(gunzip)? == 0 {
            break;
        }
        let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
        match RawLine::decode(bytes) {
            Ok(l) => blob.offsets.push(l.offset),
            Err(_) => blob.unreadable += 1,
        }
    }
    Ok(blob)
}

/// Scoped `msg_id`s of one Parquet file (`None` when the file does not exist).
pub async fn parquet_msg_ids(
    store: &dyn ObjectStore,
    path: &str,
) -> Result<Option<Vec<String>>, SummaryError> {
    let Some(bytes) = get(store, path).await? else {
        return Ok(None);
    };
    let perr = |source| SummaryError::Parquet {
        path: path.to_owned(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(perr)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["msg_id"]);
    let reader = builder.with_projection(mask).build().map_err(perr)?;
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| SummaryError::Arrow {
            path: path.to_owned(),
            source,
        })?;
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| SummaryError::Arrow {
                path: path.to_owned(),
                source: arrow::error::ArrowError::SchemaError("msg_id is not Utf8".into()),
            })?;
        ids.extend(
            (0..col.len())
                .filter(|i| col.is_valid(*i))
                .map(|i| col.value(i).to_owned()),
        );
    }
    Ok(Some(ids))
}

/// Rows of a Parquet file from its footer (`None` when the file does not exist).
pub async fn parquet_rows(
    store: &dyn ObjectStore,
    path: &str,
) -> Result<Option<u64>, SummaryError> {
    let Some(bytes) = get(store, path).await? else {
        return Ok(None);
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|source| {
        SummaryError::Parquet {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(Some(
        builder.metadata().file_metadata().num_rows().max(0) as u64
    ))
}

/// `topic+partition+offset` back into its parts (topics may contain `+`; the last two fields are numbers).
pub fn split_msg_id(id: &str) -> Option<(&str, i32, i64)> {
    let mut it = id.rsplitn(3, '+');
    let offset = it.next()?.parse().ok()?;
    let partition = it.next()?.parse().ok()?;
    Some((it.next()?, partition, offset))
}

/// Reads the outputs of `blobs` from `standard`, keeping only scoped rows.
pub async fn read_standard<'a>(
    standard: &dyn ObjectStore,
    blobs: impl Iterator<Item = &'a RawBlob>,
    scope: &Scope,
) -> Result<Standard, SummaryError> {
    let mut out = Standard::default();
    for m in LogModel::ALL {
        out.rows.insert(m.name(), 0);
    }
    let in_scope = |id: &str| split_msg_id(id).is_some_and(|(t, p, o)| scope.contains(t, p, o));
    for blob in blobs {
        for m in LogModel::ALL {
            let path = blob.parsed.parquet_name(m.name());
            if m == LogModel::EtlMeta {
                let n = parquet_rows(standard, &path).await?.unwrap_or(0);
                *out.rows.entry(m.name()).or_default() += n;
                continue;
            }
            let Some(ids) = parquet_msg_ids(standard, &path).await? else {
                continue;
            };
            for id in ids.into_iter().filter(|id| in_scope(id)) {
                *out.rows.entry(m.name()).or_default() += 1;
                if m == LogModel::BufferMeta {
                    *out.buffer_msg_ids.entry(id).or_default() += 1;
                }
            }
        }
        if let Some(text) = get(standard, &blob.parsed.deadletter_name()).await? {
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let Ok(d) = serde_json::from_slice::<DeadLetter>(line) {
                    let scoped = match (d.partition, d.offset) {
                        (Some(p), Some(o)) => scope.contains(&d.topic, p, o),
                        _ => true,
                    };
                    if scoped {
                        out.dead_letters.push(d);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Raw names (relative to `raw`) with a poison entry in `standard`.
pub async fn poisoned(standard: &dyn ObjectStore) -> Result<Vec<String>, SummaryError> {
    let names = list(standard, Some(POISON_PREFIX)).await?;
    Ok(names
        .into_iter()
        .filter_map(|n| {
            n.strip_prefix(&format!("{POISON_PREFIX}/"))
                .and_then(|r| r.strip_suffix(".json"))
                .map(str::to_owned)
        })
        .collect())
}

/// The transformer reason codes a simulator bad-record kind may legitimately produce.
///
/// `binary` is random bytes after a NUL: not UTF-8 in almost every draw, but a draw that happens
/// to be UTF-8 is a JSON syntax error instead. `empty_value` is a zero-length text, which the
/// transformer calls `invalid_json`.
pub fn expected_reasons(kind: &str) -> &'static [&'static str] {
    match kind {
        "truncated_json" => &["invalid_json"],
        "wrong_type" => &["wrong_type"],
        "missing_field" => &["missing_field"],
        "invalid_utf8" => &["invalid_utf8"],
        "binary" => &["invalid_utf8", "invalid_json"],
        "oversized" => &["value_too_large"],
        "bad_timestamp" => &["bad_timestamp"],
        "empty_value" => &["invalid_json"],
        _ => &[],
    }
}

/// One manifest for several simulator runs into the same topics, run one after another (so each
/// partition's offsets stay one contiguous range).
pub fn merge_manifests(runs: &[Manifest]) -> Manifest {
    let mut all = Manifest {
        mode: runs
            .iter()
            .map(|m| m.mode.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        complete: runs.iter().all(|m| m.complete),
        ..Manifest::default()
    };
    for m in runs {
        for (t, parts) in &m.topics {
            for (p, st) in parts {
                match all.topics.entry(t.clone()).or_default().entry(*p) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(*st);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        let e = o.get_mut();
                        e.min_offset = e.min_offset.min(st.min_offset);
                        e.max_offset = e.max_offset.max(st.max_offset);
                        e.count += st.count;
                    }
                }
            }
        }
        for (k, n) in &m.log_messages {
            *all.log_messages.entry(k.clone()).or_default() += n;
        }
        all.participant_rows += m.participant_rows;
        all.attack_rows += m.attack_rows;
        all.good_records += m.good_records;
        all.bad_records += m.bad_records;
        all.bad.extend(m.bad.iter().cloned());
        all.games.completed += m.games.completed;
        all.games.timed_out += m.games.timed_out;
        all.game_tokens.extend(m.game_tokens.iter().cloned());
        all.failed_deliveries += m.failed_deliveries;
        all.delivery_errors
            .extend(m.delivery_errors.iter().cloned());
    }
    all
}

/// The comparison of a run with its manifest.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Records the manifest says were produced, per topic (`None` without a manifest).
    pub produced: Option<BTreeMap<String, u64>>,
    /// Distinct scoped records found in raw, per topic.
    pub raw_records: BTreeMap<String, u64>,
    /// Raw blobs holding scoped records.
    pub raw_blobs: u64,
    /// Scoped raw blobs without a receipt.
    pub unprocessed: Vec<String>,
    /// Scoped raw blobs with a poison entry.
    pub poisoned: Vec<String>,
    /// Rows per model and the expected number (`None` when unknown).
    pub rows: BTreeMap<&'static str, (u64, Option<u64>)>,
    /// Dead letters per reason code.
    pub dead_by_reason: BTreeMap<String, u64>,
    /// Injected bad records per simulator kind.
    pub bad_by_kind: BTreeMap<String, u64>,
    /// `msg_id`s seen more than once in `buffer_meta`.
    pub duplicates: Vec<String>,
    /// Everything that is wrong; empty means the run is whole.
    pub problems: Vec<String>,
    /// The raw data read back.
    pub standard: Standard,
}

impl Summary {
    /// Whether nothing is missing, duplicated or misclassified.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Keeps at most this many examples per problem.
const EXAMPLES: usize = 5;

fn examples<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items
        .into_iter()
        .take(EXAMPLES)
        .map(|i| i.to_string())
        .collect();
    v.join(", ")
}

/// What is still missing in raw for the manifest's scope (empty when everything landed).
pub fn raw_gaps(scan: &Scan, manifest: &Manifest) -> Vec<String> {
    let scope = Scope::of(manifest);
    let mut seen: BTreeMap<(String, i32), BTreeSet<i64>> = BTreeMap::new();
    for b in scan.blobs_in(&scope) {
        let set = seen
            .entry((b.parsed.topic.clone(), b.parsed.partition))
            .or_default();
        set.extend(
            b.offsets
                .iter()
                .filter(|o| scope.contains(&b.parsed.topic, b.parsed.partition, **o)),
        );
    }
    let mut gaps = Vec::new();
    for (t, parts) in &manifest.topics {
        for (p, s) in parts {
            let have = seen.get(&(t.clone(), *p)).map_or(0, |s| s.len() as u64);
            let want = (s.max_offset - s.min_offset + 1) as u64;
            if have < want {
                gaps.push(format!("{t}/{p}: {have}/{want} offsets in raw"));
            }
        }
    }
    gaps
}

/// Compares the scan (and the outputs it points at) with the manifest.
pub async fn summarize(
    scan: &Scan,
    standard: &dyn ObjectStore,
    manifest: Option<&Manifest>,
) -> Result<Summary, SummaryError> {
    let scope = manifest.map_or_else(Scope::everything, Scope::of);
    let blobs: Vec<&RawBlob> = scan.blobs_in(&scope).collect();
    let mut s = Summary {
        raw_blobs: blobs.len() as u64,
        ..Summary::default()
    };
    // Raw: each scoped offset in exactly one line.
    let mut lines: BTreeMap<(String, i32, i64), u32> = BTreeMap::new();
    for b in &blobs {
        for o in b
            .offsets
            .iter()
            .filter(|o| scope.contains(&b.parsed.topic, b.parsed.partition, **o))
        {
            *lines
                .entry((b.parsed.topic.clone(), b.parsed.partition, *o))
                .or_default() += 1;
        }
        if b.unreadable > 0 {
            s.problems.push(format!(
                "raw blob {} has {} undecodable lines",
                b.name, b.unreadable
            ));
        }
    }
    for ((t, _, _), _) in lines.iter() {
        *s.raw_records.entry(t.clone()).or_default() += 1;
    }
    let raw_dups: Vec<String> = lines
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((t, p, o), n)| format!("{t}+{p}+{o} ×{n}"))
        .collect();
    if !raw_dups.is_empty() {
        s.problems.push(format!(
            "{} records are in raw more than once: {}",
            raw_dups.len(),
            examples(&raw_dups)
        ));
    }
    s.unprocessed = blobs
        .iter()
        .filter(|b| !scan.receipts.contains(&b.name))
        .map(|b| b.name.clone())
        .collect();
    if !s.unprocessed.is_empty() {
        s.problems.push(format!(
            "{} raw blobs have no receipt: {}",
            s.unprocessed.len(),
            examples(&s.unprocessed)
        ));
    }
    let names: BTreeSet<&str> = blobs.iter().map(|b| b.name.as_str()).collect();
    s.poisoned = poisoned(standard)
        .await?
        .into_iter()
        .filter(|p| names.contains(p.as_str()))
        .collect();
    if !s.poisoned.is_empty() {
        s.problems.push(format!(
            "{} raw blobs are poisoned: {}",
            s.poisoned.len(),
            examples(&s.poisoned)
        ));
    }

    let std = read_standard(standard, blobs.iter().copied(), &scope).await?;
    for d in &std.dead_letters {
        *s.dead_by_reason.entry(d.reason.clone()).or_default() += 1;
    }
    s.duplicates = std
        .buffer_msg_ids
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    s.duplicates.sort();
    if !s.duplicates.is_empty() {
        s.problems.push(format!(
            "{} msg_ids are in buffer_meta more than once: {}",
            s.duplicates.len(),
            examples(&s.duplicates)
        ));
    }
    let buffer_rows = std.rows.get("buffer_meta").copied().unwrap_or(0);
    let dead = std.dead_letters.len() as u64;

    match manifest {
        Some(m) => {
            let produced: BTreeMap<String, u64> = m
                .topics
                .iter()
                .map(|(t, p)| (t.clone(), p.values().map(|s| s.count).sum()))
                .collect();
            for (t, n) in &produced {
                let got = s.raw_records.get(t).copied().unwrap_or(0);
                if got != *n {
                    s.problems
                        .push(format!("topic {t}: {n} records produced, {got} in raw"));
                }
            }
            for gap in raw_gaps(scan, m) {
                s.problems.push(format!("missing in raw: {gap}"));
            }
            s.produced = Some(produced);
            let expect: [(&'static str, u64); 5] = [
                ("etl_meta", s.raw_blobs),
                ("buffer_meta", m.delivered()),
                ("log_meta", m.good_records),
                ("lib_server_lobby", m.participant_rows),
                ("lib_server_game", m.attack_rows),
            ];
            for (model, want) in expect {
                let got = std.rows.get(model).copied().unwrap_or(0);
                s.rows.insert(model, (got, Some(want)));
                if got != want {
                    s.problems
                        .push(format!("{model}: {got} rows, expected {want}"));
                }
            }
            // Every produced record has its buffer_meta row.
            let missing: Vec<String> = m
                .topics
                .iter()
                .flat_map(|(t, parts)| {
                    parts.iter().flat_map(move |(p, st)| {
                        (st.min_offset..=st.max_offset)
                            .map(move |o| model::naming::msg_id(t, *p, o))
                    })
                })
                .filter(|id| !std.buffer_msg_ids.contains_key(id))
                .collect();
            if !missing.is_empty() {
                s.problems.push(format!(
                    "{} records have no buffer_meta row: {}",
                    missing.len(),
                    examples(&missing)
                ));
            }
            // Dead letters are exactly the injected bad records, with a matching reason.
            let mut by_id: HashMap<String, &DeadLetter> = HashMap::new();
            for d in &std.dead_letters {
                if let Some(id) = &d.msg_id {
                    by_id.insert(id.clone(), d);
                }
            }
            let mut wrong = Vec::new();
            let mut lost = Vec::new();
            for b in &m.bad {
                *s.bad_by_kind.entry(b.kind.clone()).or_default() += 1;
                let id = model::naming::msg_id(&b.topic, b.partition, b.offset);
                match by_id.get(&id) {
                    None => lost.push(format!("{id} ({})", b.kind)),
                    Some(d) if !expected_reasons(&b.kind).contains(&d.reason.as_str()) => {
                        wrong.push(format!("{id}: {} → {}", b.kind, d.reason));
                    }
                    Some(_) => {}
                }
            }
            if !lost.is_empty() {
                s.problems.push(format!(
                    "{} bad records have no dead letter: {}",
                    lost.len(),
                    examples(&lost)
                ));
            }
            if !wrong.is_empty() {
                s.problems.push(format!(
                    "{} dead letters have an unexpected reason: {}",
                    wrong.len(),
                    examples(&wrong)
                ));
            }
            if dead != m.bad_records {
                let bad: BTreeSet<String> = m
                    .bad
                    .iter()
                    .map(|b| model::naming::msg_id(&b.topic, b.partition, b.offset))
                    .collect();
                let extra: Vec<String> = std
                    .dead_letters
                    .iter()
                    .filter(|d| d.msg_id.as_ref().is_none_or(|id| !bad.contains(id)))
                    .map(|d| format!("{} ({})", d.msg_id.as_deref().unwrap_or("?"), d.reason))
                    .collect();
                s.problems.push(format!(
                    "{dead} dead letters, {} bad records injected; not injected: {}",
                    m.bad_records,
                    examples(&extra)
                ));
            }
            if m.failed_deliveries > 0 {
                s.problems.push(format!(
                    "the simulator had {} failed deliveries",
                    m.failed_deliveries
                ));
            }
        }
        None => {
            for (model, got) in &std.rows {
                s.rows.insert(model, (*got, None));
            }
            let raw_total: u64 = s.raw_records.values().sum();
            if buffer_rows != raw_total {
                s.problems.push(format!(
                    "{raw_total} records in raw, {buffer_rows} buffer_meta rows"
                ));
            }
            let log_rows = std.rows.get("log_meta").copied().unwrap_or(0);
            if log_rows + dead != buffer_rows {
                s.problems.push(format!(
                    "log_meta {log_rows} + dead letters {dead} != buffer_meta {buffer_rows}"
                ));
            }
        }
    }
    s.standard = std;
    Ok(s)
}

/// Waits until every scoped record is in raw and every scoped raw blob has a receipt (or a poison
/// entry), then summarizes. Without a manifest it waits for the receipts of the blobs present.
pub async fn wait_and_summarize(
    raw: Arc<dyn ObjectStore>,
    standard: Arc<dyn ObjectStore>,
    manifest: Option<&Manifest>,
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> Result<Summary, SummaryError> {
    let scope = manifest.map_or_else(Scope::everything, Scope::of);
    let deadline = Instant::now() + timeout;
    let mut scan = Scan::default();
    let mut last = String::new();
    loop {
        let pending = match scan.refresh(raw.as_ref(), standard.as_ref(), &scope).await {
            Ok(()) => {
                let mut pending = manifest.map(|m| raw_gaps(&scan, m)).unwrap_or_default();
                let unprocessed: Vec<String> = scan
                    .blobs_in(&scope)
                    .filter(|b| !scan.receipts.contains(&b.name))
                    .map(|b| b.name.clone())
                    .collect();
                if !unprocessed.is_empty() {
                    let poison: BTreeSet<String> =
                        poisoned(standard.as_ref()).await?.into_iter().collect();
                    let open: Vec<&String> = unprocessed
                        .iter()
                        .filter(|n| !poison.contains(*n))
                        .collect();
                    if !open.is_empty() {
                        pending.push(format!(
                            "{} raw blobs not transformed yet (e.g. {})",
                            open.len(),
                            open[0]
                        ));
                    }
                }
                pending
            }
            // Storage may be down for a while (chaos): keep waiting until the deadline.
            Err(e) => vec![format!("storage error: {e}")],
        };
        if pending.is_empty() {
            return summarize(&scan, standard.as_ref(), manifest).await;
        }
        let text = pending.join("; ");
        if text != last {
            progress(&text);
            last = text.clone();
        }
        if Instant::now() > deadline {
            return Err(SummaryError::Timeout {
                timeout,
                pending: text,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        writeln!(f, "| records per topic | produced (manifest) | in raw |")?;
        writeln!(f, "|---|---:|---:|")?;
        let topics: BTreeSet<&String> = self
            .raw_records
            .keys()
            .chain(self.produced.iter().flat_map(|p| p.keys()))
            .collect();
        for t in topics {
            let produced = self
                .produced
                .as_ref()
                .map(|p| p.get(t).copied().unwrap_or(0));
            writeln!(
                f,
                "| {t} | {} | {} |",
                cell(produced),
                self.raw_records.get(t).copied().unwrap_or(0)
            )?;
        }
        writeln!(
            f,
            "\nraw blobs: {}   unprocessed: {}   poisoned: {}",
            self.raw_blobs,
            self.unprocessed.len(),
            self.poisoned.len()
        )?;
        writeln!(f, "\n| model | rows | expected |")?;
        writeln!(f, "|---|---:|---:|")?;
        for (m, (got, want)) in &self.rows {
            let mark = if want.is_some_and(|w| w != *got) {
                " ✗"
            } else {
                ""
            };
            writeln!(f, "| {m} | {got} | {}{mark} |", cell(*want))?;
        }
        writeln!(f, "\n| dead letters by reason | count |")?;
        writeln!(f, "|---|---:|")?;
        for (r, n) in &self.dead_by_reason {
            writeln!(f, "| {r} | {n} |")?;
        }
        let dead: u64 = self.dead_by_reason.values().sum();
        let bad: u64 = self.bad_by_kind.values().sum();
        writeln!(f, "| total | {dead} (injected bad records: {bad}) |")?;
        if !self.bad_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .bad_by_kind
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            writeln!(f, "injected kinds: {}", kinds.join(", "))?;
        }
        writeln!(f, "\nduplicates in buffer_meta: {}", self.duplicates.len())?;
        for p in &self.problems {
            writeln!(f, "PROBLEM: {p}")?;
        }
        if self.ok() {
            writeln!(
                f,
                "VERDICT: OK — every record landed once, rows match, bad input dead-lettered"
            )
        } else {
            writeln!(f, "VERDICT: FAILED — {} problem(s)", self.problems.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_ids_split_even_when_topics_contain_plus() {
        assert_eq!(
            split_msg_id("lib.server.game+3+42"),
            Some(("lib.server.game", 3, 42))
        );
        assert_eq!(split_msg_id("a+b+0+7"), Some(("a+b", 0, 7)));
        assert_eq!(split_msg_id("nope"), None);
    }

    #[test]
    fn every_simulator_bad_kind_maps_to_a_transformer_reason() {
        for kind in simulator::bad::BadKind::ALL {
            assert!(
                !expected_reasons(kind.as_str()).is_empty(),
                "{kind:?} has no expected reason"
            );
        }
    }

    #[test]
    fn scope_is_inclusive_and_per_partition() {
        let mut m = Manifest::default();
        m.good("t", 1, 5, "x", 0);
        m.good("t", 1, 9, "x", 0);
        let s = Scope::of(&m);
        assert!(s.contains("t", 1, 5) && s.contains("t", 1, 9) && s.contains("t", 1, 7));
        assert!(!s.contains("t", 1, 10) && !s.contains("t", 0, 5) && !s.contains("u", 1, 5));
        assert!(Scope::everything().contains("u", 0, 0));
    }
}

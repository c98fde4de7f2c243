//! The pure transform: gzipped raw blob bytes → one Parquet file per model + dead letters.
//!
//! No I/O happens here, so the same code runs in the Functions handler, the watcher, backfill and
//! the benchmark, and the same input always gives the same bytes.

use std::collections::BTreeMap;

use bytes::Bytes;
use model::naming::RawBlobName;
use model::raw::RawLine;
use model::schema::LogModel;
use serde::Serialize;

use crate::classify::classify;
use crate::deadletter::{DeadLetter, DeadLetterFile, Reason};
use crate::decode::{DecodeError, for_each_line};
use crate::models::ModelBuilders;
use crate::writer::{self, Compression, WriterError};

/// Knobs of the transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformOptions {
    /// Parquet compression.
    pub compression: Compression,
    /// Values longer than this are dead (`value_too_large`).
    pub max_value_bytes: usize,
}

impl Default for TransformOptions {
    fn default() -> Self {
        TransformOptions {
            compression: Compression::Zstd,
            max_value_bytes: 1 << 20,
        }
    }
}

/// Why a blob could not be transformed (it fails as a whole and is retried / poisoned).
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The bytes are not gzipped lines.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Arrow refused a batch (a schema bug).
    #[error("building {model} rows for {blob}: {source}")]
    Arrow {
        /// The raw blob.
        blob: String,
        /// The model.
        model: &'static str,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// Parquet encoding failed.
    #[error("{blob}: {source}")]
    Parquet {
        /// The raw blob.
        blob: String,
        /// The writer's error.
        #[source]
        source: WriterError,
    },
}

/// What one blob contained and produced. `records = good + dead`; `lines = records + unreadable`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Non-empty lines in the blob.
    pub lines: u64,
    /// Decodable raw lines = `buffer_meta` rows.
    pub records: u64,
    /// Records that fit the contract (= `log_meta` rows).
    pub good: u64,
    /// Decodable records that went to the dead-letter file.
    pub dead: u64,
    /// Lines that are not raw lines at all (dead-lettered as `bad_raw_line`, no `buffer_meta`).
    pub unreadable: u64,
    /// Dead letters by reason code.
    pub dead_by_reason: BTreeMap<&'static str, u64>,
    /// Rows per model written.
    pub rows: BTreeMap<&'static str, u64>,
    /// Inflated raw JSON bytes.
    pub raw_json_bytes: u64,
    /// Compressed blob bytes.
    pub blob_bytes: u64,
}

impl Counts {
    /// Adds another blob's counts (for run summaries).
    pub fn add(&mut self, o: &Counts) {
        self.lines += o.lines;
        self.records += o.records;
        self.good += o.good;
        self.dead += o.dead;
        self.unreadable += o.unreadable;
        for (k, v) in &o.dead_by_reason {
            *self.dead_by_reason.entry(k).or_default() += v;
        }
        for (k, v) in &o.rows {
            *self.rows.entry(k).or_default() += v;
        }
        self.raw_json_bytes += o.raw_json_bytes;
        self.blob_bytes += o.blob_bytes;
    }

    /// Dead letters written (dead records + unreadable lines).
    pub fn dead_letters(&self) -> u64 {
        self.dead + self.unreadable
    }
}

/// One output file.
#[derive(Debug, Clone)]
pub struct OutputFile {
    /// Name in `standard`.
    pub path: String,
    /// Which model.
    pub model: LogModel,
    /// Parquet bytes.
    pub bytes: Bytes,
}

/// Everything a blob produces.
#[derive(Debug, Clone)]
pub struct Output {
    /// One Parquet file per model the blob implies (see [`models_for`]).
    pub files: Vec<OutputFile>,
    /// The dead-letter file name in `standard`.
    pub deadletter_path: String,
    /// Its bytes, `None` when no record is dead.
    pub deadletter: Option<Bytes>,
    /// What happened.
    pub counts: Counts,
}

/// The models a blob writes: those its topic implies (even when empty, so a replay always
/// overwrites) plus any other model that got rows (a message kind on an unexpected topic).
pub fn models_for(topic: &str, rows: &BTreeMap<&'static str, u64>) -> Vec<LogModel> {
    let implied = LogModel::for_topic(topic);
    LogModel::ALL
        .into_iter()
        .filter(|m| implied.contains(m) || rows.get(m.name()).is_some_and(|n| *n > 0))
        .collect()
}

/// Transforms one gzipped raw blob.
pub fn transform(
    name: &RawBlobName,
    raw_name: &str,
    gz: &[u8],
    opts: TransformOptions,
) -> Result<Output, TransformError> {
    let mut builders = ModelBuilders::new(name.etl_id());
    let mut dead = DeadLetterFile::default();
    let mut counts = Counts {
        blob_bytes: gz.len() as u64,
        ..Counts::default()
    };
    let stats = for_each_line(raw_name, gz, |number, bytes| {
        let line = match RawLine::decode(bytes) {
            Ok(line) => line,
            Err(e) => {
                counts.unreadable += 1;
                *counts
                    .dead_by_reason
                    .entry(Reason::BadRawLine.code())
                    .or_default() += 1;
                let message = e.to_string();
                let letter = DeadLetter {
                    source_blob: raw_name,
                    msg_id: None,
                    topic: &name.topic,
                    partition: None,
                    offset: None,
                    line: number,
                    reason: Reason::BadRawLine,
                    message: &message,
                    value_base64: None,
                };
                dead.push(letter, Some(bytes));
                return;
            }
        };
        counts.records += 1;
        let msg_id = line.msg_id();
        builders.push_buffer(&line, &msg_id);
        match classify(&line, opts.max_value_bytes) {
            Ok(good) => {
                counts.good += 1;
                builders.push_good(&msg_id, &good);
            }
            Err(rejection) => {
                counts.dead += 1;
                *counts
                    .dead_by_reason
                    .entry(rejection.reason.code())
                    .or_default() += 1;
                // Keep the exact Kafka bytes; when even those do not decode, keep the raw JSON.
                let value = match line.value_bytes() {
                    Ok(v) => v.map(|c| c.into_owned()),
                    Err(_) => line.value.map(|r| r.get().as_bytes().to_vec()),
                };
                let letter = DeadLetter {
                    source_blob: raw_name,
                    msg_id: Some(msg_id),
                    topic: &line.topic,
                    partition: Some(line.partition),
                    offset: Some(line.offset),
                    line: number,
                    reason: rejection.reason,
                    message: &rejection.message,
                    value_base64: None,
                };
                dead.push(letter, value.as_deref());
            }
        }
    })?;
    counts.lines = stats.lines;
    counts.raw_json_bytes = stats.bytes;
    for (m, n) in builders.row_counts() {
        counts.rows.insert(m.name(), n);
    }
    let wanted = models_for(&name.topic, &counts.rows);
    counts
        .rows
        .retain(|k, _| wanted.iter().any(|m| m.name() == *k));
    let batches = builders.finish().map_err(|source| TransformError::Arrow {
        blob: raw_name.to_owned(),
        model: "batch",
        source,
    })?;
    let mut files = Vec::with_capacity(wanted.len());
    for (model, batch) in batches {
        if !wanted.contains(&model) {
            continue;
        }
        let bytes = writer::encode(model.name(), &batch, opts.compression).map_err(|source| {
            TransformError::Parquet {
                blob: raw_name.to_owned(),
                source,
            }
        })?;
        files.push(OutputFile {
            path: name.parquet_name(model.name()),
            model,
            bytes,
        });
    }
    Ok(Output {
        files,
        deadletter_path: name.deadletter_name(),
        deadletter: dead.finish().map(Bytes::from),
        counts,
    })
}

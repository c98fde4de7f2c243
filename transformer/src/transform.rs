//! The pure transform: a gzipped raw blob, read as a stream → one Parquet file per model + dead
//! letters, written as streams.
//!
//! No I/O happens here: the blob is any `Read` and the outputs go to a [`Sink`], so the same code
//! runs in the Functions handler, the watcher and backfill (through [`crate::process`], which
//! streams both ends from and to object storage) and in the benchmark ([`transform`], in memory),
//! and the same input always gives the same bytes.
//!
//! Memory does not grow with the blob: lines are inflated one at a time; each model's rows are
//! built in Arrow batches of at most [`BATCH_ROWS`] rows or [`BATCH_BYTES`] and encoded at once
//! into the model's current row group, which is written out when it has
//! [`TransformOptions::row_group_rows`] rows or holds [`ROW_GROUP_MAX_BYTES`]; dead letters are
//! written as they come. Only counts and the `etl_meta` timestamp range are kept per blob.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use bytes::Bytes;
use model::naming::RawBlobName;
use model::raw::RawLine;
use model::schema::LogModel;
use serde::Serialize;

use crate::classify::classify;
use crate::deadletter::{DeadLetter, DeadLetterFile, DeadLetterRows, Reason};
use crate::decode::{DecodeError, GzLines};
use crate::delta::schema::{DEADLETTER_TABLE, file_schema};
use crate::delta::staged::data_file;
use crate::delta::stats::FileStats;
use crate::delta::{StandardFormat, WriteId};
use crate::models::ModelBuilders;
pub use crate::writer::ROW_GROUP_MAX_BYTES;
use crate::writer::{Compression, ModelWriter, WriterError};

/// `TRANSFORM_ROW_GROUP_ROWS` default: rows per Parquet row group, parquet-rs's own default.
/// Row groups are held encoded and compressed, so a large one is cheap in memory, while small
/// ones cost file size: each has its own dictionaries, which do not pay for the unique columns
/// (`msg_id`, `offset`, timestamps), e.g. 65 536-row groups made `buffer_meta` 2.2 × larger.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 1 << 20;

/// A model's rows are handed from the Arrow builders to its Parquet writer in batches of this
/// many rows (or fewer, when `row_group_rows` is smaller)…
pub const BATCH_ROWS: usize = 8192;

/// …or once their column data reaches this many bytes (rows with large strings).
pub const BATCH_BYTES: usize = 8 << 20;

/// Knobs of the transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformOptions {
    /// Parquet compression.
    pub compression: Compression,
    /// Values longer than this are dead (`value_too_large`).
    pub max_value_bytes: usize,
    /// Rows per Parquet row group (`TRANSFORM_ROW_GROUP_ROWS`); a row group is written out
    /// earlier when it holds [`ROW_GROUP_MAX_BYTES`]. Part of the output bytes: every writer of
    /// a blob must use the same value for replays to rewrite identical files.
    pub row_group_rows: usize,
    /// Plain Parquet files at deterministic names, or Delta data files
    /// (`STANDARD_FORMAT`).
    pub format: StandardFormat,
    /// Delta data files: the id in this transform's file names ([`crate::process`] draws a
    /// fresh one per transform).
    pub write_id: WriteId,
}

impl Default for TransformOptions {
    fn default() -> Self {
        TransformOptions {
            compression: Compression::Zstd,
            max_value_bytes: 1 << 20,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            format: StandardFormat::Parquet,
            write_id: WriteId::default(),
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
    /// Parquet encoding failed (or the sink under it did).
    #[error("{blob}: {source}")]
    Parquet {
        /// The raw blob.
        blob: String,
        /// The writer's error.
        #[source]
        source: WriterError,
    },
    /// An output could not be created or written.
    #[error("writing {path} for {blob}: {source}")]
    Sink {
        /// The raw blob.
        blob: String,
        /// The output name.
        path: String,
        /// The sink's error.
        #[source]
        source: io::Error,
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

/// Where a transform's outputs go: each file is created when first needed and written front to
/// back; finished files are flushed and handed back in [`Streamed`].
pub trait Sink {
    /// One output being written.
    type File: Write + Send;
    /// Starts the output named `path` (a name in `standard`).
    fn create(&mut self, path: &str) -> io::Result<Self::File>;
}

/// The in-memory [`Sink`] of [`transform`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MemorySink;

impl Sink for MemorySink {
    type File = Vec<u8>;
    fn create(&mut self, _path: &str) -> io::Result<Vec<u8>> {
        Ok(Vec::new())
    }
}

/// A finished output of [`transform_to`].
#[derive(Debug)]
pub struct Written<F> {
    /// Name in `standard`.
    pub path: String,
    /// Which model.
    pub model: LogModel,
    /// What it was written to (flushed).
    pub file: F,
    /// Bytes.
    pub size: u64,
    /// Delta data files: the statistics of the file's `add` action.
    pub stats: Option<FileStats>,
}

/// The dead letters of one blob being written.
#[derive(Debug)]
enum DeadSink<F: Write + Send> {
    /// JSON Lines (`STANDARD_FORMAT=parquet`).
    Lines(DeadLetterFile<F>),
    /// Rows of the `_deadletter` table (`STANDARD_FORMAT=delta`).
    Rows(DeadLetterRows<F>),
}

/// Everything a blob produced through a [`Sink`].
#[derive(Debug)]
pub struct Streamed<F> {
    /// One Parquet file per model the blob implies (see [`models_for`]), in [`LogModel::ALL`]
    /// order.
    pub files: Vec<Written<F>>,
    /// The dead-letter file name in `standard`.
    pub deadletter_path: String,
    /// The dead-letter file, `None` (never created) when no record is dead.
    pub deadletter: Option<F>,
    /// Delta mode: the dead-letter data file's size and statistics.
    pub deadletter_stats: Option<(u64, FileStats)>,
    /// What happened.
    pub counts: Counts,
}

/// Transforms one gzipped raw blob in memory (benchmarks, property tests).
pub fn transform(
    name: &RawBlobName,
    raw_name: &str,
    gz: &[u8],
    opts: TransformOptions,
) -> Result<Output, TransformError> {
    let s = transform_to(name, raw_name, gz, opts, &mut MemorySink)?;
    Ok(Output {
        files: s
            .files
            .into_iter()
            .map(|w| OutputFile {
                path: w.path,
                model: w.model,
                bytes: Bytes::from(w.file),
            })
            .collect(),
        deadletter_path: s.deadletter_path,
        deadletter: s.deadletter.map(Bytes::from),
        counts: s.counts,
    })
}

/// Transforms the gzipped raw blob read from `gz` into files created on `sink`, one row group at
/// a time (see the module docs for what stays in memory).
pub fn transform_to<S: Sink>(
    name: &RawBlobName,
    raw_name: &str,
    gz: impl Read,
    opts: TransformOptions,
    sink: &mut S,
) -> Result<Streamed<S::File>, TransformError> {
    let mut run = Run {
        name,
        raw_name,
        opts,
        deadletter_path: match opts.format {
            StandardFormat::Parquet => name.deadletter_name(),
            StandardFormat::Delta => {
                format!("{DEADLETTER_TABLE}/{}", data_file(name, opts.write_id))
            }
        },
        builders: ModelBuilders::new(name.etl_id()),
        writers: Vec::new(),
        dead: None,
        counts: Counts::default(),
    };
    let mut input = Counted {
        inner: gz,
        bytes: 0,
    };
    let mut lines = GzLines::new(raw_name, &mut input);
    while let Some((number, bytes)) = lines.next_line()? {
        run.line(number, bytes, sink)?;
    }
    let stats = lines.stats();
    run.counts.lines = stats.lines;
    run.counts.raw_json_bytes = stats.bytes;
    run.counts.blob_bytes = input.bytes;
    run.finish(sink)
}

/// Counts the compressed bytes read.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The state of one blob's transform.
struct Run<'a, F: Write + Send> {
    name: &'a RawBlobName,
    raw_name: &'a str,
    opts: TransformOptions,
    deadletter_path: String,
    builders: ModelBuilders,
    /// The Parquet files started so far (a model's file starts with its first row group).
    writers: Vec<(LogModel, ModelWriter<F>)>,
    dead: Option<DeadSink<F>>,
    counts: Counts,
}

impl<F: Write + Send> Run<'_, F> {
    fn line<S: Sink<File = F>>(
        &mut self,
        number: u64,
        bytes: &[u8],
        sink: &mut S,
    ) -> Result<(), TransformError> {
        let (name, raw_name) = (self.name, self.raw_name);
        let line = match RawLine::decode(bytes) {
            Ok(line) => line,
            Err(e) => {
                self.counts.unreadable += 1;
                *self
                    .counts
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
                return self.dead_letter(letter, Some(bytes), sink);
            }
        };
        self.counts.records += 1;
        let msg_id = line.msg_id();
        self.builders.push_buffer(&line, &msg_id);
        match classify(&line, self.opts.max_value_bytes) {
            Ok(good) => {
                self.counts.good += 1;
                self.builders.push_good(&msg_id, &good);
            }
            Err(rejection) => {
                self.counts.dead += 1;
                *self
                    .counts
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
                self.dead_letter(letter, value.as_deref(), sink)?;
            }
        }
        self.hand_over_batches(sink)
    }

    fn dead_letter<S: Sink<File = F>>(
        &mut self,
        letter: DeadLetter<'_>,
        value: Option<&[u8]>,
        sink: &mut S,
    ) -> Result<(), TransformError> {
        let dead = match self.dead.take() {
            Some(dead) => dead,
            None => {
                let file = sink
                    .create(&self.deadletter_path)
                    .map_err(|source| self.sink_error(&self.deadletter_path, source))?;
                match self.opts.format {
                    StandardFormat::Parquet => DeadSink::Lines(DeadLetterFile::new(file)),
                    StandardFormat::Delta => DeadSink::Rows(
                        DeadLetterRows::new(file, self.opts.compression, self.opts.row_group_rows)
                            .map_err(|source| self.parquet_error(source))?,
                    ),
                }
            }
        };
        let dead = self.dead.insert(dead);
        match dead {
            DeadSink::Lines(lines) => {
                lines
                    .push(letter, value)
                    .map_err(|source| TransformError::Sink {
                        blob: self.raw_name.to_owned(),
                        path: self.deadletter_path.clone(),
                        source,
                    })
            }
            DeadSink::Rows(rows) => {
                rows.push(&letter, value)
                    .map_err(|source| TransformError::Parquet {
                        blob: self.raw_name.to_owned(),
                        source,
                    })
            }
        }
    }

    /// The name of `m`'s output in `standard`.
    fn model_path(&self, m: LogModel) -> String {
        match self.opts.format {
            StandardFormat::Parquet => self.name.parquet_name(m.name()),
            StandardFormat::Delta => {
                format!("{}/{}", m.name(), data_file(self.name, self.opts.write_id))
            }
        }
    }

    /// Hands every model's full batch to its writer.
    fn hand_over_batches<S: Sink<File = F>>(&mut self, sink: &mut S) -> Result<(), TransformError> {
        let batch_rows = BATCH_ROWS.min(self.opts.row_group_rows) as u64;
        for m in LogModel::ALL {
            let rows = self.builders.pending_rows(m);
            if rows > 0 && (rows >= batch_rows || self.builders.pending_bytes(m) >= BATCH_BYTES) {
                self.write_batch(m, sink)?;
            }
        }
        Ok(())
    }

    /// Hands the pending rows of `m` to its file, starting the file if needed.
    fn write_batch<S: Sink<File = F>>(
        &mut self,
        m: LogModel,
        sink: &mut S,
    ) -> Result<(), TransformError> {
        let batch = self
            .builders
            .take(m)
            .map_err(|source| TransformError::Arrow {
                blob: self.raw_name.to_owned(),
                model: m.name(),
                source,
            })?;
        let i = match self.writers.iter().position(|(w, _)| *w == m) {
            Some(i) => i,
            None => {
                let path = self.model_path(m);
                let file = sink
                    .create(&path)
                    .map_err(|source| self.sink_error(&path, source))?;
                let (compression, rows) = (self.opts.compression, self.opts.row_group_rows);
                let writer = match self.opts.format {
                    StandardFormat::Parquet => {
                        ModelWriter::new(m.name(), m.schema(), file, compression, rows)
                    }
                    StandardFormat::Delta => {
                        ModelWriter::delta(m.name(), file_schema(m), file, compression, rows)
                    }
                }
                .map_err(|source| self.parquet_error(source))?;
                self.writers.push((m, writer));
                self.writers.len() - 1
            }
        };
        self.writers[i]
            .1
            .write(&batch)
            .map_err(|source| self.parquet_error(source))
    }

    /// Writes the last rows (and `etl_meta`'s row), closes every file.
    fn finish<S: Sink<File = F>>(mut self, sink: &mut S) -> Result<Streamed<F>, TransformError> {
        for (m, n) in self.builders.row_counts() {
            self.counts.rows.insert(m.name(), n);
        }
        let mut wanted = models_for(&self.name.topic, &self.counts.rows);
        if self.opts.format == StandardFormat::Delta {
            // A table needs no empty file: a blob without rows for it adds nothing.
            wanted.retain(|m| self.counts.rows.get(m.name()).is_some_and(|n| *n > 0));
        }
        self.counts
            .rows
            .retain(|k, _| wanted.iter().any(|m| m.name() == *k));
        // Every wanted model gets a file, even without rows; a model started on the way has
        // rows, so it is wanted.
        for &m in &wanted {
            self.write_batch(m, sink)?;
        }
        let mut files = Vec::with_capacity(self.writers.len());
        for m in LogModel::ALL {
            let Some(i) = self.writers.iter().position(|(w, _)| *w == m) else {
                continue;
            };
            let (_, writer) = self.writers.swap_remove(i);
            let done = writer
                .finish_file()
                .map_err(|source| self.parquet_error(source))?;
            files.push(Written {
                path: self.model_path(m),
                model: m,
                file: done.sink,
                size: done.size,
                stats: done.stats,
            });
        }
        let (deadletter, deadletter_stats) = match self.dead.take() {
            Some(DeadSink::Lines(lines)) => {
                let file = lines.finish().map_err(|source| TransformError::Sink {
                    blob: self.raw_name.to_owned(),
                    path: self.deadletter_path.clone(),
                    source,
                })?;
                (Some(file), None)
            }
            Some(DeadSink::Rows(rows)) => {
                let done = rows.finish().map_err(|source| self.parquet_error(source))?;
                (Some(done.sink), done.stats.map(|s| (done.size, s)))
            }
            None => (None, None),
        };
        Ok(Streamed {
            files,
            deadletter_path: self.deadletter_path,
            deadletter,
            deadletter_stats,
            counts: self.counts,
        })
    }

    fn sink_error(&self, path: &str, source: io::Error) -> TransformError {
        TransformError::Sink {
            blob: self.raw_name.to_owned(),
            path: path.to_owned(),
            source,
        }
    }

    fn parquet_error(&self, source: WriterError) -> TransformError {
        TransformError::Parquet {
            blob: self.raw_name.to_owned(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use arrow::compute::concat_batches;
    use arrow::record_batch::RecordBatch;
    use flate2::write::GzEncoder;
    use model::raw::{RecordPosition, TimestampType, encode_line};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    const ATTACK: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.771305", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g\", \"USER_TOKEN\": \"u\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"e\", \"ENEMY_DAMAGE\": 1, \"ENEMY_HEALTH_PRIOR\": 2, \"ENEMY_HEALTH_POST\": 1}}}"}"#;

    /// A game blob of `n` records, every 5th one dead.
    fn game_blob(n: i64) -> (RawBlobName, String, Vec<u8>) {
        let raw = "lib.server.game/2024/01/14/18/lib.server.game+1+00000000000000000000.json.gz";
        let mut lines = Vec::new();
        for offset in 0..n {
            let pos = RecordPosition {
                topic: model::TOPIC_GAME,
                partition: 1,
                offset,
                timestamp: Some(1_705_256_524_771 + offset),
                timestamp_type: TimestampType::CreateTime,
            };
            let value: &[u8] = if offset % 5 == 4 {
                b"{broken"
            } else {
                ATTACK.as_bytes()
            };
            encode_line(&mut lines, pos, None, Some(value), &[]);
        }
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&lines).expect("gzip");
        let name = RawBlobName::parse(raw).expect("raw name");
        (name, raw.to_owned(), gz.finish().expect("gzip"))
    }

    fn rows_and_groups(file: &Bytes) -> (RecordBatch, Vec<i64>) {
        let b = ParquetRecordBatchReaderBuilder::try_new(file.clone()).expect("parquet");
        let groups = b
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        let schema = b.schema().clone();
        let batches: Vec<RecordBatch> = b
            .build()
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("batches");
        (concat_batches(&schema, &batches).expect("concat"), groups)
    }

    #[test]
    fn row_groups_of_n_rows_keep_every_row_in_order() {
        let (name, raw, gz) = game_blob(103);
        let whole = transform(&name, &raw, &gz, TransformOptions::default()).expect("whole");
        let opts = TransformOptions {
            row_group_rows: 10,
            ..TransformOptions::default()
        };
        let cut = transform(&name, &raw, &gz, opts).expect("in row groups");
        assert_eq!(whole.counts, cut.counts);
        assert_eq!(whole.deadletter, cut.deadletter);
        assert_eq!(cut.counts.blob_bytes, gz.len() as u64);
        assert_eq!(cut.files.len(), 4, "etl, buffer, log and game meta");
        for (a, b) in whole.files.iter().zip(&cut.files) {
            assert_eq!((&a.path, a.model), (&b.path, b.model));
            let (rows_a, groups_a) = rows_and_groups(&a.bytes);
            let (rows_b, groups_b) = rows_and_groups(&b.bytes);
            assert_eq!(rows_a, rows_b, "{}", a.path);
            let n = rows_a.num_rows() as i64;
            assert_eq!(groups_a, [n], "{}", a.path);
            let mut want = vec![10; (n / 10) as usize];
            if n % 10 > 0 {
                want.push(n % 10);
            }
            assert_eq!(groups_b, want, "{}", a.path);
        }
    }
}

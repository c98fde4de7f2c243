//! Parquet encoding of one model's rows, streamed row group by row group, byte-for-byte
//! deterministic.
//!
//! A [`ModelWriter`] encodes the batches it is given into the current row group (compressed
//! pages) and writes each row group through to its sink once it has `row_group_rows` rows or
//! holds [`ROW_GROUP_MAX_BYTES`], so only one encoded row group is in memory, never the file.
//!
//! Determinism: parquet-rs writes no wall-clock or random value. The footer holds the schema,
//! the Arrow schema (`ARROW:schema`), statistics and `created_by`, all functions of the input and
//! the library version; `created_by` is pinned here so a rebuild with another parquet-rs patch
//! release still writes the same bytes for the same input. Row group boundaries are chosen by the
//! caller from the data alone (`transform`), so they are deterministic too.

use std::io::Write;

use arrow::datatypes::SchemaRef;

use crate::delta::schema::cast_batch;
use crate::delta::stats::FileStats;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use serde::Deserialize;

/// `created_by` of every file we write.
pub const CREATED_BY: &str = "superhero-dataflow transformer (parquet-rs 57)";

/// A row group is written out early once the writer holds this much for it (its compressed pages
/// and dictionaries, as parquet-rs estimates them), so wide rows (values up to `MAX_VALUE_BYTES`)
/// cannot make the row group in memory unbounded.
pub const ROW_GROUP_MAX_BYTES: usize = 32 << 20;

/// Parquet page compression (`PARQUET_COMPRESSION`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd level 3: the default; smaller files for similar speed (see docs/bench/transformer.md).
    #[default]
    Zstd,
    /// snappy: fastest, larger files.
    Snappy,
    /// No compression.
    None,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zstd" => Ok(Compression::Zstd),
            "snappy" => Ok(Compression::Snappy),
            "none" => Ok(Compression::None),
            other => Err(format!(
                "`{other}` is not a compression (zstd, snappy or none)"
            )),
        }
    }
}

impl Compression {
    fn parquet(self) -> PqCompression {
        match self {
            Compression::Zstd => {
                PqCompression::ZSTD(ZstdLevel::try_new(3).expect("3 is a valid zstd level"))
            }
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::None => PqCompression::UNCOMPRESSED,
        }
    }

    /// The name used in config and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Snappy => "snappy",
            Compression::None => "none",
        }
    }
}

/// Why a batch could not be encoded (a bug or resource exhaustion, never bad input).
#[derive(Debug, thiserror::Error)]
#[error("encoding {model} as Parquet: {source}")]
pub struct WriterError {
    /// The model.
    pub model: &'static str,
    /// parquet-rs's error.
    #[source]
    pub source: ParquetError,
}

/// One model's Parquet file being written to `W`, row group by row group.
pub struct ModelWriter<W: Write + Send> {
    model: &'static str,
    inner: ArrowWriter<Counting<W>>,
    /// Delta data files: batches are cast to the file schema and their statistics gathered.
    delta: Option<FileStats>,
}

/// Counts the bytes written through it (a Delta `add` action states the file's size).
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A finished file: its sink, its size and (Delta data files) its statistics.
#[derive(Debug)]
pub struct Finished<W> {
    /// The sink, flushed.
    pub sink: W,
    /// Bytes written.
    pub size: u64,
    /// The `add` statistics of a Delta data file.
    pub stats: Option<FileStats>,
}

impl<W: Write + Send> std::fmt::Debug for ModelWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelWriter")
            .field("model", &self.model)
            .field("row_groups", &self.inner.flushed_row_groups().len())
            .finish()
    }
}

impl<W: Write + Send> ModelWriter<W> {
    /// Starts the file of `model` (schema `schema`) on `sink`, with row groups of
    /// `row_group_rows` rows (fewer when one reaches [`ROW_GROUP_MAX_BYTES`] first, and in the
    /// last one).
    pub fn new(
        model: &'static str,
        schema: SchemaRef,
        sink: W,
        compression: Compression,
        row_group_rows: usize,
    ) -> Result<Self, WriterError> {
        let props = WriterProperties::builder()
            .set_compression(compression.parquet())
            .set_created_by(CREATED_BY.to_owned())
            .set_max_row_group_size(row_group_rows.max(1))
            .build();
        let sink = Counting {
            inner: sink,
            bytes: 0,
        };
        let inner = ArrowWriter::try_new(sink, schema, Some(props))
            .map_err(|source| WriterError { model, source })?;
        Ok(ModelWriter {
            model,
            inner,
            delta: None,
        })
    }

    /// Starts a Delta data file of schema `file_schema` (see [`crate::delta::schema`]): batches
    /// given to [`ModelWriter::write`] in the model's schema are cast to it, and the file's
    /// statistics are gathered for its `add` action.
    pub fn delta(
        model: &'static str,
        file_schema: SchemaRef,
        sink: W,
        compression: Compression,
        row_group_rows: usize,
    ) -> Result<Self, WriterError> {
        let mut w = ModelWriter::new(
            model,
            file_schema.clone(),
            sink,
            compression,
            row_group_rows,
        )?;
        w.delta = Some(FileStats::new(file_schema));
        Ok(w)
    }

    /// Encodes `batch` into the current row group; a row group that is full (by rows, or by
    /// [`ROW_GROUP_MAX_BYTES`] after this batch) is written to the sink. Boundaries are a
    /// function of the rows and of how the caller batches them, both deterministic.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriterError> {
        let err = |source| WriterError {
            model: self.model,
            source,
        };
        let cast;
        let batch = match &mut self.delta {
            Some(stats) => {
                cast = cast_batch(batch, stats.schema())
                    .map_err(|e| err(ParquetError::ArrowError(e.to_string())))?;
                stats.update(&cast);
                &cast
            }
            None => batch,
        };
        // Splits the batch at `row_group_rows` and writes each full row group out itself.
        self.inner.write(batch).map_err(err)?;
        if self.inner.memory_size() >= ROW_GROUP_MAX_BYTES {
            self.inner.flush().map_err(err)?;
        }
        Ok(())
    }

    /// Row groups written so far.
    pub fn row_groups(&self) -> usize {
        self.inner.flushed_row_groups().len()
    }

    /// Writes the footer, flushes the sink and gives it back (a file without rows is a valid
    /// empty file).
    pub fn finish(self) -> Result<W, WriterError> {
        self.finish_file().map(|f| f.sink)
    }

    /// As [`ModelWriter::finish`], with the file's size and statistics.
    pub fn finish_file(self) -> Result<Finished<W>, WriterError> {
        let model = self.model;
        let err = |source| WriterError { model, source };
        let mut sink = self.inner.into_inner().map_err(err)?;
        sink.flush()
            .map_err(|e| err(ParquetError::External(Box::new(e))))?;
        Ok(Finished {
            size: sink.bytes,
            sink: sink.inner,
            stats: self.delta,
        })
    }
}

/// Encodes `batch` as one Parquet file in memory (one row group; empty batches give a valid
/// empty file), as a [`ModelWriter`] given this one batch.
pub fn encode(
    model: &'static str,
    batch: &RecordBatch,
    compression: Compression,
) -> Result<Bytes, WriterError> {
    let rows = batch.num_rows().max(1);
    let mut w = ModelWriter::new(model, batch.schema(), Vec::new(), compression, rows)?;
    w.write(batch)?;
    Ok(Bytes::from(w.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelBuilders;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn same_batch_encodes_to_identical_bytes_and_reads_back() {
        for (m, batch) in ModelBuilders::new("e").finish().expect("batches") {
            for c in [Compression::Zstd, Compression::Snappy, Compression::None] {
                let a = encode(m.name(), &batch, c).expect("encodes");
                let b = encode(m.name(), &batch, c).expect("encodes");
                assert_eq!(a, b, "{} {}", m.name(), c.as_str());
                let reader = ParquetRecordBatchReaderBuilder::try_new(a).expect("parquet");
                assert_eq!(reader.schema().fields(), m.schema().fields());
                assert_eq!(
                    reader.metadata().file_metadata().created_by(),
                    Some(CREATED_BY)
                );
            }
        }
    }

    #[test]
    fn parses_compression_names() {
        assert_eq!("snappy".parse::<Compression>(), Ok(Compression::Snappy));
        assert!("lz4".parse::<Compression>().is_err());
    }
}

//! Parquet encoding of one model's record batch, byte-for-byte deterministic.
//!
//! Determinism: parquet-rs writes no wall-clock or random value. The footer holds the schema,
//! the Arrow schema (`ARROW:schema`), statistics and `created_by`, all functions of the input and
//! the library version; `created_by` is pinned here so a rebuild with another parquet-rs patch
//! release still writes the same bytes for the same input.

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use serde::Deserialize;

/// `created_by` of every file we write.
pub const CREATED_BY: &str = "superhero-dataflow transformer (parquet-rs 57)";

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

/// Encodes `batch` as one Parquet file (one row group; empty batches give a valid empty file).
pub fn encode(
    model: &'static str,
    batch: &RecordBatch,
    compression: Compression,
) -> Result<Bytes, WriterError> {
    let err = |source| WriterError { model, source };
    let props = WriterProperties::builder()
        .set_compression(compression.parquet())
        .set_created_by(CREATED_BY.to_owned())
        // One row group per file: a raw blob holds at most ~100k records.
        .set_max_row_group_size(1 << 24)
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(err)?;
    if batch.num_rows() > 0 {
        w.write(batch).map_err(err)?;
    }
    Ok(Bytes::from(w.into_inner().map_err(err)?))
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

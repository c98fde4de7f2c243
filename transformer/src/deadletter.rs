//! Dead letters: records that do not fit the data contract, kept with their raw bytes.
//!
//! A raw blob's dead letters are one JSON Lines file in `standard` at
//! [`model::naming::RawBlobName::deadletter_name`], written (overwritten) only when the blob has
//! dead records. Each line says where the record came from, a stable reason code and a human
//! message, and carries the original value bytes in base64 so nothing is lost. The lines are
//! written through to their sink as they come ([`DeadLetterFile`]), never gathered per blob.

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use serde::Serialize;

use crate::delta::schema::{DEADLETTER_SCHEMA, DEADLETTER_TABLE};
use crate::writer::{Compression, Finished, ModelWriter, WriterError};

/// Why a record is dead. The codes are stable: dashboards and replays key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The value is not UTF-8.
    InvalidUtf8,
    /// The value is not JSON (truncated, empty, garbage).
    InvalidJson,
    /// A required envelope field (or a required `task`) is absent.
    MissingField,
    /// The value is not an object, or an envelope field is not a string.
    WrongType,
    /// The envelope timestamp or a task `TIMESTAMP` does not parse.
    BadTimestamp,
    /// The `task` does not have the shape its `log_message` implies.
    BadTask,
    /// The value is larger than `MAX_VALUE_BYTES`.
    ValueTooLarge,
    /// The record has no value (a Kafka tombstone).
    NullValue,
    /// The raw line itself does not decode (not written by the worker, or corrupted).
    BadRawLine,
}

impl Reason {
    /// Every reason, for docs and tests.
    pub const ALL: [Reason; 9] = [
        Reason::InvalidUtf8,
        Reason::InvalidJson,
        Reason::MissingField,
        Reason::WrongType,
        Reason::BadTimestamp,
        Reason::BadTask,
        Reason::ValueTooLarge,
        Reason::NullValue,
        Reason::BadRawLine,
    ];

    /// The stable code, also the `reason` label of `transformer_dead_letters_total`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::InvalidJson => "invalid_json",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::BadTask => "bad_task",
            Reason::ValueTooLarge => "value_too_large",
            Reason::NullValue => "null_value",
            Reason::BadRawLine => "bad_raw_line",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A record's verdict when it does not fit: the reason code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable reason code.
    pub reason: Reason,
    /// What exactly is wrong, for people.
    pub message: String,
}

impl Rejection {
    /// A rejection with a message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

/// One line of a dead-letter file.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter<'a> {
    /// Raw blob name (relative to the `raw` container).
    pub source_blob: &'a str,
    /// `topic+partition+offset`, `None` for an undecodable raw line.
    pub msg_id: Option<String>,
    /// Kafka topic (from the blob name for an undecodable raw line).
    pub topic: &'a str,
    /// Kafka partition, `None` for an undecodable raw line.
    pub partition: Option<i32>,
    /// Kafka offset, `None` for an undecodable raw line.
    pub offset: Option<i64>,
    /// 1-based line number in the raw blob, to find the record again.
    pub line: u64,
    /// Stable reason code.
    pub reason: Reason,
    /// Human text.
    pub message: &'a str,
    /// The original value bytes (or the raw line for `bad_raw_line`), base64; `None` for a null value.
    pub value_base64: Option<String>,
}

/// Writes the dead letters of one blob as JSON Lines to `W`, one `write_all` per letter.
#[derive(Debug)]
pub struct DeadLetterFile<W: Write = Vec<u8>> {
    out: W,
    /// The line being serialized (reused).
    line: Vec<u8>,
    count: u64,
}

impl Default for DeadLetterFile<Vec<u8>> {
    fn default() -> Self {
        DeadLetterFile::new(Vec::new())
    }
}

impl<W: Write> DeadLetterFile<W> {
    /// Dead letters written to `out`.
    pub fn new(out: W) -> Self {
        DeadLetterFile {
            out,
            line: Vec::new(),
            count: 0,
        }
    }

    /// Appends one dead letter; `value` is encoded as base64.
    pub fn push(
        &mut self,
        mut letter: DeadLetter<'_>,
        value: Option<&[u8]>,
    ) -> std::io::Result<()> {
        letter.value_base64 = value.map(|v| B64.encode(v));
        self.line.clear();
        serde_json::to_writer(&mut self.line, &letter).expect("writing JSON to a Vec cannot fail");
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.count += 1;
        Ok(())
    }

    /// How many dead letters were written.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Flushes the sink and gives it back.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Dead letters as rows of the `_deadletter` Delta table (`STANDARD_FORMAT=delta`): the same
/// fields as a JSON line, with the value as binary instead of base64. Rows are handed to the
/// Parquet writer every [`DEAD_BATCH_ROWS`] rows or [`DEAD_BATCH_BYTES`] of values.
pub struct DeadLetterRows<W: Write + Send> {
    writer: ModelWriter<W>,
    source_blob: StringBuilder,
    msg_id: StringBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    line: Int64Builder,
    reason: StringBuilder,
    message: StringBuilder,
    value: BinaryBuilder,
    pending: usize,
    pending_bytes: usize,
    count: u64,
}

/// Rows per dead-letter batch.
pub const DEAD_BATCH_ROWS: usize = 4096;
/// Value bytes per dead-letter batch.
pub const DEAD_BATCH_BYTES: usize = 8 << 20;

impl<W: Write + Send> std::fmt::Debug for DeadLetterRows<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterRows")
            .field("count", &self.count)
            .finish()
    }
}

impl<W: Write + Send> DeadLetterRows<W> {
    /// Starts the dead-letter data file on `out`.
    pub fn new(
        out: W,
        compression: Compression,
        row_group_rows: usize,
    ) -> Result<Self, WriterError> {
        Ok(DeadLetterRows {
            writer: ModelWriter::delta(
                DEADLETTER_TABLE,
                DEADLETTER_SCHEMA.clone(),
                out,
                compression,
                row_group_rows,
            )?,
            source_blob: StringBuilder::new(),
            msg_id: StringBuilder::new(),
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            line: Int64Builder::new(),
            reason: StringBuilder::new(),
            message: StringBuilder::new(),
            value: BinaryBuilder::new(),
            pending: 0,
            pending_bytes: 0,
            count: 0,
        })
    }

    /// Adds one dead letter with the record's bytes.
    pub fn push(
        &mut self,
        letter: &DeadLetter<'_>,
        value: Option<&[u8]>,
    ) -> Result<(), WriterError> {
        self.source_blob.append_value(letter.source_blob);
        self.msg_id.append_option(letter.msg_id.as_deref());
        self.topic.append_value(letter.topic);
        self.partition.append_option(letter.partition);
        self.offset.append_option(letter.offset);
        self.line
            .append_value(i64::try_from(letter.line).unwrap_or(i64::MAX));
        self.reason.append_value(letter.reason.code());
        self.message.append_value(letter.message);
        self.value.append_option(value);
        self.pending += 1;
        self.pending_bytes += value.map_or(0, <[u8]>::len) + letter.message.len();
        self.count += 1;
        if self.pending >= DEAD_BATCH_ROWS || self.pending_bytes >= DEAD_BATCH_BYTES {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), WriterError> {
        if self.pending == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source_blob.finish()),
            Arc::new(self.msg_id.finish()),
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.value.finish()),
        ];
        let batch =
            RecordBatch::try_new(DEADLETTER_SCHEMA.clone(), columns).map_err(|e| WriterError {
                model: DEADLETTER_TABLE,
                source: parquet::errors::ParquetError::ArrowError(e.to_string()),
            })?;
        self.pending = 0;
        self.pending_bytes = 0;
        self.writer.write(&batch)
    }

    /// Dead letters pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes the last rows and the footer.
    pub fn finish(mut self) -> Result<Finished<W>, WriterError> {
        self.flush_batch()?;
        self.writer.finish_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_snake_case_names() {
        for r in Reason::ALL {
            let json = serde_json::to_string(&r).expect("serializes");
            assert_eq!(json, format!("\"{}\"", r.code()));
        }
    }

    #[test]
    fn dead_letter_lines_carry_position_reason_and_bytes() {
        let mut file = DeadLetterFile::default();
        file.push(
            DeadLetter {
                source_blob: "t/2024/01/14/18/t+0+00000000000000000001.json.gz",
                msg_id: Some("t+0+1".into()),
                topic: "t",
                partition: Some(0),
                offset: Some(1),
                line: 1,
                reason: Reason::InvalidUtf8,
                message: "value is not UTF-8",
                value_base64: None,
            },
            Some(b"\xff"),
        )
        .expect("a Vec takes it");
        assert_eq!(file.count(), 1);
        let bytes = file.finish().expect("a Vec flushes");
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json line");
        assert_eq!(v["reason"], "invalid_utf8");
        assert_eq!(v["value_base64"], "/w==");
        assert_eq!(v["offset"], 1);
    }
}

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
use serde::Serialize;

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

//! Dead letters: records that do not fit the data contract, kept with their raw bytes.
//!
//! A raw blob's dead letters are one JSON Lines file in `standard` at
//! [`model::naming::RawBlobName::deadletter_name`], written (overwritten) only when the blob has
//! dead records. Each line says where the record came from, a stable reason code and a human
//! message, and carries the original value bytes in base64 so nothing is lost.

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

/// Accumulates dead letters of one blob as JSON Lines.
#[derive(Debug, Default)]
pub struct DeadLetterFile {
    buf: Vec<u8>,
    count: u64,
}

impl DeadLetterFile {
    /// Appends one dead letter; `value` is encoded as base64.
    pub fn push(&mut self, mut letter: DeadLetter<'_>, value: Option<&[u8]>) {
        letter.value_base64 = value.map(|v| B64.encode(v));
        serde_json::to_writer(&mut self.buf, &letter).expect("writing JSON to a Vec cannot fail");
        self.buf.push(b'\n');
        self.count += 1;
    }

    /// How many dead letters were written.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The JSON Lines bytes, `None` when there are none (no file is written then).
    pub fn finish(self) -> Option<Vec<u8>> {
        (self.count > 0).then_some(self.buf)
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
        );
        let bytes = file.finish().expect("one letter");
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json line");
        assert_eq!(v["reason"], "invalid_utf8");
        assert_eq!(v["value_base64"], "/w==");
        assert_eq!(v["offset"], 1);
        assert!(DeadLetterFile::default().finish().is_none());
    }
}

//! What identifies the record at a raw blob's first offset, so that a blob found under a name can
//! be told apart from one of another incarnation of the topic.
//!
//! A blob's name depends only on topic, partition, first offset and the hour of the first
//! record's timestamp. A broker that restarts empty, or a topic deleted and re-created, hands out
//! the same offsets again, so a restarted worker can find a blob of the *previous* incarnation
//! under the name of a batch it reads now. The worker writes the fingerprint of each blob's first
//! record into the blob's metadata ([`model::naming::META_FIRST_FINGERPRINT`]) and compares it
//! with the record it holds at that offset before it treats the blob's records as landed.
//!
//! The fingerprint is FNV-1a (64 bits) over the record's timestamp, key and value bytes as Kafka
//! holds them, each length-prefixed, read back from the raw line: it does not depend on how a
//! line encodes them, so lines of earlier workers (other encodings of the same bytes) give the
//! same fingerprint. It is written as `fnv1a64:` and 16 hex digits; a value with another prefix
//! (written by a later version) cannot be compared and is treated like an absent one. It only
//! needs to tell two different records apart, not resist forgery: a 64-bit hash of a record
//! that differs in its timestamp (milliseconds), key or value collides with odds of 2^-64.

use std::fmt;

use model::raw::{RawLine, RawLineError};

/// Prefix naming the hash in the metadata value.
const PREFIX: &str = "fnv1a64:";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The fingerprint of one Kafka record (timestamp, key, value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// The fingerprint of a record with these timestamp, key and value.
    pub fn of(timestamp: Option<i64>, key: Option<&[u8]>, value: Option<&[u8]>) -> Self {
        let mut h = Fnv1a(FNV_OFFSET);
        match timestamp {
            Some(t) => {
                h.write(&[1]);
                h.write(&t.to_le_bytes());
            }
            None => h.write(&[0]),
        }
        for field in [key, value] {
            match field {
                Some(bytes) => {
                    h.write(&[1]);
                    h.write(&(bytes.len() as u64).to_le_bytes());
                    h.write(bytes);
                }
                None => h.write(&[0]),
            }
        }
        Fingerprint(h.0)
    }

    /// The fingerprint of the record a raw line holds (the line without its newline).
    pub fn of_line(line: &[u8]) -> Result<Self, RawLineError> {
        let line = RawLine::decode(line)?;
        let key = line.key_bytes()?;
        let value = line.value_bytes()?;
        Ok(Fingerprint::of(
            line.timestamp,
            key.as_deref(),
            value.as_deref(),
        ))
    }

    /// Reads a metadata value; `None` when it was not written by this hash (another version's).
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(PREFIX)?;
        if hex.len() != 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(Fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{:016x}", self.0)
    }
}

/// Whether a blob found under a batch's name holds the batch's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same first record: the blob holds what the batch holds from that offset on.
    Same,
    /// The blob has no (readable) fingerprint: a blob of an earlier worker, trusted as before.
    Unknown,
    /// Another record (this stored fingerprint) sits at that offset in the blob: another
    /// incarnation of the topic.
    Different(Fingerprint),
}

impl Verdict {
    /// Compares the fingerprint stored with a blob (if any) with the batch's record at the
    /// blob's first offset.
    pub fn of(stored: Option<Fingerprint>, fetched: Fingerprint) -> Self {
        match stored {
            None => Verdict::Unknown,
            Some(s) if s == fetched => Verdict::Same,
            Some(s) => Verdict::Different(s),
        }
    }

    /// The log field value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Unknown => "absent",
            Verdict::Different(_) => "different",
        }
    }
}

/// FNV-1a, 64 bits: a fixed, published function (stored values must read the same forever),
/// computed once per blob on one record, so its speed does not matter.
struct Fnv1a(u64);

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::raw::{RecordPosition, TimestampType, encode_line};

    fn line(offset: i64, ts: Option<i64>, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        let position = RecordPosition {
            topic: "t",
            partition: 0,
            offset,
            timestamp: ts,
            timestamp_type: TimestampType::CreateTime,
        };
        encode_line(&mut out, position, key, value, &[]);
        out.pop();
        out
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        let hash = |s: &[u8]| {
            let mut h = Fnv1a(FNV_OFFSET);
            h.write(s);
            h.0
        };
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_same_record_has_the_same_fingerprint_whatever_its_offset_or_encoding() {
        let v = br#"{"level": "INFO"}"#;
        let a = Fingerprint::of_line(&line(0, Some(5), Some(b"k"), Some(v))).expect("line");
        let b = Fingerprint::of_line(&line(7, Some(5), Some(b"k"), Some(v))).expect("line");
        assert_eq!(a, b);
        assert_eq!(a, Fingerprint::of(Some(5), Some(b"k"), Some(v)));
        // An earlier worker embedded the JSON text `null` verbatim; today it is a string.
        let legacy = br#"{"topic":"t","partition":0,"offset":7,"timestamp":5,"timestamp_type":"create_time","key_encoding":"null","key":null,"key_size":-1,"headers":[],"value_encoding":"json","value":null,"value_size":4}"#;
        assert_eq!(
            Fingerprint::of_line(legacy).expect("legacy line"),
            Fingerprint::of_line(&line(7, Some(5), None, Some(b"null"))).expect("line"),
        );
    }

    #[test]
    fn another_timestamp_key_or_value_changes_it() {
        let base = Fingerprint::of(Some(5), Some(b"k"), Some(b"v"));
        for other in [
            Fingerprint::of(Some(6), Some(b"k"), Some(b"v")),
            Fingerprint::of(None, Some(b"k"), Some(b"v")),
            Fingerprint::of(Some(5), None, Some(b"v")),
            Fingerprint::of(Some(5), Some(b""), Some(b"v")),
            Fingerprint::of(Some(5), Some(b"k"), Some(b"w")),
            Fingerprint::of(Some(5), Some(b"k"), None),
            // Length prefixes: moving a byte from key to value is another record.
            Fingerprint::of(Some(5), Some(b"kv"), Some(b"")),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn metadata_text_round_trips_and_foreign_values_are_not_compared() {
        let f = Fingerprint::of(Some(1), None, Some(b"x"));
        let text = f.to_string();
        assert!(
            text.starts_with("fnv1a64:") && text.len() == 8 + 16,
            "{text}"
        );
        assert_eq!(Fingerprint::parse(&text), Some(f));
        for foreign in [
            "",
            "fnv1a64:",
            "fnv1a64:xyz",
            "xxh3:0123456789abcdef",
            "0123456789abcdef",
        ] {
            assert_eq!(Fingerprint::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn compares_the_stored_fingerprint_with_the_fetched_record() {
        let mine = Fingerprint::of(Some(1), None, Some(b"new incarnation"));
        let theirs = Fingerprint::of(Some(1), None, Some(b"old incarnation"));
        assert_eq!(Verdict::of(Some(mine), mine), Verdict::Same);
        assert_eq!(Verdict::of(Some(theirs), mine), Verdict::Different(theirs));
        assert_eq!(
            Verdict::of(None, mine),
            Verdict::Unknown,
            "older blobs are trusted"
        );
    }
}

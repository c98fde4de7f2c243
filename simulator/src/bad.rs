//! Malformed records for the pipeline's dead-letter paths (`BAD_RATIO`).
//!
//! After each good record, with probability `BAD_RATIO`, one malformed record of a random
//! [`BadKind`] is sent to the same topic (on its own random partition). It is *added*, never a
//! replacement, so the games and the good counts in the manifest stay exact; the share of bad
//! records is therefore `R / (1 + R)`. Each kind is derived from the good record it follows.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Largest value the transformer accepts by default (`MAX_VALUE_BYTES`); oversized records exceed it.
pub const MAX_VALUE_BYTES: usize = 1_048_576;

/// What is wrong with an injected record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadKind {
    /// The first half of a good record: not valid JSON.
    TruncatedJson,
    /// A good envelope whose `level` is a number (Python's `20`), not a string.
    WrongType,
    /// A good envelope without `timestamp`.
    MissingField,
    /// Bytes that are not UTF-8 inside a string value.
    InvalidUtf8,
    /// Random bytes starting with NUL.
    Binary,
    /// Valid JSON larger than [`MAX_VALUE_BYTES`].
    Oversized,
    /// A good envelope whose `timestamp` does not parse.
    BadTimestamp,
    /// A zero-length value (not a null value).
    EmptyValue,
}

impl BadKind {
    /// Every kind, in the order they are drawn from.
    pub const ALL: [BadKind; 8] = [
        BadKind::TruncatedJson,
        BadKind::WrongType,
        BadKind::MissingField,
        BadKind::InvalidUtf8,
        BadKind::Binary,
        BadKind::Oversized,
        BadKind::BadTimestamp,
        BadKind::EmptyValue,
    ];

    /// The name written in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            BadKind::TruncatedJson => "truncated_json",
            BadKind::WrongType => "wrong_type",
            BadKind::MissingField => "missing_field",
            BadKind::InvalidUtf8 => "invalid_utf8",
            BadKind::Binary => "binary",
            BadKind::Oversized => "oversized",
            BadKind::BadTimestamp => "bad_timestamp",
            BadKind::EmptyValue => "empty_value",
        }
    }

    /// Parses a manifest name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// A random kind.
    pub fn pick<R: Rng>(rng: &mut R) -> Self {
        Self::ALL[rng.gen_range(0..Self::ALL.len())]
    }

    /// A malformed value derived from the good record `good` (a Python-style JSON envelope).
    pub fn corrupt<R: Rng>(self, good: &[u8], rng: &mut R) -> Vec<u8> {
        let text = String::from_utf8_lossy(good);
        match self {
            BadKind::TruncatedJson => good[..good.len() / 2].to_vec(),
            BadKind::WrongType => replace_field(&text, "level", "20"),
            BadKind::MissingField => {
                let start = text.find("\"timestamp\": ").unwrap_or(0);
                let end = text[start..]
                    .find(", ")
                    .map_or(text.len(), |e| start + e + 2);
                format!("{}{}", &text[..start], &text[end..]).into_bytes()
            }
            BadKind::InvalidUtf8 => {
                let at = text.find("\"log_message\": \"").map_or(1, |i| i + 16);
                let mut v = good.to_vec();
                v.splice(at..at, [0xff, 0xfe, 0xc3, 0x28]);
                v
            }
            BadKind::Binary => {
                let len = rng.gen_range(16..256);
                let mut v: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
                v[0] = 0;
                v
            }
            BadKind::Oversized => {
                // The log message alone is above the limit, whatever the rest of the record.
                let pad = "x".repeat(MAX_VALUE_BYTES + 1);
                replace_field(&text, "log_message", &format!("\"{pad}\""))
            }
            BadKind::BadTimestamp => replace_field(&text, "timestamp", "\"14/01/2024 18:22\""),
            BadKind::EmptyValue => Vec::new(),
        }
    }

    /// Whether `value` shows this kind's defect (what the tests check at the recorded offset).
    pub fn is_evident_in(self, value: &[u8]) -> bool {
        type Env<'a> = model::envelope::Envelope<'a>;
        let parses = |v: &[u8]| serde_json::from_slice::<Env<'_>>(v).is_ok();
        match self {
            BadKind::TruncatedJson
            | BadKind::WrongType
            | BadKind::MissingField
            | BadKind::Binary => !parses(value),
            BadKind::InvalidUtf8 => std::str::from_utf8(value).is_err(),
            BadKind::Oversized => value.len() > MAX_VALUE_BYTES && parses(value),
            BadKind::BadTimestamp => serde_json::from_slice::<Env<'_>>(value)
                .is_ok_and(|e| model::envelope::parse_timestamp(&e.timestamp).is_err()),
            BadKind::EmptyValue => value.is_empty(),
        }
    }
}

/// Replaces the value of top-level string field `key` (`"key": "..."`) with `raw`.
fn replace_field(text: &str, key: &str, raw: &str) -> Vec<u8> {
    let marker = format!("\"{key}\": \"");
    let Some(start) = text.find(&marker) else {
        return text.as_bytes().to_vec();
    };
    let value_start = start + marker.len() - 1;
    // Our envelope strings (level, timestamp, name, log_message) never contain quotes.
    let value_end = text[value_start + 1..]
        .find('"')
        .map_or(text.len(), |e| value_start + 1 + e + 1);
    format!("{}{raw}{}", &text[..value_start], &text[value_end..]).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const GOOD: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:06.640118", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {"game_token": "g", "user_token": "u"}}"#;

    #[test]
    fn every_kind_is_malformed_and_the_good_record_is_not() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for kind in BadKind::ALL {
            let bad = kind.corrupt(GOOD.as_bytes(), &mut rng);
            assert!(
                kind.is_evident_in(&bad),
                "{kind:?}: {}",
                String::from_utf8_lossy(&bad[..bad.len().min(200)])
            );
            assert!(
                !kind.is_evident_in(GOOD.as_bytes()),
                "{kind:?} flags a good record"
            );
            assert_eq!(BadKind::from_name(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn derived_kinds_change_only_the_named_field() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let wrong =
            String::from_utf8(BadKind::WrongType.corrupt(GOOD.as_bytes(), &mut rng)).expect("utf8");
        assert!(
            wrong.starts_with(r#"{"level": 20, "timestamp": "#),
            "{wrong}"
        );
        let missing = String::from_utf8(BadKind::MissingField.corrupt(GOOD.as_bytes(), &mut rng))
            .expect("utf8");
        assert!(
            missing.starts_with(r#"{"level": "INFO", "name": "#),
            "{missing}"
        );
        let ts = String::from_utf8(BadKind::BadTimestamp.corrupt(GOOD.as_bytes(), &mut rng))
            .expect("utf8");
        assert!(
            ts.contains(r#""timestamp": "14/01/2024 18:22", "name""#),
            "{ts}"
        );
    }
}

//! One line of a raw blob: a lossless JSON encoding of one Kafka record.
//!
//! A raw blob is gzipped JSON Lines; each line is produced by [`encode_line`] and read back by
//! [`RawLine::decode`]. The value is embedded verbatim when it is a single-line JSON text, so the
//! line stays greppable; otherwise it is kept as a JSON string (`utf8`) or base64 (`base64`). Keys
//! and header values use `utf8` or `base64`. `null` means the field was absent in Kafka. Sizes are
//! the serialized sizes Kafka reported (`-1` for an absent key or value), as aiokafka's
//! `serialized_key_size` / `serialized_value_size`.
//!
//! ```json
//! {"topic":"lib.server.game","partition":3,"offset":42,"timestamp":1705256524771,
//!  "timestamp_type":"create_time","key_encoding":"null","key":null,"key_size":-1,"headers":[],
//!  "value_encoding":"json","value":{"level": "INFO", ...},"value_size":518}
//! ```

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// How a payload (key, value or header value) is carried in a raw line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Absent in Kafka (null key, tombstone value, header without value).
    Null,
    /// Valid single-line JSON, embedded verbatim (values only).
    Json,
    /// Valid UTF-8 that is not embeddable JSON, carried as a JSON string.
    Utf8,
    /// Anything else, base64 (standard alphabet, padded) in a JSON string.
    Base64,
}

impl Encoding {
    /// The name written in raw lines (`key_encoding`, `value_encoding`, header `encoding`).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Null => "null",
            Encoding::Json => "json",
            Encoding::Utf8 => "utf8",
            Encoding::Base64 => "base64",
        }
    }
}

/// Kafka's timestamp type for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampType {
    /// No timestamp.
    NotAvailable,
    /// Set by the producer.
    CreateTime,
    /// Set by the broker.
    LogAppendTime,
}

impl TimestampType {
    /// The name used in raw lines and in `buffer_meta.timestamp_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimestampType::NotAvailable => "not_available",
            TimestampType::CreateTime => "create_time",
            TimestampType::LogAppendTime => "log_append_time",
        }
    }
}

/// Where a record sits in Kafka and when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPosition<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch, if the record has a timestamp.
    pub timestamp: Option<i64>,
    /// What the timestamp means.
    pub timestamp_type: TimestampType,
}

fn size_of(payload: Option<&[u8]>) -> i32 {
    payload.map_or(-1, |p| i32::try_from(p.len()).unwrap_or(i32::MAX))
}

/// Text form of a key or header value: UTF-8 as is, otherwise base64.
fn text_payload(payload: Option<&[u8]>) -> (Encoding, Option<Cow<'_, str>>) {
    match payload {
        None => (Encoding::Null, None),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => (Encoding::Utf8, Some(Cow::Borrowed(s))),
            Err(_) => (Encoding::Base64, Some(Cow::Owned(B64.encode(bytes)))),
        },
    }
}

/// Value form: verbatim JSON when it is valid JSON on one line, else a JSON string, else base64.
fn value_payload(payload: Option<&[u8]>) -> (Encoding, Option<Cow<'_, RawValue>>) {
    let Some(bytes) = payload else {
        return (Encoding::Null, None);
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        let b64 = B64.encode(bytes);
        let raw = RawValue::from_string(quote(&b64)).expect("a quoted base64 string is valid JSON");
        return (Encoding::Base64, Some(Cow::Owned(raw)));
    };
    // A JSON text with raw line breaks (allowed as whitespace) would split the line, and
    // surrounding whitespace would be lost by the embedding: keep those as strings.
    // (SIMD search: this runs on every record, and `str::contains` with a char set does not.)
    // The JSON text `null` would read back as an absent value (a tombstone): it is carried as
    // the string "null" so that a present value stays distinguishable from an absent one.
    let embeddable = memchr::memchr2(b'\n', b'\r', bytes).is_none()
        && text.trim() == text
        && !text.is_empty()
        && text != "null";
    if embeddable && let Ok(raw) = serde_json::from_str::<&RawValue>(text) {
        return (Encoding::Json, Some(Cow::Borrowed(raw)));
    }
    let raw = RawValue::from_string(quote(text)).expect("a quoted string is valid JSON");
    (Encoding::Utf8, Some(Cow::Owned(raw)))
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("serializing a str cannot fail")
}

/// Appends one raw line (JSON + `\n`) for a Kafka record to `out`; returns how the value was
/// carried (its `value_encoding`).
///
/// Written field by field rather than through a `Serialize` struct: this runs on every record the
/// worker lands, and the fixed field names and enum values are plain byte copies. The output is
/// byte-for-byte what serializing the line struct with serde_json gives (a property test holds it
/// to that), strings escaped by serde_json itself.
pub fn encode_line(
    out: &mut Vec<u8>,
    position: RecordPosition<'_>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&[u8], Option<&[u8]>)],
) -> Encoding {
    let (key_encoding, key_text) = text_payload(key);
    let (value_encoding, value_raw) = value_payload(value);
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"{\"topic\":");
    push_str(out, position.topic);
    out.extend_from_slice(b",\"partition\":");
    out.extend_from_slice(num.format(position.partition).as_bytes());
    out.extend_from_slice(b",\"offset\":");
    out.extend_from_slice(num.format(position.offset).as_bytes());
    out.extend_from_slice(b",\"timestamp\":");
    match position.timestamp {
        Some(t) => out.extend_from_slice(num.format(t).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"timestamp_type\":\"");
    out.extend_from_slice(position.timestamp_type.as_str().as_bytes());
    out.extend_from_slice(b"\",\"key_encoding\":\"");
    out.extend_from_slice(key_encoding.as_str().as_bytes());
    out.extend_from_slice(b"\",\"key\":");
    push_opt_str(out, key_text.as_deref());
    out.extend_from_slice(b",\"key_size\":");
    out.extend_from_slice(num.format(size_of(key)).as_bytes());
    out.extend_from_slice(b",\"headers\":[");
    for (i, (name, header)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (name_encoding, name_text) = text_payload(Some(name));
        let (encoding, text) = text_payload(*header);
        out.extend_from_slice(b"{\"key\":");
        push_opt_str(out, name_text.as_deref());
        out.extend_from_slice(b",\"key_encoding\":\"");
        out.extend_from_slice(name_encoding.as_str().as_bytes());
        out.extend_from_slice(b"\",\"encoding\":\"");
        out.extend_from_slice(encoding.as_str().as_bytes());
        out.extend_from_slice(b"\",\"value\":");
        push_opt_str(out, text.as_deref());
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"value_encoding\":\"");
    out.extend_from_slice(value_encoding.as_str().as_bytes());
    out.extend_from_slice(b"\",\"value\":");
    match &value_raw {
        Some(raw) => out.extend_from_slice(raw.get().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"value_size\":");
    out.extend_from_slice(num.format(size_of(value)).as_bytes());
    out.extend_from_slice(b"}\n");
    value_encoding
}

/// `s` as a JSON string (serde_json's escaping).
fn push_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing JSON to a Vec cannot fail");
}

fn push_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A header as read back from a raw line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RawHeader<'a> {
    /// Header name text (UTF-8 or base64, see `key_encoding`).
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    /// How `key` is carried: `utf8`, or `base64` for a name that is not UTF-8 (Kafka header
    /// names are bytes on the wire). Lines written before the field existed are `utf8`.
    #[serde(default = "utf8")]
    pub key_encoding: Encoding,
    /// How `value` is carried.
    pub encoding: Encoding,
    /// Header value text (UTF-8 or base64), `None` when absent.
    #[serde(borrow)]
    pub value: Option<Cow<'a, str>>,
}

fn utf8() -> Encoding {
    Encoding::Utf8
}

impl RawHeader<'_> {
    /// The header name's bytes, as they were in Kafka (`None` when `key_encoding` is `base64`
    /// and the text is not base64).
    pub fn key_bytes(&self) -> Option<Cow<'_, [u8]>> {
        decode_text(self.key_encoding, Some(&self.key)).flatten()
    }

    /// The header value's bytes: `Some(None)` for a header without value, `None` when the text
    /// does not decode as its `encoding` says.
    pub fn value_bytes(&self) -> Option<Option<Cow<'_, [u8]>>> {
        decode_text(self.encoding, self.value.as_deref())
    }
}

/// One decoded raw line. Borrows from the line's bytes.
#[derive(Debug, Deserialize)]
pub struct RawLine<'a> {
    /// Topic name.
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: Option<i64>,
    /// What the timestamp means.
    pub timestamp_type: TimestampType,
    /// How `key` is carried.
    pub key_encoding: Encoding,
    /// Key text (UTF-8 or base64).
    #[serde(borrow)]
    pub key: Option<Cow<'a, str>>,
    /// Serialized key size, `-1` for a null key.
    pub key_size: i32,
    /// Record headers in order.
    #[serde(borrow)]
    pub headers: Vec<RawHeader<'a>>,
    /// How `value` is carried.
    pub value_encoding: Encoding,
    /// The value: verbatim JSON, or a JSON string for `utf8` / `base64`.
    #[serde(borrow)]
    pub value: Option<&'a RawValue>,
    /// Serialized value size, `-1` for a null value.
    pub value_size: i32,
}

/// Why a raw line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RawLineError {
    /// The line is not a raw record.
    #[error("raw line is not a valid record: {source}")]
    Json {
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The value claims an encoding its content does not match.
    #[error("raw line at offset {offset} has a {encoding:?} value that does not decode")]
    Payload {
        /// Offset of the record.
        offset: i64,
        /// The claimed encoding.
        encoding: Encoding,
    },
}

impl<'a> RawLine<'a> {
    /// Parses one raw line (without its trailing newline).
    pub fn decode(line: &'a [u8]) -> Result<Self, RawLineError> {
        serde_json::from_slice(line).map_err(|source| RawLineError::Json { source })
    }

    /// `"{topic}+{partition}+{offset}"`: the record's stable id across replays.
    pub fn msg_id(&self) -> String {
        crate::naming::msg_id(&self.topic, self.partition, self.offset)
    }

    /// The original value bytes, exactly as they were in Kafka (`None` for a null value).
    pub fn value_bytes(&self) -> Result<Option<Cow<'a, [u8]>>, RawLineError> {
        let Some(raw) = self.value else {
            // Lines written before `null` was carried as a string embedded it verbatim: the
            // `json` encoding still says a value was present.
            return Ok(
                (self.value_encoding == Encoding::Json).then_some(Cow::Borrowed(&b"null"[..]))
            );
        };
        let bad = || RawLineError::Payload {
            offset: self.offset,
            encoding: self.value_encoding,
        };
        match self.value_encoding {
            Encoding::Null => Ok(None),
            Encoding::Json => Ok(Some(Cow::Borrowed(raw.get().as_bytes()))),
            Encoding::Utf8 => {
                let s: String = serde_json::from_str(raw.get()).map_err(|_| bad())?;
                Ok(Some(Cow::Owned(s.into_bytes())))
            }
            Encoding::Base64 => {
                let s: Cow<'_, str> = serde_json::from_str(raw.get()).map_err(|_| bad())?;
                B64.decode(s.as_bytes())
                    .map(|b| Some(Cow::Owned(b)))
                    .map_err(|_| bad())
            }
        }
    }

    /// The original key bytes (`None` for a null key).
    pub fn key_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, RawLineError> {
        decode_text(self.key_encoding, self.key.as_deref()).ok_or(RawLineError::Payload {
            offset: self.offset,
            encoding: self.key_encoding,
        })
    }
}

fn decode_text(encoding: Encoding, text: Option<&str>) -> Option<Option<Cow<'_, [u8]>>> {
    match (encoding, text) {
        (Encoding::Null, _) | (_, None) => Some(None),
        (Encoding::Base64, Some(t)) => B64.decode(t).ok().map(|b| Some(Cow::Owned(b))),
        (_, Some(t)) => Some(Some(Cow::Borrowed(t.as_bytes()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The line as a serde struct: the reference [`encode_line`] must match byte for byte.
    #[derive(Serialize)]
    struct HeaderOut<'a> {
        key: Option<Cow<'a, str>>,
        key_encoding: Encoding,
        encoding: Encoding,
        value: Option<Cow<'a, str>>,
    }

    #[derive(Serialize)]
    struct LineOut<'a> {
        topic: &'a str,
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
        timestamp_type: TimestampType,
        key_encoding: Encoding,
        key: Option<Cow<'a, str>>,
        key_size: i32,
        headers: Vec<HeaderOut<'a>>,
        value_encoding: Encoding,
        value: Option<Cow<'a, RawValue>>,
        value_size: i32,
    }

    fn encode_with_serde(
        position: RecordPosition<'_>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Vec<u8> {
        let (key_encoding, key_text) = text_payload(key);
        let (value_encoding, value_raw) = value_payload(value);
        let line = LineOut {
            topic: position.topic,
            partition: position.partition,
            offset: position.offset,
            timestamp: position.timestamp,
            timestamp_type: position.timestamp_type,
            key_encoding,
            key: key_text,
            key_size: size_of(key),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    let (key_encoding, key) = text_payload(Some(k));
                    let (encoding, value) = text_payload(*v);
                    HeaderOut {
                        key,
                        key_encoding,
                        encoding,
                        value,
                    }
                })
                .collect(),
            value_encoding,
            value: value_raw,
            value_size: size_of(value),
        };
        let mut out = serde_json::to_vec(&line).expect("serializes");
        out.push(b'\n');
        out
    }

    fn pos(offset: i64) -> RecordPosition<'static> {
        RecordPosition {
            topic: "lib.server.game",
            partition: 3,
            offset,
            timestamp: Some(1_705_256_524_771),
            timestamp_type: TimestampType::CreateTime,
        }
    }

    fn roundtrip(key: Option<&[u8]>, value: Option<&[u8]>) -> (Encoding, Vec<u8>) {
        let mut out = Vec::new();
        let written = encode_line(&mut out, pos(42), key, value, &[(b"h", Some(b"\xff"))]);
        assert_eq!(
            out.iter().filter(|b| **b == b'\n').count(),
            1,
            "exactly one line"
        );
        let line = RawLine::decode(&out[..out.len() - 1]).expect("decodes");
        assert_eq!(line.offset, 42);
        assert_eq!(line.key_bytes().expect("key").as_deref(), key);
        assert_eq!(line.value_bytes().expect("value").as_deref(), value);
        assert_eq!(line.value_size, size_of(value));
        assert_eq!(
            written, line.value_encoding,
            "returns the encoding it wrote"
        );
        (line.value_encoding, out)
    }

    #[test]
    fn valid_json_value_is_embedded_verbatim() {
        let v = br#"{"level": "INFO", "log_message": "Attack Completed"}"#;
        let (enc, line) = roundtrip(None, Some(v));
        assert_eq!(enc, Encoding::Json);
        let text = String::from_utf8(line).expect("utf8");
        assert!(text.contains(r#""value":{"level": "INFO", "log_message": "Attack Completed"}"#));
    }

    #[test]
    fn non_json_text_is_a_string_and_binary_is_base64() {
        assert_eq!(roundtrip(None, Some(b"{\"level\": ")).0, Encoding::Utf8);
        assert_eq!(roundtrip(None, Some(b"{\"a\":\n1}")).0, Encoding::Utf8);
        assert_eq!(roundtrip(None, Some(b" 1")).0, Encoding::Utf8);
        assert_eq!(roundtrip(None, Some(b"")).0, Encoding::Utf8);
        assert_eq!(roundtrip(Some(b"k"), Some(b"\xc3\x28")).0, Encoding::Base64);
        assert_eq!(roundtrip(None, None).0, Encoding::Null);
    }

    #[test]
    fn a_value_that_is_the_json_null_stays_a_present_value() {
        let (enc, line) = roundtrip(None, Some(b"null"));
        assert_eq!(enc, Encoding::Utf8, "carried as the string \"null\"");
        assert!(
            String::from_utf8(line)
                .expect("utf8")
                .contains(r#""value":"null""#)
        );
        // A line of an earlier worker embedded it verbatim: `json` with a JSON null.
        let legacy = br#"{"topic":"t","partition":0,"offset":7,"timestamp":null,"timestamp_type":"not_available","key_encoding":"null","key":null,"key_size":-1,"headers":[],"value_encoding":"json","value":null,"value_size":4}"#;
        let line = RawLine::decode(legacy).expect("decodes");
        assert_eq!(
            line.value_bytes().expect("value").as_deref(),
            Some(&b"null"[..])
        );
        let absent = br#"{"topic":"t","partition":0,"offset":7,"timestamp":null,"timestamp_type":"not_available","key_encoding":"null","key":null,"key_size":-1,"headers":[],"value_encoding":"null","value":null,"value_size":-1}"#;
        let line = RawLine::decode(absent).expect("decodes");
        assert_eq!(line.value_bytes().expect("value"), None);
    }

    fn header_roundtrip(name: &[u8], value: Option<&[u8]>) -> String {
        let mut out = Vec::new();
        encode_line(&mut out, pos(1), None, Some(b"{}"), &[(name, value)]);
        let line = RawLine::decode(&out[..out.len() - 1]).expect("decodes");
        let [header] = &line.headers[..] else {
            panic!("one header: {:?}", line.headers)
        };
        assert_eq!(header.key_bytes().as_deref(), Some(name), "name kept whole");
        assert_eq!(
            header.value_bytes().expect("value decodes").as_deref(),
            value
        );
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn header_names_are_bytes_with_an_encoding() {
        let text = header_roundtrip(b"trace\xff\xfe", Some(b"v"));
        assert!(
            text.contains(r#""key":"dHJhY2X//g==","key_encoding":"base64""#),
            "{text}"
        );
        let text = header_roundtrip(b"a\0b", None);
        assert!(
            text.contains(r#""key":"a\u0000b","key_encoding":"utf8""#),
            "{text}"
        );
        header_roundtrip(b"", Some(b""));
    }

    #[test]
    fn header_names_of_earlier_lines_are_utf8() {
        let old = br#"{"topic":"t","partition":0,"offset":7,"timestamp":null,"timestamp_type":"not_available","key_encoding":"null","key":null,"key_size":-1,"headers":[{"key":"h","encoding":"utf8","value":"v"}],"value_encoding":"json","value":{},"value_size":2}"#;
        let line = RawLine::decode(old).expect("decodes");
        assert_eq!(line.headers[0].key_encoding, Encoding::Utf8);
        assert_eq!(line.headers[0].key_bytes().as_deref(), Some(&b"h"[..]));
    }

    proptest! {
        #[test]
        fn any_header_roundtrips(name in proptest::collection::vec(any::<u8>(), 0..16),
                                 value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16))) {
            header_roundtrip(&name, value.as_deref());
        }

        #[test]
        fn any_bytes_roundtrip(key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
                               value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..512))) {
            roundtrip(key.as_deref(), value.as_deref());
        }

        #[test]
        fn any_string_roundtrips(value in ".*") {
            roundtrip(None, Some(value.as_bytes()));
        }

        #[test]
        fn the_hand_written_line_is_the_serde_line(
            topic in ".{0,12}",
            partition in any::<i32>(),
            offset in any::<i64>(),
            timestamp in proptest::option::of(any::<i64>()),
            log_append in any::<bool>(),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
            value in proptest::option::of(prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..128),
                "[ -~]{0,64}".prop_map(String::into_bytes),
                Just(br#"{"level": "INFO", "n": [1, 2.5, null, "\u00e9\n"]}"#.to_vec()),
            ]),
            headers in proptest::collection::vec(
                (prop_oneof![
                    ".{0,8}".prop_map(String::into_bytes),
                    proptest::collection::vec(any::<u8>(), 0..8),
                ], proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16))),
                0..3,
            ),
        ) {
            let position = RecordPosition {
                topic: &topic,
                partition,
                offset,
                timestamp,
                timestamp_type: if log_append {
                    TimestampType::LogAppendTime
                } else if timestamp.is_some() {
                    TimestampType::CreateTime
                } else {
                    TimestampType::NotAvailable
                },
            };
            let headers: Vec<(&[u8], Option<&[u8]>)> =
                headers.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
            let mut out = b"previous line\n".to_vec();
            encode_line(&mut out, position, key.as_deref(), value.as_deref(), &headers);
            let reference =
                encode_with_serde(position, key.as_deref(), value.as_deref(), &headers);
            prop_assert_eq!(
                String::from_utf8_lossy(&out[14..]),
                String::from_utf8_lossy(&reference)
            );
            prop_assert_eq!(&out[14..], &reference[..]);
        }
    }
}

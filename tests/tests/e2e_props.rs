//! Property checks (the fuzzing of issue 8; cargo-fuzz needs a nightly toolchain that cannot be
//! installed here): the raw-line decoder and the transformer's record classifier and blob
//! transform, fed arbitrary bytes and structured-but-mutated simulator envelopes.
//!
//! Invariants: nothing panics; a record is GOOD or DEAD, never both or neither; in a blob,
//! good + dead = records and every record has exactly one `buffer_meta` row; each simulator
//! bad-record kind gets a reason code the run summary expects.
//!
//! `PROPTEST_CASES` sets the case count: `scripts/fuzz-check` runs 2000 (< 60 s in debug), the
//! long run is `PROPTEST_CASES=1000000 cargo nextest run -p tests --test e2e_props`. proptest
//! prints a failing case shrunk to a minimal input; pin it below as a plain `#[test]` (the one
//! found so far was in this file's own assumption: the transformer skips empty lines by design).

use std::io::Write;

use model::naming::RawBlobName;
use model::raw::{RawLine, RecordPosition, TimestampType, encode_line};
use proptest::prelude::*;
use rand::SeedableRng;
use transformer::classify::{Good, classify, classify_value};
use transformer::transform::{TransformOptions, transform};

const MAX: usize = 1 << 20;

/// Reference records (simulator-messages.md §1.5): one of each kind with a task, both TIMESTAMP forms.
const GOOD: [&str; 5] = [
    r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.518263", "name": "kafka.lib.server.lobby", "log_message": "Starting Match", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04Z\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g1\", \"PARTICIPANTS\": [\"a\", \"b\"], \"PARTICIPANTS_HEROS\": {\"a\": {\"token\": \"a\", \"id\": 191, \"attack\": 40992, \"health\": 141120}, \"b\": {\"token\": \"b\", \"id\": 70, \"attack\": 126900, \"health\": 1300000}}}, \"STATUS\": {\"GAME\": \"START\"}}"}"#,
    r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:06.640118", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {"game_token": "g1", "user_token": "b"}}"#,
    r#"{"level": "INFO", "timestamp": "2024-01-14T18:23:11.402776", "name": "kafka.lib.server.lobby", "log_message": "Game Timed Out", "task": "{\"TIMESTAMP\": \"2024-01-14T18:23:11Z\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g2\"}, \"STATUS\": {\"GAME\": \"TIMED OUT\"}}"}"#,
    r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.771305", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g1\", \"USER_TOKEN\": \"b\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"a\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 141120, \"ENEMY_HEALTH_POST\": 14220}}}"}"#,
    r#"{"level": "ERROR", "timestamp": "2024-01-14T18:22:05.901520", "name": "kafka.lib.server.game", "log_message": "Attacked Dead Enemy", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:05.901337\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g1\", \"USER_TOKEN\": \"b\"}, \"STATUS\": {\"ACTION\": \"NA\", \"DETAILS\": {\"ENEMY_TOKEN\": null, \"ENEMY_STATUS\": \"DEAD\"}}}"}"#,
];

fn line(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let pos = RecordPosition {
        topic: "lib.server.game",
        partition: 1,
        offset,
        timestamp: Some(1_705_256_524_771 + offset),
        timestamp_type: TimestampType::CreateTime,
    };
    encode_line(&mut out, pos, key, value, &[(b"h", value)]);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip to memory");
    gz.finish().expect("gzip to memory")
}

/// One mutation of a JSON text: the shapes fuzzers find (cuts, flips, deletions, swaps).
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    FlipByte(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    /// Replace a JSON string value's quotes-and-content by another token.
    Retype(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..12)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (
            any::<usize>(),
            prop_oneof![
                Just("null"),
                Just("20"),
                Just("[]"),
                Just("{}"),
                Just("\"\""),
                Just("\"x\"")
            ]
        )
            .prop_map(|(i, t)| Mutation::Retype(i, t)),
    ]
}

fn apply(text: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = text.to_vec();
    for m in muts {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Truncate(i) => v.truncate(at(*i, v.len())),
            Mutation::FlipByte(i, b) if !v.is_empty() => {
                let i = i % v.len();
                v[i] ^= b | 1;
            }
            Mutation::FlipByte(..) => {}
            Mutation::Delete(i, n) => {
                let s = at(*i, v.len());
                let e = (s + n).min(v.len());
                v.drain(s..e);
            }
            Mutation::Insert(i, bytes) => {
                let s = at(*i, v.len());
                v.splice(s..s, bytes.iter().copied());
            }
            Mutation::Retype(i, token) => {
                // Find a `": "` (a value start) near i and swap the following string for token.
                let text = String::from_utf8_lossy(&v).into_owned();
                let starts: Vec<usize> = text.match_indices("\": \"").map(|(p, _)| p + 3).collect();
                if let Some(&s) = starts.get(i % starts.len().max(1))
                    && let Some(len) = text[s + 1..].find('"')
                {
                    let mut out = text[..s].to_owned();
                    out.push_str(token);
                    out.push_str(&text[s + 1 + len + 1..]);
                    v = out.into_bytes();
                }
            }
        }
    }
    v
}

/// The classifier's verdict for a value, through the same path as the transformer (raw line).
fn verdict(value: Option<&[u8]>) -> Result<Good, transformer::deadletter::Rejection> {
    let bytes = line(7, None, value);
    let raw = RawLine::decode(&bytes[..bytes.len() - 1]).expect("encode_line output decodes");
    classify(&raw, MAX)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256), ..ProptestConfig::default() })]

    /// Arbitrary bytes never crash the raw-line decoder, and what decodes answers every accessor.
    #[test]
    fn raw_line_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(l) = RawLine::decode(&bytes) {
            let _ = (l.msg_id(), l.value_bytes(), l.key_bytes());
        }
    }

    /// Mutated raw lines (not random noise: real lines with cuts and flips) never crash it either.
    #[test]
    fn mutated_raw_lines_never_panic(which in 0usize..5, muts in proptest::collection::vec(mutation(), 1..4)) {
        let l = line(3, Some(b"k"), Some(GOOD[which].as_bytes()));
        let bytes = apply(&l[..l.len() - 1], &muts);
        if let Ok(l) = RawLine::decode(&bytes) {
            let _ = (l.msg_id(), l.value_bytes(), l.key_bytes());
            let _ = classify(&l, MAX);
        }
    }

    /// Any value is GOOD or DEAD without panicking; arbitrary bytes with a NUL are never GOOD.
    #[test]
    fn any_value_is_good_or_dead(value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..600))) {
        let v = verdict(value.as_deref());
        if let Some(bytes) = &value {
            if bytes.first() == Some(&0) {
                prop_assert!(v.is_err(), "a NUL-led value classified GOOD");
            }
        } else {
            prop_assert!(v.is_err(), "a null value is dead");
        }
    }

    /// Structured-but-mutated envelopes: never a panic; a GOOD one has a parseable envelope.
    #[test]
    fn mutated_envelopes_are_good_or_dead(which in 0usize..5, muts in proptest::collection::vec(mutation(), 1..4)) {
        let value = apply(GOOD[which].as_bytes(), &muts);
        match classify_value(&value, MAX) {
            Ok(good) => {
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&value).is_ok(), "GOOD but not JSON");
                prop_assert!(!good.log.log_message.is_empty() || value.windows(15).any(|w| w == b"\"log_message\": "));
            }
            Err(r) => prop_assert!(!r.reason.code().is_empty()),
        }
    }

    /// A whole blob of good, mutated and garbage lines: good + dead = records, one buffer_meta
    /// row per record, one log_meta row per good record, and undecodable lines are counted.
    #[test]
    fn blob_transform_accounts_for_every_line(items in proptest::collection::vec((0usize..5, proptest::collection::vec(mutation(), 0..3), 0u8..10), 1..40)) {
        let mut body = Vec::new();
        for (i, (which, muts, kind)) in items.iter().enumerate() {
            let value = apply(GOOD[*which].as_bytes(), muts);
            match kind {
                // Mostly real lines; some raw garbage lines (a broken worker or disk).
                // (one non-empty line: the transformer skips empty lines by design).
                0 => {
                    body.push(b'#');
                    body.extend(apply(b"{\"topic\": 1}", muts).into_iter().map(|b| if b == b'\n' { b' ' } else { b }));
                    body.push(b'\n');
                }
                1 => body.extend(line(i as i64, None, None)),
                _ => body.extend(line(i as i64, None, Some(&value))),
            }
        }
        let name_text = "lib.server.game/2024/01/14/18/lib.server.game+1+00000000000000000000.json.gz";
        let name = RawBlobName::parse(name_text).expect("name");
        let out = transform(&name, name_text, &gzip(&body), TransformOptions::default()).expect("a gzip blob always transforms");
        let c = &out.counts;
        prop_assert_eq!(c.good + c.dead, c.records);
        prop_assert_eq!(c.records + c.unreadable, c.lines);
        prop_assert_eq!(c.lines, items.len() as u64);
        prop_assert_eq!(c.rows.get("buffer_meta").copied().unwrap_or(0), c.records);
        prop_assert_eq!(c.rows.get("log_meta").copied().unwrap_or(0), c.good);
        prop_assert_eq!(out.deadletter.is_some(), c.dead + c.unreadable > 0);
    }
}

/// The simulator's bad kinds, applied to each reference record with many seeds, give the reason
/// codes the run summary (and the e2e bad-input test) expect.
#[test]
fn simulator_bad_kinds_map_to_the_expected_transformer_reasons() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    for kind in simulator::bad::BadKind::ALL {
        for good in GOOD {
            for _ in 0..10 {
                let bad = kind.corrupt(good.as_bytes(), &mut rng);
                let reason = verdict(Some(&bad))
                    .expect_err("an injected record is dead")
                    .reason;
                let want = tests::summary::expected_reasons(kind.as_str());
                assert!(
                    want.contains(&reason.code()),
                    "{kind:?} on {good}: got {reason}, expected one of {want:?}"
                );
            }
        }
    }
}

#[test]
fn reference_records_are_good() {
    for g in GOOD {
        assert!(verdict(Some(g.as_bytes())).is_ok(), "{g}");
    }
}

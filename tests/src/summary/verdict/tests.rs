//! The two verdicts on in-memory scans: a manifest that undercounts fails only the producer, a
//! record missing in raw fails the pipeline.

use model::naming::{RawBlobName, msg_id, raw_blob_name};
use model::schema::LogModel;

use super::*;

const T: &str = "lib.server.game";

fn blob(first: i64, offsets: &[i64]) -> RawBlob {
    let name = raw_blob_name(T, 0, first, Some(0));
    RawBlob {
        parsed: RawBlobName::parse(&name).expect("a raw blob name"),
        name,
        offsets: offsets.to_vec(),
        unreadable: 0,
    }
}

/// Two transformed raw blobs of partition 0 holding `offsets` (split at offset 5).
fn scan(offsets: &[i64]) -> Scan {
    let (a, b): (Vec<i64>, Vec<i64>) = offsets.iter().partition(|o| **o < 5);
    let mut scan = Scan::default();
    scan.insert(blob(0, &a), true);
    scan.insert(blob(5, &b), true);
    scan
}

/// What the transformer writes for `offsets` of partition 0 when `dead` (offset, reason) are
/// dead letters and the rest good records without lobby or game rows.
fn standard(offsets: &[i64], dead: &[(i64, &str)]) -> Standard {
    let mut std = Standard::default();
    for m in LogModel::ALL {
        std.rows.insert(m.name(), 0);
    }
    std.rows.insert("etl_meta", 2);
    std.rows.insert("buffer_meta", offsets.len() as u64);
    std.rows
        .insert("log_meta", (offsets.len() - dead.len()) as u64);
    for o in offsets {
        std.buffer_msg_ids.insert(msg_id(T, 0, *o), 1);
    }
    std.dead_letters = dead
        .iter()
        .map(|(o, reason)| DeadLetter {
            msg_id: Some(msg_id(T, 0, *o)),
            topic: T.into(),
            partition: Some(0),
            offset: Some(*o),
            reason: (*reason).into(),
            value_base64: None,
        })
        .collect();
    std
}

/// A manifest whose delivery reports confirmed `confirmed` in partition 0; `bad` are
/// `wrong_type` records, the rest good records without lobby or game rows.
fn manifest(confirmed: impl IntoIterator<Item = i64>, bad: &[i64]) -> Manifest {
    let mut m = Manifest::default();
    for o in confirmed {
        if bad.contains(&o) {
            m.bad(T, 0, o, "wrong_type");
        } else {
            m.good(T, 0, o, "Game Started", 0);
        }
    }
    m
}

#[track_caller]
fn assert_has(problems: &[String], text: &str) {
    assert!(
        problems.iter().any(|p| p.contains(text)),
        "no problem says {text:?}: {problems:#?}"
    );
}

#[test]
fn a_whole_run_passes_both_verdicts() {
    let all: Vec<i64> = (0..10).collect();
    let m = manifest(0..10, &[5]);
    let s = judge(
        &scan(&all),
        vec![],
        standard(&all, &[(5, "wrong_type")]),
        Some(&m),
    );
    assert!(s.ok(), "pipeline: {:#?}", s.pipeline);
    assert!(s.producer_ok(), "producer: {:#?}", s.producer);
    let text = s.to_string();
    assert!(text.contains("PIPELINE: OK"), "{text}");
    assert!(text.contains("PRODUCER: OK"), "{text}");
    assert!(text.contains("VERDICT: OK"), "{text}");
}

#[test]
fn a_manifest_that_undercounts_fails_the_producer_verdict_only() {
    // Offsets 3 and 7 were stored, but their delivery reports timed out: the manifest confirmed
    // 8 of the 10 records in [0, 9]; offset 7 was a bad record it never listed.
    let all: Vec<i64> = (0..10).collect();
    let mut m = manifest((0..10).filter(|o| ![3, 7].contains(o)), &[5]);
    m.failed(T, 0, "Message timed out");
    m.failed(T, 0, "Message timed out");
    let std = standard(&all, &[(5, "wrong_type"), (7, "invalid_json")]);
    let s = judge(&scan(&all), vec![], std, Some(&m));

    assert!(s.ok(), "pipeline: {:#?}", s.pipeline);
    assert!(!s.producer_ok());
    assert_eq!(s.unconfirmed, 2);
    assert_has(
        &s.producer,
        "lib.server.game/0: the manifest confirmed 8 deliveries, but its offset range [0, 9] \
             holds 10 records (10 of them in raw): 2 stored records",
    );
    assert_has(&s.producer, "2 deliveries fail or time out");
    assert_has(
        &s.producer,
        "log_meta: 8 rows, the manifest counts 7 good records",
    );
    assert_has(
        &s.producer,
        "not injected: lib.server.game+0+7 (invalid_json)",
    );
    let rec = s.records[T];
    assert_eq!(
        (rec.confirmed, rec.in_range, rec.in_raw),
        (Some(8), Some(10), 10)
    );
    let text = s.to_string();
    assert!(text.contains("PIPELINE: OK"), "{text}");
    assert!(text.contains("PRODUCER: FAILED"), "{text}");
    assert!(text.contains("VERDICT: FAILED (producer only)"), "{text}");
}

#[test]
fn an_offset_missing_in_raw_fails_the_pipeline_verdict() {
    let landed: Vec<i64> = (0..10).filter(|o| *o != 6).collect();
    let m = manifest(0..10, &[5]);
    let std = standard(&landed, &[(5, "wrong_type")]);
    let s = judge(&scan(&landed), vec![], std, Some(&m));

    assert!(!s.ok());
    assert_has(
        &s.pipeline,
        "missing in raw: lib.server.game/0: 9/10 offsets in raw",
    );
    assert!(s.producer_ok(), "producer: {:#?}", s.producer);
    let text = s.to_string();
    assert!(text.contains("PIPELINE: FAILED"), "{text}");
    assert!(text.contains("VERDICT: FAILED (pipeline)"), "{text}");
}

#[test]
fn with_a_manifest_that_knows_every_record_a_misclassified_record_is_the_pipelines() {
    // Offset 2 is a good record the transformer dead-lettered: raw and the tables still agree
    // (log_meta + dead = buffer_meta), only the manifest can tell.
    let all: Vec<i64> = (0..10).collect();
    let m = manifest(0..10, &[5]);
    let std = standard(&all, &[(2, "invalid_json"), (5, "wrong_type")]);
    let s = judge(&scan(&all), vec![], std, Some(&m));

    assert_has(
        &s.pipeline,
        "log_meta: 8 rows, the manifest counts 9 good records",
    );
    assert_has(
        &s.pipeline,
        "not injected: lib.server.game+0+2 (invalid_json)",
    );
    assert!(s.producer_ok(), "producer: {:#?}", s.producer);
}

#[test]
fn tables_that_disagree_with_raw_fail_the_pipeline_even_without_a_manifest() {
    let all: Vec<i64> = (0..10).collect();
    let mut std = standard(&all, &[]);
    std.buffer_msg_ids.remove(&msg_id(T, 0, 4));
    std.rows.insert("buffer_meta", 9);
    let s = judge(&scan(&all), vec![], std, None);

    assert_has(
        &s.pipeline,
        "1 records in raw have no buffer_meta row: lib.server.game+0+4",
    );
    assert_has(
        &s.pipeline,
        "buffer_meta: 9 rows, expected 10 (10 records in raw)",
    );
    assert!(s.producer_ok());
    assert!(s.to_string().contains("PRODUCER: not judged (no manifest)"));
}

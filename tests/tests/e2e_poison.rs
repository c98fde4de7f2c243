//! Poison pills: records crafted byte by byte (not through the simulator) that once stopped the
//! consumer group or landed in `raw` without ever reaching `standard`. Through the real worker
//! and `transformer watch`: every offset exactly once in `raw`, every record a row or a dead
//! letter with its reason, the worker never restarts, no blob is passed over or poisoned.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use simulator::manifest::{BadRecord, PartitionStats};
use tests::pipeline::Pipeline;
use tests::summary::wait_and_summarize;

/// A well-formed `Attack Completed` record (one `log_meta` and one `lib_server_game` row).
fn attack(i: usize) -> Vec<u8> {
    format!(
        r#"{{"level": "INFO", "timestamp": "2024-01-14T18:22:04.{i:06}", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-{i:012}\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}}, \"STATUS\": {{\"ACTION\": \"ATTACK\", \"DETAILS\": {{\"ENEMY_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 141120, \"ENEMY_HEALTH_POST\": 14220}}}}}}"}}"#
    )
    .into_bytes()
}

/// One crafted record: its Kafka timestamp, headers and value, and the bad kind if it is bad.
struct Crafted {
    timestamp: Option<i64>,
    headers: Vec<(&'static [u8], Option<&'static [u8]>)>,
    value: Option<Vec<u8>>,
    bad: Option<&'static str>,
}

fn corpus() -> Vec<Crafted> {
    let good = |i, timestamp, headers| Crafted {
        timestamp,
        headers,
        value: Some(attack(i)),
        bad: None,
    };
    vec![
        // A header name that is not UTF-8: rdkafka's own reader panics on it.
        good(1, None, vec![(b"\xff\xfetrace", Some(b"1"))]),
        // A header name holding a NUL byte, with and without a value.
        good(2, None, vec![(b"a\0b", Some(b"v")), (b"c\0", None)]),
        // Kafka timestamps outside years 0000-9999 name their blob (BATCH_SIZE=1 below makes
        // every record the first of its blob): year 10000, microseconds sent as milliseconds.
        good(3, Some(253_402_300_800_000), vec![]),
        good(4, Some(1_705_256_524_771_000), vec![]),
        good(5, Some(i64::MAX / 2), vec![]),
        // A negative year (-2).
        good(7, Some(-62_198_755_200_000), vec![]),
        // The JSON text `null` is a present value: not a tombstone, its bytes kept.
        Crafted {
            timestamp: None,
            headers: vec![],
            value: Some(b"null".to_vec()),
            bad: Some("json_null"),
        },
        Crafted {
            timestamp: None,
            headers: vec![(b"\xc3\x28", None)],
            value: None,
            bad: Some("tombstone"),
        },
        good(6, None, vec![]),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn crafted_records_neither_stop_the_group_nor_vanish_between_raw_and_standard() {
    let p = Pipeline::new("e2e-poison").await.expect("pipeline");
    let mut worker = p.spawn_worker("1", &[("BATCH_SIZE", "1")]).expect("worker");
    let _watch = p.spawn_watch("1", &[]).expect("watch");

    let producer = testkit::producer();
    let topic = p.topics.game.clone();
    let mut manifest = simulator::Manifest {
        mode: "crafted".into(),
        complete: true,
        ..Default::default()
    };
    let mut sent = BTreeMap::new();
    for partition in 0..4 {
        for c in corpus() {
            let headers = testkit::byte_headers(&c.headers);
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic)
                .partition(partition)
                .headers(headers);
            if let Some(v) = &c.value {
                rec = rec.payload(v);
            }
            if let Some(t) = c.timestamp {
                rec = rec.timestamp(t);
            }
            let offset = producer
                .send(rec, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
                .expect("delivered")
                .offset;
            let st: &mut PartitionStats = manifest
                .topics
                .entry(topic.clone())
                .or_default()
                .entry(partition)
                .or_default();
            if st.count == 0 {
                st.min_offset = offset;
            }
            st.count += 1;
            st.max_offset = offset;
            sent.insert((partition, offset), c.value.clone());
            match c.bad {
                Some(kind) => {
                    manifest.bad_records += 1;
                    manifest.bad.push(BadRecord {
                        topic: topic.clone(),
                        partition,
                        offset,
                        kind: kind.into(),
                    });
                }
                None => {
                    manifest.good_records += 1;
                    manifest.attack_rows += 1;
                    *manifest
                        .log_messages
                        .entry("Attack Completed".into())
                        .or_default() += 1;
                }
            }
        }
    }

    let (raw, standard) = p.storage.stores().expect("stores");
    let s = wait_and_summarize(
        raw,
        standard,
        Some(&manifest),
        Duration::from_secs(120),
        |m| eprintln!("[{}] waiting: {m}", p.id),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; logs in {}", p.log_dir.display()));
    eprintln!("{s}");
    assert!(s.ok(), "pipeline: {:#?}", s.pipeline);
    assert!(s.producer_ok(), "producer: {:#?}", s.producer);
    assert_eq!(s.standard.rows["log_meta"], manifest.good_records);
    assert_eq!(s.standard.rows["lib_server_game"], manifest.attack_rows);

    // Every bad record is a dead letter with its reason and its bytes: `null` is kept as the
    // four bytes, a tombstone has none.
    let null_b64 = "bnVsbA=="; // base64 of `null`
    for b in &manifest.bad {
        let d = s
            .standard
            .dead_letters
            .iter()
            .find(|d| d.partition == Some(b.partition) && d.offset == Some(b.offset))
            .unwrap_or_else(|| panic!("{}@{} has no dead letter", b.partition, b.offset));
        match b.kind.as_str() {
            "json_null" => {
                assert_eq!(d.reason, "wrong_type");
                assert_eq!(d.value_base64.as_deref(), Some(null_b64));
            }
            _ => {
                assert_eq!(d.reason, "null_value");
                assert_eq!(d.value_base64, None);
            }
        }
    }
    assert_eq!(s.standard.dead_letters.len() as u64, manifest.bad_records);

    // The worker read every record without dying (it was never restarted: a death would show).
    assert!(
        worker.try_wait().expect("worker status").is_none(),
        "the worker died on a crafted record; logs in {}",
        p.log_dir.display()
    );
    assert_eq!(sent.len() as u64, manifest.delivered());
}

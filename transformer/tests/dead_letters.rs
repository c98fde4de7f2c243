//! A bad-input corpus: each bad record is dead-lettered with its reason, good ones still land,
//! and nothing is lost (good + dead = records; unreadable lines are counted on their own).

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use transformer::process::process_blob;
use transformer::transform::TransformOptions;

fn env_with(ts: &str, msg: &str, task: &str) -> String {
    format!(
        r#"{{"level": "INFO", "timestamp": "{ts}", "name": "kafka.lib.server.game", "log_message": "{msg}", "task": {task}}}"#
    )
}

#[tokio::test]
async fn every_bad_record_is_dead_lettered_with_its_reason_and_good_ones_land() {
    let (stores, _, _) = containers();
    let oversized = format!(
        r#"{{"level": "INFO", "timestamp": "2024-01-14T18:22:04", "name": "n", "log_message": "{}"}}"#,
        "x".repeat(2000)
    );
    let corpus: Vec<(Rec, Option<&str>)> = vec![
        (Rec::value(ATTACK_1), None),
        (Rec::value(&ATTACK_2[..100]), Some("invalid_json")), // truncated
        (
            Rec::value(
                r#"{"level": 5, "timestamp": "2024-01-14T18:22:04", "name": "n", "log_message": "m"}"#,
            ),
            Some("wrong_type"),
        ),
        (
            Rec::value(r#"{"level": "INFO", "name": "n", "log_message": "m"}"#),
            Some("missing_field"),
        ),
        (Rec::value(b"\xc3\x28 not utf8"), Some("invalid_utf8")),
        (Rec::value([0u8, 159, 146, 150, 255]), Some("invalid_utf8")), // binary
        (Rec::value(oversized.as_bytes()), Some("value_too_large")),
        (
            Rec::value(env_with("14/01/2024 18:22", "m", "null")),
            Some("bad_timestamp"),
        ),
        (
            Rec::value(env_with(
                "2024-01-14T18:22:04",
                "Attack Completed",
                r#""{\"TIMESTAMP\": \"soon\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g\", \"USER_TOKEN\": \"u\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"e\", \"ENEMY_DAMAGE\": 1, \"ENEMY_HEALTH_PRIOR\": 1, \"ENEMY_HEALTH_POST\": 0}}}""#,
            )),
            Some("bad_timestamp"),
        ),
        (
            Rec::value(env_with(
                "2024-01-14T18:22:04",
                "Attack Completed",
                r#""{\"TIMESTAMP\": \"2024-01-14T18:22:04Z\"}""#,
            )),
            Some("bad_task"),
        ),
        (
            Rec::value(env_with("2024-01-14T18:22:04", "Attack Completed", "-1")),
            Some("bad_task"),
        ),
        (Rec::null(), Some("null_value")),
        (Rec::value(b""), Some("invalid_json")), // empty
        (Rec::value("[1, 2, 3]"), Some("wrong_type")),
        (Rec::value(DEAD_ENEMY), None),
    ];
    let recs: Vec<Rec> = corpus.iter().map(|(r, _)| r.clone()).collect();
    let (name, gz) = raw_blob(model::TOPIC_GAME, 0, 100, &recs);
    // A line that is not a raw line at all, appended as a second gzip member.
    let mut blob = gz;
    blob.extend(gzip(b"{\"this is\": \"not a raw line\"}\n"));
    upload(&stores.raw, &name, blob).await;

    let opts = TransformOptions {
        max_value_bytes: 1024,
        ..TransformOptions::default()
    };
    let p = process_blob(&stores, &name, opts, "test")
        .await
        .expect("a blob with bad records still succeeds");

    let want_dead = corpus.iter().filter(|(_, r)| r.is_some()).count() as u64;
    assert_eq!(p.counts.records, corpus.len() as u64);
    assert_eq!(
        (p.counts.good, p.counts.dead, p.counts.unreadable),
        (2, want_dead, 1)
    );
    assert_eq!(
        p.counts.good + p.counts.dead,
        p.counts.records,
        "nothing lost"
    );
    assert_eq!(p.counts.lines, p.counts.records + p.counts.unreadable);

    let dl_name =
        "_deadletter/lib.server.game/2024/01/14/18/lib.server.game+0+00000000000000000100.jsonl";
    let dl = get(&stores.standard, dl_name)
        .await
        .expect("dead-letter file");
    let letters: Vec<serde_json::Value> = dl
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("JSON line"))
        .collect();
    assert_eq!(letters.len() as u64, want_dead + 1);
    let by_offset: BTreeMap<i64, &serde_json::Value> = letters
        .iter()
        .filter_map(|l| l["offset"].as_i64().map(|o| (o, l)))
        .collect();
    for (i, (rec, reason)) in corpus.iter().enumerate() {
        let offset = 100 + i as i64;
        match reason {
            None => assert!(
                !by_offset.contains_key(&offset),
                "good record {offset} dead-lettered"
            ),
            Some(reason) => {
                let l = by_offset
                    .get(&offset)
                    .unwrap_or_else(|| panic!("no dead letter for offset {offset}"));
                assert_eq!(l["reason"], *reason, "offset {offset}: {l}");
                assert_eq!(l["source_blob"], name.as_str());
                assert_eq!(l["msg_id"], format!("lib.server.game+0+{offset}"));
                assert_eq!(l["partition"], 0);
                assert!(!l["message"].as_str().unwrap_or_default().is_empty());
                let bytes = l["value_base64"]
                    .as_str()
                    .map(|b| B64.decode(b).expect("base64"));
                assert_eq!(bytes, rec.value, "offset {offset}: raw bytes kept");
            }
        }
    }
    let unreadable = letters
        .iter()
        .find(|l| l["reason"] == "bad_raw_line")
        .expect("bad_raw_line letter");
    assert!(unreadable["offset"].is_null());
    assert_eq!(
        B64.decode(unreadable["value_base64"].as_str().expect("bytes"))
            .expect("base64"),
        b"{\"this is\": \"not a raw line\"}"
    );

    let buf = read_parquet(
        &stores.standard,
        "buffer_meta/2024/01/14/18/lib.server.game+0+00000000000000000100.parquet",
    )
    .await;
    assert_eq!(
        buf.num_rows(),
        corpus.len(),
        "every decodable record has a buffer_meta row"
    );
    let log = read_parquet(
        &stores.standard,
        "log_meta/2024/01/14/18/lib.server.game+0+00000000000000000100.parquet",
    )
    .await;
    assert_eq!(
        str_col(&log, "msg_id"),
        ["lib.server.game+0+100", "lib.server.game+0+114"]
    );
    let game = read_parquet(
        &stores.standard,
        "lib_server_game/2024/01/14/18/lib.server.game+0+00000000000000000100.parquet",
    )
    .await;
    assert_eq!(game.num_rows(), 1);
}

#[tokio::test]
async fn a_replay_without_dead_records_removes_a_stale_dead_letter_file() {
    let (stores, _, _) = containers();
    let (name, bad) = raw_blob(model::TOPIC_GAME, 1, 0, &[Rec::value("nope")]);
    upload(&stores.raw, &name, bad).await;
    let p = process_blob(&stores, &name, TransformOptions::default(), "test")
        .await
        .expect("ok");
    let dl = p
        .outputs
        .iter()
        .find(|o| o.starts_with("_deadletter/"))
        .expect("dead letter written")
        .clone();
    let (_, good) = raw_blob(model::TOPIC_GAME, 1, 0, &[Rec::value(ATTACK_1)]);
    upload(&stores.raw, &name, good).await;
    process_blob(&stores, &name, TransformOptions::default(), "test")
        .await
        .expect("ok");
    assert!(
        get(&stores.standard, &dl).await.is_none(),
        "stale dead letters removed"
    );
}

//! Golden raw blobs built from the simulator's reference messages → Parquet read back.

mod common;

use arrow::array::{AsArray, Int32Array};
use arrow::datatypes::{DataType, TimeUnit, UInt16Type};
use common::*;
use model::schema::LogModel;
use transformer::process::process_blob;
use transformer::transform::TransformOptions;

fn utc(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .timestamp_micros()
}

#[tokio::test]
async fn lobby_blob_yields_one_lobby_row_per_participant() {
    let (stores, _, _) = containers();
    let recs = [
        Rec::value(STARTING_MATCH),
        Rec::value(CLEANING),
        Rec::value(TIMED_OUT),
    ];
    let (name, gz) = raw_blob(model::TOPIC_LOBBY, 1, 40, &recs);
    upload(&stores.raw, &name, gz).await;

    let p = process_blob(&stores, &name, TransformOptions::default(), "test")
        .await
        .expect("transformed");
    assert_eq!((p.counts.records, p.counts.good, p.counts.dead), (3, 3, 0));
    let etl_id = "lib.server.lobby+1+00000000000000000040";
    let path = |m: LogModel| format!("{}/2024/01/14/18/{etl_id}.parquet", m.name());

    let etl = read_parquet(&stores.standard, &path(LogModel::EtlMeta)).await;
    assert_eq!(etl.num_rows(), 1);
    assert_eq!(str_col(&etl, "etl_id"), [etl_id]);
    assert_eq!(
        (str_col(&etl, "service"), str_col(&etl, "mode")),
        (vec!["Kafka".to_owned()], vec!["Batch".to_owned()])
    );
    assert_eq!(micros(&etl, "timestamp_start"), [Some(T0_MS * 1000)]);
    assert_eq!(micros(&etl, "timestamp_end"), [Some((T0_MS + 2) * 1000)]);

    let buf = read_parquet(&stores.standard, &path(LogModel::BufferMeta)).await;
    assert_eq!(buf.num_rows(), 3);
    assert_eq!(
        str_col(&buf, "msg_id"),
        [
            "lib.server.lobby+1+40",
            "lib.server.lobby+1+41",
            "lib.server.lobby+1+42"
        ]
    );
    assert_eq!(strings(&buf, "key"), [None, None, None]);
    assert_eq!(str_col(&buf, "headers"), ["[]", "[]", "[]"]);
    assert_eq!(str_col(&buf, "timestamp_type"), ["create_time"; 3]);
    let sizes: &Int32Array = buf
        .column_by_name("serialized_value_size")
        .expect("col")
        .as_primitive();
    assert_eq!(sizes.value(0) as usize, STARTING_MATCH.len());
    let key_sizes: &Int32Array = buf
        .column_by_name("serialized_key_size")
        .expect("col")
        .as_primitive();
    assert_eq!(key_sizes.value(0), -1);
    assert_eq!(
        buf.schema()
            .field_with_name("timestamp")
            .expect("ts")
            .data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );

    let log = read_parquet(&stores.standard, &path(LogModel::LogMeta)).await;
    assert_eq!(
        str_col(&log, "log_message"),
        ["Starting Match", "Cleaning Game Records", "Game Timed Out"]
    );
    assert_eq!(str_col(&log, "level"), ["INFO"; 3]);
    assert_eq!(str_col(&log, "name"), ["kafka.lib.server.lobby"; 3]);
    assert_eq!(
        micros(&log, "timestamp")[0],
        Some(utc("2024-01-14T18:22:04.518263Z"))
    );

    let lobby = read_parquet(&stores.standard, &path(LogModel::LibServerLobby)).await;
    assert_eq!(lobby.num_rows(), 2, "one row per PARTICIPANTS_HEROS entry");
    assert_eq!(str_col(&lobby, "msg_id"), ["lib.server.lobby+1+40"; 2]);
    assert_eq!(
        str_col(&lobby, "user_token"),
        [
            "6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b",
            "1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5"
        ]
    );
    assert_eq!(
        str_col(&lobby, "game_token"),
        ["9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13"; 2]
    );
    let ids = lobby
        .column_by_name("superhero_id")
        .expect("col")
        .as_primitive::<UInt16Type>();
    assert_eq!((ids.value(0), ids.value(1)), (191, 70));
    assert_eq!(u64s(&lobby, "superhero_attack"), [40992, 126900]);
    assert_eq!(u64s(&lobby, "superhero_health"), [141120, 1300000]);
    assert_eq!(
        micros(&lobby, "timestamp"),
        [Some(utc("2024-01-14T18:22:04Z")); 2]
    );

    assert!(
        get(&stores.standard, &path(LogModel::LibServerGame))
            .await
            .is_none(),
        "lobby blobs write no game file"
    );
    assert!(
        names(&stores.standard, Some("_deadletter"))
            .await
            .is_empty(),
        "no dead letters"
    );
}

#[tokio::test]
async fn game_blob_accepts_both_task_timestamp_formats() {
    let (stores, _, _) = containers();
    let recs = [
        Rec::value(ATTACK_1),
        Rec::value(ATTACK_2),
        Rec::value(ATTACK_3),
        Rec::value(DEAD_ENEMY),
        Rec::value(ATTACK_OLD),
    ];
    let (name, gz) = raw_blob(model::TOPIC_GAME, 3, 42, &recs);
    upload(&stores.raw, &name, gz).await;
    let p = process_blob(&stores, &name, TransformOptions::default(), "test")
        .await
        .expect("transformed");
    assert_eq!((p.counts.good, p.counts.dead), (5, 0));
    assert_eq!(p.counts.rows.get("lib_server_game"), Some(&4));
    assert_eq!(p.counts.rows.get("log_meta"), Some(&5));
    assert_eq!(
        p.counts.rows.get("lib_server_lobby"),
        None,
        "game blobs write no lobby file"
    );

    let base = "2024/01/14/18/lib.server.game+3+00000000000000000042.parquet";
    let game = read_parquet(&stores.standard, &format!("lib_server_game/{base}")).await;
    assert_eq!(
        game.num_rows(),
        4,
        "one row per Attack Completed; Attacked Dead Enemy has none"
    );
    assert_eq!(
        micros(&game, "timestamp"),
        [
            Some(utc("2024-01-14T18:22:04.771092Z")),
            Some(utc("2024-01-14T18:22:05.214877Z")),
            Some(utc("2024-01-14T18:22:05.632410Z")),
            Some(utc("2024-01-14T18:22:06Z")),
        ]
    );
    assert_eq!(
        str_col(&game, "msg_id"),
        [
            "lib.server.game+3+42",
            "lib.server.game+3+43",
            "lib.server.game+3+44",
            "lib.server.game+3+46"
        ]
    );
    assert_eq!(str_col(&game, "action"), ["ATTACK"; 4]);
    assert_eq!(str_col(&game, "user_token")[3], "u-old");
    assert_eq!(
        str_col(&game, "enemy_token")[0],
        "6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b"
    );
    assert_eq!(u64s(&game, "enemy_damage"), [126900, 40992, 126900, 5]);
    assert_eq!(
        u64s(&game, "enemy_health_prior"),
        [141120, 1300000, 14220, 7]
    );
    assert_eq!(u64s(&game, "enemy_health_post"), [14220, 1259008, 0, 2]);

    let log = read_parquet(&stores.standard, &format!("log_meta/{base}")).await;
    assert_eq!(str_col(&log, "level")[3], "ERROR");
    assert_eq!(
        micros(&log, "timestamp")[4],
        Some(utc("2024-01-14T18:22:06Z")),
        "envelope without fraction"
    );
}

#[tokio::test]
async fn client_blob_writes_the_meta_models_only_and_keys_headers_survive() {
    let (stores, _, _) = containers();
    let mut rec = Rec::value(
        r#"{"level": "INFO", "timestamp": "2024-01-14T18:20:31.118904", "name": "kafka.client.__main__", "log_message": "Starting Web Socket Server"}"#,
    );
    rec.key = Some(b"\xff\x00".to_vec());
    rec.headers = vec![
        ("trace".into(), Some(b"abc".to_vec())),
        ("empty".into(), None),
    ];
    let mut text_key = Rec::value(
        r#"{"level": "INFO", "timestamp": "2024-01-14T18:20:31.125377", "name": "kafka.client.__main__", "log_message": "Listening on 0.0.0.0:5678"}"#,
    );
    text_key.key = Some(b"k1".to_vec());
    let (name, gz) = raw_blob(model::TOPIC_CLIENT, 0, 0, &[rec, text_key]);
    upload(&stores.raw, &name, gz).await;
    let p = process_blob(&stores, &name, TransformOptions::default(), "test")
        .await
        .expect("transformed");
    assert_eq!(
        p.outputs.len(),
        3,
        "etl_meta, buffer_meta, log_meta: {:?}",
        p.outputs
    );
    let buf = read_parquet(
        &stores.standard,
        "buffer_meta/2024/01/14/18/client.__main__+0+00000000000000000000.parquet",
    )
    .await;
    assert_eq!(
        strings(&buf, "key"),
        [Some("/wA=".to_owned()), Some("k1".to_owned())],
        "binary keys are base64"
    );
    let headers: serde_json::Value =
        serde_json::from_str(&str_col(&buf, "headers")[0]).expect("headers JSON");
    assert_eq!(
        headers,
        serde_json::json!([{"key": "trace", "encoding": "utf8", "value": "abc"}, {"key": "empty", "encoding": "null", "value": null}])
    );
}

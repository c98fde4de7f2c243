//! The Functions custom handler: a recorded-shape POST produces the outputs and the documented
//! answer; a missing blob or unreachable storage answers non-2xx so the host retries.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use transformer::process::Stores;
use transformer::serve::Handler;
use transformer::transform::TransformOptions;

async fn start(stores: Stores) -> (SocketAddr, CancellationToken) {
    let stop = CancellationToken::new();
    let handler = Handler {
        stores,
        transform: TransformOptions::default(),
        owner: "test".into(),
    };
    let (addr, server) = service::ops::bind(
        "127.0.0.1:0".parse().expect("addr"),
        handler.router(),
        stop.clone(),
    )
    .await
    .expect("bind");
    tokio::spawn(server);
    (addr, stop)
}

#[tokio::test]
async fn post_with_the_hosts_payload_transforms_the_blob_and_answers_the_summary() {
    let (stores, _, _) = containers();
    let (name, gz) = raw_blob(
        model::TOPIC_GAME,
        2,
        7,
        &[Rec::value(ATTACK_1), Rec::value("bad")],
    );
    upload(&stores.raw, &name, gz.clone()).await;
    let (addr, stop) = start(stores.clone()).await;

    let client = reqwest::Client::new();
    for (function, with_name) in [("transform", true), ("another_name", false)] {
        let res = client
            .post(format!("http://{addr}/{function}"))
            .json(&invocation(&name, &gz, with_name))
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), 200, "function {function}");
        let body: serde_json::Value = res.json().await.expect("JSON answer");
        assert_eq!(body["Outputs"], serde_json::json!({}));
        let log = body["Logs"][0].as_str().expect("a log line");
        assert!(
            log.starts_with(&format!(
                "transformed {name}: 2 records, 1 good, 1 dead letters"
            )),
            "{log}"
        );
        let rv = &body["ReturnValue"];
        assert_eq!(rv["blob"], name.as_str());
        assert_eq!(rv["etl_id"], "lib.server.game+2+00000000000000000007");
        assert_eq!(rv["counts"]["good"], 1);
        assert_eq!(rv["counts"]["dead_by_reason"]["invalid_json"], 1);
        assert_eq!(
            rv["outputs"].as_array().map(Vec::len),
            Some(5),
            "4 Parquet files + dead letters"
        );
    }
    let written = outputs(&stores.standard).await;
    assert_eq!(
        written.len(),
        5,
        "two deliveries, no duplicates: {:?}",
        written.iter().map(|w| &w.0).collect::<Vec<_>>()
    );
    let receipt = get(&stores.standard, &format!("_receipts/{name}.json"))
        .await
        .expect("receipt");
    let receipt: serde_json::Value = serde_json::from_slice(&receipt).expect("receipt JSON");
    assert_eq!(receipt["counts"]["records"], 2);
    stop.cancel();
}

#[tokio::test]
async fn a_missing_blob_answers_500_so_the_host_retries() {
    let (stores, _, _) = containers();
    let (addr, stop) = start(stores).await;
    let name = "lib.server.game/2024/01/14/18/lib.server.game+0+00000000000000000001.json.gz";
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/transform"))
        .json(&invocation(name, b"", true))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 500);
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(body["ReturnValue"]["kind"], "read_failed");
    assert!(body["Logs"][0].as_str().expect("log").contains(name));
    stop.cancel();
}

#[tokio::test]
async fn unreachable_storage_answers_500() {
    let stores = Stores {
        raw: unreachable_store(),
        standard: unreachable_store(),
    };
    let (addr, stop) = start(stores).await;
    let name = "lib.server.game/2024/01/14/18/lib.server.game+0+00000000000000000001.json.gz";
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/transform"))
        .timeout(Duration::from_secs(60))
        .json(&invocation(name, b"", true))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 500);
    stop.cancel();
}

#[tokio::test]
async fn payloads_without_a_blob_name_are_rejected_and_foreign_names_poisoned_visibly() {
    let (stores, _, _) = containers();
    let (addr, stop) = start(stores.clone()).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("http://{addr}/transform"))
        .json(&serde_json::json!({"Data": {}, "Metadata": {}}))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 400);
    let res = client
        .post(format!("http://{addr}/transform"))
        .json(&invocation("notes/readme.txt", b"hi", true))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 200, "retrying a foreign name cannot help");
    let body: serde_json::Value = res.json().await.expect("JSON answer");
    let reason = body["ReturnValue"]["poisoned"].as_str().expect("a reason");
    assert!(reason.contains("is not a raw blob name"), "{reason}");
    assert!(outputs(&stores.standard).await.is_empty());
    let entry = get(&stores.standard, "_poison/notes/readme.txt.json")
        .await
        .expect("a poison entry says why the blob was not transformed");
    let entry: serde_json::Value = serde_json::from_slice(&entry).expect("JSON entry");
    assert!(
        entry["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a raw blob name"))
    );
    stop.cancel();
}

#[tokio::test]
async fn a_body_larger_than_axums_default_limit_is_accepted() {
    let (stores, _, _) = containers();
    // 3 MiB of incompressible-ish values: the base64 copy in Data exceeds axum's 2 MB default.
    let big: Vec<Rec> = (0..3000)
        .map(|i| Rec::value(format!("{i:01024}")))
        .collect();
    let (name, gz) = raw_blob(model::TOPIC_CLIENT, 0, 0, &big);
    let padded: Vec<u8> = gz
        .iter()
        .copied()
        .chain(std::iter::repeat_n(7u8, 3 << 20))
        .collect();
    upload(&stores.raw, &name, gz).await;
    let (addr, stop) = start(stores).await;
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/transform"))
        .json(&invocation(&name, &padded, true))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 200);
    stop.cancel();
}

/// The real binary: `transformer serve` listens on FUNCTIONS_CUSTOMHANDLER_PORT, serves the
/// handler, `/readyz` (both containers) and `/metrics` on the same port.
#[tokio::test]
async fn the_binary_serves_the_handler_and_ops_routes_on_the_functions_port() {
    let (stores, raw_url, std_url) = containers();
    let (name, gz) = raw_blob(model::TOPIC_LOBBY, 0, 5, &[Rec::value(STARTING_MATCH)]);
    upload(&stores.raw, &name, gz.clone()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = tokio::process::Command::new(testkit::bin("transformer"))
        .arg("serve")
        .env_clear()
        .envs(testkit::azure_env())
        .env("RAW_URL", &raw_url)
        .env("STANDARD_URL", &std_url)
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("LOG_FORMAT", "text")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn transformer serve");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    testkit::wait_for("readyz 200", Duration::from_secs(20), || {
        let c = client.clone();
        let url = format!("{base}/readyz");
        async move { c.get(url).send().await.ok().filter(|r| r.status() == 200) }
    })
    .await
    .expect("ready");
    let res = client
        .post(format!("{base}/transform"))
        .json(&invocation(&name, &gz, true))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 200);
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("transformer_blobs_total{trigger=\"serve\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("transformer_rows_total{model=\"lib_server_lobby\"} 2"),
        "{metrics}"
    );
    assert!(
        get(
            &stores.standard,
            "lib_server_lobby/2024/01/14/18/lib.server.lobby+0+00000000000000000005.parquet"
        )
        .await
        .is_some()
    );
    child.kill().await.expect("stop child");
}

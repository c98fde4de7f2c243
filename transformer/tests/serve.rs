//! The Functions custom handler: the host's Event Grid invocation (and the blob trigger's, still
//! understood) produces the outputs and the documented answer: 200 transformed, ignored or
//! poisoned; 400 without a blob name; 500 when storage fails and 503 when every transform slot
//! stays busy, so that the invocation fails and Event Grid (or the host) delivers it again.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use object_store::ObjectStore;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use transformer::process::Stores;
use transformer::serve::{BLOB_CREATED, BODY_LIMIT, Handler, ServeOptions};
use transformer::transform::TransformOptions;

/// The raw container the handler is configured with in these tests (the stores are unique
/// Azurite containers; the name only decides which events are for us).
const RAW: &str = "raw";

async fn start(stores: Stores) -> (SocketAddr, CancellationToken) {
    start_with(stores, ServeOptions::default()).await
}

async fn start_with(stores: Stores, options: ServeOptions) -> (SocketAddr, CancellationToken) {
    assert_eq!(options.raw_container, RAW);
    let stop = CancellationToken::new();
    let handler = Handler {
        stores,
        transform: TransformOptions::default(),
        owner: "test".into(),
    };
    let (addr, server) = service::ops::bind(
        "127.0.0.1:0".parse().expect("addr"),
        handler.router_with(options),
        stop.clone(),
    )
    .await
    .expect("bind");
    tokio::spawn(server);
    (addr, stop)
}

/// A `Microsoft.Storage.BlobCreated` event for `container`/`name`, in Event Grid's schema
/// (learn: event-grid/event-schema-blob-storage; functions-bindings-event-grid-trigger, "Event
/// schema").
fn blob_event(container: &str, name: &str, event_type: &str) -> Value {
    json!({
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": format!("/blobServices/default/containers/{container}/blobs/{name}"),
        "eventType": event_type,
        "eventTime": "2024-01-14T18:22:10.1234567Z",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "data": {
            "api": "PutBlockList",
            "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
            "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
            "eTag": "0x8DC0000000000",
            "contentType": "application/octet-stream",
            "contentLength": 524288,
            "blobType": "BlockBlob",
            "url": format!("http://127.0.0.1:10000/devstoreaccount1/{container}/{}", name.replace('+', "%2B")),
            "sequencer": "00000000000004420000000000028963",
            "storageDiagnostics": {"batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0"}
        },
        "dataVersion": "",
        "metadataVersion": "1"
    })
}

/// The host's invocation for an `eventGridTrigger` named `event` (host source:
/// ScriptInvocationContextExtensions.ToHttpScriptInvocationContext; the Event Grid extension's
/// binding data is the event's `data`). `as_text`: the event as its JSON text, as the host sends
/// a string-typed trigger value.
fn event_invocation(event: &Value, as_text: bool) -> Value {
    let value = if as_text {
        Value::String(serde_json::to_string_pretty(event).expect("text"))
    } else {
        event.clone()
    };
    json!({
        "Data": {"event": value},
        "Metadata": {
            "data": event["data"],
            "sys": {"MethodName": "transform", "UtcNow": "2024-01-14T18:22:10.2234567Z", "RandGuid": "0f8fad5b-d9cb-469f-a165-70867728950e"}
        }
    })
}

async fn post(addr: SocketAddr, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/transform"))
        .timeout(Duration::from_secs(60))
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON answer"))
}

#[tokio::test]
async fn a_blob_created_event_transforms_the_blob_and_answers_the_summary() {
    let (stores, _, _) = containers();
    let (name, gz) = raw_blob(
        model::TOPIC_GAME,
        2,
        7,
        &[Rec::value(ATTACK_1), Rec::value("bad")],
    );
    upload(&stores.raw, &name, gz).await;
    let (addr, stop) = start(stores.clone()).await;
    let event = blob_event(RAW, &name, BLOB_CREATED);
    // The event as an object and as JSON text; the second delivery overwrites, never duplicates.
    for as_text in [false, true] {
        let (status, body) = post(addr, &event_invocation(&event, as_text)).await;
        assert_eq!(status, 200, "as_text {as_text}: {body}");
        assert_eq!(body["Outputs"], json!({}));
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
        assert_eq!(rv["counts"]["dead_by_reason"]["invalid_json"], 1);
        assert_eq!(rv["outputs"].as_array().map(Vec::len), Some(5));
    }
    assert_eq!(outputs(&stores.standard).await.len(), 5, "no duplicates");
    assert!(
        get(&stores.standard, &format!("_receipts/{name}.json"))
            .await
            .is_some(),
        "a receipt as in watch mode"
    );
    stop.cancel();
}

#[tokio::test]
async fn other_event_types_and_other_containers_answer_200_and_change_nothing() {
    let (stores, _, _) = containers();
    let (name, gz) = raw_blob(model::TOPIC_GAME, 0, 1, &[Rec::value(ATTACK_1)]);
    upload(&stores.raw, &name, gz).await;
    let (addr, stop) = start(stores.clone()).await;
    for (event, why) in [
        (
            blob_event(RAW, &name, "Microsoft.Storage.BlobDeleted"),
            "event type Microsoft.Storage.BlobDeleted is not Microsoft.Storage.BlobCreated",
        ),
        (
            blob_event("standard", &name, BLOB_CREATED),
            "is in container standard, not in the raw container raw",
        ),
    ] {
        let (status, body) = post(addr, &event_invocation(&event, false)).await;
        assert_eq!(status, 200, "{body}");
        let ignored = body["ReturnValue"]["ignored"].as_str().expect("a reason");
        assert!(ignored.contains(why), "{ignored}");
        assert!(
            body["Logs"][0]
                .as_str()
                .expect("log")
                .starts_with("ignored: ")
        );
    }
    assert!(outputs(&stores.standard).await.is_empty());
    assert!(
        get(&stores.standard, &format!("_receipts/{name}.json"))
            .await
            .is_none()
    );
    stop.cancel();
}

#[tokio::test]
async fn an_event_without_subject_or_url_answers_400() {
    let (stores, _, _) = containers();
    let (addr, stop) = start(stores.clone()).await;
    let mut event = blob_event(RAW, "x.json.gz", BLOB_CREATED);
    event.as_object_mut().expect("object").remove("subject");
    event["data"].as_object_mut().expect("data").remove("url");
    let (status, body) = post(addr, &event_invocation(&event, false)).await;
    assert_eq!(status, 400, "{body}");
    let error = body["ReturnValue"]["error"].as_str().expect("error");
    assert!(error.contains("neither a blob `subject`"), "{error}");
    assert!(outputs(&stores.standard).await.is_empty());
    stop.cancel();
}

#[tokio::test]
async fn an_event_for_a_blob_that_is_gone_or_unreadable_answers_500() {
    let name = "lib.server.game/2024/01/14/18/lib.server.game+0+00000000000000000001.json.gz";
    let event = event_invocation(&blob_event(RAW, name, BLOB_CREATED), true);
    let (stores, _, _) = containers();
    let (addr, stop) = start(stores).await;
    let (status, body) = post(addr, &event).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["ReturnValue"]["kind"], "read_failed");
    stop.cancel();
    let down = Stores {
        raw: refusing_store(),
        standard: refusing_store(),
    };
    let (addr, stop) = start(down).await;
    let (status, body) = post(addr, &event).await;
    assert_eq!(status, 500, "storage down: {body}");
    assert!(body["Logs"][0].as_str().expect("log").contains(name));
    stop.cancel();
}

/// An Azure store whose blob endpoint is `addr` (path style, like Azurite). Not the emulator mode:
/// object_store's emulator mode ignores the endpoint and talks to `AZURITE_BLOB_STORAGE_URL`.
fn store_at(addr: SocketAddr) -> Arc<dyn ObjectStore> {
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account("devstoreaccount1")
        .with_endpoint(format!("http://{addr}/devstoreaccount1"))
        .with_allow_http(true)
        .with_bearer_token_authorization("test")
        .with_container_name(RAW)
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .expect("store");
    Arc::new(store)
}

/// Storage that refuses connections: a port that was just free.
fn refusing_store() -> Arc<dyn ObjectStore> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr");
    store_at(addr)
}

#[tokio::test]
async fn when_every_transform_slot_stays_busy_the_invocation_answers_503() {
    // Storage that accepts connections and never answers: the first transform hangs on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let store = store_at(listener.local_addr().expect("addr"));
    let stores = Stores {
        raw: store.clone(),
        standard: store,
    };
    let options = ServeOptions {
        max_concurrent: 1,
        slot_wait: Duration::from_millis(200),
        ..ServeOptions::default()
    };
    let (addr, stop) = start_with(stores, options).await;
    let name = |o: i64| format!("lib.server.game/2024/01/14/18/lib.server.game+0+{o:020}.json.gz");
    // The first transform takes the only slot and hangs on storage.
    let first = event_invocation(&blob_event(RAW, &name(1), BLOB_CREATED), false);
    let holder = tokio::spawn(async move { post(addr, &first).await });
    let second = event_invocation(&blob_event(RAW, &name(2), BLOB_CREATED), false);
    let body = testkit::wait_for("a 503 answer", Duration::from_secs(20), || {
        let second = second.clone();
        async move {
            let res = reqwest::Client::new()
                .post(format!("http://{addr}/transform"))
                .timeout(Duration::from_secs(2))
                .json(&second)
                .send()
                .await
                .ok()?;
            (res.status() == 503).then_some(res.json::<Value>().await.ok()?)
        }
    })
    .await
    .expect("the second invocation is refused while the first holds the slot");
    assert_eq!(body["ReturnValue"]["kind"], "busy");
    assert!(
        body["ReturnValue"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("all 1 transform slots stayed busy")),
        "{body}"
    );
    holder.abort();
    stop.cancel();
}

#[tokio::test]
async fn the_blob_trigger_payload_still_transforms_the_blob_and_answers_the_summary() {
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
        raw: refusing_store(),
        standard: refusing_store(),
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
async fn a_body_over_the_limit_is_refused_with_413() {
    let (stores, _, _) = containers();
    let (addr, stop) = start(stores).await;
    // The blob trigger's shape with a base64 copy of a blob larger than the limit.
    let big = vec![7u8; BODY_LIMIT];
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/transform"))
        .json(&invocation("notes/big.bin", &big, true))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 413);
    stop.cancel();
}

/// The real binary: `transformer serve` listens on FUNCTIONS_CUSTOMHANDLER_PORT, serves the
/// handler, `/readyz` (both containers) and `/metrics` on the same port, and takes the raw
/// container that events must name from `RAW_URL`.
#[tokio::test]
async fn the_binary_serves_the_handler_and_ops_routes_on_the_functions_port() {
    let (stores, raw_url, std_url) = containers();
    let (name, gz) = raw_blob(model::TOPIC_LOBBY, 0, 5, &[Rec::value(STARTING_MATCH)]);
    upload(&stores.raw, &name, gz).await;
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
        // The per-blob files are what this test reads back; delta mode: tests/delta.rs.
        .env("STANDARD_FORMAT", "parquet")
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
    let raw_container = raw_url.strip_prefix("az://").expect("az:// URL");
    assert_ne!(
        raw_container, RAW,
        "a unique container, so `raw` is another one"
    );
    for (container, outcome) in [(RAW, "ignored"), (raw_container, "blob")] {
        let event = event_invocation(&blob_event(container, &name, BLOB_CREATED), true);
        let res = client
            .post(format!("{base}/transform"))
            .json(&event)
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), 200, "{container}");
        let body: Value = res.json().await.expect("JSON answer");
        assert!(
            body["ReturnValue"].get(outcome).is_some(),
            "{container}: {body}"
        );
    }
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

//! Replay: `POST /runs` (202 + Location, polled to completion) and `transformer backfill`.

mod common;

use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use transformer::config::RunSettings;
use transformer::process::Stores;
use transformer::runs::{RunContext, RunRegistry};
use transformer::transform::TransformOptions;

const H18: i64 = T0_MS; // 2024-01-14T18:22:04.771Z
const H19: i64 = T0_MS + 3_600_000;
const NEXT_DAY: i64 = T0_MS + 86_400_000;

/// Two game blobs in range (hours 18 and 19), one lobby blob in range, one game blob out of it.
async fn seed(stores: &Stores) -> Vec<String> {
    let mut names = Vec::new();
    for (topic, p, t0, recs) in [
        (
            model::TOPIC_GAME,
            0,
            H18,
            vec![Rec::value(ATTACK_1), Rec::value(ATTACK_2)],
        ),
        (
            model::TOPIC_GAME,
            1,
            H19,
            vec![Rec::value(ATTACK_3), Rec::value("x")],
        ),
        (model::TOPIC_LOBBY, 0, H18, vec![Rec::value(STARTING_MATCH)]),
        (model::TOPIC_GAME, 2, NEXT_DAY, vec![Rec::value(ATTACK_1)]),
    ] {
        let (name, gz) = raw_blob_at(topic, p, 0, t0, &recs);
        upload(&stores.raw, &name, gz).await;
        names.push(name);
    }
    names
}

#[tokio::test]
async fn post_runs_accepts_then_reports_progress_to_completion_with_counts() {
    let (stores, _, _) = containers();
    let names = seed(&stores).await;
    let stop = CancellationToken::new();
    let ctx = RunContext {
        stores: stores.clone(),
        transform: TransformOptions::default(),
        concurrency: 2,
        owner: "test".into(),
        lakehouse: None,
    };
    let (addr, server) = service::ops::bind(
        "127.0.0.1:0".parse().expect("addr"),
        RunRegistry::new(ctx, RunSettings::default(), stop.clone()).router(),
        stop.clone(),
    )
    .await
    .expect("bind");
    tokio::spawn(server);
    let client = reqwest::Client::new();

    let res = client
        .post(format!("http://{addr}/runs"))
        .json(&serde_json::json!({"from": "2024-01-14T18:00:00Z", "to": "2024-01-14T20:00:00Z", "topic": "lib.server.game", "prefix": null}))
        .send()
        .await
        .expect("POST /runs");
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(
        location,
        format!("/runs/{}", body["id"].as_str().expect("id"))
    );
    assert_eq!(body["state"], "queued");

    let done = testkit::wait_for("run to finish", Duration::from_secs(20), || {
        let c = client.clone();
        let url = format!("http://{addr}{location}");
        async move {
            let s: serde_json::Value = c.get(url).send().await.ok()?.json().await.ok()?;
            (s["state"] == "succeeded" || s["state"] == "failed").then_some(s)
        }
    })
    .await
    .expect("finished");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"], serde_json::json!({"done": 2, "total": 2}));
    assert_eq!(done["counts"]["records"], 4);
    assert_eq!(done["counts"]["good"], 3);
    assert_eq!(done["counts"]["dead"], 1);
    assert_eq!(done["counts"]["rows"]["lib_server_game"], 3);
    assert_eq!(done["errors"], serde_json::json!([]));
    for n in &names[..2] {
        assert!(
            get(&stores.standard, &format!("_receipts/{n}.json"))
                .await
                .is_some(),
            "receipt rewritten for {n}"
        );
    }
    for n in &names[2..] {
        assert!(
            get(&stores.standard, &format!("_receipts/{n}.json"))
                .await
                .is_none(),
            "{n} is out of the run"
        );
    }

    let missing = client
        .get(format!("http://{addr}/runs/nope"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    let bad = client
        .post(format!("http://{addr}/runs"))
        .json(&serde_json::json!({"from": "2024-01-14T20:00:00Z", "to": "2024-01-14T18:00:00Z"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(bad.status(), 400);
    stop.cancel();
}

#[tokio::test]
async fn backfill_command_replays_the_range_and_prints_a_summary() {
    let (stores, raw_url, std_url) = containers();
    seed(&stores).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let out = tokio::process::Command::new(testkit::bin("transformer"))
        .args([
            "backfill",
            "--from",
            "2024-01-14T00:00:00Z",
            "--to",
            "2024-01-15T00:00:00Z",
        ])
        .env_clear()
        .envs(testkit::azure_env())
        .env("RAW_URL", &raw_url)
        .env("STANDARD_URL", &std_url)
        .env("METRICS_ADDR", format!("127.0.0.1:{port}"))
        .output()
        .await
        .expect("run backfill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("JSON summary on stdout");
    assert_eq!(status["state"], "succeeded");
    assert_eq!(
        status["progress"],
        serde_json::json!({"done": 3, "total": 3})
    );
    assert_eq!(status["counts"]["rows"]["lib_server_lobby"], 2);
    assert!(
        stderr
            .contains("backfill Succeeded: 3 blobs (0 failed), 5 records, 4 good, 1 dead letters"),
        "{stderr}"
    );
}

//! `/runs` is bounded and can be locked: past `RUNS_MAX_ACTIVE` a `POST` answers 429, a finished
//! run is gone after `RUNS_RETENTION_SECS`, and with `RUNS_TOKEN` set every call needs
//! `Authorization: Bearer <token>` (401 otherwise). Storage URLs with credentials are refused as
//! flags.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use object_store::ObjectStore;
use reqwest::StatusCode;
use service::secret::Secret;
use tokio_util::sync::CancellationToken;
use transformer::config::RunSettings;
use transformer::process::Stores;
use transformer::runs::{RunContext, RunRegistry};
use transformer::transform::TransformOptions;

const TOKEN: &str = "runs-token-0123456789abcdef";

fn a_day() -> serde_json::Value {
    serde_json::json!({"from": "2024-01-14T00:00:00Z", "to": "2024-01-15T00:00:00Z"})
}

/// Serves `/runs` over `stores` with `settings` on a free loopback port.
async fn serve(stores: Stores, settings: RunSettings) -> (SocketAddr, CancellationToken) {
    let stop = CancellationToken::new();
    let ctx = RunContext {
        stores,
        transform: TransformOptions::default(),
        concurrency: 2,
        owner: "test".into(),
        lakehouse: None,
    };
    let (addr, server) = service::ops::bind(
        "127.0.0.1:0".parse().expect("addr"),
        RunRegistry::new(ctx, settings, stop.clone()).router(),
        stop.clone(),
    )
    .await
    .expect("bind");
    tokio::spawn(server);
    (addr, stop)
}

/// Storage that accepts connections and never answers, so a run stays `running` for the whole
/// test (object_store waits 30 s per request before retrying). The listener lives as long as
/// the returned task.
async fn silent_storage() -> (Stores, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let store: Arc<dyn ObjectStore> = Arc::new(
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_account("devstoreaccount1")
            .with_access_key("c2lsZW50")
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_container_name("raw")
            .build()
            .expect("store"),
    );
    let stores = Stores {
        raw: store.clone(),
        standard: store,
    };
    (stores, hold)
}

async fn post(
    client: &reqwest::Client,
    addr: SocketAddr,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = client.post(format!("http://{addr}/runs")).json(&a_day());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("POST /runs")
}

async fn error_of(res: reqwest::Response) -> String {
    let body: serde_json::Value = res.json().await.expect("JSON error");
    body["error"].as_str().expect("error text").to_owned()
}

#[tokio::test]
async fn the_post_past_runs_max_active_gets_429_naming_the_knob() {
    let (stores, _hold) = silent_storage().await;
    let settings = RunSettings {
        max_active: 2,
        ..RunSettings::default()
    };
    let (addr, stop) = serve(stores, settings).await;
    let client = reqwest::Client::new();

    let first = post(&client, addr, None).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let location = first.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        post(&client, addr, None).await.status(),
        StatusCode::ACCEPTED
    );

    let third = post(&client, addr, None).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let error = error_of(third).await;
    assert!(
        error.starts_with("2 runs are queued or running, the most RUNS_MAX_ACTIVE=2 allows"),
        "{error}"
    );

    let status: serde_json::Value = client
        .get(format!("http://{addr}{location}"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert!(
        status["state"] == "running" || status["state"] == "queued",
        "the accepted runs go on: {status}"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_finished_run_is_gone_from_get_after_the_retention() {
    let (stores, _, _) = containers();
    let settings = RunSettings {
        retention: Duration::from_millis(300),
        ..RunSettings::default()
    };
    let (addr, stop) = serve(stores, settings).await;
    let client = reqwest::Client::new();

    let res = post(&client, addr, None).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let url = format!(
        "http://{addr}{}",
        res.headers()["location"].to_str().expect("ascii")
    );
    let finished = testkit::wait_for("the run to finish", Duration::from_secs(20), || {
        let (c, url) = (client.clone(), url.clone());
        async move {
            let s: serde_json::Value = c.get(url).send().await.ok()?.json().await.ok()?;
            (s["state"] == "succeeded").then_some(())
        }
    })
    .await;
    finished.expect("finished");

    let gone = testkit::wait_for("the run to be forgotten", Duration::from_secs(10), || {
        let (c, url) = (client.clone(), url.clone());
        async move {
            let res = c.get(url).send().await.ok()?;
            (res.status() == StatusCode::NOT_FOUND).then_some(res)
        }
    })
    .await
    .expect("evicted after RUNS_RETENTION_SECS");
    let error = error_of(gone).await;
    assert!(error.contains("RUNS_RETENTION_SECS"), "{error}");
    stop.cancel();
}

#[tokio::test]
async fn with_runs_token_set_every_runs_call_needs_the_bearer_token() {
    let (stores, _, _) = containers();
    let settings = RunSettings {
        token: Some(Secret::new(TOKEN)),
        ..RunSettings::default()
    };
    let (addr, stop) = serve(stores, settings).await;
    let client = reqwest::Client::new();

    let missing = post(&client, addr, None).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"runs\""
    );
    assert!(error_of(missing).await.contains("RUNS_TOKEN"));
    let wrong = post(&client, addr, Some("runs-token-0123456789abcdeX")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(error_of(wrong).await.starts_with("wrong bearer token"));
    let prefix = post(&client, addr, Some(&TOKEN[..TOKEN.len() - 1])).await;
    assert_eq!(
        prefix.status(),
        StatusCode::UNAUTHORIZED,
        "a prefix is not the token"
    );
    let basic = client
        .post(format!("http://{addr}/runs"))
        .basic_auth("runs", Some(TOKEN))
        .json(&a_day())
        .send()
        .await
        .expect("POST");
    assert_eq!(
        basic.status(),
        StatusCode::UNAUTHORIZED,
        "only the Bearer scheme"
    );

    let accepted = post(&client, addr, Some(TOKEN)).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let url = format!(
        "http://{addr}{}",
        accepted.headers()["location"].to_str().expect("ascii")
    );
    let anonymous = client.get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let unknown = client
        .get(format!("http://{addr}/runs/nope"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        unknown.status(),
        StatusCode::UNAUTHORIZED,
        "no answer about runs without the token, not even 404"
    );
    let read = client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(read.status(), StatusCode::OK);
    stop.cancel();
}

#[tokio::test]
async fn the_binary_refuses_a_storage_url_flag_carrying_a_sas_token() {
    let out = tokio::process::Command::new(testkit::bin("transformer"))
        .args([
            "--raw-url",
            "https://acct.blob.core.windows.net/raw?sv=2024-01-01&sig=c2VjcmV0",
            "transform",
            "x",
        ])
        .env_clear()
        .output()
        .await
        .expect("run transformer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--raw-url carries"), "{stderr}");
    assert!(
        stderr.contains("pass the value through the environment as RAW_URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("c2VjcmV0"), "{stderr}");
}

//! The Application Insights exporter against a local stand-in that plays both the managed
//! identity endpoint (it checks `X-IDENTITY-HEADER` and the query, and issues a token) and the
//! ingestion endpoint (it records every POST, and can fail some with 503).
//!
//! Metrics go to a detached recorder through its handles, so no global recorder is involved and
//! no process variable is set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::{Value, json};
use service::appinsights::{self, ConnectionString, ExportSettings, Identity};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "token-from-the-identity-endpoint";
const IDENTITY_SECRET: &str = "identity-header-value";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const IKEY: &str = "test-ikey";
const ROLE: &str = "test-role";
const COUNTER: &str = "demo_events_total";
const GAUGE: &str = "demo_lag_records";
/// Generous: every wait polls for its effect, this is only the give-up time.
const DEADLINE: Duration = Duration::from_secs(20);

/// One POST the ingestion stand-in received.
#[derive(Debug, Clone)]
struct Post {
    status: u16,
    authorization: Option<String>,
    content_type: Option<String>,
    envelopes: Vec<Value>,
}

#[derive(Default)]
struct Stand {
    posts: Vec<Post>,
    /// Bodies that were not a JSON array.
    bad_bodies: Vec<String>,
    token_requests: usize,
    /// Token requests refused, and why.
    token_problems: Vec<String>,
    /// How many of the next POSTs get 503.
    fail_next: usize,
    /// Incremented by 2 when a POST is failed, to see that the next round carries the sum.
    on_failure: Option<metrics::Counter>,
}

type Shared = Arc<Mutex<Stand>>;

async fn token(
    State(stand): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    let mut problems = Vec::new();
    if header != Some(IDENTITY_SECRET) {
        problems.push(format!("X-IDENTITY-HEADER is {header:?}"));
    }
    for (name, want) in [
        ("resource", "https://monitor.azure.com/"),
        ("api-version", "2019-08-01"),
        ("client_id", CLIENT_ID),
    ] {
        let got = query.get(name).map(String::as_str);
        if got != Some(want) {
            problems.push(format!("{name} is {got:?}, not {want}"));
        }
    }
    let mut s = stand.lock().expect("lock");
    s.token_requests += 1;
    if !problems.is_empty() {
        let problem = problems.join("; ");
        s.token_problems.push(problem.clone());
        return (StatusCode::BAD_REQUEST, problem).into_response();
    }
    let expires_on = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    axum::Json(json!({
        "access_token": TOKEN,
        "expires_on": expires_on.to_string(),
        "resource": "https://monitor.azure.com/",
        "token_type": "Bearer",
    }))
    .into_response()
}

async fn track(State(stand): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut s = stand.lock().expect("lock");
    let envelopes = match serde_json::from_slice::<Vec<Value>>(&body) {
        Ok(envelopes) => envelopes,
        Err(e) => {
            s.bad_bodies
                .push(format!("{e}: {}", String::from_utf8_lossy(&body)));
            Vec::new()
        }
    };
    let status = if s.fail_next > 0 {
        s.fail_next -= 1;
        if let Some(counter) = &s.on_failure {
            counter.increment(2);
        }
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let count = envelopes.len();
    s.posts.push(Post {
        status: status.as_u16(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        envelopes,
    });
    let accepted = if status == StatusCode::OK { count } else { 0 };
    let answer = json!({"itemsReceived": count, "itemsAccepted": accepted, "errors": []});
    (status, axum::Json(answer)).into_response()
}

/// Starts the stand-in on a free port.
async fn start(stand: Shared) -> SocketAddr {
    let app = Router::new()
        .route("/msi/token", get(token))
        .route("/v2.1/track", post(track))
        .with_state(stand);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Settings sending to the stand-in, with its identity endpoint or without one.
fn settings(addr: SocketAddr, interval: Duration, with_identity: bool) -> ExportSettings {
    let connection = ConnectionString::parse(&format!(
        "InstrumentationKey={IKEY};IngestionEndpoint=http://{addr}/;LiveEndpoint=http://{addr}/live/"
    ))
    .expect("connection string");
    let settings = ExportSettings::new(connection, interval, ROLE);
    if with_identity {
        let endpoint = url::Url::parse(&format!("http://{addr}/msi/token")).expect("url");
        settings.with_identity(Some(Identity::new(
            endpoint,
            IDENTITY_SECRET,
            Some(CLIENT_ID.to_owned()),
        )))
    } else {
        settings
    }
}

/// The metric of an envelope: (name, value).
fn metric(envelope: &Value) -> (&str, f64) {
    let m = &envelope["data"]["baseData"]["metrics"][0];
    (
        m["name"].as_str().unwrap_or_default(),
        m["value"].as_f64().unwrap_or(f64::NAN),
    )
}

/// The values of `name` in the accepted POSTs, in order.
fn delivered(s: &Stand, name: &str) -> Vec<f64> {
    s.posts
        .iter()
        .filter(|p| p.status == 200)
        .flat_map(|p| &p.envelopes)
        .map(metric)
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .collect()
}

/// Waits until `done` holds for the stand-in's records, or fails naming `what`.
async fn wait_until(stand: &Shared, what: &str, done: impl Fn(&Stand) -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        {
            let s = stand.lock().expect("lock");
            if done(&s) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no {what} within {DEADLINE:?}; token problems: {:?}; bad bodies: {:?}; posts: {:#?}",
                    s.token_problems, s.bad_bodies, s.posts
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Cancels `shutdown` and waits for `run` to end.
async fn stop(shutdown: &CancellationToken, task: JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("run ends after shutdown")
        .expect("run does not panic");
}

#[tokio::test]
async fn counters_go_as_increases_with_the_issued_token() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let (counter, gauge) = metrics::with_local_recorder(&recorder, || {
        (
            metrics::counter!(COUNTER, "topic" => "heroes"),
            metrics::gauge!(GAUGE),
        )
    });
    for _ in 0..3 {
        counter.increment(1);
    }
    gauge.set(42.0);

    let stand = Shared::default();
    let addr = start(stand.clone()).await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(appinsights::run(
        settings(addr, Duration::from_millis(50), true),
        handle,
        shutdown.clone(),
    ));

    wait_until(&stand, "counter and gauge", |s| {
        !delivered(s, COUNTER).is_empty() && !delivered(s, GAUGE).is_empty()
    })
    .await;
    {
        let s = stand.lock().expect("lock");
        assert_eq!(delivered(&s, COUNTER), [3.0]);
        assert!(delivered(&s, GAUGE).iter().all(|v| *v == 42.0));
        assert!(s.token_problems.is_empty(), "{:?}", s.token_problems);
        for post in &s.posts {
            assert_eq!(
                post.authorization.as_deref(),
                Some(format!("Bearer {TOKEN}").as_str())
            );
            assert_eq!(post.content_type.as_deref(), Some("application/json"));
        }
        let envelope = s
            .posts
            .iter()
            .flat_map(|p| &p.envelopes)
            .find(|e| metric(e).0 == COUNTER)
            .expect("the counter's envelope");
        assert_eq!(envelope["name"], "Microsoft.ApplicationInsights.Metric");
        assert_eq!(envelope["iKey"], IKEY);
        assert_eq!(envelope["tags"]["ai.cloud.role"], ROLE);
        assert!(
            envelope["tags"]["ai.cloud.roleInstance"]
                .as_str()
                .is_some_and(|i| !i.is_empty()),
            "{envelope}"
        );
        assert_eq!(envelope["data"]["baseType"], "MetricData");
        assert_eq!(envelope["data"]["baseData"]["ver"], 2);
        assert_eq!(envelope["data"]["baseData"]["metrics"][0]["count"], 1);
        assert_eq!(
            envelope["data"]["baseData"]["properties"],
            json!({"topic": "heroes"})
        );
        let time = envelope["time"].as_str().expect("time");
        assert!(time.ends_with('Z'), "{time}");
        let parsed = chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339 time");
        assert!(parsed.timestamp() > 0, "{time}");
    }

    counter.increment(2);
    wait_until(&stand, "the counter's increase", |s| {
        delivered(s, COUNTER).len() >= 2
    })
    .await;
    {
        let s = stand.lock().expect("lock");
        assert_eq!(delivered(&s, COUNTER), [3.0, 2.0]);
        // The token is cached (it expires in an hour), not fetched every round.
        assert_eq!(s.token_requests, 1);
    }

    stop(&shutdown, task).await;
    let s = stand.lock().expect("lock");
    assert_eq!(delivered(&s, COUNTER), [3.0, 2.0], "nothing counted twice");
}

#[tokio::test]
async fn a_failed_round_is_sent_with_the_next() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!(COUNTER));
    counter.increment(3);

    let stand = Shared::default();
    {
        let mut s = stand.lock().expect("lock");
        s.fail_next = 1;
        // The failed round's 3 and the 2 counted while it failed arrive together.
        s.on_failure = Some(counter.clone());
    }
    let addr = start(stand.clone()).await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(appinsights::run(
        settings(addr, Duration::from_millis(50), true),
        handle,
        shutdown.clone(),
    ));

    wait_until(&stand, "a round accepted after the 503", |s| {
        !delivered(s, COUNTER).is_empty()
    })
    .await;
    {
        let s = stand.lock().expect("lock");
        let failed = &s.posts[0];
        assert_eq!(failed.status, 503);
        let tried: Vec<(&str, f64)> = failed.envelopes.iter().map(metric).collect();
        assert_eq!(tried, [(COUNTER, 3.0)]);
        assert_eq!(delivered(&s, COUNTER), [5.0]);
    }

    stop(&shutdown, task).await;
    let s = stand.lock().expect("lock");
    assert_eq!(delivered(&s, COUNTER), [5.0], "nothing counted twice");
}

#[tokio::test]
async fn shutdown_flushes_once_more() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!(COUNTER));
    counter.increment(4);

    let stand = Shared::default();
    let addr = start(stand.clone()).await;
    let shutdown = CancellationToken::new();
    // An hour's interval: the only export is the flush at shutdown.
    let task = tokio::spawn(appinsights::run(
        settings(addr, Duration::from_secs(3600), false),
        handle,
        shutdown.clone(),
    ));
    stop(&shutdown, task).await;

    let s = stand.lock().expect("lock");
    assert_eq!(s.posts.len(), 1, "{:#?}", s.posts);
    assert_eq!(delivered(&s, COUNTER), [4.0]);
    // Without an identity endpoint nothing is fetched and no Authorization is sent.
    assert_eq!(s.posts[0].authorization, None);
    assert_eq!(s.token_requests, 0);
}

#[tokio::test]
async fn large_rounds_go_in_batches_of_a_thousand() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for shard in 0..1500u32 {
            metrics::gauge!(GAUGE, "shard" => shard.to_string()).set(f64::from(shard));
        }
    });

    let stand = Shared::default();
    let addr = start(stand.clone()).await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(appinsights::run(
        settings(addr, Duration::from_secs(3600), false),
        handle,
        shutdown.clone(),
    ));
    stop(&shutdown, task).await;

    let s = stand.lock().expect("lock");
    let sizes: Vec<usize> = s.posts.iter().map(|p| p.envelopes.len()).collect();
    assert_eq!(sizes, [1000, 500]);
    assert_eq!(delivered(&s, GAUGE).len(), 1500);
}

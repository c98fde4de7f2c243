//! Same input → byte-identical outputs: twice in a row, and through both triggers.

mod common;

use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use transformer::config::WatchSettings;
use transformer::process::{Stores, process_blob};
use transformer::serve::Handler;
use transformer::transform::TransformOptions;
use transformer::watch::Watcher;
use transformer::writer::Compression;

fn mixed() -> Vec<Rec> {
    vec![
        Rec::value(STARTING_MATCH),
        Rec::value("{broken"),
        Rec::value(CLEANING),
        Rec::null(),
        Rec::value(TIMED_OUT),
    ]
}

#[tokio::test]
async fn transforming_a_blob_twice_rewrites_identical_bytes() {
    for compression in [Compression::Zstd, Compression::Snappy, Compression::None] {
        let (stores, _, _) = containers();
        let (name, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &mixed());
        upload(&stores.raw, &name, gz).await;
        let opts = TransformOptions {
            compression,
            ..TransformOptions::default()
        };
        process_blob(&stores, &name, opts, "test")
            .await
            .expect("first");
        let first = outputs(&stores.standard).await;
        process_blob(&stores, &name, opts, "test")
            .await
            .expect("second");
        let second = outputs(&stores.standard).await;
        assert_eq!(first.len(), 5, "4 models + dead letters");
        assert_eq!(first, second, "{compression:?}: same names, same bytes");
    }
}

#[tokio::test]
async fn serve_and_watch_write_the_same_bytes_for_the_same_blob() {
    let (via_serve, _, _) = containers();
    let (_, std_watch) = testkit::new_container("std").expect("container");
    let via_watch = Stores {
        raw: via_serve.raw.clone(),
        standard: std_watch,
    };
    let (name, gz) = raw_blob(model::TOPIC_LOBBY, 1, 9, &mixed());
    upload(&via_serve.raw, &name, gz.clone()).await;

    let stop = CancellationToken::new();
    let handler = Handler {
        stores: via_serve.clone(),
        transform: TransformOptions::default(),
        owner: "serve".into(),
    };
    let (addr, server) = service::ops::bind(
        "127.0.0.1:0".parse().expect("addr"),
        handler.router(),
        stop.clone(),
    )
    .await
    .expect("bind");
    tokio::spawn(server);
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/transform"))
        .json(&invocation(&name, &gz, true))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 200);

    let settings = WatchSettings {
        poll: Duration::from_millis(200),
        concurrency: 1,
        max_attempts: 3,
        backoff: Duration::from_millis(100),
        prefix: Some("lib.server.lobby/".into()),
        full_list: Duration::from_millis(200),
        list: Duration::from_millis(200),
        lease_ttl: Duration::from_secs(30),
    };
    let run = tokio::spawn(
        Watcher::new(via_watch.clone(), settings, TransformOptions::default()).run(stop.clone()),
    );
    testkit::wait_for("watch receipt", Duration::from_secs(10), || {
        let s = via_watch.clone();
        let n = name.clone();
        async move { get(&s.standard, &format!("_receipts/{n}.json")).await }
    })
    .await
    .expect("watched");
    stop.cancel();
    run.await.expect("watcher stops");

    let a = outputs(&via_serve.standard).await;
    let b = outputs(&via_watch.standard).await;
    assert_eq!(a.len(), 5);
    assert_eq!(a, b, "both triggers write identical names and bytes");
}

//! SIGTERM lands what is buffered, commits it and exits 0 within the grace period; the next run
//! starts after it and lands nothing again.

mod common;

use std::time::{Duration, Instant};

use common::*;

async fn metric(addr: &str, name: &str) -> f64 {
    match http_get(addr, "/metrics").await {
        Some((200, text)) => metric_sum(&text, name, &[]),
        _ => -1.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_commits_and_the_next_run_relands_nothing() {
    let topic = testkit::unique("wterm");
    testkit::create_topic(&topic, 2).await.expect("topic");
    let (url, store) = testkit::new_container("wterm").expect("container");
    let expected = produce_many(&topic, 2, 500).await;

    let mut env = base_env(&[&topic], &url);
    // Nothing would land before shutdown on its own.
    set(&mut env, "BATCH_SIZE", "100000");
    set(&mut env, "BATCH_MAX_WAIT_MS", "600000");
    set(&mut env, "SHUTDOWN_GRACE_MS", "8000");
    let addr = format!("127.0.0.1:{}", free_port());
    set(&mut env, "METRICS_ADDR", addr.clone());
    let mut w = ChildWorker::spawn(&env, "wterm");
    testkit::wait_for("the worker to consume 500 records", Duration::from_secs(60), || {
        let addr = addr.clone();
        async move { (metric(&addr, "worker_consumed_records_total").await >= 500.0).then_some(()) }
    })
    .await
    .expect("consumed");
    assert!(
        read_all(&store).await.is_empty(),
        "nothing lands before shutdown"
    );

    let sent = Instant::now();
    w.terminate();
    // The grace bounds the drain (checked below, from the worker's own clock); the exit also
    // waits for the final commit and leaving the group, and on a loaded machine for the CPU.
    let status = testkit::wait_for("the worker to exit", Duration::from_secs(8 + 15), || {
        let s = w.child.try_wait().expect("try_wait");
        async move { s }
    })
    .await
    .expect("exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    eprintln!("exited {:?} after SIGTERM", sent.elapsed());
    let drained = w.events("drained");
    let drained_ms = drained
        .first()
        .and_then(|e| e["duration_ms"].as_u64())
        .unwrap_or_else(|| panic!("one drained event with its duration: {drained:?}"));
    assert!(
        drained_ms <= 8000,
        "drained in {drained_ms} ms, beyond SHUTDOWN_GRACE_MS"
    );
    let landed = read_all(&store).await;
    assert_exactly_once(&landed, &topic, &expected);
    assert!(
        !w.events("batch_landed")
            .iter()
            .any(|e| e["reason"] != "shutdown")
    );

    // The second run starts at the committed offsets: it finds nothing to skip or re-land.
    let addr2 = format!("127.0.0.1:{}", free_port());
    set(&mut env, "METRICS_ADDR", addr2.clone());
    set(&mut env, "BATCH_MAX_WAIT_MS", "300");
    let w2 = ChildWorker::spawn(&env, "wterm2");
    let producer = producer();
    let p0 = send(&producer, &topic, 0, None, Some(b"{\"after\": 1}"), &[]).await;
    let landed = wait_landed(&store, &topic, 501, Duration::from_secs(60)).await;
    assert_eq!(landed.iter().filter(|l| l.topic == topic).count(), 501);
    assert_eq!(
        metric(&addr2, "worker_consumed_records_total").await,
        1.0,
        "only the new record was read"
    );
    assert_eq!(metric(&addr2, "worker_skipped_records_total").await, 0.0);
    assert!(landed.iter().any(|l| l.partition == 0 && l.offset == p0));
    w2.terminate();
}

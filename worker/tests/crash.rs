//! `kill -9` at random moments never duplicates or loses a record: each restart walks the blob
//! chain from the committed offset, whatever cuts its own timers make.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rand::Rng as _;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_lands_every_offset_exactly_once() {
    let topic = testkit::unique("wcrash");
    testkit::create_topic(&topic, 4).await.expect("topic");
    let (url, store) = testkit::new_container("wcrash").expect("container");
    // At least 100k records: 60k up front (a backlog: count cuts), more trickling in while the
    // worker is killed (max-wait cuts at timing-dependent points), and what is missing to 100k
    // once the kills are over.
    let at_least: usize = 100_000;
    let mut expected = produce_many(&topic, 4, 60_000).await;
    // The trickle goes on until the tenth kill, however long the kill cycles take (each ~4-6 s:
    // restart, group join, a landed batch, a random wait).
    let stop = CancellationToken::new();
    let trickle = tokio::spawn(produce_paced(topic.clone(), 4, 60_000, 500, stop.clone()));

    let mut env = base_env(&[&topic], &url);
    // 97 does not divide the partitions' record counts, and the short max wait makes cuts
    // depend on timing: every run cuts differently. Small batches and two upload slots keep each
    // run cutting many blobs, so kills land mid-batch, mid-upload and between upload and commit.
    set(&mut env, "BATCH_SIZE", "97");
    // Each run also uses another batch size, as a redeploy with new settings would.
    let sizes = [
        "97", "89", "101", "83", "103", "79", "107", "73", "109", "71", "113",
    ];
    set(&mut env, "BATCH_MAX_WAIT_MS", "300");
    set(&mut env, "UPLOAD_CONCURRENCY", "2");
    // A killed member blocks the next join until its session times out.
    set(&mut env, "KAFKA_SESSION_TIMEOUT_MS", "3000");

    let mut rng = rand::thread_rng();
    let mut kills = 0;
    let started = Instant::now();
    while kills < 10 {
        set(&mut env, "BATCH_SIZE", sizes[kills % sizes.len()]);
        let mut w = ChildWorker::spawn(&env, "wcrash");
        // Wait until this run has landed something (group joined), then kill at a random
        // moment: mid-batch, mid-upload or between upload and commit.
        let landed_before = count_landed_events(&w);
        let _ = testkit::wait_for(
            "the worker to land a batch",
            Duration::from_secs(30),
            || {
                let n = count_landed_events(&w);
                async move { (n > landed_before).then_some(()) }
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1000))).await;
        w.kill();
        kills += 1;
        let landed = read_all(&store).await;
        let n = landed.iter().filter(|l| l.topic == topic).count();
        eprintln!(
            "kill {kills}: {n} records in raw after {:?}",
            started.elapsed()
        );
    }
    stop.cancel();
    let (trickled, next) = trickle.await.expect("producer");
    eprintln!("{} records trickled in during the kills", trickled.len());
    expected.extend(trickled);
    let missing = at_least.saturating_sub(expected.len());
    expected.extend(produce_range(&producer(), &topic, 4, next..next + missing).await);
    assert!(expected.len() >= at_least, "{} records", expected.len());

    // A last run finishes the job and stops cleanly.
    let w = ChildWorker::spawn(&env, "wcrash-final");
    let landed = wait_landed(&store, &topic, expected.len(), Duration::from_secs(120)).await;
    w.terminate();
    assert_exactly_once(&landed, &topic, &expected);
    eprintln!(
        "{kills} kills, {} records; done after {:?}",
        expected.len(),
        started.elapsed()
    );
}

/// Produces records (values numbered from `first`) at about `per_sec` records per second until
/// `stop`; returns every acknowledged one and the number of the next value.
async fn produce_paced(
    topic: String,
    partitions: i32,
    first: usize,
    per_sec: usize,
    stop: CancellationToken,
) -> (BTreeMap<(i32, i64), Vec<u8>>, usize) {
    let producer = producer();
    let chunk = per_sec / 10;
    let mut out = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut i = first;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        // A chunk once started is awaited whole: everything produced is acknowledged.
        out.extend(produce_range(&producer, &topic, partitions, i..i + chunk).await);
        i += chunk;
    }
    (out, i)
}

fn count_landed_events(w: &ChildWorker) -> usize {
    w.events("batch_landed").len() + w.events("batch_already_landed").len()
}

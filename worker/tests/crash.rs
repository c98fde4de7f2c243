//! `kill -9` at random moments never duplicates or loses a record: each restart walks the blob
//! chain from the committed offset, whatever cuts its own timers make.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rand::Rng as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_lands_every_offset_exactly_once() {
    let topic = testkit::unique("wcrash");
    testkit::create_topic(&topic, 4).await.expect("topic");
    let (url, store) = testkit::new_container("wcrash").expect("container");
    // 60k records up front (a backlog: count cuts) and 40k more trickling in while the worker
    // is killed (max-wait cuts at timing-dependent points).
    let total = 100_000;
    let mut expected = produce_many(&topic, 4, 60_000).await;
    // The trickle outlasts ten kill cycles (each ~4-6 s: restart, group join, a landed batch,
    // a random wait) whatever the worker's speed: at 1 000/s a faster worker ran out of stream
    // after 7 kills.
    let trickle = tokio::spawn(produce_paced(topic.clone(), 4, 60_000, 40_000, 500));

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
        assert!(
            n < total,
            "the stream ended before the tenth kill ({kills} kills)"
        );
    }
    expected.extend(trickle.await.expect("producer"));
    assert_eq!(expected.len(), total);

    // A last run finishes the job and stops cleanly.
    let w = ChildWorker::spawn(&env, "wcrash-final");
    let landed = wait_landed(&store, &topic, total, Duration::from_secs(120)).await;
    w.terminate();
    assert_exactly_once(&landed, &topic, &expected);
    eprintln!("{kills} kills; done after {:?}", started.elapsed());
}

/// Produces `n` records (values numbered from `first`) at about `per_sec` records per second.
async fn produce_paced(
    topic: String,
    partitions: i32,
    first: usize,
    n: usize,
    per_sec: usize,
) -> std::collections::BTreeMap<(i32, i64), Vec<u8>> {
    let producer = producer();
    let chunk = per_sec / 10;
    let mut out = std::collections::BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut i = first;
    while i < first + n {
        tick.tick().await;
        let sends: Vec<_> = (i..(i + chunk).min(first + n))
            .map(|j| {
                let producer = producer.clone();
                let topic = topic.clone();
                async move {
                    let p = (j % partitions as usize) as i32;
                    let v = sample_value(j);
                    let o = send(&producer, &topic, p, None, Some(&v), &[]).await;
                    ((p, o), v)
                }
            })
            .collect();
        i += sends.len();
        out.extend(futures::future::join_all(sends).await);
    }
    out
}

fn count_landed_events(w: &ChildWorker) -> usize {
    w.events("batch_landed").len() + w.events("batch_already_landed").len()
}

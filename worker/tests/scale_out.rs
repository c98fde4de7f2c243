//! Two workers in one group split the partitions; when one is killed the other takes over, and
//! every record still lands exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;

/// The partitions a worker owns now: the `owned` field of its last assign/revoke event (the
/// whole assignment after it, under eager and cooperative rebalancing alike), without epochs.
fn owned(w: &ChildWorker) -> BTreeSet<String> {
    let mut now = BTreeSet::new();
    for e in w.log_lines() {
        if matches!(
            e["event"].as_str(),
            Some("partitions_assigned" | "partitions_revoked")
        ) {
            now = e["owned"]
                .as_str()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.split('#').next().unwrap_or(s).to_owned())
                .collect();
        }
    }
    now
}

fn landed_partitions(w: &ChildWorker) -> BTreeSet<i64> {
    w.events("batch_landed")
        .iter()
        .filter_map(|e| e["partition"].as_i64())
        .collect()
}

async fn produce(topic: &str, from: usize, n: usize) -> BTreeMap<(i32, i64), Vec<u8>> {
    let producer = producer();
    let mut out = BTreeMap::new();
    for j in from..from + n {
        let p = (j % 4) as i32;
        let v = sample_value(j);
        out.insert((p, send(&producer, topic, p, None, Some(&v), &[]).await), v);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_split_partitions_and_survive_a_kill() {
    let topic = testkit::unique("wscale");
    testkit::create_topic(&topic, 4).await.expect("topic");
    let (url, store) = testkit::new_container("wscale").expect("container");
    let mut env = base_env(&[&topic], &url);
    set(&mut env, "BATCH_SIZE", "50");
    set(&mut env, "BATCH_MAX_WAIT_MS", "300");
    set(&mut env, "KAFKA_SESSION_TIMEOUT_MS", "3000");

    let mut a = ChildWorker::spawn(&env, "wscale-a");
    let b = ChildWorker::spawn(&env, "wscale-b");
    let (oa, ob) = testkit::wait_for(
        "the two workers to split the partitions",
        Duration::from_secs(60),
        || {
            let (oa, ob) = (owned(&a), owned(&b));
            async move {
                (!oa.is_empty()
                    && !ob.is_empty()
                    && oa.len() + ob.len() == 4
                    && oa.is_disjoint(&ob))
                .then_some((oa, ob))
            }
        },
    )
    .await
    .expect("split");
    eprintln!("a owns {oa:?}, b owns {ob:?}");

    let mut expected = produce(&topic, 0, 200).await;
    wait_landed(&store, &topic, 200, Duration::from_secs(60)).await;
    // A worker logs `batch_landed` after its upload returns, so after the blob is visible.
    testkit::wait_for(
        "both workers to log a landed batch",
        Duration::from_secs(10),
        || {
            let both = !landed_partitions(&a).is_empty() && !landed_partitions(&b).is_empty();
            async move { both.then_some(()) }
        },
    )
    .await
    .expect("both landed batches");

    a.kill();
    expected.extend(produce(&topic, 200, 400).await);
    testkit::wait_for(
        "b to take over every partition",
        Duration::from_secs(60),
        || {
            let n = owned(&b).len();
            async move { (n == 4).then_some(()) }
        },
    )
    .await
    .expect("takeover");
    let landed = wait_landed(&store, &topic, 600, Duration::from_secs(60)).await;
    b.terminate();
    assert_exactly_once(&landed, &topic, &expected);
    assert_eq!(
        landed_partitions(&b).len(),
        4,
        "b landed on every partition after the kill"
    );
}

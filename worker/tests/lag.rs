//! `worker_consumer_lag` tells the truth after a drain: every partition a worker owns reads 0 once
//! everything is landed and committed (even on Tansu, whose high watermark lags the log end), and
//! a partition that moved to another worker is not left at the lag it had when it left.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};

const LAG: &str = "worker_consumer_lag";

/// The offsets `group` has committed on partitions `0..partitions` of `topic`.
fn committed_all(group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer = group_consumer(group);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let Ok(tpl) = consumer.committed_offsets(tpl, Duration::from_secs(10)) else {
        return vec![None; partitions as usize];
    };
    (0..partitions)
        .map(|p| match tpl.find_partition(topic, p)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// Waits until `group` has committed, on every partition, the offset after its last record.
async fn wait_committed(group: &str, topic: &str, ends: &[i64]) {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    let ends = ends.to_vec();
    testkit::wait_for(
        &format!("commits to reach {ends:?}"),
        Duration::from_secs(90),
        || {
            let now = committed_all(&group, &topic, ends.len() as i32);
            let want: Vec<Option<i64>> = ends.iter().map(|e| Some(*e)).collect();
            async move { (now == want).then_some(()) }
        },
    )
    .await
    .expect("committed at the partition ends");
}

/// The lag gauge of every partition of `topic` as `/metrics` at `addr` shows it (`None`: no
/// series).
async fn lag_gauges(addr: &str, topic: &str, partitions: i32) -> Vec<Option<f64>> {
    let Some((200, text)) = http_get(addr, "/metrics").await else {
        return vec![None; partitions as usize];
    };
    let topic_label = format!("topic=\"{topic}\"");
    (0..partitions)
        .map(|p| {
            let partition_label = format!("partition=\"{p}\"");
            let present = text.lines().any(|l| {
                l.starts_with(LAG) && l.contains(&topic_label) && l.contains(&partition_label)
            });
            present.then(|| metric_sum(&text, LAG, &[&topic_label, &partition_label]))
        })
        .collect()
}

/// The offset after the last record of each partition.
fn ends(produced: &std::collections::BTreeMap<(i32, i64), Vec<u8>>, partitions: i32) -> Vec<i64> {
    (0..partitions)
        .map(|p| {
            produced
                .keys()
                .filter(|(q, _)| *q == p)
                .map(|(_, o)| o + 1)
                .max()
                .unwrap_or(0)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_gauge_reads_zero_after_a_drain_and_for_a_partition_that_moved_away() {
    let topic = testkit::unique("wlag");
    testkit::create_topic(&topic, 2).await.expect("topic");
    let (url, store) = testkit::new_container("wlag").expect("container");
    let mut env = base_env(&[&topic], &url);
    // Small batches, one upload at a time: A is still behind when B joins, so the partition it
    // loses has a non-zero lag in A's last statistics.
    set(&mut env, "BATCH_SIZE", "10");
    set(&mut env, "UPLOAD_CONCURRENCY", "1");
    set(&mut env, "BATCH_MAX_WAIT_MS", "300");
    set(&mut env, "KAFKA_SESSION_TIMEOUT_MS", "3000");
    let group = var(&env, "KAFKA_GROUP_ID");

    // A backlog produced many records per request: Tansu's high watermark is then the last
    // request's first offset + 1, well below the log end.
    let mut expected = produce_many(&topic, 2, 4000).await;
    let a = InProcess::start(&env).await;
    let addr = a.running.ops_addr.to_string();
    wait_committed(&group, &topic, &ends(&expected, 2)).await;
    let gauges = testkit::wait_for(
        "the lag gauge of both partitions to read 0",
        Duration::from_secs(30),
        || {
            let (addr, topic) = (addr.clone(), topic.clone());
            async move {
                let g = lag_gauges(&addr, &topic, 2).await;
                eprintln!("lag after the drain: {g:?}");
                (g == [Some(0.0), Some(0.0)]).then_some(g)
            }
        },
    )
    .await;
    assert!(gauges.is_ok(), "{:?}", lag_gauges(&addr, &topic, 2).await);

    // A second worker (its own process: its own /metrics) joins while a new backlog lands and
    // takes one partition from A.
    expected.extend(produce_range(&producer(), &topic, 2, 4000..40_000).await);
    let b = ChildWorker::spawn(&env, "wlag-b");
    testkit::wait_for(
        "the second worker to take a partition",
        Duration::from_secs(60),
        || {
            let took = b
                .events("partitions_assigned")
                .iter()
                .any(|e| e["partitions"].as_str().is_some_and(|s| s.contains(&topic)));
            async move { took.then_some(()) }
        },
    )
    .await
    .expect("b joins");
    wait_committed(&group, &topic, &ends(&expected, 2)).await;
    let gauges = testkit::wait_for(
        "A's lag gauges to read 0 for the partition it kept and the one it lost",
        Duration::from_secs(30),
        || {
            let (addr, topic) = (addr.clone(), topic.clone());
            async move {
                let g = lag_gauges(&addr, &topic, 2).await;
                eprintln!("A's lag after B took over: {g:?}");
                g.iter().all(|v| *v == Some(0.0)).then_some(g)
            }
        },
    )
    .await;
    let last = lag_gauges(&addr, &topic, 2).await;
    b.terminate();
    a.stop().await;
    assert!(gauges.is_ok(), "A's lag gauges stayed at {last:?}");
    assert_exactly_once(&read_all(&store).await, &topic, &expected);
}

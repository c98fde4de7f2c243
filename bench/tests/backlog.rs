//! The worker-throughput pair against the real stack: the consume-and-discard baseline and the
//! debug `worker` behind the same backlog must each account for every record, and the worker's
//! numbers must come from its own counters and process.

use std::time::Duration;

use bench::backlog::BacklogPlan;
use bench::baseline::BaselinePlan;
use tokio_util::sync::CancellationToken;

const RECORDS: u64 = 3000;

#[tokio::test]
async fn baseline_and_worker_both_account_for_the_whole_backlog() {
    let topics = [
        testkit::unique("bench-backlog-a"),
        testkit::unique("bench-backlog-b"),
    ];
    for (t, partitions) in topics.iter().zip([2, 4]) {
        testkit::create_topic(t, partitions).await.expect("topic");
    }
    let producer = testkit::producer();
    let value = br#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.771", "name": "kafka.x", "log_message": "Starting Web Socket Server"}"#;
    let sends = (0..RECORDS).map(|i| {
        let (topic, partition) = if i % 3 == 0 {
            (&topics[0], (i % 2) as i32)
        } else {
            (&topics[1], (i % 4) as i32)
        };
        testkit::send(&producer, topic, partition, None, value)
    });
    futures::future::try_join_all(sends)
        .await
        .expect("backlog produced");

    let shutdown = CancellationToken::new();
    let baseline = BaselinePlan {
        brokers: testkit::brokers(),
        topics: topics.to_vec(),
        records: RECORDS,
        batch_size: 1000,
        timeout: Duration::from_secs(120),
        label: "worker_baseline_after".into(),
        broker_pid: None,
    };
    let base = bench::baseline::run(&baseline, &shutdown)
        .await
        .expect("baseline");
    assert_eq!(
        (base.records, base.bytes),
        (RECORDS, RECORDS * value.len() as u64)
    );
    assert_eq!(base.bench, "worker_baseline_after");
    assert!(base.records_per_s > 0.0);
    // The consumer is this process: its CPU over the window between the 300th and the 2700th
    // record is read (maybe 0 at 10 ms ticks); the broker's is not, no pid was given.
    assert!(
        base.consumer_cpu_us_per_record.is_some_and(|c| c >= 0.0),
        "{base:?}"
    );
    assert!(base.machine_busy_pct.is_some(), "{base:?}");
    assert_eq!(base.broker_cpu_us_per_record, None);

    let out = std::env::temp_dir().join(testkit::unique("bench-backlog-test"));
    let plan = BacklogPlan {
        brokers: testkit::brokers(),
        topics: topics.to_vec(),
        records: RECORDS,
        batch_size: 500,
        batch_max_wait_ms: 500,
        gzip_level: Some(1),
        label: "worker_lag".into(),
        bin_dir: testkit::bin("worker")
            .parent()
            .expect("bin dir")
            .to_path_buf(),
        log_dir: out.join("logs"),
        timeout: Duration::from_secs(120),
        broker_pid: None,
        storage_pid: None,
    };
    let worker = bench::backlog::run(&plan, shutdown)
        .await
        .expect("worker run");
    assert_eq!(worker.landed, RECORDS);
    // 6 partitions of 500 records each, cut at BATCH_SIZE = 500: at least 6 blobs.
    assert!(
        worker.batches >= 6 && worker.records_per_blob <= 500.0,
        "{worker:?}"
    );
    assert!(
        worker.landed_mb > worker.stored_mb && worker.stored_mb > 0.0,
        "gzip shrinks JSON lines: {worker:?}"
    );
    assert!(worker.peak_rss_mb > 1.0, "{worker:?}");
    // No broker or emulator pid given: no figure for them is made up.
    assert_eq!(
        (
            worker.broker_cpu_us_per_record,
            worker.storage_cpu_us_per_record
        ),
        (None, None)
    );
    assert_eq!(worker.cores, Some(bench::cpu::cores()));
    let _ = std::fs::remove_dir_all(&out);
}

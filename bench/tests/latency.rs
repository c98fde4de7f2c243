//! The end-to-end latency bench against the real stack, with the debug `worker` and
//! `transformer` (the test command builds them first): every record sent must become visible
//! exactly once, and the reported percentiles must be ordered and plausible.

use std::time::Duration;

use bench::latency::LatencyPlan;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn every_record_sent_at_a_fixed_rate_becomes_visible_exactly_once() {
    let bin_dir = testkit::bin("worker")
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let _ = testkit::bin("transformer");
    let out = std::env::temp_dir().join(testkit::unique("bench-latency-test"));
    let plan = LatencyPlan {
        brokers: testkit::brokers(),
        rate: 40,
        duration: Duration::from_secs(3),
        partitions: [2, 4],
        batch_size: 1000,
        batch_max_wait: Duration::from_millis(500),
        watch_poll: Duration::from_millis(300),
        poll: Duration::from_millis(100),
        drain_timeout: Duration::from_secs(60),
        bin_dir,
        results: out.join("results.jsonl"),
        log_dir: out.join("logs"),
    };
    let result = bench::latency::run(&plan, CancellationToken::new())
        .await
        .expect("latency run");
    assert_eq!(result.records_sent, 120, "40/s for 3 s");
    assert_eq!(
        (
            result.records_failed,
            result.records_missing,
            result.duplicate_rows
        ),
        (0, 0, 0)
    );
    let s = result.latency.expect("latencies");
    assert_eq!(s.count, 120);
    assert!(
        s.min_ms <= s.p50_ms
            && s.p50_ms <= s.p90_ms
            && s.p90_ms <= s.p99_ms
            && s.p99_ms <= s.max_ms,
        "{s:?}"
    );
    // Nothing can be visible before the worker lands it, and the drain bounds the rest.
    assert!(s.min_ms > 0.0 && s.max_ms < 60_000.0, "{s:?}");
    let _ = std::fs::remove_dir_all(&out);
}

//! A single pass (`worker --once`, `BATCH_CONTINUOUS=false`): lands every record below the high
//! watermarks seen at assignment, exactly once across passes, kills and daemons, and tells a
//! scheduler what happened through its JSON summary and exit code.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use rand::Rng as _;
use tokio::process::{Child, Command};

/// A pass child process; stdout (the summary) is piped, stderr (logs) goes to `log`.
fn spawn_pass(env: &[(String, String)], log: &std::path::Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("--once")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn worker --once")
}

/// Runs a pass to its end: its exit code and its summary (`Null` if it printed none).
async fn run_pass(env: &[(String, String)], dir: &tempdir::Dir) -> (i32, serde_json::Value) {
    let log = dir.file("pass.log");
    let child = spawn_pass(env, &log);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the pass ends within 2 minutes")
        .expect("pass output");
    let code = out.status.code().unwrap_or(-1);
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    if summary.is_null() {
        eprintln!(
            "pass printed no summary (exit {code}); log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    (code, summary)
}

/// Per partition `(from, end, records)` of a summary: the offsets it read, `[from, end)`.
fn ranges(summary: &serde_json::Value) -> BTreeMap<i64, (i64, i64, u64)> {
    summary["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().expect("partition"),
                (
                    p["from"].as_i64().expect("from"),
                    p["end"].as_i64().expect("end"),
                    p["records"].as_u64().expect("records"),
                ),
            )
        })
        .collect()
}

/// A scratch folder removed on drop (the pass logs).
mod tempdir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new(prefix: &str) -> Self {
            let dir = std::env::temp_dir().join(testkit::unique(prefix));
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Dir(dir)
        }
        pub fn file(&self, name: &str) -> std::path::PathBuf {
            self.0.join(name)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_lands_up_to_the_watermarks_seen_at_assignment_and_exits_0_with_its_summary() {
    let dir = tempdir::Dir::new("wpass");
    let topic = testkit::unique("wpass");
    testkit::create_topic(&topic, 3).await.expect("topic");
    let (url, store) = testkit::new_container("wpass").expect("container");
    let mut expected = produce_many(&topic, 3, 900).await;
    let mut env = base_env(&[&topic], &url);
    set(&mut env, "BATCH_SIZE", "97");

    // Records keep arriving during the pass: what arrives after it finished a partition is the
    // next pass's.
    let producer = producer();
    let during = {
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut out = BTreeMap::new();
            for i in 0..300usize {
                let p = (i % 3) as i32;
                let v = sample_value(10_000 + i);
                let o = send(&producer, &topic, p, None, Some(&v), &[]).await;
                out.insert((p, o), v);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            out
        })
    };
    let (code, first) = run_pass(&env, &dir).await;
    assert_eq!(code, 0, "summary: {first}");
    assert_eq!(first["ok"], true);
    assert_eq!(first["ended_by"], "complete");
    let first_ranges = ranges(&first);
    assert_eq!(first_ranges.len(), 3, "every partition assigned: {first}");
    let landed = read_all(&store).await;
    for (p, (from, end, records)) in &first_ranges {
        assert_eq!(*from, 0, "partition {p} starts at the beginning");
        assert!(*end >= 300, "partition {p}: the whole backlog");
        assert_eq!(*records, (end - from) as u64, "partition {p}");
        let offsets: Vec<i64> = landed
            .iter()
            .filter(|l| l.partition == *p as i32)
            .map(|l| l.offset)
            .collect();
        assert_eq!(
            offsets,
            (*from..*end).collect::<Vec<_>>(),
            "partition {p}: exactly the pass's range, nothing past its end"
        );
    }
    assert_eq!(first["records"].as_u64(), Some(landed.len() as u64));

    expected.extend(during.await.expect("producer"));
    let (code, second) = run_pass(&env, &dir).await;
    assert_eq!(code, 0, "summary: {second}");
    for (p, (from, _, _)) in ranges(&second) {
        assert_eq!(
            from, first_ranges[&p].1,
            "the next pass starts where this one ended"
        );
    }
    assert_exactly_once(&read_all(&store).await, &topic, &expected);

    // Nothing new: the pass finishes at once.
    let (code, third) = run_pass(&env, &dir).await;
    assert_eq!(code, 0, "summary: {third}");
    assert_eq!(third["records"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_killed_at_random_moments_and_rerun_land_every_offset_exactly_once() {
    let dir = tempdir::Dir::new("wpasskill");
    let topic = testkit::unique("wpasskill");
    testkit::create_topic(&topic, 4).await.expect("topic");
    let (url, store) = testkit::new_container("wpasskill").expect("container");
    let expected = produce_many(&topic, 4, 20_000).await;
    let mut env = base_env(&[&topic], &url);
    set(&mut env, "BATCH_SIZE", "97");
    set(&mut env, "UPLOAD_CONCURRENCY", "2");
    // A killed member holds its partitions until its session times out.
    set(&mut env, "KAFKA_SESSION_TIMEOUT_MS", "3000");
    // Slow machines: a join may wait for a killed member's session to end.
    set(&mut env, "PASS_ASSIGN_TIMEOUT_MS", "60000");
    let mut rng = rand::thread_rng();
    for kill in 0..10 {
        let log = dir.file(&format!("kill-{kill}.log"));
        let mut child = spawn_pass(&env, &log);
        // Kill once the pass owns its partitions, at a random moment of its landing: mid-batch,
        // mid-upload, between upload and commit, during the final commit. (A member killed in
        // the middle of a join is the coordinator's business: it holds the next join until
        // the rebalance timeout, minutes, which tests nothing of ours.)
        let assigned = testkit::wait_for(
            "the pass to own partitions",
            Duration::from_secs(60),
            || {
                let log = log.clone();
                async move {
                    std::fs::read_to_string(&log)
                        .is_ok_and(|t| t.contains("pass_partition"))
                        .then_some(())
                }
            },
        )
        .await;
        if assigned.is_ok() {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1500))).await;
        }
        child.start_kill().expect("kill -9");
        let _ = child.wait().await;
        // Let the killed member's session (3 s) end before the next pass joins.
        tokio::time::sleep(Duration::from_millis(3500)).await;
    }
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 5, "a pass finally exits 0");
        let (code, summary) = run_pass(&env, &dir).await;
        if code == 0 && summary["ended_by"] == "complete" {
            break;
        }
        eprintln!("pass exited {code}: {summary}");
    }
    assert_exactly_once(&read_all(&store).await, &topic, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_and_a_daemon_alternating_on_one_group_land_exactly_once() {
    let dir = tempdir::Dir::new("wpassd");
    let topic = testkit::unique("wpassd");
    testkit::create_topic(&topic, 2).await.expect("topic");
    let (url, store) = testkit::new_container("wpassd").expect("container");
    let mut env = base_env(&[&topic], &url);
    set(&mut env, "BATCH_SIZE", "50");
    let mut expected = produce_range(&producer(), &topic, 2, 0..500).await;
    let (code, summary) = run_pass(&env, &dir).await;
    assert_eq!(code, 0, "{summary}");

    expected.extend(produce_range(&producer(), &topic, 2, 500..1000).await);
    let daemon = InProcess::start(&env).await;
    wait_landed(&store, &topic, 1000, Duration::from_secs(60)).await;
    daemon.stop().await;

    expected.extend(produce_range(&producer(), &topic, 2, 1000..1500).await);
    let (code, summary) = run_pass(&env, &dir).await;
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        summary["records"], 500,
        "only what the daemon left: {summary}"
    );
    assert_exactly_once(&read_all(&store).await, &topic, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_exits_non_zero_with_the_reason_when_storage_or_the_broker_is_unreachable() {
    let dir = tempdir::Dir::new("wpassfail");
    let topic = testkit::unique("wpassfail");
    testkit::create_topic(&topic, 1).await.expect("topic");
    let (url, _store) = testkit::new_container("wpassfail").expect("container");
    produce_many(&topic, 1, 20).await;

    // Storage down past the retry budget (the shutdown grace): exit 1, nothing committed.
    let mut env = base_env(&[&topic], &url);
    set(
        &mut env,
        "AZURITE_BLOB_STORAGE_URL",
        format!("http://127.0.0.1:{}", free_port()),
    );
    set(&mut env, "SHUTDOWN_GRACE_MS", "3000");
    let (code, summary) = run_pass(&env, &dir).await;
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["ok"], false);
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(error.contains("could not be landed"), "{summary}");
    assert_eq!(committed(&var(&env, "KAFKA_GROUP_ID"), &topic), None);

    // No broker: no partition is ever assigned.
    let mut env = base_env(&[&topic], &url);
    set(
        &mut env,
        "KAFKA_BROKERS",
        format!("127.0.0.1:{}", free_port()),
    );
    set(&mut env, "PASS_ASSIGN_TIMEOUT_MS", "2000");
    let (code, summary) = run_pass(&env, &dir).await;
    assert_eq!(code, 3, "{summary}");
    assert_eq!(summary["ended_by"], "not_assigned");
    assert!(
        summary["error"]
            .as_str()
            .is_some_and(|e| e.contains("PASS_ASSIGN_TIMEOUT_MS")),
        "{summary}"
    );

    // An empty topic: done at once.
    let empty = testkit::unique("wpassempty");
    testkit::create_topic(&empty, 2).await.expect("topic");
    let env = base_env(&[&empty], &url);
    let (code, summary) = run_pass(&env, &dir).await;
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["records"], 0);
    assert_eq!(ranges(&summary).len(), 2);
}

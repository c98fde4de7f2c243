//! The `simulator` binary: SIGINT flushes the producer and still writes a manifest that matches
//! the topics, and a rate limit holds.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn envs(topics: &[String; 3], manifest: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("KAFKA_BROKERS".into(), testkit::brokers()),
        ("REDIS_URL".into(), testkit::var("REDIS_URL")),
        ("TOPIC_LOBBY".into(), topics[0].clone()),
        ("TOPIC_GAME".into(), topics[1].clone()),
        ("TOPIC_CLIENT".into(), topics[2].clone()),
        ("MANIFEST_PATH".into(), manifest.display().to_string()),
        ("JOIN_SCOPE".into(), "instance".into()),
        ("LOG_FORMAT".into(), "json".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_flushes_and_writes_a_manifest_matching_the_topics() -> anyhow::Result<()> {
    let topics = common::topics("sigint").await?;
    let dir = testkit::TempDir::new("sim")?;
    let manifest = common::manifest_path(&dir, "sigint");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .envs(envs(&topics, &manifest))
        .args([
            "play",
            "--players",
            "4",
            "--client-games",
            "1000",
            "--server-sleep",
            "0.01",
            "--lobby-timeout",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    // Never leave a player running when an assertion fails.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _guard = KillOnDrop(pid);
    // Wait until a game has finished (its `game_finished` log event), then interrupt.
    let finished = Arc::new(AtomicBool::new(false));
    let stderr = child.stderr.take().expect("piped stderr");
    let seen = finished.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("game_finished") {
                seen.store(true, Ordering::SeqCst);
            }
        }
    });
    testkit::wait_for("a finished game", Duration::from_secs(60), || {
        let done = finished.load(Ordering::SeqCst);
        async move { done.then_some(()) }
    })
    .await?;
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "simulator did not stop within 60 s of SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{exit}");
    let m = simulator::Manifest::read(&manifest)?;
    assert!(!m.complete, "an interrupted run says so");
    assert_eq!(m.failed_deliveries, 0);
    let mut total = 0;
    for topic in &topics {
        let records = common::read_all(topic)?;
        total += records.len() as u64;
        let expected: std::collections::BTreeMap<i32, (u64, i64, i64)> = m
            .topics
            .get(topic)
            .map(|ps| {
                ps.iter()
                    .map(|(p, s)| (*p, (s.count, s.min_offset, s.max_offset)))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(common::partition_stats(&records), expected, "{topic}");
    }
    assert_eq!(total, m.good_records);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_caps_records_per_second() -> anyhow::Result<()> {
    let topics = common::topics("rate").await?;
    let dir = testkit::TempDir::new("sim")?;
    let manifest = common::manifest_path(&dir, "rate");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .envs(envs(&topics, &manifest))
        .args(["flood", "--messages", "300", "--rate-limit", "200"])
        .output()?;
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout)?;
    assert!(line.starts_with("flood: 300 records"), "{line}");
    assert!(
        elapsed >= Duration::from_millis(1400),
        "300 records at 200/s took only {elapsed:?}"
    );
    assert_eq!(simulator::Manifest::read(&manifest)?.good_records, 300);
    Ok(())
}

#[test]
fn invalid_knob_exits_non_zero_naming_the_variable() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .env("KAFKA_BROKERS", "127.0.0.1:9")
        .args(["--bad-ratio", "2"])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("BAD_RATIO is invalid: 2 is not a probability between 0 and 1"),
        "{err}"
    );
    Ok(())
}

//! Delta mode end to end on the real stack: the transformer killed with SIGKILL again and again
//! while a flood lands (commits every 500 ms, so kills land in commits), a backfill over a range
//! already transformed, and a reader we did not write (the `deltalake` package from PyPI).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use rand::{Rng, SeedableRng};
use tests::pipeline::Pipeline;
use tests::summary::Summary;
use transformer::delta::Lakehouse;
use transformer::delta::schema::Table;
use transformer::delta::staged::parse_data_file;

const SETTLE: Duration = Duration::from_secs(240);

async fn settle(p: &Pipeline, manifest: &simulator::Manifest) -> Summary {
    p.settle(manifest, SETTLE).await
}

/// Every table as the PyPI reader sees it: rows equal to the summary's, no duplicate ids.
fn assert_python_agrees(container: &str, s: &Summary) {
    let v = testkit::delta_read(container).expect("the PyPI reader reads every table");
    for model in [
        "buffer_meta",
        "log_meta",
        "lib_server_lobby",
        "lib_server_game",
    ] {
        let want = s.standard.rows.get(model).copied().unwrap_or(0);
        assert_eq!(v[model]["rows"], want, "{model}: {}", v[model]);
        assert_eq!(v[model]["duplicate_msg_ids"], 0, "{model}: {}", v[model]);
        assert_eq!(v[model]["protocol"], serde_json::json!([1, 2]), "{model}");
    }
    assert_eq!(v["etl_meta"]["duplicate_etl_ids"], 0, "{}", v["etl_meta"]);
    assert_eq!(
        v["_deadletter"]["rows"].as_u64().unwrap_or(0),
        s.standard.dead_letters.len() as u64,
        "{}",
        v["_deadletter"]
    );
}

async fn names(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    store
        .list(Some(&Path::from(prefix)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list")
}

#[tokio::test(flavor = "multi_thread")]
async fn transformer_killed_ten_times_mid_commit_leaves_every_record_once() {
    let p = Pipeline::new("e2e-delta-kill").await.expect("pipeline");
    let _worker = p
        .spawn_worker("1", &[("BATCH_SIZE", "200"), ("BATCH_MAX_WAIT_MS", "200")])
        .expect("worker");
    let flood = {
        let p = p.clone();
        tokio::spawn(async move {
            p.simulate(
                "flood",
                &["flood", "--messages", "12000", "--bad-ratio", "0.01"],
                &[("SEED", "7"), ("RATE_LIMIT", "600")],
            )
            .await
        })
    };
    // Commits every 500 ms: with blobs landing all the time, some kills hit a round.
    let watch_env: &[(&str, &str)] = &[
        ("DELTA_COMMIT_INTERVAL_MS", "500"),
        ("WATCH_LEASE_TTL_MS", "3000"),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let started = Instant::now();
    for i in 0..10 {
        let mut watch = p.spawn_watch(&format!("k{i}"), watch_env).expect("watch");
        tokio::time::sleep(Duration::from_millis(rng.gen_range(400..2500))).await;
        watch.kill9().expect("kill -9");
    }
    eprintln!("10 kills in {:.1?}", started.elapsed());
    let _watch = p.spawn_watch("last", watch_env).expect("watch");
    let m = flood.await.expect("flood task").expect("simulator flood");
    let s = settle(&p, &m).await;
    assert!(s.ok(), "pipeline: {:#?}", s.pipeline);

    // Files written by killed transformers and never committed exist, and no reader sees them.
    let (_, standard) = p.storage.stores().expect("stores");
    let lake = Lakehouse::new(standard.clone(), &format!("az://{}", p.storage.standard));
    let live = lake
        .live_files(Table::from_name("buffer_meta").expect("table"))
        .await
        .expect("snapshot");
    let stored: BTreeSet<String> = names(&standard, "buffer_meta")
        .await
        .into_iter()
        .filter(|n| n.contains("/date="))
        .collect();
    let live: BTreeSet<&str> = live.files.iter().map(|f| f.path.as_str()).collect();
    assert!(
        live.iter().all(|l| stored.contains(*l)),
        "every live file is stored"
    );
    let orphans = stored.iter().filter(|n| !live.contains(n.as_str())).count();
    eprintln!(
        "buffer_meta: {} files stored, {} live, {orphans} never committed (invisible)",
        stored.len(),
        live.len()
    );
    assert_python_agrees(&p.storage.standard, &s);
}

/// Per commit of the log after `after`: blob keys added and removed.
async fn commits_after(
    standard: &Arc<dyn ObjectStore>,
    table: &str,
    after: i64,
) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    let mut logs: Vec<String> = names(standard, &format!("{table}/_delta_log/"))
        .await
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let version: i64 = log
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1);
        if version <= after {
            continue;
        }
        let bytes = standard
            .get(&Path::from(log.as_str()))
            .await
            .expect("log")
            .bytes()
            .await
            .expect("log body");
        let (mut added, mut removed) = (BTreeSet::new(), BTreeSet::new());
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let action: serde_json::Value = serde_json::from_slice(line).expect("action");
            for (kind, set) in [("add", &mut added), ("remove", &mut removed)] {
                if let Some(path) = action[kind]["path"].as_str()
                    && let Some((key, _)) = parse_data_file(path)
                {
                    set.insert(key.to_owned());
                }
            }
        }
        out.push((added, removed));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_over_a_transformed_range_replaces_each_blob_in_one_commit() {
    let p = Pipeline::new("e2e-delta-backfill").await.expect("pipeline");
    let _worker = p.spawn_worker("1", &[]).expect("worker");
    let mut watch = p.spawn_watch("1", &[]).expect("watch");
    let m = p
        .simulate(
            "play",
            &["play"],
            &[
                ("PLAYERS", "20"),
                ("CLIENT_GAMES", "5"),
                ("SERVER_SLEEP", "0.01"),
                ("LOBBY_TIMEOUT", "1"),
                ("SEED", "3"),
                ("JOIN_SCOPE", "instance"),
            ],
        )
        .await
        .expect("simulator play");
    let before = settle(&p, &m).await;
    assert!(before.ok(), "{:#?}", before.pipeline);
    watch
        .terminate(Duration::from_secs(20))
        .expect("watch stops");

    let (_, standard) = p.storage.stores().expect("stores");
    let lake = Lakehouse::new(standard.clone(), &format!("az://{}", p.storage.standard));
    let mut versions = BTreeMap::new();
    for t in Table::ALL {
        let v = lake.live_files(t).await.expect("snapshot").version;
        versions.insert(t.name(), v.unwrap_or(-1));
    }
    let now = chrono::Utc::now();
    let from = (now - chrono::Duration::hours(3)).to_rfc3339();
    let to = (now + chrono::Duration::hours(1)).to_rfc3339();
    let status = std::process::Command::new(tests::pipeline::bin("transformer"))
        .args(["backfill", "--from", &from, "--to", &to])
        .envs(p.watch_env())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("backfill runs");
    assert!(
        status.status.success(),
        "backfill: {}",
        String::from_utf8_lossy(&status.stderr)
    );

    let after = settle(&p, &m).await;
    assert!(after.ok(), "{:#?}", after.pipeline);
    assert_eq!(
        after.standard.rows, before.standard.rows,
        "row counts unchanged"
    );
    // The log shows the replacement: each commit since removes exactly the blobs it adds
    // (a blob's old rows and new rows are never both live, nor both absent).
    for t in ["buffer_meta", "log_meta", "etl_meta"] {
        let commits = commits_after(&standard, t, versions[t]).await;
        assert!(!commits.is_empty(), "{t}: the backfill committed");
        let mut replaced = BTreeSet::new();
        for (added, removed) in &commits {
            assert_eq!(
                added, removed,
                "{t}: a commit adds exactly the blobs it removes"
            );
            replaced.extend(added.iter().cloned());
        }
        let blobs = after.raw_blobs as usize;
        assert_eq!(replaced.len(), blobs, "{t}: every blob replaced once");
    }
    assert_python_agrees(&p.storage.standard, &after);
}

#[tokio::test(flavor = "multi_thread")]
async fn four_transformer_processes_commit_to_the_same_tables_without_loss_or_duplicates() {
    let p = Pipeline::new("e2e-delta-four").await.expect("pipeline");
    let _worker = p
        .spawn_worker("1", &[("BATCH_SIZE", "100"), ("BATCH_MAX_WAIT_MS", "200")])
        .expect("worker");
    // Four processes, each committing every second what it transformed: their commits race
    // for the same versions of the same six tables all the time.
    let env: &[(&str, &str)] = &[("DELTA_COMMIT_INTERVAL_MS", "1000")];
    let _watchers: Vec<_> = (0..4)
        .map(|i| p.spawn_watch(&format!("w{i}"), env).expect("watch"))
        .collect();
    let m = p
        .simulate(
            "flood",
            &["flood", "--messages", "6000", "--bad-ratio", "0.01"],
            &[("SEED", "5"), ("RATE_LIMIT", "1000")],
        )
        .await
        .expect("simulator flood");
    let s = settle(&p, &m).await;
    assert!(s.ok(), "pipeline: {:#?}", s.pipeline);
    let mut conflicts = 0u64;
    for i in 0..4 {
        let log =
            std::fs::read_to_string(p.log_dir.join(format!("watch-w{i}.log"))).unwrap_or_default();
        conflicts += log
            .lines()
            .filter(|l| l.contains("\"event\":\"delta_round\""))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["conflicts"].as_u64())
            .sum::<u64>();
    }
    eprintln!("lost commit races retried across the 4 processes: {conflicts}");
    assert_python_agrees(&p.storage.standard, &s);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compacted_run_still_has_every_record_once_for_the_summary_and_the_pypi_reader() {
    use transformer::delta::compact::{CompactOptions, CompactOutcome};
    let p = Pipeline::new("e2e-delta-compact").await.expect("pipeline");
    let _worker = p
        .spawn_worker("1", &[("BATCH_SIZE", "1000"), ("BATCH_MAX_WAIT_MS", "500")])
        .expect("worker");
    let _watch = p
        .spawn_watch("1", &[("DELTA_COMMIT_INTERVAL_MS", "1000")])
        .expect("watch");
    let m = p
        .simulate(
            "flood",
            &["flood", "--messages", "40000", "--bad-ratio", "0.01"],
            &[("SEED", "9"), ("RATE_LIMIT", "4000")],
        )
        .await
        .expect("simulator flood");
    let before = settle(&p, &m).await;
    assert!(before.ok(), "pipeline: {:#?}", before.pipeline);

    let (_, standard) = p.storage.stores().expect("stores");
    let lake = Lakehouse::new(standard.clone(), &format!("az://{}", p.storage.standard));
    let mut dates = BTreeSet::new();
    let mut files_before = BTreeMap::new();
    for t in Table::ALL {
        let live = lake.live_files(t).await.expect("snapshot");
        files_before.insert(t.name(), live.files.len());
        for f in &live.files {
            let d = f
                .path
                .split("/date=")
                .nth(1)
                .and_then(|r| r.split('/').next());
            dates.extend(d.map(str::to_owned));
        }
    }
    let target: u64 = 128 << 20;
    for date in &dates {
        let opts = CompactOptions {
            target_bytes: target,
            min_age: Duration::ZERO,
            table: None,
            partition: Some(date.clone()),
            compression: transformer::writer::Compression::Zstd,
        };
        let done = lake.compact(&opts).await.expect("compaction");
        assert!(
            done.iter().all(|c| c.outcome == CompactOutcome::Committed),
            "{done:?}"
        );
    }
    for t in Table::ALL {
        let live = lake.live_files(t).await.expect("snapshot");
        let mut per_date: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
        for f in &live.files {
            let d = f
                .path
                .split("/date=")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .unwrap_or_default();
            let e = per_date.entry(d).or_default();
            e.0 += 1;
            e.1 += f.size;
        }
        for (date, (files, bytes)) in per_date {
            let bound = usize::try_from(bytes).expect("size")
                / usize::try_from(target).expect("target")
                + 2;
            assert!(
                files <= bound,
                "{} {date}: {files} files for {bytes} bytes",
                t.name()
            );
        }
        eprintln!(
            "{}: {} files before compaction, {} after",
            t.name(),
            files_before[t.name()],
            live.files.len()
        );
    }
    // Every offset once, and the manifest's counts, as before the compaction.
    let after = settle(&p, &m).await;
    assert!(
        after.ok(),
        "pipeline after compaction: {:#?}",
        after.pipeline
    );
    assert_eq!(after.standard.rows, before.standard.rows);
    assert_python_agrees(&p.storage.standard, &after);
}

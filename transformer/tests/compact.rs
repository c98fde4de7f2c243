//! Compaction of the Delta tables against real Azurite, read back by delta-rs and by the
//! `deltalake` package from PyPI: a partition's small files become few large ones with the same
//! rows; replays and redeliveries of compacted blobs stay exactly-once; compaction racing
//! ingestion and replays never shows a reader a duplicate or a lost row; a compaction killed
//! mid-rewrite changes nothing a reader sees, and vacuum removes what it left.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::lake::*;
use common::*;
use transformer::delta::Lakehouse;
use transformer::delta::compact::{CompactOptions, CompactOutcome};
use transformer::delta::schema::Table;
use transformer::process::{Delivery, Stores, process_blob_as};
use transformer::writer::Compression;

const DATE: &str = "2024-01-14";

fn compact_opts(target_bytes: u64) -> CompactOptions {
    CompactOptions {
        target_bytes,
        min_age: Duration::ZERO,
        table: None,
        partition: None,
        compression: Compression::Zstd,
    }
}

/// Stages and commits `lobbies` lobby blobs and `games` game blobs (one round per blob, as a
/// steady stream gives); returns their names.
async fn ingest(stores: &Stores, lh: &Lakehouse, lobbies: i64, games: i64) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..lobbies {
        let (n, gz) = raw_blob(model::TOPIC_LOBBY, (i % 2) as i32, (i / 2) * 5, &lobby());
        upload(&stores.raw, &n, gz).await;
        names.push(n);
    }
    for i in 0..games {
        let (n, gz) = raw_blob(model::TOPIC_GAME, (i % 4) as i32, (i / 4) * 3, &game());
        upload(&stores.raw, &n, gz).await;
        names.push(n);
    }
    for n in &names {
        process_blob_as(stores, n, delta(), "test", Delivery::First)
            .await
            .expect("staged");
        lh.commit_staged().await.expect("round");
    }
    names
}

/// The commit of `version` of `table`, as written in its log.
async fn commit_log(stores: &Stores, table: Table, version: i64) -> Vec<serde_json::Value> {
    let path = format!("{}/_delta_log/{version:020}.json", table.name());
    let bytes = get(&stores.standard, &path)
        .await
        .unwrap_or_else(|| panic!("{path} missing"));
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON action"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_partition_becomes_one_file_per_table_with_the_same_rows_and_time_travel_still_works()
 {
    let (stores, _, std_url) = containers();
    let lh = lake(&std_url, &stores).await;
    ingest(&stores, &lh, 4, 8).await;
    let before = snapshot(&stores, &lh).await;
    assert_eq!(before.duplicate_ids, 0);
    let files_before = lh
        .live_files(Table::from_name("lib_server_game").expect("table"))
        .await
        .expect("files");
    assert_eq!(files_before.files.len(), 8, "one file per game blob");

    let done = lh
        .compact(&compact_opts(128 << 20))
        .await
        .expect("compacted");
    assert_eq!(
        done.len(),
        Table::ALL.len(),
        "one partition per table: {done:?}"
    );
    assert!(
        done.iter().all(|c| c.outcome == CompactOutcome::Committed
            && c.files_added == 1
            && c.date == DATE),
        "{done:?}"
    );

    let after = snapshot(&stores, &lh).await;
    assert_eq!(after.rows, before.rows, "same rows");
    assert_eq!(after.duplicate_ids, 0);
    for table in Table::ALL {
        let files = lh.live_files(table).await.expect("files");
        assert_eq!(files.files.len(), 1, "{}: {files:?}", table.name());
        // The compaction is one OPTIMIZE commit that changes no data.
        let version = files.version.expect("version");
        let log = commit_log(&stores, table, version).await;
        let info = log
            .iter()
            .find_map(|a| a.get("commitInfo"))
            .expect("commitInfo");
        assert_eq!(info["operation"], "OPTIMIZE", "{info}");
        for a in &log {
            for kind in ["add", "remove"] {
                if let Some(x) = a.get(kind) {
                    assert_eq!(x["dataChange"], false, "{kind}: {x}");
                }
            }
        }
    }

    // A reader we did not write reads the compacted tables, and the snapshot before them.
    let container = std_url.trim_start_matches("az://");
    let v = testkit::delta_read(container).expect("the PyPI reader reads every table");
    for (table, rows) in &after.rows {
        assert_eq!(v[*table]["rows"], *rows, "{table}: {}", v[*table]);
        assert_eq!(v[*table]["files"], 1, "{table}: {}", v[*table]);
        if let Some(d) = v[*table].get("duplicate_msg_ids") {
            assert_eq!(d, 0, "{table}");
        }
    }
    let old = testkit::delta_read_version(
        container,
        "lib_server_game",
        files_before.version.expect("version"),
    )
    .expect("time travel to the version before the compaction");
    assert_eq!(old["lib_server_game"]["files"], 8, "{old}");
    assert_eq!(
        old["lib_server_game"]["rows"], before.rows["lib_server_game"],
        "{old}"
    );

    // Compacting again finds nothing to do.
    let again = lh
        .compact(&compact_opts(128 << 20))
        .await
        .expect("compacted");
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_packed_to_the_target_size_and_open_partitions_wait() {
    let (stores, _, std_url) = containers();
    let lh = lake(&std_url, &stores).await;
    ingest(&stores, &lh, 2, 12).await;
    let game = Table::from_name("buffer_meta").expect("table");
    let files = lh.live_files(game).await.expect("files");
    let total: i64 = files.files.iter().map(|f| f.size).sum();
    let target = u64::try_from(total / 4).expect("size");

    // An open partition (nothing committed to it for `min_age` yet) is left alone.
    let mut opts = compact_opts(target);
    opts.min_age = Duration::from_secs(3600);
    assert!(lh.compact(&opts).await.expect("compact").is_empty());

    opts.min_age = Duration::ZERO;
    opts.table = Some(game);
    let done = lh.compact(&opts).await.expect("compacted");
    assert_eq!(done.len(), 1, "{done:?}");
    let after = lh.live_files(game).await.expect("files");
    let target_i = i64::try_from(target).expect("target");
    let bound = usize::try_from((total + target_i - 1) / target_i).expect("bound") + 1;
    assert!(
        after.files.len() <= bound && after.files.len() < files.files.len(),
        "{} files after, bound {bound}: {after:?}",
        after.files.len()
    );
    let rows = |f: &transformer::delta::TableFiles| -> u64 {
        f.files.iter().map(|f| f.rows.expect("rows")).sum()
    };
    assert_eq!(rows(&after), rows(&files));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_blob_redelivered_adds_nothing_and_replayed_is_replaced_in_one_commit() {
    let (stores, _, std_url) = containers();
    let lh = lake(&std_url, &stores).await;
    let names = ingest(&stores, &lh, 2, 4).await;
    lh.compact(&compact_opts(128 << 20))
        .await
        .expect("compacted");
    let compacted = snapshot(&stores, &lh).await;

    // Redelivery: the blob is found live in the compacted file's keys, nothing is committed.
    process_blob_as(&stores, &names[0], delta(), "test", Delivery::First)
        .await
        .expect("redelivered");
    let round = lh.commit_staged().await.expect("round");
    assert_eq!(round.commits, 0, "{round:?}");
    assert_eq!(snapshot(&stores, &lh).await, compacted);

    // Replay: the compacted file is rewritten without the blob's rows and the new rows added,
    // in one commit per table.
    process_blob_as(&stores, &names[0], delta(), "test", Delivery::Replay)
        .await
        .expect("replayed");
    let round = lh.commit_staged().await.expect("round");
    assert_eq!(
        round.commits, 5,
        "lobby blob: 4 models + dead letters: {round:?}"
    );
    let replayed = snapshot(&stores, &lh).await;
    assert_eq!(replayed.rows, compacted.rows, "every row once");
    assert_eq!(replayed.duplicate_ids, 0);
    let etl = Table::from_name("etl_meta").expect("table");
    let files = lh.live_files(etl).await.expect("files");
    let paths: Vec<&str> = files.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths.len(),
        2,
        "the rewritten compacted file and the replay's: {paths:?}"
    );
    let log = commit_log(&stores, etl, files.version.expect("version")).await;
    let removes = log.iter().filter(|a| a.get("remove").is_some()).count();
    let adds = log.iter().filter(|a| a.get("add").is_some()).count();
    assert_eq!((removes, adds), (1, 2), "{log:?}");

    // Replayed again after its rows left the compacted file: an ordinary replay.
    process_blob_as(&stores, &names[0], delta(), "test", Delivery::Replay)
        .await
        .expect("replayed");
    lh.commit_staged().await.expect("round");
    assert_eq!(snapshot(&stores, &lh).await.rows, compacted.rows);

    // Vacuum drops the replaced compacted file and its keys file; live ones keep theirs.
    lh.vacuum(Duration::ZERO, true, false)
        .await
        .expect("vacuum");
    let keys = names_under(&stores, "_delta_compacted/").await;
    let mut live = BTreeSet::new();
    for t in Table::ALL {
        for f in lh.live_files(t).await.expect("files").files {
            if f.path.contains("/compacted-") {
                live.insert(format!("_delta_compacted/{}.json", f.path));
            }
        }
    }
    assert_eq!(keys, live);
    assert_eq!(snapshot(&stores, &lh).await.rows, compacted.rows);
}

async fn names_under(stores: &Stores, prefix: &str) -> BTreeSet<String> {
    names(&stores.standard, Some(prefix))
        .await
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_racing_ingestion_and_replays_never_shows_a_duplicate_or_a_lost_row() {
    let (stores, _, std_url) = containers();
    let seed = lake(&std_url, &stores).await;
    let names = ingest(&stores, &seed, 2, 4).await;
    let stores = Arc::new(stores);
    let ingest_lh = Arc::new(lake(&std_url, &stores).await);
    let replay_lh = Arc::new(lake(&std_url, &stores).await);
    let compact_lh = Arc::new(lake(&std_url, &stores).await);
    let stop = tokio_util::sync::CancellationToken::new();

    // Steady ingestion: new game blobs, one commit round each.
    let ingestion = {
        let (stores, lh) = (stores.clone(), ingest_lh.clone());
        tokio::spawn(async move {
            for i in 4..16i64 {
                let (n, gz) = raw_blob(model::TOPIC_GAME, (i % 4) as i32, (i / 4) * 3, &game());
                upload(&stores.raw, &n, gz).await;
                process_blob_as(&stores, &n, delta(), "test", Delivery::First)
                    .await
                    .expect("staged");
                lh.commit_staged().await.expect("ingestion round");
            }
        })
    };
    // Replays of the first blobs, over and over.
    let replays = {
        let (stores, lh, stop, names) = (
            stores.clone(),
            replay_lh.clone(),
            stop.clone(),
            names.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                let name = &names[n % 2];
                process_blob_as(&stores, name, delta(), "test", Delivery::Replay)
                    .await
                    .expect("replayed");
                lh.commit_staged().await.expect("replay round");
                n += 1;
            }
            n
        })
    };
    // Compaction, over and over.
    let compactions = {
        let (lh, stop) = (compact_lh.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut committed, mut abandoned) = (0, 0);
            while !stop.is_cancelled() {
                for c in lh
                    .compact(&compact_opts(128 << 20))
                    .await
                    .expect("compaction")
                {
                    match c.outcome {
                        CompactOutcome::Committed => committed += 1,
                        CompactOutcome::Abandoned => abandoned += 1,
                    }
                }
            }
            (committed, abandoned)
        })
    };
    // A reader polling the tables: every snapshot has each id once and never fewer rows.
    let mut last = snapshot(&stores, &seed).await;
    let mut polls = 0;
    while !ingestion.is_finished() {
        let s = snapshot(&stores, &seed).await;
        assert_eq!(s.duplicate_ids, 0, "a snapshot with a duplicate: {s:?}");
        for (table, rows) in &s.rows {
            assert!(
                *rows >= last.rows[table],
                "{table}: {rows} rows after {}: {s:?}",
                last.rows[table]
            );
        }
        last = s;
        polls += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ingestion.await.expect("ingestion");
    stop.cancel();
    let replayed = replays.await.expect("replays");
    let (committed, abandoned) = compactions.await.expect("compactions");
    assert!(
        polls > 3 && replayed > 0 && committed > 0,
        "polls {polls}, replays {replayed}, compactions {committed}/{abandoned}"
    );

    // Everything once: 2 lobby + 16 game blobs.
    let end = snapshot(&stores, &seed).await;
    assert_eq!(end.duplicate_ids, 0);
    assert_eq!(end.rows["etl_meta"], 18, "{end:?}");
    assert_eq!(
        end.rows["lib_server_game"], 32,
        "two attacks per game blob: {end:?}"
    );
    let container = std_url.trim_start_matches("az://");
    let v = testkit::delta_read(container).expect("PyPI reader");
    assert_eq!(v["lib_server_game"]["rows"], 32, "{v}");
    assert_eq!(v["lib_server_game"]["duplicate_msg_ids"], 0, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_killed_mid_rewrite_changes_nothing_and_vacuum_removes_what_it_wrote() {
    use std::process::{Command, Stdio};
    let (stores, raw_url, std_url) = containers();
    let lh = lake(&std_url, &stores).await;
    // Game blobs large enough that one MiB holds about two of their buffer_meta files: the
    // compaction writes group after group, and is killed after the first.
    let recs: Vec<Rec> = (0..6000).map(|i| Rec::value(varied_attack(i))).collect();
    let mut names_staged = Vec::new();
    for i in 0..12i64 {
        let (n, gz) = raw_blob(model::TOPIC_GAME, (i % 4) as i32, (i / 4) * 6000, &recs);
        upload(&stores.raw, &n, gz).await;
        process_blob_as(&stores, &n, delta(), "test", Delivery::First)
            .await
            .expect("staged");
        names_staged.push(n);
    }
    lh.commit_staged().await.expect("round");
    let before = snapshot(&stores, &lh).await;
    let versions = before.versions.clone();

    let mut child = Command::new(env!("CARGO_BIN_EXE_transformer"))
        .args(["compact", "--older-than", "0s"])
        .env("RAW_URL", &raw_url)
        .env("STANDARD_URL", &std_url)
        .env("COMPACT_TARGET_MB", "1")
        .env("LOG_FORMAT", "text")
        .envs(testkit::azure_env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("transformer compact");
    // Kill it as soon as its first compacted file is in storage.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let first = loop {
        let written: Vec<String> = names(&stores.standard, None)
            .await
            .into_iter()
            .filter(|n| n.contains("/compacted-") && n.ends_with(".parquet"))
            .collect();
        if let Some(f) = written.into_iter().next() {
            break f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no compacted file within 60 s"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "compact exited before writing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    // Nothing a reader sees changed: same rows, same versions, the file written is no table's.
    let after = snapshot(&stores, &lh).await;
    assert_eq!(after.rows, before.rows);
    assert_eq!(after.versions, versions, "no commit landed");
    let table = first.split('/').next().expect("table").to_owned();
    let live = lh
        .live_files(Table::from_name(&table).expect("table"))
        .await
        .expect("files");
    assert!(
        live.files.iter().all(|f| f.path != first),
        "{first} is not live"
    );

    // Vacuum removes the orphans and their keys files.
    lh.vacuum(Duration::ZERO, true, false)
        .await
        .expect("vacuum");
    let left: Vec<String> = names(&stores.standard, None)
        .await
        .into_iter()
        .filter(|n| n.contains("compacted-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(snapshot(&stores, &lh).await.rows, before.rows);

    // The next compaction completes.
    let done = lh
        .compact(&compact_opts(1 << 20))
        .await
        .expect("compaction");
    assert!(
        done.iter().all(|c| c.outcome == CompactOutcome::Committed),
        "{done:?}"
    );
    assert_eq!(snapshot(&stores, &lh).await.rows, before.rows);
}

/// A game record with its own game and user tokens, so files do not compress to nothing.
fn varied_attack(i: u32) -> String {
    let token = |salt: u32| {
        let h =
            (i.wrapping_mul(2_654_435_761) ^ salt.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
        format!(
            "{h:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            i & 0xffff,
            salt & 0xfff,
            h & 0xfff,
            u64::from(h) * 7919
        )
    };
    ATTACK_1
        .replace("9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13", &token(1))
        .replace("6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b", &token(2))
}

//! Delta mode against real Azurite: each raw blob's rows are in each table exactly once in
//! every snapshot, through redelivery, replay, redone rounds and concurrent committers; staged
//! files are invisible until committed; a reader we did not write (the `deltalake` package from
//! PyPI) reads the tables.

mod common;

use std::sync::Arc;

use common::lake::*;
use common::*;
use transformer::delta::schema::Table;
use transformer::delta::{Lakehouse, StagedBlob};
use transformer::process::{Delivery, process_blob_as};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_files_are_invisible_until_committed_then_every_row_is_there_once() {
    let (stores, _, std_url) = containers();
    let (a, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &lobby());
    upload(&stores.raw, &a, gz).await;
    let (b, gz) = raw_blob(model::TOPIC_GAME, 1, 0, &game());
    upload(&stores.raw, &b, gz).await;
    let lh = lake(&std_url, &stores).await;

    for name in [&a, &b] {
        let p = process_blob_as(&stores, name, delta(), "test", Delivery::First)
            .await
            .expect("staged");
        assert!(
            p.outputs.iter().any(|o| o.starts_with("_delta_staging/")),
            "{:?}",
            p.outputs
        );
    }
    // Written, not committed: no reader sees a row.
    let before = snapshot(&stores, &lh).await;
    assert!(before.rows.values().all(|n| *n == 0), "{before:?}");
    assert_eq!(lh.staged().await.expect("list").len(), 2);

    let round = lh.commit_staged().await.expect("round");
    assert_eq!((round.blobs, round.commits), (2, 6), "{round:?}");
    let after = snapshot(&stores, &lh).await;
    assert_eq!(after.rows, expected_rows());
    assert_eq!(after.duplicate_ids, 0);
    assert!(
        lh.staged().await.expect("list").is_empty(),
        "manifests deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_adds_nothing_and_a_replay_replaces_the_rows_in_one_commit() {
    let (stores, _, std_url) = containers();
    let (a, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &lobby());
    upload(&stores.raw, &a, gz).await;
    let (b, gz) = raw_blob(model::TOPIC_GAME, 1, 0, &game());
    upload(&stores.raw, &b, gz).await;
    let lh = lake(&std_url, &stores).await;
    for name in [&a, &b] {
        process_blob_as(&stores, name, delta(), "test", Delivery::First)
            .await
            .expect("staged");
    }
    lh.commit_staged().await.expect("first round");
    let first = snapshot(&stores, &lh).await;

    // The same blob again (a second watcher, a host redelivery): nothing new is committed.
    process_blob_as(&stores, &a, delta(), "test", Delivery::First)
        .await
        .expect("redelivered");
    let round = lh.commit_staged().await.expect("redelivery round");
    assert_eq!(round.commits, 0, "{round:?}");
    assert!(round.already_live >= 4, "{round:?}");
    assert_eq!(snapshot(&stores, &lh).await, first);

    // A replay replaces the blob's rows: one commit per table it has rows in, remove + add.
    process_blob_as(&stores, &a, delta(), "test", Delivery::Replay)
        .await
        .expect("replayed");
    let round = lh.commit_staged().await.expect("replay round");
    assert_eq!(round.files_removed, round.files_added, "{round:?}");
    assert_eq!(
        round.commits, 5,
        "lobby blob: 4 models + dead letters: {round:?}"
    );
    let replayed = snapshot(&stores, &lh).await;
    assert_eq!(replayed.rows, expected_rows());
    assert_eq!(replayed.duplicate_ids, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_redone_after_its_commits_changes_nothing() {
    // A committer killed after its commits but before deleting the manifests: the next round
    // finds this very write live in every table and commits nothing.
    let (stores, _, std_url) = containers();
    let (a, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &lobby());
    upload(&stores.raw, &a, gz).await;
    let lh = lake(&std_url, &stores).await;
    for delivery in [Delivery::First, Delivery::Replay] {
        let p = process_blob_as(&stores, &a, delta(), "test", delivery)
            .await
            .expect("staged");
        let manifest = p
            .outputs
            .iter()
            .find(|o| o.starts_with("_delta_staging/"))
            .expect("manifest")
            .clone();
        let kept = get(&stores.standard, &manifest).await.expect("manifest");
        let staged: StagedBlob = serde_json::from_slice(&kept).expect("manifest json");
        assert_eq!(staged.replace, delivery == Delivery::Replay);
        lh.commit_staged().await.expect("round");
        let once = snapshot(&stores, &lh).await;
        upload(&stores.standard, &manifest, kept.to_vec()).await;
        let again = lh.commit_staged().await.expect("redone round");
        assert_eq!(again.commits, 0, "{delivery:?}: {again:?}");
        assert_eq!(snapshot(&stores, &lh).await, once);
        assert_eq!(once.rows.get("etl_meta"), Some(&1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_committers_at_once_commit_every_blob_exactly_once() {
    let (stores, _, std_url) = containers();
    let mut names = Vec::new();
    for i in 0..12i64 {
        let (topic, recs) = if i % 2 == 0 {
            (model::TOPIC_LOBBY, lobby())
        } else {
            (model::TOPIC_GAME, game())
        };
        let (n, gz) = raw_blob(topic, (i % 3) as i32, i * 100, &recs);
        upload(&stores.raw, &n, gz).await;
        names.push(n);
    }
    // Four processes' worth of committers: separate table handles, one shared container.
    let committers: Vec<Arc<Lakehouse>> = (0..4)
        .map(|_| Arc::new(Lakehouse::new(stores.standard.clone(), &std_url)))
        .collect();
    // Each committer stages its share and commits after every blob, while the others do too;
    // every blob is also delivered twice (once by its owner, once by the next committer).
    let mut tasks = Vec::new();
    for (i, lh) in committers.iter().enumerate() {
        let lh = lh.clone();
        let stores = stores.clone();
        let mine: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(j, _)| j % 4 == i || (j + 1) % 4 == i)
            .map(|(_, n)| n.clone())
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for n in mine {
                process_blob_as(&stores, &n, delta(), "test", Delivery::First)
                    .await
                    .expect("staged");
                conflicts += lh.commit_staged().await.expect("round").conflicts;
            }
            conflicts
        }));
    }
    let started = std::time::Instant::now();
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.expect("committer");
    }
    let took = started.elapsed();
    committers[0].commit_staged().await.expect("last round");
    let s = snapshot(&stores, &committers[0]).await;
    assert_eq!(s.duplicate_ids, 0, "{s:?}");
    assert_eq!(s.rows.get("etl_meta"), Some(&12), "{s:?}");
    assert_eq!(s.rows.get("buffer_meta"), Some(&(6 * 5 + 6 * 3)), "{s:?}");
    assert_eq!(s.rows.get("lib_server_game"), Some(&(6 * 2)), "{s:?}");
    assert!(committers[0].staged().await.expect("list").is_empty());
    let commits: i64 = s.versions.values().map(|v| v.unwrap_or(0)).sum();
    eprintln!(
        "4 committers: {commits} commits in {took:.1?} ({:.1} commits/s over 6 tables), {conflicts} lost races retried",
        commits as f64 / took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deltalake_package_from_pypi_reads_every_table() {
    let (stores, _, std_url) = containers();
    let (a, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &lobby());
    upload(&stores.raw, &a, gz).await;
    let (b, gz) = raw_blob(model::TOPIC_GAME, 1, 0, &game());
    upload(&stores.raw, &b, gz).await;
    let lh = lake(&std_url, &stores).await;
    for name in [&a, &b] {
        process_blob_as(&stores, name, delta(), "test", Delivery::First)
            .await
            .expect("staged");
    }
    lh.commit_staged().await.expect("round");
    let container = std_url.trim_start_matches("az://");
    let v = testkit::delta_read(container).expect("the PyPI reader reads every table");
    for (table, rows) in expected_rows() {
        let t = &v[table];
        assert_eq!(t["rows"], rows, "{table}: {t}");
        assert_eq!(t["protocol"], serde_json::json!([1, 2]), "{table}: {t}");
        assert_eq!(
            t["partition_columns"],
            serde_json::json!(["date"]),
            "{table}: {t}"
        );
        assert_eq!(
            t["dates"],
            serde_json::json!(["2024-01-14"]),
            "{table}: {t}"
        );
        if let Some(d) = t.get("duplicate_msg_ids") {
            assert_eq!(d, 0, "{table}");
        }
    }
    // Unsigned columns arrive without loss in Delta types.
    assert_eq!(
        v["lib_server_game"]["schema"]["enemy_damage"],
        "decimal128(20, 0)"
    );
    assert_eq!(v["lib_server_lobby"]["schema"]["superhero_id"], "int32");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_a_reader_could_not_parse_never_reach_the_log() {
    // A manifest edited (or written by a buggy build) with a bound readers cannot parse: the
    // file is committed without stats, and the table stays readable.
    let (stores, _, std_url) = containers();
    let (a, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &lobby());
    upload(&stores.raw, &a, gz).await;
    let p = process_blob_as(&stores, &a, delta(), "test", Delivery::First)
        .await
        .expect("staged");
    let path = p
        .outputs
        .iter()
        .find(|o| o.starts_with("_delta_staging/"))
        .expect("manifest")
        .clone();
    let mut m: StagedBlob =
        serde_json::from_slice(&get(&stores.standard, &path).await.expect("manifest"))
            .expect("json");
    for f in &mut m.files {
        f.stats = f.stats.replace("\"2024-01-14T", "\"+10000-01-14T");
    }
    upload(
        &stores.standard,
        &path,
        serde_json::to_vec(&m).expect("json"),
    )
    .await;
    let lh = lake(&std_url, &stores).await;
    lh.commit_staged().await.expect("round");
    let s = snapshot(&stores, &lh).await;
    assert_eq!(s.rows.get("buffer_meta"), Some(&5), "{s:?}");
    assert_eq!(s.rows.get("etl_meta"), Some(&1), "{s:?}");
    let files = lh
        .live_files(Table::from_name("buffer_meta").expect("table"))
        .await
        .expect("readable");
    assert_eq!(files.files.len(), 1);
    assert_eq!(files.files[0].rows, None, "committed without its stats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_invocations_stage_and_the_commit_timer_makes_rows_visible() {
    use serde_json::json;
    use transformer::serve::{Handler, ServeOptions};
    let (stores, raw_url, std_url) = containers();
    let (a, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &lobby());
    upload(&stores.raw, &a, gz).await;
    let lh = Arc::new(lake(&std_url, &stores).await);
    let handler = Handler {
        stores: stores.clone(),
        transform: delta(),
        owner: "test".into(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let options = ServeOptions::new(&raw_url, 2).with_lakehouse(lh.clone());
    let (addr, server) = service::ops::bind(
        "127.0.0.1:0".parse().expect("addr"),
        handler.router_with(options),
        stop.clone(),
    )
    .await
    .expect("bind");
    tokio::spawn(server);
    let container = raw_url.trim_start_matches("az://");
    let event = json!({
        "subject": format!("/blobServices/default/containers/{container}/blobs/{a}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "data": {"url": format!("http://127.0.0.1:10000/devstoreaccount1/{container}/{}", a.replace('+', "%2B"))},
    });
    let client = reqwest::Client::new();
    let res = client
        .post(format!("http://{addr}/transform"))
        .json(&json!({"Data": {"event": event}, "Metadata": {}}))
        .send()
        .await
        .expect("transform");
    assert_eq!(
        res.status().as_u16(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert_eq!(
        snapshot(&stores, &lh).await.rows.get("etl_meta"),
        Some(&0),
        "staged only"
    );
    // The host's invocation of the timer function `commit` (binding `timer`).
    let timer = json!({"Data": {"timer": {"Schedule": {"AdjustForDST": true}, "IsPastDue": false}}, "Metadata": {}});
    let res = client
        .post(format!("http://{addr}/commit"))
        .json(&timer)
        .send()
        .await
        .expect("commit");
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["ReturnValue"]["blobs"], 1, "{body}");
    let s = snapshot(&stores, &lh).await;
    assert_eq!(s.rows.get("etl_meta"), Some(&1), "{s:?}");
    assert_eq!(s.rows.get("lib_server_lobby"), Some(&2), "{s:?}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_deletes_replaced_and_orphan_files_and_keeps_live_and_staged_ones() {
    use std::time::Duration;
    let (stores, _, std_url) = containers();
    let (a, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &lobby());
    upload(&stores.raw, &a, gz).await;
    let (b, gz) = raw_blob(model::TOPIC_GAME, 1, 0, &game());
    upload(&stores.raw, &b, gz).await;
    let lh = lake(&std_url, &stores).await;
    process_blob_as(&stores, &a, delta(), "test", Delivery::First)
        .await
        .expect("staged");
    lh.commit_staged().await.expect("round");
    // Replaced files (tombstones), an orphan (staged then skipped as already live), and a
    // staged blob not committed yet.
    process_blob_as(&stores, &a, delta(), "test", Delivery::Replay)
        .await
        .expect("replay");
    process_blob_as(&stores, &a, delta(), "test", Delivery::First)
        .await
        .expect("redelivery");
    lh.commit_staged().await.expect("round");
    process_blob_as(&stores, &b, delta(), "test", Delivery::First)
        .await
        .expect("staged, not committed");
    let before = snapshot(&stores, &lh).await;
    let data = |names: Vec<String>| -> Vec<String> {
        names.into_iter().filter(|n| n.contains("/date=")).collect()
    };
    let stored = data(names(&stores.standard, None).await);

    let err = lh
        .vacuum(Duration::ZERO, false, false)
        .await
        .expect_err("unsafe retention refused");
    assert!(err.to_string().contains("--force"), "{err}");
    let dry = lh
        .vacuum(Duration::ZERO, true, true)
        .await
        .expect("dry run");
    assert_eq!(
        data(names(&stores.standard, None).await),
        stored,
        "dry run deletes nothing"
    );
    let done = lh
        .vacuum(Duration::ZERO, true, false)
        .await
        .expect("vacuum");
    assert_eq!(done, dry, "the dry run said what vacuum did");
    let deleted: usize = done.iter().map(|v| v.deleted.len()).sum();
    // Lobby blob: 4 models + dead letters, replaced once (5 tombstones) and redelivered once
    // (5 orphans).
    assert_eq!(deleted, 10, "{done:?}");
    assert!(done.iter().any(|v| v.kept_staged > 0), "{done:?}");
    assert_eq!(snapshot(&stores, &lh).await, before, "live rows untouched");
    // The staged blob still commits whole.
    lh.commit_staged().await.expect("round");
    let after = snapshot(&stores, &lh).await;
    assert_eq!(after.rows, expected_rows());
}

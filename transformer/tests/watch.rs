//! `transformer watch`: new blobs are transformed within seconds, a failing blob ends in the
//! poison list (storage errors never put it there), a rewritten blob is processed again, two
//! watchers never duplicate work, a killed watcher's blob is taken over after the lease TTL,
//! and a slow blob keeps its renewed lease.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use object_store::ObjectStore;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use tokio_util::sync::CancellationToken;
use transformer::config::WatchSettings;
use transformer::process::Stores;
use transformer::transform::TransformOptions;
use transformer::watch::{WatchStats, Watcher};

fn watcher(stores: &Stores, max_attempts: u32) -> Watcher {
    let settings = WatchSettings {
        poll: Duration::from_millis(200),
        concurrency: 2,
        max_attempts,
        backoff: Duration::from_millis(100),
        prefix: None,
        full_list: Duration::from_millis(200),
        list: Duration::from_millis(200),
        lease_ttl: Duration::from_secs(30),
    };
    Watcher::new(stores.clone(), settings, TransformOptions::default())
}

/// Waits until `count(stats)` reaches `want`. A watcher writes a blob's receipt, then releases
/// its lease, and only then books the outcome: a receipt in storage does not yet mean the
/// counters (or the lease) moved.
async fn booked(stats: &WatchStats, what: &str, count: fn(&WatchStats) -> u64, want: u64) {
    testkit::wait_for(what, Duration::from_secs(5), || async move {
        (count(stats) == want).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {} instead of {want}", count(stats)));
}

fn processed(s: &WatchStats) -> u64 {
    s.processed.load(Ordering::Relaxed)
}

async fn receipt(stores: &Stores, name: &str) -> Option<serde_json::Value> {
    get(&stores.standard, &format!("_receipts/{name}.json"))
        .await
        .map(|b| serde_json::from_slice(&b).expect("receipt JSON"))
}

#[tokio::test]
async fn picks_up_a_new_blob_within_seconds_and_reprocesses_a_rewritten_one() {
    let (stores, _, _) = containers();
    let w = watcher(&stores, 5);
    let stats = w.stats.clone();
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));

    let (name, gz) = raw_blob(model::TOPIC_GAME, 0, 0, &[Rec::value(ATTACK_1)]);
    upload(&stores.raw, &name, gz).await;
    let game = "lib_server_game/2024/01/14/18/lib.server.game+0+00000000000000000000.parquet";
    let first = testkit::wait_for("first receipt", Duration::from_secs(5), || {
        receipt(&stores, &name)
    })
    .await
    .expect("within 5 s");
    assert_eq!(read_parquet(&stores.standard, game).await.num_rows(), 1);

    // Rewrite the blob (new ETag): it is processed again.
    let (_, gz2) = raw_blob(
        model::TOPIC_GAME,
        0,
        0,
        &[Rec::value(ATTACK_1), Rec::value(ATTACK_2)],
    );
    upload(&stores.raw, &name, gz2).await;
    let second = testkit::wait_for("receipt of the new version", Duration::from_secs(5), || {
        let old = first["etag"].clone();
        let s = stores.clone();
        let n = name.clone();
        async move { receipt(&s, &n).await.filter(|r| r["etag"] != old) }
    })
    .await
    .expect("rewritten blob reprocessed");
    assert_eq!(second["counts"]["records"], 2);
    assert_eq!(read_parquet(&stores.standard, game).await.num_rows(), 2);
    booked(&stats, "both versions booked", processed, 2).await;
    assert!(
        names(&stores.standard, Some("_leases")).await.is_empty(),
        "leases released"
    );
    stop.cancel();
    run.await.expect("watcher stops");
}

#[tokio::test]
async fn a_failing_blob_is_poisoned_with_its_error_after_max_attempts() {
    let (stores, _, _) = containers();
    let bad = "lib.server.game/2024/01/14/18/lib.server.game+1+00000000000000000000.json.gz";
    upload(&stores.raw, bad, b"this is not gzip".to_vec()).await;
    upload(&stores.raw, "notes/readme.txt", b"not a raw blob".to_vec()).await;
    let w = watcher(&stores, 2);
    let stats = w.stats.clone();
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));

    let poison = testkit::wait_for("poison entry", Duration::from_secs(10), || {
        let s = stores.clone();
        async move { get(&s.standard, &format!("_poison/{bad}.json")).await }
    })
    .await
    .expect("poisoned");
    let poison: serde_json::Value = serde_json::from_slice(&poison).expect("JSON");
    assert_eq!(poison["attempts"], 2);
    assert_eq!(poison["blob"], bad);
    assert!(
        poison["error"]
            .as_str()
            .expect("error")
            .contains("is not a readable gzip stream"),
        "{poison}"
    );

    // A later good blob is processed while the poisoned one is not retried any more.
    let (good, gz) = raw_blob(model::TOPIC_GAME, 2, 0, &[Rec::value(ATTACK_1)]);
    upload(&stores.raw, &good, gz).await;
    testkit::wait_for("good receipt", Duration::from_secs(5), || {
        receipt(&stores, &good)
    })
    .await
    .expect("processed");
    assert_eq!(
        stats.failures.load(Ordering::Relaxed),
        2,
        "no retries after poisoning"
    );
    assert!(receipt(&stores, bad).await.is_none());
    // A name that is not a raw blob name is poisoned at once with the reason, never passed
    // over with only a warning.
    let foreign = get(&stores.standard, "_poison/notes/readme.txt.json")
        .await
        .expect("the foreign name is visible as a poison entry");
    let foreign: serde_json::Value = serde_json::from_slice(&foreign).expect("JSON");
    assert_eq!(foreign["attempts"], 0);
    assert!(
        foreign["error"]
            .as_str()
            .is_some_and(|e| e.contains("is not a raw blob name")),
        "{foreign}"
    );
    assert!(
        !outputs(&stores.standard)
            .await
            .iter()
            .any(|(n, _)| n.contains("+1+")),
        "no outputs for the poisoned blob"
    );
    stop.cancel();
    run.await.expect("watcher stops");
}

#[tokio::test]
async fn storage_errors_are_retried_without_ever_poisoning_the_blob() {
    let (stores, _, _) = containers();
    let requests = Arc::new(Requests::default());
    // The blob's game output fails to write four times: more than WATCH_MAX_ATTEMPTS (2).
    *requests.failing_puts.lock().expect("lock") = Some(("lib_server_game/".into(), 4));
    let watched = Stores {
        raw: stores.raw.clone(),
        standard: Arc::new(Counting {
            inner: stores.standard.clone(),
            requests: requests.clone(),
        }),
    };
    let (name, gz) = raw_blob(model::TOPIC_GAME, 3, 0, &[Rec::value(ATTACK_1)]);
    upload(&stores.raw, &name, gz).await;
    let w = watcher(&watched, 2);
    let stats = w.stats.clone();
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));

    testkit::wait_for(
        "receipt after the storage errors",
        Duration::from_secs(15),
        || receipt(&stores, &name),
    )
    .await
    .expect("processed once storage recovers");
    assert_eq!(
        requests
            .failing_puts
            .lock()
            .expect("lock")
            .as_ref()
            .map(|f| f.1),
        Some(0),
        "every injected failure was hit"
    );
    assert_eq!(stats.storage_errors.load(Ordering::Relaxed), 4);
    assert_eq!(
        stats.failures.load(Ordering::Relaxed),
        0,
        "not the blob's fault"
    );
    assert_eq!(stats.poisoned.load(Ordering::Relaxed), 0);
    assert!(
        get(&stores.standard, &format!("_poison/{name}.json"))
            .await
            .is_none(),
        "no poison entry"
    );
    stop.cancel();
    run.await.expect("watcher stops");
}

#[tokio::test]
async fn two_watchers_process_each_blob_once() {
    let (stores, _, _) = containers();
    let mut blobs = Vec::new();
    for p in 0..8 {
        let (name, gz) = raw_blob(
            model::TOPIC_GAME,
            p,
            10,
            &[Rec::value(ATTACK_1), Rec::value(ATTACK_3)],
        );
        upload(&stores.raw, &name, gz).await;
        blobs.push(name);
    }
    let (a, b) = (watcher(&stores, 5), watcher(&stores, 5));
    let (sa, sb) = (a.stats.clone(), b.stats.clone());
    let stop = CancellationToken::new();
    let ra = tokio::spawn(a.run(stop.clone()));
    let rb = tokio::spawn(b.run(stop.clone()));

    testkit::wait_for("all receipts", Duration::from_secs(20), || {
        let s = stores.clone();
        async move { (names(&s.standard, Some("_receipts")).await.len() == 8).then_some(()) }
    })
    .await
    .expect("all processed");
    // Let each watcher see every blob done (receipt or in-memory) before comparing counts.
    testkit::wait_for("both watchers settled", Duration::from_secs(10), || {
        let (sa, sb) = (sa.clone(), sb.clone());
        async move {
            let settled = |s: &transformer::watch::WatchStats| {
                s.processed.load(Ordering::Relaxed) + s.already_done.load(Ordering::Relaxed)
            };
            (settled(&sa) == 8 && settled(&sb) == 8).then_some(())
        }
    })
    .await
    .expect("settled");
    let processed = sa.processed.load(Ordering::Relaxed) + sb.processed.load(Ordering::Relaxed);
    assert_eq!(
        processed, 8,
        "each blob transformed exactly once across both watchers"
    );
    assert_eq!(
        outputs(&stores.standard).await.len(),
        8 * 4,
        "4 files per blob, no extras"
    );
    for name in &blobs {
        let r = receipt(&stores, name).await.expect("receipt");
        assert_eq!(r["counts"]["good"], 2);
    }
    stop.cancel();
    ra.await.expect("a stops");
    rb.await.expect("b stops");
}

/// Lease lifetime of the lease tests: short, so a take-over happens within the test, yet long
/// next to a renewal's round trip on a loaded machine (renewals go out every third of it).
const SHORT_TTL: Duration = Duration::from_secs(2);

fn short_lease_watcher(stores: &Stores) -> Watcher {
    let mut w = watcher(stores, 5);
    w.settings.lease_ttl = SHORT_TTL;
    w
}

#[tokio::test]
async fn a_blob_claimed_by_a_killed_watcher_is_taken_over_after_the_lease_ttl() {
    let (stores, _, _) = containers();
    let (name, gz) = raw_blob(model::TOPIC_GAME, 3, 0, &[Rec::value(ATTACK_1)]);
    upload(&stores.raw, &name, gz).await;
    let etag = stores
        .raw
        .head(&object_store::path::Path::from(name.as_str()))
        .await
        .expect("head")
        .e_tag
        .expect("Azurite gives ETags");
    // A watcher claimed this version and was killed -9: its lease stays, never renewed. Its
    // TTL is long enough that our watcher meets it live even on a loaded machine (the take-over
    // reads the expiry the claimer wrote, not the taker's own TTL).
    let killed_ttl = Duration::from_secs(5);
    let claimed = Instant::now();
    let killed = transformer::ledger::claim(&stores.standard, &name, &etag, "killed", killed_ttl)
        .await
        .expect("io")
        .expect("claimed");
    drop(killed);

    let w = short_lease_watcher(&stores);
    let (owner, stats) = (w.owner.clone(), w.stats.clone());
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));
    let r = testkit::wait_for("receipt", Duration::from_secs(30), || {
        receipt(&stores, &name)
    })
    .await
    .expect("taken over and processed");
    let waited = claimed.elapsed();
    assert!(
        waited >= killed_ttl,
        "processed after {waited:?}, inside the dead lease"
    );
    assert!(
        waited < killed_ttl + Duration::from_secs(15),
        "processed only after {waited:?}: the dead lease was not taken over"
    );
    assert_eq!(r["owner"], owner.as_str());
    assert!(
        stats.busy.load(Ordering::Relaxed) >= 1,
        "the live lease was respected"
    );
    stop.cancel();
    run.await.expect("watcher stops");
    assert!(names(&stores.standard, Some("_leases")).await.is_empty());
}

#[tokio::test]
async fn a_slow_blob_keeps_its_renewed_lease_and_is_not_processed_twice() {
    let (stores, _, _) = containers();
    let (name, gz) = raw_blob(model::TOPIC_GAME, 4, 0, &[Rec::value(ATTACK_1)]);
    upload(&stores.raw, &name, gz).await;
    // Watcher A reads raw blobs slowly: its transform takes 3 lease TTLs.
    let slow_raw: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(
        stores.raw.clone(),
        ThrottleConfig {
            wait_get_per_call: 3 * SHORT_TTL,
            ..ThrottleConfig::default()
        },
    ));
    let slow = Stores {
        raw: slow_raw,
        standard: stores.standard.clone(),
    };
    let a = short_lease_watcher(&slow);
    let sa = a.stats.clone();
    let stop = CancellationToken::new();
    let ra = tokio::spawn(a.run(stop.clone()));
    // A's first full listing HEADs the blob (to learn where the partition's next one starts)
    // through the same slow store before queuing it: 3 TTLs before the claim.
    testkit::wait_for("A's lease", Duration::from_secs(30), || {
        let s = stores.clone();
        async move { (!names(&s.standard, Some("_leases")).await.is_empty()).then_some(()) }
    })
    .await
    .expect("A claims the blob");
    // Watcher B polls throughout A's slow transform.
    let b = short_lease_watcher(&stores);
    let sb = b.stats.clone();
    let rb = tokio::spawn(b.run(stop.clone()));

    testkit::wait_for("receipt", Duration::from_secs(30), || {
        receipt(&stores, &name)
    })
    .await
    .expect("processed");
    testkit::wait_for("B sees the receipt", Duration::from_secs(5), || {
        let sb = sb.clone();
        async move {
            let settled =
                sb.processed.load(Ordering::Relaxed) + sb.already_done.load(Ordering::Relaxed);
            (settled == 1).then_some(())
        }
    })
    .await
    .expect("B settles");
    booked(&sa, "A did the work", processed, 1).await;
    assert_eq!(
        sb.processed.load(Ordering::Relaxed),
        0,
        "B never took the renewed lease over"
    );
    assert!(
        sb.busy.load(Ordering::Relaxed) >= 3,
        "B kept finding the lease held across several TTLs"
    );
    stop.cancel();
    ra.await.expect("A stops");
    rb.await.expect("B stops");
    assert!(names(&stores.standard, Some("_leases")).await.is_empty());
}

#[tokio::test]
async fn a_partitions_next_blobs_are_found_by_name_between_full_listings() {
    let (stores, _, _) = containers();
    // Listing the raw container takes 3 s, so full listings come at most every 30 s (their
    // duty cycle); the blobs after the first one must be found by probing their names.
    let slow_list: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(
        stores.raw.clone(),
        ThrottleConfig {
            wait_list_per_call: Duration::from_secs(3),
            ..ThrottleConfig::default()
        },
    ));
    let requests = Arc::new(Requests::default());
    let counted: Arc<dyn ObjectStore> = Arc::new(Counting {
        inner: stores.standard.clone(),
        requests: requests.clone(),
    });
    let watched = Stores {
        raw: slow_list,
        standard: counted,
    };
    let hour = 3_600_000;
    // The third blob is dated now and found by probing the current hour: keep the test inside
    // one hour.
    let into_hour = chrono::Utc::now().timestamp_millis().rem_euclid(hour);
    if into_hour > hour - 30_000 {
        tokio::time::sleep(Duration::from_millis((hour - into_hour) as u64 + 100)).await;
    }
    let now = chrono::Utc::now().timestamp_millis();
    let recs = [Rec::value(ATTACK_1), Rec::value(ATTACK_2)];
    let (first, next) =
        upload_worker_blob(&stores.raw, model::TOPIC_GAME, 5, 0, now - 3 * hour, &recs).await;

    let mut w = watcher(&watched, 5);
    w.settings.poll = Duration::from_millis(100);
    w.settings.full_list = Duration::from_secs(60);
    w.settings.list = Duration::from_secs(60);
    let stats = w.stats.clone();
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));
    testkit::wait_for("first receipt", Duration::from_secs(20), || {
        receipt(&stores, &first)
    })
    .await
    .expect("listed and processed");
    let gets_before = requests.gets();

    // The next blob is dated the hour after, the one after that the current hour (the
    // partition was idle for two hours).
    let (second, next) = upload_worker_blob(
        &stores.raw,
        model::TOPIC_GAME,
        5,
        next,
        now - 2 * hour,
        &recs,
    )
    .await;
    let (third, _) = upload_worker_blob(&stores.raw, model::TOPIC_GAME, 5, next, now, &recs).await;
    for name in [&second, &third] {
        testkit::wait_for("probed receipt", Duration::from_secs(5), || {
            receipt(&stores, name)
        })
        .await
        .expect("found by name");
    }
    assert_eq!(
        stats.full_listings.load(Ordering::Relaxed),
        1,
        "no full listing needed"
    );
    booked(&stats, "three blobs booked", processed, 3).await;
    assert_eq!(stats.probed.load(Ordering::Relaxed), 2);
    assert_eq!(
        requests.gets() - gets_before,
        2,
        "a probed blob reads only its receipt, after the claim (no poison entry, no second read)"
    );
    stop.cancel();
    run.await.expect("watcher stops");
}

#[tokio::test]
async fn a_blob_poisoned_by_another_watcher_is_skipped() {
    let (stores, _, _) = containers();
    let (name, _) = upload_worker_blob(
        &stores.raw,
        model::TOPIC_GAME,
        6,
        0,
        T0_MS,
        &[Rec::value(ATTACK_1)],
    )
    .await;
    let etag = stores
        .raw
        .head(&object_store::path::Path::from(name.as_str()))
        .await
        .expect("head")
        .e_tag
        .expect("Azurite gives ETags");
    transformer::ledger::write_poison(stores.standard.as_ref(), &name, &etag, 5, "boom", "other")
        .await
        .expect("poison entry");

    let w = watcher(&stores, 5);
    let stats = w.stats.clone();
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));
    testkit::wait_for("skipped", Duration::from_secs(5), || {
        let stats = stats.clone();
        async move { (stats.already_poisoned.load(Ordering::Relaxed) == 1).then_some(()) }
    })
    .await
    .expect("poison entry honoured");
    assert_eq!(stats.processed.load(Ordering::Relaxed), 0);
    assert!(receipt(&stores, &name).await.is_none());
    assert!(outputs(&stores.standard).await.is_empty());
    stop.cancel();
    run.await.expect("watcher stops");
}

#[tokio::test]
async fn watch_once_settles_every_blob_without_a_receipt_then_stops_by_itself() {
    let (stores, _, _) = containers();
    let mut names = Vec::new();
    for partition in 0..3 {
        let (name, gz) = raw_blob(model::TOPIC_GAME, partition, 0, &[Rec::value(ATTACK_1)]);
        upload(&stores.raw, &name, gz).await;
        names.push(name);
    }
    let bad = "lib.server.game/2024/01/14/18/lib.server.game+7+00000000000000000000.json.gz";
    upload(&stores.raw, bad, b"this is not gzip".to_vec()).await;
    // The first pass transforms the three and poisons the broken one; it ends by itself.
    let mut w = watcher(&stores, 2);
    w.once = true;
    let stats = w.stats.clone();
    tokio::time::timeout(Duration::from_secs(30), w.run(CancellationToken::new()))
        .await
        .expect("watch --once stops by itself");
    let s = stats.summary();
    assert_eq!((s.processed, s.poisoned), (3, 1), "{s:?}");
    for name in &names {
        assert!(
            receipt(&stores, name).await.is_some(),
            "{name} has a receipt"
        );
    }
    // A second pass finds everything settled: nothing to do, it stops at once.
    let mut w = watcher(&stores, 2);
    w.once = true;
    let stats = w.stats.clone();
    tokio::time::timeout(Duration::from_secs(30), w.run(CancellationToken::new()))
        .await
        .expect("watch --once stops by itself");
    let s = stats.summary();
    assert_eq!((s.processed, s.poisoned), (0, 0), "{s:?}");
    assert_eq!((s.already_done, s.already_poisoned), (3, 1), "{s:?}");
}

/// Waits until the watch checkpoint (no prefix) satisfies `ok`, and returns it. Checkpoints
/// follow listings: a watcher writes one when its books support a new claim.
async fn checkpoint_where(
    stores: &Stores,
    what: &str,
    ok: impl Fn(&transformer::watch::checkpoint::Checkpoint) -> bool,
) -> transformer::watch::checkpoint::Checkpoint {
    let path = transformer::watch::checkpoint::path(None);
    let ok = &ok;
    testkit::wait_for(what, Duration::from_secs(10), || {
        let (s, path) = (stores.clone(), path.clone());
        async move {
            let c = transformer::watch::checkpoint::read(s.standard.as_ref(), &path)
                .await
                .expect("readable")?;
            ok(&c).then_some(c)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_restart_lists_only_unsettled_hours_and_the_full_listing_finds_late_and_rewritten_blobs()
{
    let (stores, _, _) = containers();
    let hour = 3_600_000;
    let now = chrono::Utc::now().timestamp_millis();
    let recs = [Rec::value(ATTACK_1)];
    let game = model::TOPIC_GAME;
    // Five hours ago and four hours ago, two topics.
    let (a, next) = upload_worker_blob(&stores.raw, game, 1, 0, now - 5 * hour, &recs).await;
    let (b, _) = upload_worker_blob(&stores.raw, game, 1, next, now - 5 * hour, &recs).await;
    let (c, _) = upload_worker_blob(&stores.raw, game, 2, 0, now - 4 * hour, &recs).await;
    let lobby = "lib.server.lobby";
    let (old_lobby, _) = upload_worker_blob(&stores.raw, lobby, 0, 0, now - 5 * hour, &recs).await;
    let mut old = Vec::new();
    for name in [&a, &b, &c, &old_lobby] {
        let path = object_store::path::Path::from(name.as_str());
        old.push(stores.raw.head(&path).await.expect("head"));
    }

    // A first watcher works through them and leaves a checkpoint when it stops.
    let mut w = watcher(&stores, 5);
    // Blob times have whole seconds: one second of margin on this one clock.
    w.clock_margin = chrono::TimeDelta::seconds(1);
    let stats = w.stats.clone();
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));
    booked(&stats, "four blobs", processed, 4).await;
    // Its checkpoints follow its full listings (every 200 ms here): one soon claims all four
    // (a listing more than the one-second margin after their upload).
    let checkpoint = checkpoint_where(&stores, "a checkpoint claiming the four", |c| {
        old.iter().all(|m| {
            let topic = m.location.as_ref().split('/').next().unwrap_or_default();
            let hour = chrono::DateTime::from_timestamp_millis(now - 4 * hour).expect("a time");
            c.covers(topic, hour, m.last_modified)
        })
    })
    .await;
    stop.cancel();
    run.await.expect("watcher stops");
    let settled_by = chrono::DateTime::from_timestamp_millis(now - 3 * hour).expect("a time");
    for topic in [game, lobby] {
        assert!(
            checkpoint.settled[topic] > settled_by,
            "{topic} settled past its blobs: {checkpoint:?}"
        );
    }

    // A restart lists only the unsettled hours: no receipt read for the four old blobs, and
    // a blob of the current hour is found.
    let mut w = watcher(&stores, 5);
    // Blob times have whole seconds: one second of margin on this one clock.
    w.clock_margin = chrono::TimeDelta::seconds(1);
    w.settings.full_list = Duration::from_secs(6);
    let stats = w.stats.clone();
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));
    let (current, _) = upload_worker_blob(&stores.raw, game, 3, 0, now, &recs).await;
    testkit::wait_for("current blob", Duration::from_secs(5), || {
        receipt(&stores, &current)
    })
    .await
    .expect("found by a listing of the unsettled hours");
    assert_eq!(
        stats.full_listings.load(Ordering::Relaxed),
        0,
        "no full listing yet"
    );
    assert!(stats.hour_listings.load(Ordering::Relaxed) >= 1);
    assert_eq!(
        stats.receipt_checks.load(Ordering::Relaxed),
        1,
        "only the new blob's receipt is read before its claim"
    );

    // Dated into a settled hour after the checkpoint (a new partition, so no probe predicts it)
    // and an old blob rewritten: the full listing finds both, and reads no other receipt.
    let (late, _) = upload_worker_blob(&stores.raw, game, 4, 0, now - 5 * hour, &recs).await;
    let (_, gz) = raw_blob_at(
        lobby,
        0,
        0,
        now - 5 * hour,
        &[Rec::value(ATTACK_1), Rec::value(ATTACK_2)],
    );
    upload(&stores.raw, &old_lobby, gz).await;
    testkit::wait_for("late and rewritten blobs", Duration::from_secs(20), || {
        let s = stores.clone();
        let (late, old) = (late.clone(), old_lobby.clone());
        async move {
            let rewritten = receipt(&s, &old).await?;
            (receipt(&s, &late).await.is_some() && rewritten["counts"]["records"] == 2)
                .then_some(())
        }
    })
    .await
    .expect("found by the full listing");
    booked(&stats, "current, late and rewritten blobs", processed, 3).await;
    assert!(stats.full_listings.load(Ordering::Relaxed) >= 1);
    assert_eq!(stats.receipt_checks.load(Ordering::Relaxed), 3);
    assert!(
        stats.covered.load(Ordering::Relaxed) >= 3,
        "the three old blobs not rewritten are covered by the checkpoint"
    );
    stop.cancel();
    run.await.expect("watcher stops");
}

/// A watcher whose only full listing is its first (at start, without a checkpoint), running
/// until the token is cancelled, once it has processed `first` (found by that listing).
async fn one_full_listing_watcher(
    stores: &Stores,
    first: &str,
) -> (
    Arc<WatchStats>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let mut w = watcher(stores, 5);
    w.settings.full_list = Duration::from_secs(600);
    let stats = w.stats.clone();
    let stop = CancellationToken::new();
    let run = tokio::spawn(w.run(stop.clone()));
    testkit::wait_for("the first blob", Duration::from_secs(10), || {
        receipt(stores, first)
    })
    .await
    .expect("found by the full listing");
    (stats, stop, run)
}

#[tokio::test]
async fn blobs_dated_by_unusable_timestamps_are_found_by_the_listings_of_recent_hours() {
    let (stores, _, _) = containers();
    let now = chrono::Utc::now().timestamp_millis();
    let recs = [Rec::value(ATTACK_1)];
    let game = model::TOPIC_GAME;
    let (current, _) = upload_worker_blob(&stores.raw, game, 0, 0, now, &recs).await;
    let (stats, stop, run) = one_full_listing_watcher(&stores, &current).await;
    testkit::wait_for("an hour listing", Duration::from_secs(10), || {
        let n = stats.hour_listings.load(Ordering::Relaxed);
        async move { (n >= 1).then_some(()) }
    })
    .await
    .expect("hour listings follow the full one");

    // Records whose timestamps are before year 0000, after 9999, or the epoch, on partitions
    // no probe follows: their hours were settled long ago, yet the next hour listing finds them.
    let mut names = Vec::new();
    for (partition, ts) in [(1, -62_200_000_000_000), (2, 300_000_000_000_000), (3, 0)] {
        let (name, _) = upload_worker_blob(&stores.raw, game, partition, 0, ts, &recs).await;
        names.push(name);
    }
    for h in model::naming::fallback_hour_paths() {
        assert!(
            names.iter().any(|n| n.starts_with(&format!("{game}/{h}/"))),
            "no blob dated {h}: {names:?}"
        );
    }
    testkit::wait_for("the three blobs", Duration::from_secs(10), || {
        let (s, names) = (stores.clone(), names.clone());
        async move {
            for n in &names {
                receipt(&s, n).await?;
            }
            Some(())
        }
    })
    .await
    .expect("found by a listing of the recent hours");
    assert_eq!(
        stats.full_listings.load(Ordering::Relaxed),
        1,
        "found without another full listing"
    );
    stop.cancel();
    run.await.expect("watcher stops");
}

#[tokio::test]
async fn a_draining_partitions_blob_after_an_offset_gap_in_a_settled_hour_is_found_by_an_hour_listing()
 {
    let (stores, _, _) = containers();
    let hour = 3_600_000;
    let now = chrono::Utc::now().timestamp_millis();
    let recs = [Rec::value(ATTACK_1)];
    let game = model::TOPIC_GAME;
    // A backlog drains through an hour five hours ago.
    let (first, _) = upload_worker_blob(&stores.raw, game, 1, 0, now - 5 * hour, &recs).await;
    let (stats, stop, run) = one_full_listing_watcher(&stores, &first).await;
    // The topic's hours settle past the tail's.
    let settled_by = chrono::DateTime::from_timestamp_millis(now - 3 * hour).expect("a time");
    checkpoint_where(&stores, "a checkpoint settling the old hours", |c| {
        c.settled.get(game).is_some_and(|h| *h > settled_by)
    })
    .await;

    // The next blob starts after an offset gap (a transactional producer's marker): no probe
    // finds it by name, and it is dated into a settled hour.
    let (after_gap, _) = upload_worker_blob(&stores.raw, game, 1, 5, now - 5 * hour, &recs).await;
    testkit::wait_for("the blob after the gap", Duration::from_secs(10), || {
        receipt(&stores, &after_gap)
    })
    .await
    .expect("found by a listing of the tail's hour");
    assert_eq!(
        stats.full_listings.load(Ordering::Relaxed),
        1,
        "found without another full listing"
    );
    stop.cancel();
    run.await.expect("watcher stops");
}

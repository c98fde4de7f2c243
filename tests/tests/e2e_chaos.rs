//! Chaos: records flow simulator → worker → `transformer watch` while a controller `kill -9`s the
//! worker and the watcher at random moments, stops the (test-private) Azurite and Redis for a
//! while, and restarts everything. At the end every record's msg_id is in `buffer_meta` exactly
//! once, totals equal the manifests, nothing is poisoned, and the finished games' Redis keys
//! expire.
//!
//! The flood is rate-limited (the simulator's `RATE_LIMIT` = records × (1 + bad ratio) / the
//! moment of the last planned fault or restart) so that its records arrive across the whole fault
//! window and every fault hits records in flight, not a pipeline that has long caught up. Before
//! each action the controller measures the load ([`in_flight`]: records in the topics but not yet
//! committed by the worker group, raw blobs not yet transformed) and prints it; the verdict lists
//! them, and the run fails if fewer than 2/3 of the faults (kills, the Azurite outage) had records
//! in flight.
//!
//! Knobs (env; the short defaults run in the regular test command, `scripts/chaos` sets the long
//! ones): `CHAOS_RECORDS` (flood records, 50000), `CHAOS_KILLS` (6), `CHAOS_AZURITE_DOWN_SECS`
//! (10), `CHAOS_REDIS_DOWN_SECS` (12), `CHAOS_BAD_RATIO` (0.01), `CHAOS_SEED` (random, printed),
//! `CHAOS_SETTLE_SECS` (120: a killed watcher's lease, `WATCH_LEASE_TTL_MS=10000`, plus catch-up),
//! `CHAOS_WINDOW_SECS` (when the faults happen and how long the flood takes: max(4 s per kill,
//! 3× the Azurite outage, 30 s)), `DATAFLOW_BIN_DIR` (binaries, default target/debug).
//!
//! Azurite and Redis are stopped with SIGTERM (they persist to their folders and come back with
//! the same data); the pipeline's own binaries get SIGKILL (no flush, no commit, no lease release).
//!
//! # Layout
//! - this file: the services, the fault schedule and the two tests;
//! - `e2e_chaos/in_flight.rs`: the load measured at each fault.

// A folder named like the test, so cargo does not take the module for a test target of its own.
#[path = "e2e_chaos/in_flight.rs"]
mod in_flight;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use in_flight::{Probe, Sample};
use rand::{Rng, SeedableRng};
use redis::AsyncCommands;
use tests::pipeline::{Pipeline, Storage};
use tests::summary::{merge_manifests, wait_and_summarize};

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} does not parse")),
        _ => default,
    }
}

/// A private server we can stop and start again on the same port and folder.
struct Service {
    name: &'static str,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Service {
    fn start(&mut self) {
        let child = match self.name {
            "azurite" => testkit::spawn_azurite(&self.dir, self.port),
            _ => testkit::spawn_redis_in(&self.dir, self.port),
        }
        .unwrap_or_else(|e| panic!("starting {}: {e:#}", self.name));
        self.child = Some(child);
    }

    /// SIGTERM (so it persists) and wait until it is gone; SIGKILL after 5 s (Azurite may wait
    /// for keep-alive connections of the clients that are retrying against it).
    async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if c.try_wait().ok().flatten().is_none() {
                eprintln!(
                    "chaos: {} did not stop on SIGTERM within 5 s; SIGKILL",
                    self.name
                );
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    KillWorker,
    KillWatch,
    AzuriteDown,
    AzuriteUp,
    RedisUp,
}

impl Action {
    /// A kill or the start of an outage (not a restart).
    fn is_fault(self) -> bool {
        !matches!(self, Action::AzuriteUp | Action::RedisUp)
    }
}

/// Random kill moments over the chaos window, the Azurite outage at a random moment in it,
/// Redis down from the start (while the games' clean-ups are consumed) for `redis_down`.
fn schedule(
    rng: &mut impl Rng,
    kills: usize,
    window: Duration,
    azurite_down: Duration,
    redis_down: Duration,
) -> Vec<(Duration, Action)> {
    let w = window.as_secs_f64();
    let mut plan: Vec<(Duration, Action)> = (0..kills)
        .map(|i| {
            // Alternate victims so both get killed, order of moments random.
            let a = if i % 2 == 0 {
                Action::KillWorker
            } else {
                Action::KillWatch
            };
            (Duration::from_secs_f64(rng.gen_range(1.0..w)), a)
        })
        .collect();
    // One worker kill while Redis is still down, after the worker has read the games' clean-up
    // records (it joins in ~5 s): pending clean-ups must survive the crash.
    if let Some(first) = plan.iter_mut().find(|(_, a)| *a == Action::KillWorker) {
        first.0 = Duration::from_secs_f64(redis_down.as_secs_f64() * rng.gen_range(0.7..0.9));
    }
    let down_at = Duration::from_secs_f64(rng.gen_range(w * 0.2..w * 0.6));
    plan.push((down_at, Action::AzuriteDown));
    plan.push((down_at + azurite_down, Action::AzuriteUp));
    plan.push((redis_down, Action::RedisUp));
    plan.sort_by_key(|a| a.0);
    plan
}

async fn redis_keys_expire(redis_url: &str, games: &[String]) -> anyhow::Result<Vec<String>> {
    let client = redis::Client::open(redis_url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let mut persistent = Vec::new();
    for g in games {
        let keys: Vec<String> = con.keys(format!("games:{g}*")).await?;
        for k in keys {
            let ttl: i64 = con.ttl(&k).await?;
            if ttl == -1 {
                persistent.push(k);
            }
        }
    }
    Ok(persistent)
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_through_kills_and_storage_and_redis_outages() {
    let records: u64 = knob("CHAOS_RECORDS", 50_000);
    let kills: usize = knob("CHAOS_KILLS", 6);
    let azurite_down = Duration::from_secs(knob("CHAOS_AZURITE_DOWN_SECS", 10));
    let redis_down = Duration::from_secs(knob("CHAOS_REDIS_DOWN_SECS", 12));
    let bad_ratio: f64 = knob("CHAOS_BAD_RATIO", 0.01);
    let seed: u64 = knob("CHAOS_SEED", rand::random());
    let settle = Duration::from_secs(knob("CHAOS_SETTLE_SECS", 120));
    // Roughly 4 s between kills, never shorter than the outages need.
    let window = Duration::from_secs(knob(
        "CHAOS_WINDOW_SECS",
        (kills as u64 * 4).max(azurite_down.as_secs() * 3).max(30),
    ));
    eprintln!(
        "chaos: seed={seed} records={records} kills={kills} azurite_down={azurite_down:?} redis_down={redis_down:?} window={window:?}"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();

    // Test-private Azurite and Redis, so stopping them disturbs no other suite.
    let id = testkit::unique("e2e-chaos");
    let log_root = testkit::root().join(".stack/logs/e2e").join(&id);
    let mut azurite = Service {
        name: "azurite",
        port: testkit::free_port(),
        dir: log_root.join("azurite"),
        child: None,
    };
    let mut redis = Service {
        name: "redis",
        port: testkit::free_port(),
        dir: log_root.join("redis"),
        child: None,
    };
    azurite.start();
    redis.start();
    testkit::wait_for_port(azurite.port, Duration::from_secs(60))
        .await
        .expect("azurite up");
    testkit::wait_for_port(redis.port, Duration::from_secs(20))
        .await
        .expect("redis up");
    let blob_url = format!("http://127.0.0.1:{}", azurite.port);
    let redis_url = format!("redis://127.0.0.1:{}/0", redis.port);
    let storage = Storage::create(&blob_url, &id).expect("containers");
    let p = Pipeline::with(id.clone(), storage, redis_url.clone())
        .await
        .expect("pipeline");

    // Games first (they need Redis), while nothing consumes yet.
    let play = p
        .simulate(
            "play",
            &["play"],
            &[
                ("PLAYERS", "6"),
                ("CLIENT_GAMES", "3"),
                ("SERVER_SLEEP", "0.01"),
                ("LOBBY_TIMEOUT", "1"),
                ("SEED", &seed.to_string()),
                ("JOIN_SCOPE", "instance"),
            ],
        )
        .await
        .expect("simulator play");
    assert!(
        !play.game_tokens.is_empty(),
        "the games left Redis keys to clean"
    );

    // Redis goes down before the worker reads the games' `Cleaning Game Records`.
    redis.stop().await;
    let worker_env: &[(&str, &str)] = &[
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ("BATCH_SIZE", "777"),
        ("BATCH_MAX_WAIT_MS", "400"),
    ];
    // A watcher killed while holding a lease blocks that blob until the lease expires.
    let watch_env: &[(&str, &str)] = &[
        ("WATCH_BACKOFF_MS", "1000"),
        ("WATCH_LEASE_TTL_MS", "10000"),
    ];
    let mut worker = p.spawn_worker("0", worker_env).expect("worker");
    let mut watch = p.spawn_watch("0", watch_env).expect("watch");

    let (raw, standard) = p.storage.stores().expect("stores");
    let group = p
        .worker_env()
        .into_iter()
        .find_map(|(k, v)| (k == "KAFKA_GROUP_ID").then_some(v))
        .expect("the worker's group");
    let topics = [&p.topics.lobby, &p.topics.game, &p.topics.client].map(String::as_str);
    let probe = Probe::new(&topics, &group, raw.clone(), standard.clone()).expect("probe");

    // The flood's records (bad ones included) spread until the last planned moment, so the
    // faults hit a pipeline with records in flight rather than one that has long caught up.
    let plan = schedule(&mut rng, kills, window, azurite_down, redis_down);
    let span = plan.last().map_or(window, |(at, _)| *at);
    let rate = (records as f64 * (1.0 + bad_ratio) / span.as_secs_f64().max(1.0)).ceil() as u64;
    eprintln!("chaos: flood rate limit {rate} records/s (over {span:.1?})");
    let flood = {
        let p = p.clone();
        let n = records.to_string();
        let ratio = bad_ratio.to_string();
        let seed = seed.to_string();
        let rate = rate.to_string();
        tokio::spawn(async move {
            let flood = p
                .simulate(
                    "flood",
                    &["flood", "--messages", &n, "--bad-ratio", &ratio],
                    &[("SEED", &seed), ("RATE_LIMIT", &rate)],
                )
                .await;
            (flood, Instant::now())
        })
    };

    let t0 = Instant::now();
    let (mut worker_runs, mut watch_runs) = (0u32, 0u32);
    let mut samples: Vec<Sample> = Vec::new();
    let mut storage_up = true;
    for (at, action) in plan {
        if let Some(wait) = at.checked_sub(t0.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let sample = probe
            .sample(
                t0.elapsed(),
                format!("{action:?}"),
                action.is_fault(),
                storage_up,
            )
            .await;
        eprintln!("chaos: {sample}");
        samples.push(sample);
        match action {
            Action::KillWorker => {
                worker.kill9().expect("kill -9 worker");
                worker_runs += 1;
                worker = p
                    .spawn_worker(&worker_runs.to_string(), worker_env)
                    .expect("worker restart");
            }
            Action::KillWatch => {
                watch.kill9().expect("kill -9 watch");
                watch_runs += 1;
                watch = p
                    .spawn_watch(&watch_runs.to_string(), watch_env)
                    .expect("watch restart");
            }
            Action::AzuriteDown => {
                storage_up = false;
                azurite.stop().await;
            }
            Action::AzuriteUp => {
                storage_up = true;
                azurite.start();
                testkit::wait_for_port(azurite.port, Duration::from_secs(60))
                    .await
                    .expect("azurite back");
            }
            Action::RedisUp => {
                redis.start();
                testkit::wait_for_port(redis.port, Duration::from_secs(20))
                    .await
                    .expect("redis back");
            }
        }
        for proc in [&mut worker, &mut watch] {
            if let Some(status) = proc.try_wait().expect("status") {
                panic!(
                    "{} exited by itself ({status}); see {}",
                    proc.name,
                    proc.log.display()
                );
            }
        }
    }
    let faults_done = t0.elapsed();
    let (flood, flood_done) = flood.await.expect("flood task");
    let flood = flood.expect("simulator flood");
    assert_eq!(flood.failed_deliveries, 0);
    let manifest = merge_manifests(&[play.clone(), flood]);
    // The chaos must hit work, not an idle pipeline: checked after the correctness verdict.
    let hit: Vec<&Sample> = samples.iter().filter(|s| s.fault).collect();
    let busy = hit.iter().filter(|s| s.busy()).count();
    let faults = format!(
        "{busy} of {} faults had records in flight (records in Kafka not yet committed by the worker group; raw blobs without a receipt):\n{}",
        hit.len(),
        in_flight::table(&samples)
    );
    eprintln!(
        "chaos: {} records ({} bad) produced by t={:.1}s; {} kills done by t={:.1}s ({:.0}s into the test); settling",
        manifest.delivered(),
        manifest.bad_records,
        flood_done.saturating_duration_since(t0).as_secs_f64(),
        worker_runs + watch_runs,
        faults_done.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        manifest.delivered() >= records,
        "flood delivered {} of {records}",
        manifest.delivered()
    );
    assert_eq!(worker_runs + watch_runs, kills as u32);

    let summary = match wait_and_summarize(raw, standard.clone(), Some(&manifest), settle, |m| {
        eprintln!("chaos: waiting: {m}")
    })
    .await
    {
        Ok(s) => s,
        Err(e) => {
            let leases = testkit::list_names(standard.as_ref(), Some("_leases"))
                .await
                .unwrap_or_default();
            panic!(
                "{e}\nleases left behind: {leases:?}\n{faults}logs: {}",
                p.log_dir.display()
            );
        }
    };
    eprintln!("{summary}\nchaos: {faults}");
    assert!(
        summary.ok(),
        "pipeline: {:#?}\n{faults}logs: {}",
        summary.pipeline,
        p.log_dir.display()
    );
    assert!(summary.producer_ok(), "producer: {:#?}", summary.producer);
    for (topic, parts) in &manifest.topics {
        for (partition, st) in parts {
            for offset in st.min_offset..=st.max_offset {
                let id = model::naming::msg_id(topic, *partition, offset);
                assert_eq!(
                    summary.standard.buffer_msg_ids.get(&id),
                    Some(&1),
                    "{id} exactly once in buffer_meta"
                );
            }
        }
    }
    assert!(
        summary.poisoned.is_empty(),
        "no poison: {:?}",
        summary.poisoned
    );
    assert!(
        busy * 3 >= hit.len() * 2,
        "the chaos hit an idle pipeline (want ≥ 2/3 of the faults with records in flight): {faults}"
    );

    // Clean-up eventually applied: no key of a finished game is left without a TTL.
    let games = play.game_tokens.clone();
    let left: anyhow::Result<()> = testkit::wait_for(
        "finished games' Redis keys to expire",
        Duration::from_secs(90),
        || {
            let games = games.clone();
            let url = redis_url.clone();
            async move {
                redis_keys_expire(&url, &games)
                    .await
                    .ok()
                    .filter(Vec::is_empty)
                    .map(drop)
            }
        },
    )
    .await;
    if let Err(e) = left {
        let persistent = redis_keys_expire(&redis_url, &games)
            .await
            .unwrap_or_default();
        let mut by_game: BTreeMap<String, usize> = BTreeMap::new();
        for k in &persistent {
            *by_game
                .entry(k.split(':').nth(1).unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        panic!(
            "{e}: {} keys of {} games have no TTL (e.g. {:?}); logs: {}",
            persistent.len(),
            by_game.len(),
            persistent.first(),
            p.log_dir.display()
        );
    }

    worker
        .terminate(Duration::from_secs(30))
        .expect("worker exits on SIGTERM");
    watch
        .terminate(Duration::from_secs(30))
        .expect("watch exits on SIGTERM");
    eprintln!(
        "chaos: passed in {:.0}s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
    drop((azurite, redis));
    let _ = std::fs::remove_dir_all(log_root.join("azurite"));
}

/// The deterministic core of the chaos run's Redis check: the worker reads the games'
/// `Cleaning Game Records` while Redis is down, lands and commits them, and is killed before
/// Redis comes back. The clean-ups must still happen (by a later run).
#[tokio::test(flavor = "multi_thread")]
async fn cleanups_survive_a_worker_crash_while_redis_is_down() {
    let id = testkit::unique("e2e-cleanup");
    let log_root = testkit::root().join(".stack/logs/e2e").join(&id);
    let mut redis = Service {
        name: "redis",
        port: testkit::free_port(),
        dir: log_root.join("redis"),
        child: None,
    };
    redis.start();
    testkit::wait_for_port(redis.port, Duration::from_secs(20))
        .await
        .expect("redis up");
    let redis_url = format!("redis://127.0.0.1:{}/0", redis.port);
    let storage =
        Storage::create(&testkit::var("AZURITE_BLOB_STORAGE_URL"), &id).expect("containers");
    let p = Pipeline::with(id, storage, redis_url.clone())
        .await
        .expect("pipeline");
    let play = p
        .simulate(
            "play",
            &["play"],
            &[
                ("PLAYERS", "4"),
                ("CLIENT_GAMES", "2"),
                ("SERVER_SLEEP", "0.01"),
                ("LOBBY_TIMEOUT", "1"),
                ("SEED", "3"),
                ("JOIN_SCOPE", "instance"),
            ],
        )
        .await
        .expect("simulator play");
    let before = redis_keys_expire(&redis_url, &play.game_tokens)
        .await
        .expect("redis");
    assert!(
        !before.is_empty(),
        "finished games leave keys without TTL until the worker cleans them"
    );

    redis.stop().await;
    let mut worker = p
        .spawn_worker("0", &[("BATCH_MAX_WAIT_MS", "200")])
        .expect("worker");
    // Every record durable in raw (and so committed) while Redis is still down.
    let (raw, _) = p.storage.stores().expect("stores");
    let want = play.delivered() as usize;
    testkit::wait_for(
        "the games' records to land in raw",
        Duration::from_secs(60),
        || {
            let raw = raw.clone();
            async move {
                let names = testkit::list_names(raw.as_ref(), None).await.ok()?;
                let mut n = 0;
                for name in names {
                    let parsed = model::naming::RawBlobName::parse(&name).ok()?;
                    n += tests::summary::read_raw(raw.as_ref(), &name, parsed)
                        .await
                        .ok()?
                        .offsets
                        .len();
                }
                (n >= want).then_some(())
            }
        },
    )
    .await
    .expect("landed");
    testkit::wait_for("the worker to commit", Duration::from_secs(10), || {
        let out = worker.output();
        async move { out.contains("cleanup_failed").then_some(()) }
    })
    .await
    .expect("clean-ups attempted while Redis is down");
    worker.kill9().expect("kill -9");

    redis.start();
    testkit::wait_for_port(redis.port, Duration::from_secs(20))
        .await
        .expect("redis back");
    let _worker = p.spawn_worker("1", &[]).expect("worker restart");
    let games = play.game_tokens.clone();
    let res = testkit::wait_for(
        "finished games' Redis keys to get a TTL",
        Duration::from_secs(60),
        || {
            let (url, games) = (redis_url.clone(), games.clone());
            async move {
                redis_keys_expire(&url, &games)
                    .await
                    .ok()
                    .filter(Vec::is_empty)
                    .map(drop)
            }
        },
    )
    .await;
    if let Err(e) = res {
        let left = redis_keys_expire(&redis_url, &games)
            .await
            .unwrap_or_default();
        panic!(
            "{e}: {} keys still without TTL (e.g. {:?}): clean-ups of records committed before the crash are lost; logs {}",
            left.len(),
            left.first(),
            p.log_dir.display()
        );
    }
}

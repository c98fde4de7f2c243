//! Redis clean-up after `Cleaning Game Records`: the spec's keys get TTLs or go; a Redis
//! outage never stops landing; and a crash during an outage loses no clean-up (commits wait
//! for clean-ups).

mod common;

use std::time::Duration;

use common::*;
use redis::AsyncCommands as _;

fn cleaning(game: &str, user: &str) -> Vec<u8> {
    format!(
        r#"{{"level": "INFO", "timestamp": "2024-01-14T18:22:06.640118", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {{"game_token": "{game}", "user_token": "{user}"}}}}"#
    )
    .into_bytes()
}

/// Writes a finished game's keys as the simulator does (reference §3.1).
async fn seed_game(r: &mut redis::aio::MultiplexedConnection, g: &str, host: &str, other: &str) {
    let _: () = redis::pipe()
        .set(format!("games:{g}:host"), host)
        .set(format!("games:{g}:participants"), "2")
        .set(format!("games:{g}:status"), "Completed")
        .rpush(format!("games:{g}:order"), &[host, other])
        .sadd(format!("games:{g}"), &[host, other])
        .sadd(format!("games:{g}:superheros"), &["70", "191"])
        .hset_multiple(
            format!("games:{g}:superheros:{host}"),
            &[("id", "70"), ("attack", "126900"), ("health", "0")],
        )
        .hset_multiple(
            format!("games:{g}:superheros:{other}"),
            &[("id", "191"), ("attack", "40992"), ("health", "14220")],
        )
        .rpush(format!("games:{g}:logs"), "{\"TIMESTAMP\": \"x\"}")
        .zadd("games:participants", g, 2)
        .rpush("games:players:2", g)
        .query_async(r)
        .await
        .expect("seed");
}

async fn ttl(r: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    r.ttl(key).await.expect("ttl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_game_records_expires_the_spec_keys() {
    let topic = testkit::unique("wclean");
    testkit::create_topic(&topic, 2).await.expect("topic");
    let (url, store) = testkit::new_container("wclean").expect("container");
    let mut r = testkit::redis().await.expect("redis");
    let g = testkit::unique("game");
    let (host, guest) = (testkit::unique("host"), testkit::unique("guest"));
    seed_game(&mut r, &g, &host, &guest).await;
    // A second game whose host never sends its message: only the guest's hero expires.
    let g2 = testkit::unique("game");
    let (host2, guest2) = (testkit::unique("host"), testkit::unique("guest"));
    seed_game(&mut r, &g2, &host2, &guest2).await;

    let producer = producer();
    send(&producer, &topic, 0, None, Some(&cleaning(&g, &guest)), &[]).await;
    send(&producer, &topic, 1, None, Some(&cleaning(&g, &host)), &[]).await;
    send(
        &producer,
        &topic,
        0,
        None,
        Some(&cleaning(&g2, &guest2)),
        &[],
    )
    .await;
    // Replaying the host's message is harmless.
    send(&producer, &topic, 1, None, Some(&cleaning(&g, &host)), &[]).await;

    let mut env = base_env(&[&topic], &url);
    set(&mut env, "CLEANUP_ENABLED", "true");
    set(&mut env, "REDIS_URL", testkit::var("REDIS_URL"));
    set(&mut env, "REDIS_EXPIRY", "30");
    let w = InProcess::start(&env).await;
    wait_landed(&store, &topic, 4, Duration::from_secs(60)).await;
    let logs = format!("games:{g}:logs");
    testkit::wait_for("the host's clean-up", Duration::from_secs(30), || {
        let mut r = r.clone();
        let logs = logs.clone();
        async move { (!r.exists::<_, bool>(&logs).await.expect("exists")).then_some(()) }
    })
    .await
    .expect("cleaned");
    let g2_guest = format!("games:{g2}:superheros:{guest2}");
    testkit::wait_for(
        "the second game's guest clean-up",
        Duration::from_secs(30),
        || {
            let mut r = r.clone();
            let k = g2_guest.clone();
            async move { (ttl(&mut r, &k).await > 0).then_some(()) }
        },
    )
    .await
    .expect("cleaned");
    w.stop().await;

    for k in [
        format!("games:{g}:superheros:{host}"),
        format!("games:{g}:superheros:{guest}"),
        format!("games:{g}:participants"),
        format!("games:{g}:status"),
        format!("games:{g}:host"),
        format!("games:{g}:order"),
        format!("games:{g}"),
        format!("games:{g}:superheros"),
    ] {
        let t = ttl(&mut r, &k).await;
        assert!((1..=30).contains(&t), "{k} has TTL {t}");
    }
    let in_zset: Option<f64> = r.zscore("games:participants", &g).await.expect("zscore");
    assert_eq!(in_zset, None);
    let players: Vec<String> = r.lrange("games:players:2", 0, -1).await.expect("lrange");
    assert!(!players.contains(&g), "{g} still listed in games:players:2");
    assert!(
        players.contains(&g2),
        "another game was removed from games:players:2"
    );

    // Game 2: the guest's hero expires, the game's keys stay (its host never asked).
    assert!(ttl(&mut r, &format!("games:{g2}:superheros:{guest2}")).await > 0);
    for k in [
        format!("games:{g2}:host"),
        format!("games:{g2}:logs"),
        format!("games:{g2}:superheros:{host2}"),
    ] {
        assert_eq!(ttl(&mut r, &k).await, -1, "{k} must keep no TTL");
    }
    let _: () = redis::pipe()
        .del(&[
            format!("games:{g2}:host"),
            format!("games:{g2}:participants"),
            format!("games:{g2}:status"),
            format!("games:{g2}:order"),
            format!("games:{g2}"),
            format!("games:{g2}:superheros"),
            format!("games:{g2}:superheros:{host2}"),
            format!("games:{g2}:logs"),
        ])
        .zrem("games:participants", &g2)
        .lrem("games:players:2", 0, &g2)
        .query_async(&mut r)
        .await
        .expect("tidy up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_never_stops_landing_and_is_counted() {
    let topic = testkit::unique("wnoredis");
    testkit::create_topic(&topic, 1).await.expect("topic");
    let (url, store) = testkit::new_container("wnoredis").expect("container");
    let producer = producer();
    for i in 0..20 {
        let v = if i % 2 == 0 {
            cleaning("g", &format!("u{i}"))
        } else {
            sample_value(i)
        };
        send(&producer, &topic, 0, None, Some(&v), &[]).await;
    }
    let mut env = base_env(&[&topic], &url);
    set(&mut env, "CLEANUP_ENABLED", "true");
    set(&mut env, "REDIS_URL", "redis://127.0.0.1:1/0");
    let w = InProcess::start(&env).await;
    let addr = w.running.ops_addr.to_string();
    wait_landed(&store, &topic, 20, Duration::from_secs(60)).await;
    testkit::wait_for(
        "clean-up errors to be counted",
        Duration::from_secs(30),
        || {
            let addr = addr.clone();
            async move {
                let (_, text) = http_get(&addr, "/metrics").await?;
                (metric_sum(&text, "worker_cleanup_errors_total", &[]) >= 1.0).then_some(())
            }
        },
    )
    .await
    .expect("errors counted");
    let (status, body) = http_get(&addr, "/readyz").await.expect("readyz");
    assert_eq!(status, 503);
    assert!(body.starts_with("redis:"), "{body}");
    assert!(
        !body.contains("kafka:") && !body.contains("storage:"),
        "{body}"
    );
    let started = std::time::Instant::now();
    w.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown waited for Redis"
    );
}

/// Keys of the seeded games that still have no TTL.
async fn keys_without_ttl(
    r: &mut redis::aio::MultiplexedConnection,
    games: &[(String, String, String)],
) -> Vec<String> {
    let mut left = Vec::new();
    for (g, host, guest) in games {
        for k in [
            format!("games:{g}:superheros:{host}"),
            format!("games:{g}:superheros:{guest}"),
            format!("games:{g}:participants"),
            format!("games:{g}:status"),
            format!("games:{g}:host"),
            format!("games:{g}:order"),
            format!("games:{g}"),
            format!("games:{g}:superheros"),
        ] {
            // -1: the key exists without a TTL (-2 would be gone, e.g. expired after cleaning).
            if ttl(r, &k).await == -1 {
                left.push(k);
            }
        }
    }
    left
}

/// A private Redis that keeps its data (append-only file) across a stop and a start.
struct PrivateRedis {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    async fn start(&mut self) {
        self.child = Some(testkit::spawn_redis_in(&self.dir, self.port).expect("redis-server"));
        testkit::wait_for_port(self.port, Duration::from_secs(20))
            .await
            .expect("redis up");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn connect(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanups_survive_a_kill_9_while_redis_is_down() {
    let topic = testkit::unique("wcleancrash");
    testkit::create_topic(&topic, 1).await.expect("topic");
    let (url, store) = testkit::new_container("wcleancrash").expect("container");
    let mut redis = PrivateRedis {
        dir: std::env::temp_dir().join(testkit::unique("wredis")),
        port: testkit::free_port(),
        child: None,
    };
    redis.start().await;
    let games: Vec<(String, String, String)> = (0..2)
        .map(|_| {
            (
                testkit::unique("game"),
                testkit::unique("host"),
                testkit::unique("guest"),
            )
        })
        .collect();
    {
        let mut r = redis.connect().await;
        for (g, host, guest) in &games {
            seed_game(&mut r, g, host, guest).await;
        }
    }
    redis.stop();

    // Plain records around the clean-ups, so commits have somewhere to go on both sides.
    let producer = producer();
    let mut next = 0;
    for i in 0..5 {
        next = send(&producer, &topic, 0, None, Some(&sample_value(i)), &[]).await + 1;
    }
    let mut cleanup_offsets = Vec::new();
    for (g, host, guest) in &games {
        for user in [guest, host] {
            cleanup_offsets
                .push(send(&producer, &topic, 0, None, Some(&cleaning(g, user)), &[]).await);
        }
        for i in 0..3 {
            next = send(&producer, &topic, 0, None, Some(&sample_value(i)), &[]).await + 1;
        }
    }
    let first_cleanup = cleanup_offsets[0];
    assert!(first_cleanup > 0);

    let mut env = base_env(&[&topic], &url);
    set(&mut env, "CLEANUP_ENABLED", "true");
    set(&mut env, "REDIS_URL", redis.url());
    set(&mut env, "BATCH_SIZE", "4");
    set(&mut env, "BATCH_MAX_WAIT_MS", "200");
    set(
        &mut env,
        "METRICS_ADDR",
        format!("127.0.0.1:{}", free_port()),
    );
    let group = var(&env, "KAFKA_GROUP_ID");
    let mut first = ChildWorker::spawn(&env, "wcleancrash-1");
    let landed = wait_landed(&store, &topic, next as usize, Duration::from_secs(60)).await;
    // The last batch landed with the whole partition durable, and its commit was held at the
    // first clean-up Redis never applied.
    testkit::wait_for(
        "the last batch's commit to be held for clean-up",
        Duration::from_secs(30),
        || {
            let held = first.events("commit_held_for_cleanup");
            async move {
                held.iter()
                    .any(|e| e.get("durable").and_then(|d| d.as_i64()) == Some(next))
                    .then_some(())
            }
        },
    )
    .await
    .expect("held");
    // Held at the start of the blob holding the first clean-up: a chain position, so the next
    // run walks the same blobs (a commit inside a blob would make it land an overlapping one).
    let blob_of_first = &landed
        .iter()
        .find(|l| l.offset == first_cleanup)
        .expect("landed")
        .blob;
    let held_at = landed
        .iter()
        .filter(|l| &l.blob == blob_of_first)
        .map(|l| l.offset)
        .min();
    assert!(held_at.is_some_and(|o| o > 0), "commits happened before it");
    // Commits are asynchronous (and may wait for the commit timer): wait until the committed
    // offset reaches the hold, then check it stopped there.
    let reached = testkit::wait_for(
        "the committed offset to reach the hold",
        Duration::from_secs(10),
        || {
            let (group, topic) = (group.clone(), topic.clone());
            async move {
                let c = committed(&group, &topic);
                (c >= held_at).then_some(c)
            }
        },
    )
    .await
    .expect("commits up to the hold");
    assert_eq!(
        reached, held_at,
        "the commit passed a record whose clean-up has not run"
    );
    let metrics_addr = var(&env, "METRICS_ADDR");
    let (_, text) = http_get(&metrics_addr, "/metrics").await.expect("metrics");
    assert_eq!(
        metric_sum(&text, "worker_cleanup_pending", &[]),
        cleanup_offsets.len() as f64,
        "{text}"
    );
    assert!(metric_sum(&text, "worker_commits_held_total", &[]) >= 1.0);
    first.kill();

    redis.start().await;
    let mut r = redis.connect().await;
    assert_eq!(
        keys_without_ttl(&mut r, &games).await.len(),
        games.len() * 8,
        "nothing was cleaned while Redis was down"
    );
    set(
        &mut env,
        "METRICS_ADDR",
        format!("127.0.0.1:{}", free_port()),
    );
    let mut second = ChildWorker::spawn(&env, "wcleancrash-2");
    testkit::wait_for(
        "the games' keys to get TTLs",
        Duration::from_secs(60),
        || {
            let mut r = r.clone();
            let games = games.clone();
            async move {
                keys_without_ttl(&mut r, &games)
                    .await
                    .is_empty()
                    .then_some(())
            }
        },
    )
    .await
    .expect("the restarted worker re-queued the clean-ups of records already landed");
    testkit::wait_for(
        "the commit to reach the end once the clean-ups ran",
        Duration::from_secs(30),
        || {
            let (group, topic) = (group.clone(), topic.clone());
            async move { (committed(&group, &topic) == Some(next)).then_some(()) }
        },
    )
    .await
    .expect("committed");
    for (g, _, _) in &games {
        let logs: bool = r.exists(format!("games:{g}:logs")).await.expect("exists");
        assert!(!logs, "games:{g}:logs not deleted");
    }
    second.terminate();
    testkit::wait_for("the second worker to exit", Duration::from_secs(20), || {
        let exited = matches!(second.child.try_wait(), Ok(Some(_)));
        async move { exited.then_some(()) }
    })
    .await
    .expect("exits after SIGTERM");
    // Landing stayed exactly once: the re-read records were found in storage, not landed again.
    let again = read_all(&store).await;
    assert_eq!(again.len(), landed.len());
    let offsets: std::collections::BTreeSet<i64> = again.iter().map(|l| l.offset).collect();
    assert_eq!(offsets, (0..next).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_redis_rejects_for_its_data_is_counted_and_holds_no_commit() {
    let topic = testkit::unique("wcleanbad");
    testkit::create_topic(&topic, 1).await.expect("topic");
    let (url, store) = testkit::new_container("wcleanbad").expect("container");
    let mut r = testkit::redis().await.expect("redis");
    // The host key is a list: the script's GET fails with WRONGTYPE on every attempt.
    let g = testkit::unique("game");
    let host_key = format!("games:{g}:host");
    let _: () = r.rpush(&host_key, "not a string").await.expect("seed");
    let producer = producer();
    send(&producer, &topic, 0, None, Some(&sample_value(0)), &[]).await;
    send(&producer, &topic, 0, None, Some(&cleaning(&g, "u")), &[]).await;
    let end = send(&producer, &topic, 0, None, Some(&sample_value(1)), &[]).await + 1;

    let mut env = base_env(&[&topic], &url);
    set(&mut env, "CLEANUP_ENABLED", "true");
    set(&mut env, "REDIS_URL", testkit::var("REDIS_URL"));
    let group = var(&env, "KAFKA_GROUP_ID");
    let w = InProcess::start(&env).await;
    let addr = w.running.ops_addr.to_string();
    wait_landed(&store, &topic, end as usize, Duration::from_secs(60)).await;
    testkit::wait_for(
        "the rejected clean-up to be counted",
        Duration::from_secs(30),
        || {
            let addr = addr.clone();
            async move {
                let (_, text) = http_get(&addr, "/metrics").await?;
                (metric_sum(&text, "worker_errors_total", &["kind=\"cleanup_rejected\""]) >= 1.0)
                    .then_some(())
            }
        },
    )
    .await
    .expect("rejected");
    testkit::wait_for(
        "the commit to reach the end",
        Duration::from_secs(30),
        || {
            let (group, topic) = (group.clone(), topic.clone());
            async move { (committed(&group, &topic) == Some(end)).then_some(()) }
        },
    )
    .await
    .expect("a rejected clean-up does not hold the commit");
    w.stop().await;
    let _: () = redis::pipe()
        .del(&[host_key, format!("games:{g}:superheros:u")])
        .query_async(&mut r)
        .await
        .expect("tidy up");
}

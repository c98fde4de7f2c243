//! Redis clean-up after `Cleaning Game Records`: the spec's keys get TTLs or go; and a Redis
//! outage never stops landing.

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

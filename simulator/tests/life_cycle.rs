//! One game step by step against the real Redis and broker: after each server step the keys
//! have the types and values of spec §3.1 (creation, join, start, attacks, end).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use model::envelope::AttackTask;
use rand::SeedableRng;
use redis::AsyncCommands;
use simulator::heroes::{HeroTable, TABLE_SEED};
use simulator::publish::{PublishSettings, Publisher};
use simulator::server::{Attack, Server};
use simulator::store::{GameStore, Lobby};

async fn key_type(r: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    redis::cmd("TYPE")
        .arg(key)
        .query_async(r)
        .await
        .expect("TYPE")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_follow_the_reference_table_from_lobby_to_completed() -> anyhow::Result<()> {
    let topics = common::topics("cycle").await?;
    let dir = testkit::TempDir::new("sim")?;
    let settings = common::settings(&dir, &topics, &[("SEED", "3")]);
    let publisher = Publisher::connect(&PublishSettings {
        brokers: settings.brokers.clone(),
        topics: settings.topics.clone(),
        seed: 3,
        bad_ratio: 0.0,
        rate_limit: 0,
        create_topics: false,
    })
    .await?;
    assert_eq!(
        publisher.partitions(),
        [2, 4, 1],
        "partition counts come from the broker"
    );
    let heroes = Arc::new(HeroTable::generate(TABLE_SEED));
    let store = GameStore::connect(settings.redis_url.expose()).await?;
    store.write_heroes(&heroes).await?;
    let server = Server::new(
        &settings,
        store.clone(),
        Arc::new(publisher),
        heroes.clone(),
    );
    let mut r = testkit::redis().await?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);

    // Login: users hash, USERnnn-{instance} → uuid4, stable per name.
    let (name_a, name_b) = (server.user_name(0), server.user_name(1));
    let a = server.login(&name_a).await?;
    assert_eq!(server.login(&name_a).await?, a, "a user keeps their token");
    let b = server.login(&name_b).await?;
    assert_eq!(r.hget::<_, _, String>("users", &name_a).await?, a);
    assert_eq!(uuid::Uuid::parse_str(&a)?.get_version_num(), 4);

    // Creation + first join.
    let seat = server
        .enter(&a, 2, server.open_games(2).await?, &mut rng)
        .await?;
    let g = seat.game.clone();
    assert!(seat.host);
    let players: Vec<String> = r.lrange("games:players:2", -50, -1).await?;
    assert!(players.contains(&g));
    assert_eq!(key_type(&mut r, "games:players:2").await, "list");
    assert_eq!(r.zscore::<_, _, f64>("games:participants", &g).await?, 1.0);
    assert_eq!(
        r.get::<_, String>(format!("games:{g}:participants"))
            .await?,
        "2"
    );
    assert_eq!(
        r.get::<_, String>(format!("games:{g}:status")).await?,
        "Waiting Lobby"
    );
    assert_eq!(r.get::<_, String>(format!("games:{g}:host")).await?, a);
    assert_eq!(
        r.smembers::<_, Vec<String>>(format!("games:{g}")).await?,
        std::slice::from_ref(&a)
    );
    let hero_a: HashMap<String, u64> = r.hgetall(format!("games:{g}:superheros:{a}")).await?;
    let stats = heroes.get(seat.hero).expect("hero").powerstats;
    assert_eq!(hero_a["id"], u64::from(seat.hero));
    assert_eq!(
        (hero_a["attack"], hero_a["health"]),
        (stats.attack, stats.health)
    );
    assert_eq!(store.try_start(&g).await?, Lobby::Waiting);

    // Second join fills the lobby; the start writes the sorted order.
    let open = server.open_games(2).await?;
    assert!(
        open.contains(&g),
        "the waiting game is open to this instance's players"
    );
    let seat_b = server.enter(&b, 2, vec![g.clone()], &mut rng).await?;
    assert_eq!((seat_b.game.as_str(), seat_b.host), (g.as_str(), false));
    assert_ne!(seat_b.hero, seat.hero, "heroes are unique within a game");
    assert_eq!(r.zscore::<_, _, f64>("games:participants", &g).await?, 2.0);
    assert_eq!(r.scard::<_, u64>(format!("games:{g}:superheros")).await?, 2);
    assert!(
        !store.join(&g, "late-joiner").await?,
        "a full lobby takes nobody (no over-fill race)"
    );
    assert_eq!(store.try_start(&g).await?, Lobby::Started);
    assert_eq!(
        r.get::<_, String>(format!("games:{g}:status")).await?,
        "Starting"
    );
    let mut sorted = vec![a.clone(), b.clone()];
    sorted.sort();
    assert_eq!(
        r.lrange::<_, Vec<String>>(format!("games:{g}:order"), 0, -1)
            .await?,
        sorted
    );
    assert_eq!(
        store.try_start(&g).await?,
        Lobby::Started,
        "a second participant's check does not rewrite the order"
    );
    assert_eq!(r.llen::<_, u64>(format!("games:{g}:order")).await?, 2);
    assert!(!store.time_out(&g).await?, "a started game cannot time out");

    // Turns: the head of the order attacks; the order rotates; logs grow; the dead leave.
    let mut attacks = 0;
    loop {
        let turn = store.turn(&g).await?.expect("someone's turn");
        assert_eq!(turn, sorted[attacks % 2], "turns alternate in sorted order");
        let enemy = if turn == a { &b } else { &a };
        let prior: u64 = r
            .hget(format!("games:{g}:superheros:{enemy}"), "health")
            .await?;
        let outcome = server.attack(&g, &turn, &mut rng).await?;
        attacks += 1;
        let post: u64 = r
            .hget(format!("games:{g}:superheros:{enemy}"), "health")
            .await?;
        let damage: u64 = r
            .hget(format!("games:{g}:superheros:{turn}"), "attack")
            .await?;
        assert_eq!(post, prior.saturating_sub(damage));
        let logs: Vec<String> = r.lrange(format!("games:{g}:logs"), 0, -1).await?;
        assert_eq!(logs.len(), attacks);
        let last: AttackTask = serde_json::from_str(logs.last().expect("a log"))?;
        assert_eq!(
            (
                last.payload.user_token.as_str(),
                last.status.details.enemy_token.as_str()
            ),
            (turn.as_str(), enemy.as_str())
        );
        if outcome == Attack::GameOver {
            assert_eq!(post, 0);
            break;
        }
        assert_eq!(
            r.get::<_, String>(format!("games:{g}:status")).await?,
            "In-Progress"
        );
        assert!(attacks < 5000, "the game ends");
    }
    assert_eq!(
        r.get::<_, String>(format!("games:{g}:status")).await?,
        "Completed"
    );
    let order: Vec<String> = r.lrange(format!("games:{g}:order"), 0, -1).await?;
    assert_eq!(order.len(), 1, "the dead hero left the order");
    let members: BTreeSet<String> = r.smembers(format!("games:{g}")).await?;
    assert_eq!(members, BTreeSet::from([a.clone(), b.clone()]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_lobby_times_out_and_rejects_late_joiners() -> anyhow::Result<()> {
    let topics = common::topics("timeout").await?;
    let dir = testkit::TempDir::new("sim")?;
    let settings = common::settings(&dir, &topics, &[("SEED", "4")]);
    let publisher = Publisher::connect(&PublishSettings {
        brokers: settings.brokers.clone(),
        topics: settings.topics.clone(),
        seed: 4,
        bad_ratio: 0.0,
        rate_limit: 0,
        create_topics: false,
    })
    .await?;
    let heroes = Arc::new(HeroTable::generate(TABLE_SEED));
    let store = GameStore::connect(settings.redis_url.expose()).await?;
    let server = Server::new(&settings, store.clone(), Arc::new(publisher), heroes);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let a = server.login(&server.user_name(0)).await?;
    let b = server.login(&server.user_name(1)).await?;
    let g = server.enter(&a, 3, Vec::new(), &mut rng).await?.game;
    assert!(store.time_out(&g).await?);
    let mut r = testkit::redis().await?;
    assert_eq!(
        r.get::<_, String>(format!("games:{g}:status")).await?,
        "Timed Out"
    );
    assert_eq!(
        store.try_start(&g).await?,
        Lobby::TimedOut,
        "other waiters see the time-out"
    );
    assert!(!store.join(&g, &b).await?, "a timed-out lobby takes nobody");
    assert_eq!(r.zscore::<_, _, f64>("games:participants", &g).await?, 1.0);
    Ok(())
}

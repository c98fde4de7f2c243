//! Play mode against the real broker and Redis (`scripts/stack up`): the records read back have
//! exactly the spec's shapes, the manifest equals what the topics hold, the Redis keys follow
//! the spec's table, and deterministic mode repeats its games.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDateTime;
use common::Record;
use model::envelope::{
    ATTACK_COMPLETED, ATTACKED_DEAD_ENEMY, AttackTask, CLEANING_GAME_RECORDS, CleaningTask,
    DeadEnemyTask, Envelope, GAME_TIMED_OUT, STARTING_MATCH, STARTING_SERVER, StartingMatchTask,
    TimedOutTask,
};
use redis::AsyncCommands;
use simulator::bad::BadKind;
use simulator::heroes::{HeroTable, TABLE_SEED};
use simulator::messages::{LISTENING, isoformat};
use simulator::server::Outcome;
use simulator::{PlayReport, Settings, Simulator};
use tokio_util::sync::CancellationToken;

async fn play(
    dir: &testkit::TempDir,
    prefix: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<([String; 3], Settings, PlayReport)> {
    let topics = common::topics(prefix).await?;
    let settings = common::settings(dir, &topics, extra);
    let sim = Simulator::connect(settings.clone()).await?;
    let report = sim.play(CancellationToken::new()).await?;
    Ok((topics, settings, report))
}

fn envelope(r: &Record) -> Envelope<'_> {
    serde_json::from_slice(&r.value).unwrap_or_else(|e| {
        panic!(
            "record {}/{} is not an envelope: {e}",
            r.partition, r.offset
        )
    })
}

fn is_zulu(ts: &str) -> bool {
    ts.len() == 20 && NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%SZ").is_ok()
}

fn is_micros(ts: &str) -> bool {
    ts.len() == 26 && NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
}

/// Good records of a topic (injected bad ones, listed in the manifest, left out).
fn good<'a>(records: &'a [Record], report: &PlayReport, topic: &str) -> Vec<&'a Record> {
    let bad: BTreeSet<(i32, i64)> = report
        .manifest
        .bad
        .iter()
        .filter(|b| b.topic == topic)
        .map(|b| (b.partition, b.offset))
        .collect();
    records
        .iter()
        .filter(|r| !bad.contains(&(r.partition, r.offset)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_run_publishes_exactly_the_reference_shapes() -> anyhow::Result<()> {
    let dir = testkit::TempDir::new("sim")?;
    let (topics, _, report) = play(
        &dir,
        "shapes",
        &[
            ("PLAYERS", "4"),
            ("CLIENT_GAMES", "3"),
            ("SEED", "42"),
            ("DEAD_ENEMY_RATIO", "0.5"),
        ],
    )
    .await?;
    let table = HeroTable::generate(TABLE_SEED);
    let sizes: HashMap<&str, u8> = report
        .games
        .iter()
        .map(|g| (g.game_token.as_str(), g.participants))
        .collect();

    // client.__main__: the two start-up records, no task.
    let client = common::read_all(&topics[2])?;
    let messages: Vec<String> = client
        .iter()
        .map(|r| envelope(r).log_message.into_owned())
        .collect();
    assert_eq!(messages, [STARTING_SERVER, LISTENING]);
    for r in &client {
        let e = envelope(r);
        assert_eq!(
            (e.level.as_ref(), e.name.as_ref()),
            ("INFO", format!("kafka.{}", topics[2]).as_str())
        );
        assert!(e.task.is_none());
    }

    // lib.server.lobby
    let lobby = common::read_all(&topics[0])?;
    let mut heroes_of: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut per_game: HashMap<String, BTreeMap<&str, usize>> = HashMap::new();
    for r in &lobby {
        let e = envelope(r);
        assert_eq!(e.level, "INFO");
        assert_eq!(e.name, format!("kafka.{}", topics[0]));
        let at = model::envelope::parse_timestamp(&e.timestamp).expect("envelope timestamp");
        assert_eq!(
            isoformat(at.naive_utc()),
            e.timestamp,
            "naive isoformat, no zone"
        );
        let raw = e.task.expect("lobby records have a task").get();
        let game = match e.log_message.as_ref() {
            STARTING_MATCH => {
                assert!(raw.starts_with('"'), "Starting Match task is a JSON string");
                let t: StartingMatchTask = e.task(STARTING_MATCH)?;
                assert!(is_zulu(&t.timestamp), "{}", t.timestamp);
                assert_eq!(t.status.game, "START");
                let n = sizes[t.payload.game_token.as_str()];
                assert_eq!(t.payload.participants.len(), usize::from(n));
                let keys: BTreeSet<&String> = t
                    .payload
                    .participants_heros
                    .0
                    .iter()
                    .map(|(k, _)| k)
                    .collect();
                assert_eq!(
                    keys,
                    t.payload.participants.iter().collect(),
                    "PARTICIPANTS_HEROS keys == PARTICIPANTS"
                );
                for (token, hero) in &t.payload.participants_heros.0 {
                    assert_eq!(&hero.token, token);
                    let id = hero.id.expect("hero hash exists");
                    let stats = table.get(id).expect("id in 1..=732").powerstats;
                    assert_eq!(hero.attack, stats.attack);
                    assert!(hero.health <= stats.health && stats.health <= 10_000_000);
                    assert!((1..=1_000_000).contains(&hero.attack));
                    heroes_of
                        .entry(t.payload.game_token.clone())
                        .or_default()
                        .insert(token.clone(), hero.attack);
                }
                t.payload.game_token
            }
            GAME_TIMED_OUT => {
                assert!(raw.starts_with('"'), "Game Timed Out task is a JSON string");
                let t: TimedOutTask = e.task(GAME_TIMED_OUT)?;
                assert!(is_zulu(&t.timestamp), "{}", t.timestamp);
                assert_eq!(t.status.game, "TIMED OUT");
                t.payload.game_token
            }
            CLEANING_GAME_RECORDS => {
                assert!(
                    raw.starts_with('{'),
                    "Cleaning Game Records task is an object"
                );
                let keys: Vec<String> =
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw)?
                        .keys()
                        .cloned()
                        .collect();
                assert_eq!(keys, ["game_token", "user_token"]);
                e.task::<CleaningTask>(CLEANING_GAME_RECORDS)?.game_token
            }
            other => panic!("unexpected lobby message {other}"),
        };
        assert!(
            report.manifest.game_tokens.contains(&game),
            "{game} is one of this run's games"
        );
        let message: &str = match e.log_message.as_ref() {
            STARTING_MATCH => STARTING_MATCH,
            GAME_TIMED_OUT => GAME_TIMED_OUT,
            _ => CLEANING_GAME_RECORDS,
        };
        *per_game
            .entry(game)
            .or_default()
            .entry(message)
            .or_default() += 1;
    }
    // Per game: N Starting Match + N Cleaning, or k Timed Out + k Cleaning (k < N).
    for g in &report.games {
        let counts = &per_game[&g.game_token];
        let n = usize::from(g.participants);
        match g.outcome {
            Outcome::Completed => {
                assert_eq!(counts.get(STARTING_MATCH), Some(&n), "{counts:?}");
                assert_eq!(counts.get(CLEANING_GAME_RECORDS), Some(&n), "{counts:?}");
            }
            Outcome::TimedOut => {
                let k = counts[GAME_TIMED_OUT];
                assert!(
                    k < n && counts.get(CLEANING_GAME_RECORDS) == Some(&k),
                    "{counts:?}"
                );
            }
            Outcome::Pending => panic!("game {} did not finish", g.game_token),
        }
    }

    // lib.server.game
    let game = common::read_all(&topics[1])?;
    let mut attacks: HashMap<String, Vec<(u64, u64, u64)>> = HashMap::new();
    let mut dead = 0;
    for r in &game {
        let e = envelope(r);
        assert_eq!(e.name, format!("kafka.{}", topics[1]));
        assert!(
            e.task
                .expect("game records have a task")
                .get()
                .starts_with('"')
        );
        match e.log_message.as_ref() {
            ATTACK_COMPLETED => {
                assert_eq!(e.level, "INFO");
                let t: AttackTask = e.task(ATTACK_COMPLETED)?;
                assert!(
                    is_micros(&t.timestamp),
                    "default TIMESTAMP_FORMAT is micros: {}",
                    t.timestamp
                );
                assert_eq!(t.status.action, "ATTACK");
                let d = &t.status.details;
                assert_eq!(
                    d.enemy_health_post,
                    d.enemy_health_prior.saturating_sub(d.enemy_damage)
                );
                assert!(d.enemy_health_prior > 0 && d.enemy_health_prior <= 10_000_000);
                assert_ne!(d.enemy_token, t.payload.user_token);
                let heroes = &heroes_of[&t.payload.game_token];
                assert_eq!(
                    d.enemy_damage, heroes[&t.payload.user_token],
                    "damage is the attacker's attack"
                );
                assert!(heroes.contains_key(&d.enemy_token));
                attacks.entry(t.payload.game_token).or_default().push((
                    d.enemy_damage,
                    d.enemy_health_prior,
                    d.enemy_health_post,
                ));
            }
            ATTACKED_DEAD_ENEMY => {
                assert_eq!(e.level, "ERROR");
                let t: DeadEnemyTask = e.task(ATTACKED_DEAD_ENEMY)?;
                assert!(is_micros(&t.timestamp));
                assert_eq!(
                    (
                        t.status.action.as_str(),
                        t.status.details.enemy_token.as_deref()
                    ),
                    ("NA", None)
                );
                assert_eq!(t.status.details.enemy_status, "DEAD");
                dead += 1;
            }
            other => panic!("unexpected game message {other}"),
        }
    }
    for g in &report.games {
        let mut seen = attacks.remove(&g.game_token).unwrap_or_default();
        let mut expected = g.attacks.clone();
        seen.sort_unstable();
        expected.sort_unstable();
        assert_eq!(seen, expected, "attacks of {}", g.game_token);
    }
    assert_eq!(dead, report.games.iter().filter(|g| g.dead_enemy).count());
    assert!(
        report.games.iter().any(|g| g.outcome == Outcome::Completed),
        "some game completed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_counts_equal_what_the_topics_hold() -> anyhow::Result<()> {
    let dir = testkit::TempDir::new("sim")?;
    let (topics, settings, report) = play(
        &dir,
        "manifest",
        &[
            ("PLAYERS", "3"),
            ("CLIENT_GAMES", "2"),
            ("SEED", "7"),
            ("BAD_RATIO", "0.1"),
        ],
    )
    .await?;
    let m = &report.manifest;
    assert_eq!(
        &simulator::Manifest::read(&settings.manifest_path)?,
        m,
        "the file is the returned manifest"
    );
    assert!(m.complete);
    assert_eq!((m.failed_deliveries, m.mode.as_str()), (0, "play"));

    let mut log_messages: BTreeMap<String, u64> = BTreeMap::new();
    let (mut participant_rows, mut attack_rows, mut total) = (0, 0, 0);
    for topic in &topics {
        let records = common::read_all(topic)?;
        total += records.len() as u64;
        let expected: BTreeMap<i32, (u64, i64, i64)> = m.topics[topic]
            .iter()
            .map(|(p, s)| (*p, (s.count, s.min_offset, s.max_offset)))
            .collect();
        assert_eq!(
            common::partition_stats(&records),
            expected,
            "per partition counts and offsets of {topic}"
        );
        for r in good(&records, &report, topic) {
            let e = envelope(r);
            *log_messages.entry(e.log_message.to_string()).or_default() += 1;
            if e.log_message == STARTING_MATCH {
                participant_rows += e
                    .task::<StartingMatchTask>(STARTING_MATCH)?
                    .payload
                    .participants_heros
                    .0
                    .len() as u64;
            } else if e.log_message == ATTACK_COMPLETED {
                attack_rows += 1;
            }
        }
        // Bad records are where the manifest says, and malformed in the announced way.
        for b in m.bad.iter().filter(|b| &b.topic == topic) {
            let r = records
                .iter()
                .find(|r| (r.partition, r.offset) == (b.partition, b.offset))
                .expect("bad record exists");
            let kind = BadKind::from_name(&b.kind).expect("known kind");
            assert!(
                kind.is_evident_in(&r.value),
                "{b:?} is not malformed as announced"
            );
        }
    }
    assert_eq!(total, m.good_records + m.bad_records);
    assert_eq!(m.bad_records, m.bad.len() as u64);
    assert_eq!(log_messages, m.log_messages);
    assert_eq!(
        (participant_rows, attack_rows),
        (m.participant_rows, m.attack_rows)
    );
    let hosted = (m.games.completed + m.games.timed_out) as usize;
    assert_eq!(hosted, report.games.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_games_leave_the_reference_redis_keys() -> anyhow::Result<()> {
    let dir = testkit::TempDir::new("sim")?;
    let (topics, _, report) = play(
        &dir,
        "redis",
        &[("PLAYERS", "4"), ("CLIENT_GAMES", "2"), ("SEED", "11")],
    )
    .await?;
    let mut r = testkit::redis().await?;
    let con = r.clone();
    let key_type = move |k: String| {
        let mut c = con.clone();
        async move {
            redis::cmd("TYPE")
                .arg(&k)
                .query_async::<String>(&mut c)
                .await
                .expect("TYPE")
        }
    };
    assert_eq!(key_type("superheros".into()).await, "hash");
    assert_eq!(r.hlen::<_, u64>("superheros").await?, 732);
    assert_eq!(key_type("users".into()).await, "hash");
    assert_eq!(key_type("games:participants".into()).await, "zset");

    let attacks_in_kafka: Vec<String> = common::read_all(&topics[1])?
        .iter()
        .filter_map(|rec| {
            let e = envelope(rec);
            (e.log_message == ATTACK_COMPLETED).then(|| {
                e.task::<AttackTask>(ATTACK_COMPLETED)
                    .expect("task")
                    .payload
                    .game_token
            })
        })
        .collect();
    let mut checked = 0;
    for g in report
        .games
        .iter()
        .filter(|g| g.outcome == Outcome::Completed)
    {
        let t = &g.game_token;
        let n = g.participants;
        // The whole list: simulators in other tests push to the same shared key.
        let players: Vec<String> = r.lrange(format!("games:players:{n}"), 0, -1).await?;
        assert!(players.contains(t), "games:players:{n} lists {t}");
        assert_eq!(
            r.get::<_, String>(format!("games:{t}:participants"))
                .await?,
            n.to_string()
        );
        assert_eq!(
            r.get::<_, String>(format!("games:{t}:status")).await?,
            "Completed"
        );
        assert_eq!(
            r.zscore::<_, _, f64>("games:participants", t).await?,
            f64::from(n)
        );
        let members: BTreeSet<String> = r.smembers(format!("games:{t}")).await?;
        assert_eq!(members.len(), usize::from(n));
        let host: String = r.get(format!("games:{t}:host")).await?;
        assert!(members.contains(&host));
        for k in [
            format!("games:{t}:participants"),
            format!("games:{t}:status"),
            format!("games:{t}:host"),
        ] {
            assert_eq!(key_type(k).await, "string");
        }
        assert_eq!(key_type(format!("games:{t}")).await, "set");
        assert_eq!(key_type(format!("games:{t}:superheros")).await, "set");
        let hero_ids: BTreeSet<u16> = r.smembers(format!("games:{t}:superheros")).await?;
        assert_eq!(
            hero_ids,
            g.heroes.iter().copied().collect(),
            "one distinct hero per participant"
        );
        let mut alive = 0;
        for u in &members {
            let h = format!("games:{t}:superheros:{u}");
            assert_eq!(key_type(h.clone()).await, "hash");
            let hero: HashMap<String, u64> = r.hgetall(&h).await?;
            assert_eq!(
                hero.keys().map(String::as_str).collect::<BTreeSet<_>>(),
                BTreeSet::from(["attack", "health", "id"])
            );
            alive += usize::from(hero["health"] > 0);
        }
        assert_eq!(alive, 1, "one hero left");
        // The dead were removed from the order; the winner is left.
        assert_eq!(key_type(format!("games:{t}:order")).await, "list");
        let order: Vec<String> = r.lrange(format!("games:{t}:order"), 0, -1).await?;
        assert_eq!(order.len(), 1);
        assert!(members.contains(&order[0]));
        let logs: Vec<String> = r.lrange(format!("games:{t}:logs"), 0, -1).await?;
        let in_kafka = attacks_in_kafka.iter().filter(|a| *a == t).count();
        assert_eq!(
            logs.len(),
            in_kafka,
            "games:{{g}}:logs has one task per Attack Completed"
        );
        assert_eq!(logs.len(), g.attacks.len());
        for task in &logs {
            let a: AttackTask = serde_json::from_str(task)?;
            assert_eq!(&a.payload.game_token, t);
        }
        checked += 1;
    }
    assert!(checked > 0, "at least one game completed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_mode_repeats_the_games_of_a_seed() -> anyhow::Result<()> {
    let dir = testkit::TempDir::new("sim")?;
    let instance = testkit::unique("det");
    let extra = [
        ("INSTANCE_ID", instance.as_str()),
        ("PLAYERS", "5"),
        ("CLIENT_GAMES", "3"),
        ("SEED", "2024"),
        ("DETERMINISTIC", "true"),
        ("TIMESTAMP_FORMAT", "zulu"),
        ("DEAD_ENEMY_RATIO", "0.3"),
    ];
    let (topics, _, first) = play(&dir, "det1", &extra).await?;
    let (_, _, second) = play(&dir, "det2", &extra).await?;
    let decisions = |r: &PlayReport| r.games.iter().map(|g| g.decisions()).collect::<Vec<_>>();
    assert_eq!(decisions(&first), decisions(&second));
    assert!(first.games.iter().all(|g| g.outcome != Outcome::Pending));
    // Same SEED and INSTANCE_ID: the same tokens too (the replay re-creates those games' keys).
    assert_eq!(first.manifest.game_tokens, second.manifest.game_tokens);

    let mut other = extra;
    other[3] = ("SEED", "2025");
    let (_, _, third) = play(&dir, "det3", &other).await?;
    assert_ne!(
        decisions(&first),
        decisions(&third),
        "another seed plays other games"
    );

    // TIMESTAMP_FORMAT=zulu: the older game-task form.
    let game = common::read_all(&topics[1])?;
    assert!(!game.is_empty());
    for r in &game {
        let e = envelope(r);
        let ts = if e.log_message == ATTACK_COMPLETED {
            e.task::<AttackTask>(ATTACK_COMPLETED)?.timestamp
        } else {
            e.task::<DeadEnemyTask>(ATTACKED_DEAD_ENEMY)?.timestamp
        };
        assert!(is_zulu(&ts), "{ts}");
    }
    Ok(())
}

//! Flood mode: a realistic mix of records, as fast as the broker takes them.
//!
//! Games are simulated in memory (no Redis writes, no sleeps) with the same hero table and the
//! same record builders as real play, so the mix matches real traffic: the two start-up records,
//! then per game either a full game (N × `Starting Match`, the attacks until one hero is left,
//! sometimes an `Attacked Dead Enemy`, N × `Cleaning Game Records`) or a lobby time-out
//! (k × `Game Timed Out` + k × `Cleaning Game Records`, about 30% of lobbies, like the
//! blog's observation that many lobbies time out). It stops after exactly `MESSAGES` good
//! records, possibly in the middle of a game. The generator runs on its own thread and only
//! enqueues; delivery reports are booked by the publisher.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use model::envelope::{
    ATTACK_COMPLETED, ATTACKED_DEAD_ENEMY, CLEANING_GAME_RECORDS, GAME_TIMED_OUT, HeroEntry,
    STARTING_MATCH, STARTING_SERVER,
};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

use crate::heroes::{HERO_COUNT, HeroTable};
use crate::manifest::GamesSummary;
use crate::messages::{self, Hit, LISTENING, Logger, TimestampFormat};
use crate::publish::{PublishError, Publisher, TopicId};
use crate::server::now;

/// Share of lobbies that time out.
const TIMEOUT_SHARE: f64 = 0.3;

/// What the flood mode needs to know.
#[derive(Debug, Clone)]
pub struct FloodPlan {
    /// Good records to send.
    pub messages: u64,
    /// Seed of the games.
    pub seed: u64,
    /// Lobby, game, client topics.
    pub topics: [String; 3],
    /// Game-task TIMESTAMP form.
    pub timestamp_format: TimestampFormat,
    /// Probability of a stale `Attacked Dead Enemy` per finished game.
    pub dead_enemy_ratio: f64,
    /// Draw a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

/// What the generator enqueued.
#[derive(Debug, Clone, Copy, Default)]
pub struct FloodStats {
    /// Good records enqueued.
    pub records: u64,
    /// Their value bytes.
    pub bytes: u64,
    /// Games simulated.
    pub games: GamesSummary,
    /// Time to enqueue them.
    pub elapsed: Duration,
}

/// The flood's record mix, whatever the records are sent to: the client's two start-up records
/// ([`Mix::start_up`]), then lobby after lobby ([`Mix::game`]), as the module docs describe.
/// [`run`] publishes it as fast as the broker takes it; the bench harness's latency load sends
/// it at a fixed rate. Every choice comes from one RNG seeded with `seed`.
#[derive(Debug)]
pub struct Mix {
    loggers: [Logger; 3],
    rng: ChaCha8Rng,
    timestamp_format: TimestampFormat,
    dead_enemy_ratio: f64,
    /// The lobbies played out so far (a lobby stopped by `emit` is not counted).
    pub games: GamesSummary,
}

impl Mix {
    /// The mix for the lobby, game and client `topics`: game-task TIMESTAMPs in
    /// `timestamp_format`, and a stale `Attacked Dead Enemy` after a finished game with
    /// probability `dead_enemy_ratio`.
    pub fn new(
        topics: &[String; 3],
        seed: u64,
        timestamp_format: TimestampFormat,
        dead_enemy_ratio: f64,
    ) -> Self {
        Mix {
            loggers: std::array::from_fn(|i| Logger::new(&topics[i])),
            rng: ChaCha8Rng::seed_from_u64(seed),
            timestamp_format,
            dead_enemy_ratio,
            games: GamesSummary::default(),
        }
    }

    /// The client's `Starting Web Socket Server` and `Listening on` records, each handed to
    /// `emit` (topic, value, `log_message`, model rows) until it fails.
    pub fn start_up<E>(
        &self,
        emit: &mut impl FnMut(TopicId, &[u8], &'static str, u32) -> Result<(), E>,
    ) -> Result<(), E> {
        let client = &self.loggers[2];
        let steps: [(Vec<u8>, &'static str); 2] = [
            (client.starting_server(now()), STARTING_SERVER),
            (client.listening(now()), LISTENING),
        ];
        for (v, m) in steps {
            emit(TopicId::Client, &v, m, 0)?;
        }
        Ok(())
    }

    /// One lobby: a whole game or a time-out, each record handed to `emit` (topic, value,
    /// `log_message`, model rows); an error from `emit` stops the lobby and is returned.
    pub fn game<E>(
        &mut self,
        heroes: &HeroTable,
        emit: &mut impl FnMut(TopicId, &[u8], &'static str, u32) -> Result<(), E>,
    ) -> Result<(), E> {
        let n: usize = self.rng.gen_range(2..=3);
        let g = self.token();
        if self.rng.gen_bool(TIMEOUT_SHARE) {
            let waiting = self.rng.gen_range(1..n);
            let users: Vec<String> = (0..waiting).map(|_| self.token()).collect();
            for _ in &users {
                let t = now();
                let v = self.loggers[0].timed_out(now(), t, &g);
                emit(TopicId::Lobby, &v, GAME_TIMED_OUT, 0)?;
            }
            for u in &users {
                let v = self.loggers[0].cleaning(now(), &g, u);
                emit(TopicId::Lobby, &v, CLEANING_GAME_RECORDS, 0)?;
            }
            self.games.timed_out += 1;
            return Ok(());
        }
        let users: Vec<String> = (0..n).map(|_| self.token()).collect();
        let mut ids: Vec<u16> = Vec::with_capacity(n);
        while ids.len() < n {
            let id = self.rng.gen_range(1..=HERO_COUNT);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut entries: Vec<HeroEntry> = users
            .iter()
            .zip(&ids)
            .map(|(u, id)| {
                let p = heroes.get(*id).map(|h| h.powerstats);
                HeroEntry {
                    token: u.clone(),
                    id: Some(*id),
                    attack: p.map_or(0, |p| p.attack),
                    health: p.map_or(0, |p| p.health),
                }
            })
            .collect();
        for _ in 0..n {
            let t = now();
            let v = self.loggers[0].starting_match(now(), t, &g, &users, &entries);
            emit(TopicId::Lobby, &v, STARTING_MATCH, n as u32)?;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| users[*a].cmp(&users[*b]));
        loop {
            let attacker = order[0];
            let enemies: Vec<usize> = order.iter().copied().filter(|i| *i != attacker).collect();
            let Some(&enemy) = enemies.choose(&mut self.rng) else {
                break;
            };
            let hit = Hit {
                game_token: &g,
                attacker: &users[attacker],
                enemy: &users[enemy],
                damage: entries[attacker].attack,
                prior: entries[enemy].health,
            };
            let post = hit.post();
            let ts = messages::game_timestamp(self.timestamp_format, now(), self.rng.gen_bool(0.5));
            let (v, _) = self.loggers[1].attack(now(), ts, &hit);
            emit(TopicId::Game, &v, ATTACK_COMPLETED, 0)?;
            entries[enemy].health = post;
            if post == 0 {
                order.retain(|i| *i != enemy);
            }
            order.rotate_left(1);
            if order.len() == 1 {
                if self.rng.gen_bool(self.dead_enemy_ratio) {
                    let ts = messages::game_timestamp(
                        self.timestamp_format,
                        now(),
                        self.rng.gen_bool(0.5),
                    );
                    let v = self.loggers[1].dead_enemy(now(), ts, &g, &users[attacker]);
                    emit(TopicId::Game, &v, ATTACKED_DEAD_ENEMY, 0)?;
                }
                break;
            }
        }
        for u in &users {
            let v = self.loggers[0].cleaning(now(), &g, u);
            emit(TopicId::Lobby, &v, CLEANING_GAME_RECORDS, 0)?;
        }
        self.games.completed += 1;
        Ok(())
    }

    fn token(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

/// Where the flood's records go: the publisher, up to `MESSAGES` good records.
struct Sink<'a> {
    publisher: &'a Publisher,
    messages: u64,
    stats: FloodStats,
    bar: ProgressBar,
    shutdown: CancellationToken,
}

/// Stop signal inside the generator: the quota is reached or shutdown was requested.
enum Stop {
    Done,
    Failed(PublishError),
}

impl Sink<'_> {
    fn emit(
        &mut self,
        topic: TopicId,
        value: &[u8],
        log_message: &'static str,
        rows: u32,
    ) -> Result<(), Stop> {
        if self.stats.records >= self.messages || self.shutdown.is_cancelled() {
            return Err(Stop::Done);
        }
        self.publisher
            .publish_blocking(topic, value, log_message, rows)
            .map_err(Stop::Failed)?;
        self.stats.records += 1;
        self.stats.bytes += value.len() as u64;
        if self.stats.records.is_multiple_of(4096) {
            self.bar.set_position(self.stats.records);
        }
        Ok(())
    }
}

/// The start-up records, then games until `sink` stops taking records.
fn generate(mix: &mut Mix, heroes: &HeroTable, sink: &mut Sink<'_>) -> Result<(), PublishError> {
    let mut emit =
        |topic, value: &[u8], log_message, rows| sink.emit(topic, value, log_message, rows);
    let mut outcome = mix.start_up(&mut emit);
    while outcome.is_ok() {
        outcome = mix.game(heroes, &mut emit);
    }
    match outcome {
        Err(Stop::Failed(e)) => Err(e),
        _ => Ok(()),
    }
}

/// Generates and enqueues `plan.messages` records on a blocking thread.
pub async fn run(
    publisher: Arc<Publisher>,
    heroes: Arc<HeroTable>,
    plan: FloodPlan,
    shutdown: CancellationToken,
) -> Result<FloodStats, PublishError> {
    tokio::task::spawn_blocking(move || {
        let bar = if plan.progress {
            ProgressBar::with_draw_target(Some(plan.messages), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let start = Instant::now();
        let mut mix = Mix::new(
            &plan.topics,
            plan.seed,
            plan.timestamp_format,
            plan.dead_enemy_ratio,
        );
        let mut sink = Sink {
            publisher: &publisher,
            messages: plan.messages,
            stats: FloodStats::default(),
            bar,
            shutdown,
        };
        let result = generate(&mut mix, &heroes, &mut sink);
        sink.stats.games = mix.games;
        sink.stats.elapsed = start.elapsed();
        sink.bar.finish_and_clear();
        result.map(|()| sink.stats)
    })
    .await?
}

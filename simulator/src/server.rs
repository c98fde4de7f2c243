//! The server side of a game step: the Redis writes and the published records of spec §2.1,
//! shared by the concurrent players ([`crate::player`]) and the sequential mode ([`crate::rounds`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{NaiveDateTime, Utc};
use model::envelope::{
    ATTACK_COMPLETED, ATTACKED_DEAD_ENEMY, CLEANING_GAME_RECORDS, GAME_TIMED_OUT, HeroEntry,
    STARTING_MATCH, STARTING_SERVER,
};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{JoinScope, Settings};
use crate::heroes::{HERO_COUNT, HeroTable};
use crate::messages::{self, Hit, LISTENING, Logger, TimestampFormat};
use crate::publish::{PublishError, Publisher, TopicId};
use crate::store::{GameStore, StoreError, status};

/// How many of the newest `games:players:{n}` entries a join looks at (see [`GameStore::open_games`]).
const RECENT_GAMES: isize = 200;

/// Errors of a game step.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Kafka refused a record.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// How a game ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still running (or the run was interrupted).
    Pending,
    /// One hero left.
    Completed,
    /// The lobby timed out.
    TimedOut,
}

/// What happened in one game, as far as this instance saw it (its decisions, without tokens
/// or times: two runs with the same seed in deterministic mode give equal records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameRecord {
    /// The game.
    pub game_token: String,
    /// Configured participants (2 or 3).
    pub participants: u8,
    /// Hero ids in join order.
    pub heroes: Vec<u16>,
    /// Each attack: (damage, health prior, health post).
    pub attacks: Vec<(u64, u64, u64)>,
    /// Whether a stale `Attacked Dead Enemy` turn was logged.
    pub dead_enemy: bool,
    /// How it ended.
    pub outcome: Outcome,
}

impl GameRecord {
    /// The record without its token, for comparing runs.
    pub fn decisions(&self) -> Decisions {
        (
            self.participants,
            self.heroes.clone(),
            self.attacks.clone(),
            self.dead_enemy,
            self.outcome,
        )
    }
}

/// A game without its token: (participants, heroes, attacks, dead enemy, outcome).
pub type Decisions = (u8, Vec<u16>, Vec<(u64, u64, u64)>, bool, Outcome);

/// A player's place in a game after joining.
#[derive(Debug, Clone)]
pub struct Seat {
    /// The game.
    pub game: String,
    /// Whether this player created (hosts) it.
    pub host: bool,
    /// The hero drawn.
    pub hero: u16,
}

/// What an attack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// The enemy survived or died and others are left.
    Continue,
    /// The game is over (last enemy died, or no living enemy was found).
    GameOver,
}

/// The in-process server: the shared state of every player of this instance.
pub struct Server {
    /// Game state.
    pub store: GameStore,
    /// Kafka.
    pub publisher: Arc<Publisher>,
    heroes: Arc<HeroTable>,
    loggers: [Logger; 3],
    timestamp_format: TimestampFormat,
    dead_enemy_ratio: f64,
    join_scope: JoinScope,
    instance_id: String,
    /// Token stream: seeded from SEED, the instance id and the start time, so tokens never repeat
    /// across runs or instances (reusing a token would mix into the earlier game's Redis keys).
    /// In deterministic mode it is seeded from SEED and the instance id only: the turn order is
    /// the sorted user tokens, so reproducible games need reproducible tokens; a replay resets
    /// the keys of the games it re-creates.
    tokens: Mutex<ChaCha8Rng>,
    deterministic: bool,
    /// Games created here, for `JOIN_SCOPE=instance`.
    own_games: Mutex<Vec<(u8, String)>>,
    records: Mutex<(Vec<GameRecord>, HashMap<String, usize>)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

/// Now, as the naive UTC time the original's containers log.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

impl Server {
    /// A server for `settings`, publishing through `publisher`.
    pub fn new(
        settings: &Settings,
        store: GameStore,
        publisher: Arc<Publisher>,
        heroes: Arc<HeroTable>,
    ) -> Self {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&settings.seed.to_le_bytes());
        // FNV-1a of the instance id: distinct ids give distinct token streams.
        let id_hash = settings
            .instance_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        seed[8..16].copy_from_slice(&id_hash.to_le_bytes());
        if !settings.deterministic {
            let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
            seed[16..24].copy_from_slice(&nanos.to_le_bytes());
            seed[24..28].copy_from_slice(&std::process::id().to_le_bytes());
        }
        Server {
            store,
            publisher,
            heroes,
            loggers: std::array::from_fn(|i| Logger::new(&settings.topics[i])),
            timestamp_format: settings.timestamp_format,
            dead_enemy_ratio: settings.dead_enemy_ratio,
            join_scope: settings.join_scope,
            instance_id: settings.instance_id.clone(),
            tokens: Mutex::new(ChaCha8Rng::from_seed(seed)),
            deterministic: settings.deterministic,
            own_games: Mutex::new(Vec::new()),
            records: Mutex::new((Vec::new(), HashMap::new())),
        }
    }

    /// A fresh uuid4 (random bits from the token stream).
    pub fn new_token(&self) -> String {
        let mut bytes = [0u8; 16];
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// The user name of player `index`: `USERnnn` suffixed with the instance, so scaled
    /// instances never share a user (and a token).
    pub fn user_name(&self, index: usize) -> String {
        format!("USER{index:03}-{}", self.instance_id)
    }

    /// The two `client.__main__` start-up records.
    pub async fn announce(&self) -> Result<(), GameError> {
        let client = &self.loggers[TopicId::Client as usize];
        self.publisher
            .publish(
                TopicId::Client,
                &client.starting_server(now()),
                STARTING_SERVER,
                0,
            )
            .await?;
        self.publisher
            .publish(TopicId::Client, &client.listening(now()), LISTENING, 0)
            .await?;
        Ok(())
    }

    /// Login: the `users` token of `name`, created on first login.
    pub async fn login(&self, name: &str) -> Result<String, GameError> {
        Ok(self.store.login(name, &self.new_token()).await?)
    }

    /// Open games for `n` players that this player may join (per `JOIN_SCOPE`).
    pub async fn open_games(&self, n: u8) -> Result<Vec<String>, GameError> {
        match self.join_scope {
            JoinScope::Any => Ok(self.store.open_games(n, RECENT_GAMES).await?),
            JoinScope::Instance => {
                let mine: Vec<String> = {
                    let own = self
                        .own_games
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    own.iter()
                        .filter(|(m, _)| *m == n)
                        .map(|(_, g)| g.clone())
                        .collect()
                };
                let open = self.store.filter_open(mine.clone()).await?;
                // Forget closed games so the list stays short.
                let mut own = self
                    .own_games
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                own.retain(|(m, g)| *m != n || open.contains(g) || !mine.contains(g));
                Ok(open)
            }
        }
    }

    /// Joins a random game of `candidates` that still has room, or creates one; then draws a hero
    /// not yet taken in that game (`randint(1, HLEN superheros)` until free).
    pub async fn enter<R: Rng>(
        &self,
        user: &str,
        n: u8,
        mut candidates: Vec<String>,
        rng: &mut R,
    ) -> Result<Seat, GameError> {
        candidates.shuffle(rng);
        let mut seat = None;
        for g in candidates {
            if self.store.join(&g, user).await? {
                seat = Some((g, false));
                break;
            }
        }
        let (game, host) = match seat {
            Some(s) => s,
            None => {
                let g = self.new_token();
                if self.deterministic {
                    self.store.reset_game(&g).await?;
                }
                self.store.create_game(&g, n, user).await?;
                self.own_games
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((n, g.clone()));
                self.with_record(&g, |_| ());
                // Nobody else can know the token yet, so this join cannot fail.
                self.store.join(&g, user).await?;
                (g, true)
            }
        };
        let hero = loop {
            let id = rng.gen_range(1..=HERO_COUNT);
            if self.store.claim_hero(&game, user, id, &self.heroes).await? {
                break id;
            }
        };
        self.with_record(&game, |r| {
            r.participants = n;
            r.heroes.push(hero);
        });
        Ok(Seat { game, host, hero })
    }

    /// `Starting Match` for one participant: members and their heroes as they are now.
    pub async fn log_starting_match(&self, g: &str) -> Result<(), GameError> {
        let participants = self.store.participants(g).await?;
        let mut heroes = Vec::with_capacity(participants.len());
        for u in &participants {
            let hero = self.store.hero(g, u).await?;
            heroes.push(HeroEntry {
                token: u.clone(),
                id: hero.map(|h| h.id),
                attack: hero.map_or(0, |h| h.attack),
                health: hero.map_or(0, |h| h.health),
            });
        }
        let t = now();
        let bytes = self.loggers[0].starting_match(now(), t, g, &participants, &heroes);
        let rows = u32::try_from(heroes.len()).unwrap_or(u32::MAX);
        self.publisher
            .publish(TopicId::Lobby, &bytes, STARTING_MATCH, rows)
            .await?;
        Ok(())
    }

    /// `Game Timed Out` for one waiting participant.
    pub async fn log_timed_out(&self, g: &str) -> Result<(), GameError> {
        let t = now();
        let bytes = self.loggers[0].timed_out(now(), t, g);
        self.publisher
            .publish(TopicId::Lobby, &bytes, GAME_TIMED_OUT, 0)
            .await?;
        Ok(())
    }

    /// `Cleaning Game Records` for one participant.
    pub async fn log_cleaning(&self, g: &str, user: &str) -> Result<(), GameError> {
        let bytes = self.loggers[0].cleaning(now(), g, user);
        self.publisher
            .publish(TopicId::Lobby, &bytes, CLEANING_GAME_RECORDS, 0)
            .await?;
        Ok(())
    }

    /// Participants still above 0 health, sorted by token (SMEMBERS order is arbitrary; sorting
    /// keeps target choices reproducible).
    pub async fn alive(&self, g: &str) -> Result<Vec<(String, u64)>, GameError> {
        let mut members = self.store.participants(g).await?;
        members.sort();
        let mut alive = Vec::with_capacity(members.len());
        for u in members {
            if let Some(h) = self.store.hero(g, &u).await?
                && h.health > 0
            {
                alive.push((u, h.health));
            }
        }
        Ok(alive)
    }

    /// One turn of `user`: pick a random living enemy and hit it with the full attack stat.
    pub async fn attack<R: Rng>(
        &self,
        g: &str,
        user: &str,
        rng: &mut R,
    ) -> Result<Attack, GameError> {
        self.store.set_status(g, status::WAITING_PLAYER).await?;
        let damage = self.store.hero(g, user).await?.map_or(0, |h| h.attack);
        let enemies: Vec<(String, u64)> = self
            .alive(g)
            .await?
            .into_iter()
            .filter(|(u, _)| u != user)
            .collect();
        // Always draw, so the decision stream does not depend on TIMESTAMP_FORMAT.
        let zulu = rng.gen_bool(0.5);
        let Some((enemy, prior)) = enemies.choose(rng).cloned() else {
            self.log_dead_enemy(g, user, zulu).await?;
            return Ok(Attack::GameOver);
        };
        let hit = Hit {
            game_token: g,
            attacker: user,
            enemy: &enemy,
            damage,
            prior,
        };
        let post = hit.post();
        self.store.set_health(g, &enemy, post).await?;
        let task_t = now();
        let (bytes, task) = self.loggers[1].attack(
            now(),
            messages::game_timestamp(self.timestamp_format, task_t, zulu),
            &hit,
        );
        self.publisher
            .publish(TopicId::Game, &bytes, ATTACK_COMPLETED, 0)
            .await?;
        self.store.after_attack(g, &enemy, post == 0, &task).await?;
        metrics::counter!("simulator_attacks_total").increment(1);
        self.with_record(g, |r| r.attacks.push((damage, prior, post)));
        if post == 0 && enemies.len() == 1 {
            // The original's stale USER'S TURN race: the winner attacks once more, finds no
            // living enemy and logs `Attacked Dead Enemy`, which also ends the game.
            if rng.gen_bool(self.dead_enemy_ratio) {
                self.log_dead_enemy(g, user, rng.gen_bool(0.5)).await?;
            } else {
                self.store.set_status(g, status::COMPLETED).await?;
            }
            return Ok(Attack::GameOver);
        }
        self.store.set_status(g, status::IN_PROGRESS).await?;
        Ok(Attack::Continue)
    }

    async fn log_dead_enemy(&self, g: &str, user: &str, zulu: bool) -> Result<(), GameError> {
        let task_t = now();
        let ts = messages::game_timestamp(self.timestamp_format, task_t, zulu);
        let bytes = self.loggers[1].dead_enemy(now(), ts, g, user);
        self.publisher
            .publish(TopicId::Game, &bytes, ATTACKED_DEAD_ENEMY, 0)
            .await?;
        self.store.set_status(g, status::COMPLETED).await?;
        self.with_record(g, |r| r.dead_enemy = true);
        Ok(())
    }

    /// Records a hosted game's outcome (once per game, by its host).
    pub fn finish(&self, g: &str, outcome: Outcome) {
        let label = match outcome {
            Outcome::Completed => "completed",
            Outcome::TimedOut => "timed_out",
            Outcome::Pending => "interrupted",
        };
        metrics::counter!("simulator_games_total", "outcome" => label).increment(1);
        tracing::info!(event = "game_finished", game = g, outcome = label);
        self.with_record(g, |r| r.outcome = outcome);
    }

    fn with_record(&self, g: &str, f: impl FnOnce(&mut GameRecord)) {
        let mut guard = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let (list, index) = &mut *guard;
        let i = *index.entry(g.to_owned()).or_insert_with(|| {
            list.push(GameRecord {
                game_token: g.to_owned(),
                participants: 0,
                heroes: Vec::new(),
                attacks: Vec::new(),
                dead_enemy: false,
                outcome: Outcome::Pending,
            });
            list.len() - 1
        });
        f(&mut list[i]);
    }

    /// Every game this instance took part in, in creation/join order.
    pub fn records(&self) -> Vec<GameRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// The hero table.
    pub fn heroes(&self) -> &HeroTable {
        &self.heroes
    }
}

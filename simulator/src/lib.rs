//! Super Hero Combat player simulator: the Kafka records and Redis game state of the original
//! Python simulator server and its players (`../shared/reference/simulator-messages.md`).
//!
//! `simulator play` (the default) runs `PLAYERS` players of `CLIENT_GAMES` games each against an
//! in-process server that keeps the reference Redis keys and publishes the reference records;
//! `simulator flood --messages N` produces a realistic mix as fast as the broker takes it. Both
//! can mix in malformed records (`BAD_RATIO`) and write a [`Manifest`] of what the broker
//! confirmed, the ground truth of the end-to-end tests.
//!
//! # Layout
//! - [`config`]: the knobs (env + CLI overrides) validated into [`Settings`].
//! - [`pyjson`]: Python `json.dumps` byte compatibility (a `serde_json` formatter).
//! - [`messages`]: the published records, byte for byte, and the timestamp forms.
//! - [`heroes`]: the seeded hero table (`superheros`).
//! - [`store`]: the game's Redis keys and their life cycle.
//! - [`server`]: one game step: Redis writes plus records (join, start, attack, time-out, clean).
//! - [`player`]: concurrent players (one task each, `SERVER_SLEEP` polling).
//! - [`rounds`]: deterministic sequential play (`DETERMINISTIC=true`).
//! - [`flood`]: the benchmark mode.
//! - [`bad`]: malformed record kinds.
//! - [`publish`]: the Kafka producer: random partitions, delivery reports → manifest.
//! - [`manifest`]: the ground-truth file.

pub mod bad;
pub mod config;
pub mod flood;
pub mod heroes;
pub mod manifest;
pub mod messages;
pub mod player;
pub mod publish;
pub mod pyjson;
pub mod rounds;
pub mod server;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::Settings;
pub use manifest::Manifest;
pub use server::GameRecord;

use crate::heroes::{HeroTable, TABLE_SEED};
use crate::publish::{PublishError, PublishSettings, Publisher};
use crate::server::{GameError, Outcome, Server};
use crate::store::{GameStore, StoreError};

/// How long the final flush may take before unconfirmed records count as failed.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Kafka failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A player failed.
    #[error("player {player} failed: {source}")]
    Player {
        /// Player index.
        player: usize,
        /// Why.
        #[source]
        source: GameError,
    },
    /// Sequential play failed.
    #[error(transparent)]
    Game(#[from] GameError),
    /// The manifest could not be written.
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    /// A player task panicked.
    #[error("a player task panicked: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What a play run produced.
#[derive(Debug, Clone)]
pub struct PlayReport {
    /// The manifest (also written to `MANIFEST_PATH`).
    pub manifest: Manifest,
    /// Every game this instance took part in.
    pub games: Vec<GameRecord>,
}

/// What a flood run produced.
#[derive(Debug, Clone)]
pub struct FloodReport {
    /// The manifest (also written to `MANIFEST_PATH`).
    pub manifest: Manifest,
    /// Generator statistics.
    pub stats: flood::FloodStats,
    /// From start to the last delivery report.
    pub elapsed: Duration,
}

impl FloodReport {
    /// The closing line: records/s and MB/s, delivered.
    pub fn rate_line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mb = self.stats.bytes as f64 / 1e6;
        format!(
            "flood: {} records ({mb:.1} MB) delivered in {secs:.2} s: {:.0} records/s, {:.1} MB/s ({} bad, {} failed)",
            self.manifest.good_records,
            self.manifest.good_records as f64 / secs,
            mb / secs,
            self.manifest.bad_records,
            self.manifest.failed_deliveries
        )
    }
}

/// A connected simulator: Kafka publisher (topics checked) and, for play, the Redis store.
#[derive(Debug)]
pub struct Simulator {
    settings: Settings,
    publisher: Arc<Publisher>,
    heroes: Arc<HeroTable>,
}

impl Simulator {
    /// Connects to Kafka and reads the three topics' partition counts.
    pub async fn connect(settings: Settings) -> Result<Self, RunError> {
        let publisher = Publisher::connect(&PublishSettings {
            brokers: settings.brokers.clone(),
            topics: settings.topics.clone(),
            seed: settings.seed,
            bad_ratio: settings.bad_ratio,
            rate_limit: settings.rate_limit,
            create_topics: settings.create_topics,
        })
        .await?;
        Ok(Simulator {
            settings,
            publisher: Arc::new(publisher),
            heroes: Arc::new(HeroTable::generate(TABLE_SEED)),
        })
    }

    /// The publisher (for `/readyz`).
    pub fn publisher(&self) -> Arc<Publisher> {
        self.publisher.clone()
    }

    /// Plays the configured games, then flushes and writes the manifest (also after shutdown).
    pub async fn play(&self, shutdown: CancellationToken) -> Result<PlayReport, RunError> {
        let s = &self.settings;
        let store = GameStore::connect(s.redis_url.expose()).await?;
        store.write_heroes(&self.heroes).await?;
        let server = Arc::new(Server::new(
            s,
            store,
            self.publisher.clone(),
            self.heroes.clone(),
        ));
        tracing::info!(
            event = "play_started",
            instance = %s.instance_id,
            seed = s.seed,
            players = s.players,
            client_games = s.client_games,
            deterministic = s.deterministic
        );
        // A failing player stops the others; the manifest is still written.
        let stop = shutdown.child_token();
        let mut failure = None;
        if let Err(e) = server.announce().await {
            failure = Some(RunError::Game(e));
        } else if s.deterministic {
            if let Err(e) = rounds::play(
                server.clone(),
                s.players,
                s.client_games,
                s.seed,
                stop.clone(),
            )
            .await
            {
                failure = Some(RunError::Game(e));
            }
        } else {
            let pace = player::Pace::new(s.server_sleep, s.lobby_timeout);
            let mut players = JoinSet::new();
            for index in 0..s.players {
                let server = server.clone();
                let stop = stop.clone();
                let (games, seed) = (s.client_games, s.seed);
                players.spawn(async move {
                    (
                        index,
                        player::play(server, index, games, seed, pace, stop).await,
                    )
                });
            }
            while let Some(joined) = players.join_next().await {
                let err = match joined {
                    Ok((_, Ok(()))) => continue,
                    Ok((player, Err(source))) => RunError::Player { player, source },
                    Err(e) => RunError::Join(e),
                };
                tracing::error!(event = "player_failed", error = %err);
                stop.cancel();
                failure.get_or_insert(err);
            }
        }
        let mut manifest = self.publisher.finish(FLUSH_TIMEOUT).await?;
        let games = server.records();
        manifest.mode = "play".into();
        manifest.instance_id = s.instance_id.clone();
        manifest.seed = s.seed;
        manifest.complete = failure.is_none() && !shutdown.is_cancelled();
        manifest.game_tokens = games.iter().map(|g| g.game_token.clone()).collect();
        manifest.games.completed = games
            .iter()
            .filter(|g| g.outcome == Outcome::Completed)
            .count() as u64;
        manifest.games.timed_out = games
            .iter()
            .filter(|g| g.outcome == Outcome::TimedOut)
            .count() as u64;
        manifest.write(&s.manifest_path)?;
        tracing::info!(
            event = "manifest_written",
            path = %s.manifest_path.display(),
            records = manifest.delivered(),
            failed = manifest.failed_deliveries,
            complete = manifest.complete
        );
        match failure {
            Some(e) => Err(e),
            None => Ok(PlayReport { manifest, games }),
        }
    }

    /// Floods `MESSAGES` records, then flushes and writes the manifest (also after shutdown).
    pub async fn flood(
        &self,
        shutdown: CancellationToken,
        progress: bool,
    ) -> Result<FloodReport, RunError> {
        let s = &self.settings;
        let plan = flood::FloodPlan {
            messages: s.messages,
            seed: s.seed,
            topics: s.topics.clone(),
            timestamp_format: s.timestamp_format,
            dead_enemy_ratio: s.dead_enemy_ratio,
            progress,
        };
        let start = std::time::Instant::now();
        let generated = flood::run(
            self.publisher.clone(),
            self.heroes.clone(),
            plan,
            shutdown.clone(),
        )
        .await;
        let mut manifest = self.publisher.finish(FLUSH_TIMEOUT).await?;
        let elapsed = start.elapsed();
        let stats = generated.unwrap_or_else(|e| {
            tracing::error!(event = "flood_failed", error = %e);
            manifest.failed("*", -1, &e.to_string());
            flood::FloodStats::default()
        });
        manifest.mode = "flood".into();
        manifest.instance_id = s.instance_id.clone();
        manifest.seed = s.seed;
        manifest.complete = !shutdown.is_cancelled() && manifest.good_records == s.messages;
        manifest.games = stats.games;
        manifest.write(&s.manifest_path)?;
        Ok(FloodReport {
            manifest,
            stats,
            elapsed,
        })
    }
}

//! Redis clean-up of finished games, fed by `Cleaning Game Records` records once their batch is
//! durable.
//!
//! For each request (game `g`, user `u`), one Lua script, so the host check and the expiries are
//! atomic and cost one round trip:
//! - `EXPIRE games:{g}:superheros:{u} REDIS_EXPIRY`;
//! - if `GET games:{g}:host == u` (once per game: the creator's message): `EXPIRE` the game's
//!   `participants`, `status`, `host`, `order` keys, `games:{g}` and `games:{g}:superheros`;
//!   `DEL games:{g}:logs`; `ZREM games:participants g`; `LREM games:players:2|3 0 g`.
//!
//! Replays are harmless: expiring again only restarts a short TTL, and once the host key is gone
//! the game keys are already expiring. Ingestion never waits for Redis: requests go through a
//! bounded queue ([`QUEUE_CAPACITY`]); a failed request is retried with exponential backoff
//! (capped at [`MAX_BACKOFF`]) and counted; only a full queue drops requests, counted in
//! `worker_cleanup_dropped_total` with a warning.

use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::CleanupSettings;
use crate::metrics as m;

/// Pending clean-ups held before new ones are dropped (a game produces 2-3; this is hours of
/// games at the simulator's rate, and ~100 bytes each).
pub const QUEUE_CAPACITY: usize = 100_000;
/// Longest wait between retries while Redis is unreachable.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(5);

const SCRIPT: &str = r"
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 3, 8 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
redis.call('DEL', KEYS[9])
redis.call('ZREM', KEYS[10], ARGV[3])
redis.call('LREM', KEYS[11], 0, ARGV[3])
redis.call('LREM', KEYS[12], 0, ARGV[3])
return 1
";

/// Why one clean-up failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Connecting failed.
    #[error("connecting to Redis at {url}: {source}")]
    Connect {
        /// Redacted URL.
        url: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// The script failed.
    #[error("cleaning game {game} for user {user} (key games:{game}:superheros:{user}): {source}")]
    Script {
        /// Game token.
        game: String,
        /// User token.
        user: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
}

/// One clean-up request and the record it came from.
#[derive(Debug, Clone)]
pub struct Job {
    /// Topic of the record.
    pub topic: std::sync::Arc<str>,
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// Game token.
    pub game: String,
    /// User token.
    pub user: String,
}

/// The keys the script touches, in `KEYS` order.
pub fn keys(game: &str, user: &str) -> [String; 12] {
    [
        format!("games:{game}:superheros:{user}"),
        format!("games:{game}:host"),
        format!("games:{game}:participants"),
        format!("games:{game}:status"),
        format!("games:{game}:host"),
        format!("games:{game}:order"),
        format!("games:{game}"),
        format!("games:{game}:superheros"),
        format!("games:{game}:logs"),
        "games:participants".to_owned(),
        "games:players:2".to_owned(),
        "games:players:3".to_owned(),
    ]
}

/// The sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct Cleaner {
    tx: mpsc::Sender<Job>,
}

impl Cleaner {
    /// Queues a clean-up without ever waiting.
    pub fn submit(&self, job: Job) {
        match self.tx.try_send(job) {
            Ok(()) => metrics::gauge!(m::CLEANUP_QUEUE).increment(1.0),
            Err(mpsc::error::TrySendError::Full(job)) => {
                metrics::counter!(m::CLEANUP_DROPPED).increment(1);
                tracing::warn!(
                    event = "cleanup_dropped",
                    topic = %job.topic,
                    partition = job.partition,
                    offset = job.offset,
                    game = job.game,
                    user = job.user,
                    capacity = QUEUE_CAPACITY,
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Starts the clean-up task. It runs until every [`Cleaner`] is dropped and the queue is empty,
/// or until `stop` is cancelled (then what is pending is abandoned: the keys only miss a TTL).
pub fn spawn(
    settings: &CleanupSettings,
    stop: CancellationToken,
) -> Result<(Cleaner, tokio::task::JoinHandle<()>), redis::RedisError> {
    let client = redis::Client::open(settings.redis_url.expose())?;
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let url = service::secret::redact_url(settings.redis_url.expose());
    let handle = tokio::spawn(run(client, url, settings.expiry_secs, rx, stop));
    Ok((Cleaner { tx }, handle))
}

async fn connect(client: &redis::Client, url: &str) -> Result<MultiplexedConnection, CleanupError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(TIMEOUT)
        .set_response_timeout(TIMEOUT);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|source| CleanupError::Connect {
            url: url.to_owned(),
            source,
        })
}

async fn clean(
    conn: &mut MultiplexedConnection,
    job: &Job,
    expiry: u64,
) -> Result<bool, CleanupError> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SCRIPT).arg(12);
    for k in keys(&job.game, &job.user) {
        cmd.arg(k);
    }
    cmd.arg(&job.user).arg(expiry).arg(&job.game);
    let host: i64 = cmd
        .query_async(conn)
        .await
        .map_err(|source| CleanupError::Script {
            game: job.game.clone(),
            user: job.user.clone(),
            source,
        })?;
    Ok(host == 1)
}

async fn run(
    client: redis::Client,
    url: String,
    expiry: u64,
    mut rx: mpsc::Receiver<Job>,
    stop: CancellationToken,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    while let Some(job) = rx.recv().await {
        metrics::gauge!(m::CLEANUP_QUEUE).decrement(1.0);
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 1u32;
        loop {
            let result = match conn.as_mut() {
                Some(c) => clean(c, &job, expiry).await,
                None => match connect(&client, &url).await {
                    Ok(c) => clean(conn.insert(c), &job, expiry).await,
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(host) => {
                    let scope = if host { "game" } else { "user" };
                    metrics::counter!(m::CLEANUPS, "scope" => scope).increment(1);
                    tracing::debug!(
                        event = "game_cleaned",
                        game = job.game,
                        user = job.user,
                        scope
                    );
                    break;
                }
                Err(e) => {
                    // A broken connection is re-made on the next attempt.
                    conn = None;
                    metrics::counter!(m::CLEANUP_ERRORS).increment(1);
                    tracing::warn!(
                        event = "cleanup_failed",
                        error = %e,
                        attempt,
                        retry_in_ms = backoff.as_millis() as u64,
                        topic = %job.topic,
                        partition = job.partition,
                        offset = job.offset,
                    );
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

/// A readiness probe: PING.
pub async fn ping(settings: &CleanupSettings) -> Result<(), String> {
    let url = service::secret::redact_url(settings.redis_url.expose());
    let client =
        redis::Client::open(settings.redis_url.expose()).map_err(|e| format!("{url}: {e}"))?;
    let mut conn = connect(&client, &url).await.map_err(|e| e.to_string())?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(())
}

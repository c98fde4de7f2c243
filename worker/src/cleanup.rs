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
//! queue that never refuses one; a failed request is retried with exponential backoff (capped at
//! [`MAX_BACKOFF`]) and counted. A request is never dropped: its record's offset stays
//! uncommitted until it is applied ([`crate::frontier`]), and the pipeline pauses fetching while
//! [`QUEUE_CAPACITY`] requests wait, which bounds the queue's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use service::retry::Backoff;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::CleanupSettings;
use crate::frontier::Ownership;
use crate::telemetry;

/// Queued clean-ups at which the pipeline pauses fetching until ¾ of it is left (a game
/// produces 2-3; this is hours of games at the simulator's rate, and ~150 bytes each: ~15 MB).
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

impl CleanupError {
    /// True when Redis refused the script because of the data (`WRONGTYPE`: a key holds another
    /// type than the simulator writes), which no retry fixes. Everything else (connection,
    /// timeouts, `LOADING` after a restart, ACLs, read-only replicas) is retried.
    pub fn rejected(&self) -> bool {
        matches!(self, CleanupError::Script { source, .. } if source.code() == Some("WRONGTYPE"))
    }
}

/// One clean-up request and the record it came from.
#[derive(Debug, Clone)]
pub struct Job {
    /// Topic of the record.
    pub topic: Arc<str>,
    /// Partition of the record.
    pub partition: i32,
    /// The ownership epoch whose commit it holds.
    pub epoch: u64,
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
    tx: mpsc::UnboundedSender<Job>,
    queued: Arc<AtomicUsize>,
}

impl Cleaner {
    /// Queues a clean-up without ever waiting or refusing it (see [`Cleaner::backlog`]).
    pub fn submit(&self, job: Job) {
        // Counted before sending so the task's decrement can never come first.
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(job).is_ok() {
            telemetry::cleanup_queued();
        } else {
            // The task is gone (stopped at shutdown): the record stays uncommitted.
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Clean-ups queued and not finished yet; the pipeline pauses fetching at
    /// [`QUEUE_CAPACITY`] and waits for 0 at shutdown.
    pub fn backlog(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// Starts the clean-up task. It runs until every [`Cleaner`] is dropped and the queue is empty,
/// or until `stop` is cancelled (then what is pending is abandoned: those records were not
/// committed, so the next run queues their clean-ups again). Each applied clean-up releases its
/// hold on the commit ([`Ownership::cleaned`]).
pub fn spawn(
    settings: &CleanupSettings,
    ownership: Arc<Ownership>,
    stop: CancellationToken,
) -> Result<(Cleaner, tokio::task::JoinHandle<()>), redis::RedisError> {
    let client = redis::Client::open(settings.redis_url.expose())?;
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let url = service::secret::redact_url(settings.redis_url.expose());
    let task = Task {
        client,
        url,
        expiry: settings.expiry_secs,
        ownership,
        queued: queued.clone(),
    };
    let handle = tokio::spawn(task.run(rx, stop));
    Ok((Cleaner { tx, queued }, handle))
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

struct Task {
    client: redis::Client,
    url: String,
    expiry: u64,
    ownership: Arc<Ownership>,
    queued: Arc<AtomicUsize>,
}

impl Task {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Job>, stop: CancellationToken) {
        let mut conn: Option<MultiplexedConnection> = None;
        loop {
            let job = tokio::select! {
                _ = stop.cancelled() => return,
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            telemetry::cleanup_dequeued();
            let done = tokio::select! {
                // An attempt in flight (up to the connection timeout) does not delay shutdown.
                _ = stop.cancelled() => false,
                () = self.apply(&mut conn, &job) => true,
            };
            self.queued.fetch_sub(1, Ordering::AcqRel);
            if !done {
                return;
            }
        }
    }

    /// Applies one clean-up, retrying until it succeeds; the caller drops it at shutdown.
    async fn apply(&self, conn: &mut Option<MultiplexedConnection>, job: &Job) {
        let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
        let mut attempt = 1u32;
        loop {
            let result = match conn.as_mut() {
                Some(c) => clean(c, job, self.expiry).await,
                None => match connect(&self.client, &self.url).await {
                    Ok(c) => clean(conn.insert(c), job, self.expiry).await,
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(host) => {
                    let scope = if host { "game" } else { "user" };
                    telemetry::game_cleaned(&job.game, &job.user, scope);
                    // Now the record's offset may be committed.
                    self.ownership
                        .cleaned(&job.topic, job.partition, job.epoch, job.offset);
                    return;
                }
                Err(e) if e.rejected() => {
                    // Bad data (a game key of the wrong type): retrying cannot help, and the
                    // hold would stop this partition's commits for good. Count it and go on
                    // (the line is rate-limited: bad data can reject every record).
                    telemetry::cleanup_rejected(&e, &job.topic, job.partition, job.offset);
                    self.ownership
                        .cleaned(&job.topic, job.partition, job.epoch, job.offset);
                    return;
                }
                Err(e) => {
                    // A broken connection is re-made on the next attempt.
                    *conn = None;
                    let delay = backoff.delay();
                    telemetry::cleanup_failed(
                        &e,
                        attempt,
                        delay,
                        &job.topic,
                        job.partition,
                        job.offset,
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
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

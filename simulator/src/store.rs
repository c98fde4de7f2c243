//! The game state in Redis, with the keys, types and life cycle of spec §3.1.
//!
//! | key | type | written |
//! |---|---|---|
//! | `superheros` | hash | start-up: field id → hero JSON |
//! | `users` | hash | login: `USERnnn-{instance}` → user token |
//! | `games:players:{n}` | list | game creation: `RPUSH` token |
//! | `games:participants` | zset | creation `ZADD 0`, each join `ZINCRBY 1` |
//! | `games:{g}:participants` / `:status` / `:host` | string | creation; status throughout |
//! | `games:{g}` | set | each join: user token |
//! | `games:{g}:superheros` | set | each join: hero id |
//! | `games:{g}:superheros:{u}` | hash | join (`id`, `attack`, `health`); `health` on each hit |
//! | `games:{g}:order` | list | start: sorted tokens; `LREM` on death; `LMOVE LEFT RIGHT` per attack |
//! | `games:{g}:logs` | list | `RPUSH` per `Attack Completed` task |
//!
//! Joining, starting and timing out are Lua scripts, so the original's over-fill and
//! double-order races cannot happen here (a game has exactly the players it was created for).

use redis::RedisError;
use redis::aio::ConnectionManager;

use crate::heroes::HeroTable;

/// `games:{g}:status` values (spec §2.2).
pub mod status {
    /// Created, waiting for players.
    pub const WAITING_LOBBY: &str = "Waiting Lobby";
    /// Lobby full, order being written.
    pub const STARTING: &str = "Starting";
    /// Turns running.
    pub const IN_PROGRESS: &str = "In-Progress";
    /// A player is attacking.
    pub const WAITING_PLAYER: &str = "Waiting Player";
    /// One hero left (or an attack found no enemy).
    pub const COMPLETED: &str = "Completed";
    /// The lobby did not fill in time.
    pub const TIMED_OUT: &str = "Timed Out";
}

/// Errors of the game store, naming the Redis key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed.
    #[error("cannot connect to Redis at {url} (REDIS_URL): {source}")]
    Connect {
        /// The URL with its password redacted.
        url: String,
        /// The client's error.
        #[source]
        source: RedisError,
    },
    /// A command on `key` failed.
    #[error("Redis command on {key} failed: {source}")]
    Command {
        /// The key.
        key: String,
        /// The client's error.
        #[source]
        source: RedisError,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

fn on(key: impl Into<String>) -> impl FnOnce(RedisError) -> StoreError {
    let key = key.into();
    move |source| StoreError::Command { key, source }
}

/// A participant's hero hash `games:{g}:superheros:{u}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GameHero {
    /// Hero id.
    pub id: u16,
    /// Attack stat.
    pub attack: u64,
    /// Current health.
    pub health: u64,
}

/// What the lobby check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lobby {
    /// Not full yet.
    Waiting,
    /// Full: the game started (order written).
    Started,
    /// Another participant timed the lobby out.
    TimedOut,
}

const JOIN: &str = r"
if redis.call('GET', KEYS[2]) ~= 'Waiting Lobby' then return 0 end
local joined = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
local cap = tonumber(redis.call('GET', KEYS[3]) or '0')
if joined >= cap then return 0 end
redis.call('ZINCRBY', KEYS[1], 1, ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return 1
";

const TRY_START: &str = r"
local status = redis.call('GET', KEYS[2])
if status == 'Timed Out' then return 'timed_out' end
if status == 'Waiting Lobby' then
  local joined = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
  local cap = tonumber(redis.call('GET', KEYS[3]) or '0')
  if joined < cap then return 'waiting' end
  redis.call('SET', KEYS[2], 'Starting')
end
if redis.call('LLEN', KEYS[5]) == 0 then
  local members = redis.call('SMEMBERS', KEYS[4])
  table.sort(members)
  redis.call('RPUSH', KEYS[5], unpack(members))
end
return 'started'
";

const TIME_OUT: &str = r"
local status = redis.call('GET', KEYS[1])
if status == 'Waiting Lobby' or status == 'Timed Out' then
  redis.call('SET', KEYS[1], 'Timed Out')
  return 1
end
return 0
";

/// `EVAL script numkeys keys... args...` (Redis caches the compiled script by its hash).
fn eval(script: &str, keys: &[&str], args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys).arg(args);
    cmd
}

/// The game state store (cheap to clone: one multiplexed connection).
#[derive(Clone)]
pub struct GameStore {
    con: ConnectionManager,
}

impl std::fmt::Debug for GameStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GameStore")
    }
}

impl GameStore {
    /// Connects to `url` (a `redis://` URL; it may hold a password, which never reaches an error).
    pub async fn connect(url: &str) -> Result<Self> {
        let redacted = service::secret::redact_url(url);
        let err = |source| StoreError::Connect {
            url: redacted.clone(),
            source,
        };
        let client = redis::Client::open(url).map_err(err)?;
        let con = ConnectionManager::new(client).await.map_err(err)?;
        Ok(GameStore { con })
    }

    /// `PING`, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.con.clone())
            .await
            .map_err(on("PING"))?;
        Ok(())
    }

    /// `HSET superheros id json ...` in one command, so readers never see a half-written table
    /// (the original's `DEL` first would open that window while other instances play).
    pub async fn write_heroes(&self, table: &HeroTable) -> Result<()> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg("superheros");
        for (field, json) in table.redis_fields() {
            cmd.arg(field).arg(json);
        }
        cmd.query_async::<i64>(&mut self.con.clone())
            .await
            .map_err(on("superheros"))?;
        Ok(())
    }

    /// Login: `HSETNX users name token`, then the stored token (an existing user keeps theirs).
    pub async fn login(&self, name: &str, new_token: &str) -> Result<String> {
        let mut con = self.con.clone();
        redis::cmd("HSETNX")
            .arg("users")
            .arg(name)
            .arg(new_token)
            .query_async::<i64>(&mut con)
            .await
            .map_err(on("users"))?;
        redis::cmd("HGET")
            .arg("users")
            .arg(name)
            .query_async(&mut con)
            .await
            .map_err(on("users"))
    }

    /// Tokens among the last `recent` entries of `games:players:{n}` whose status is open.
    ///
    /// The original scans the whole list (it is never cleaned, so joins get slower forever); open
    /// games are always recent ones, so we look at the tail only.
    pub async fn open_games(&self, n: u8, recent: isize) -> Result<Vec<String>> {
        let list = format!("games:players:{n}");
        let mut con = self.con.clone();
        let tokens: Vec<String> = redis::cmd("LRANGE")
            .arg(&list)
            .arg(-recent)
            .arg(-1)
            .query_async(&mut con)
            .await
            .map_err(on(&list))?;
        self.filter_open(tokens).await
    }

    /// The subset of `tokens` whose `games:{g}:status` is one the original treats as open.
    pub async fn filter_open(&self, tokens: Vec<String>) -> Result<Vec<String>> {
        if tokens.is_empty() {
            return Ok(tokens);
        }
        let mut cmd = redis::cmd("MGET");
        for g in &tokens {
            cmd.arg(format!("games:{g}:status"));
        }
        let statuses: Vec<Option<String>> = cmd
            .query_async(&mut self.con.clone())
            .await
            .map_err(on("games:{g}:status"))?;
        Ok(tokens
            .into_iter()
            .zip(statuses)
            // `Initializing` and `Time Out` are in the original's list but never set.
            .filter(|(_, s)| {
                matches!(
                    s.as_deref(),
                    Some("Waiting Lobby" | "Initializing" | "Time Out")
                )
            })
            .map(|(g, _)| g)
            .collect())
    }

    /// Creates game `g` for `n` players hosted by `host` (one transaction).
    pub async fn create_game(&self, g: &str, n: u8, host: &str) -> Result<()> {
        redis::pipe()
            .atomic()
            .cmd("RPUSH")
            .arg(format!("games:players:{n}"))
            .arg(g)
            .ignore()
            .cmd("ZADD")
            .arg("games:participants")
            .arg(0)
            .arg(g)
            .ignore()
            .cmd("SET")
            .arg(format!("games:{g}:participants"))
            .arg(n)
            .ignore()
            .cmd("SET")
            .arg(format!("games:{g}:status"))
            .arg(status::WAITING_LOBBY)
            .ignore()
            .cmd("SET")
            .arg(format!("games:{g}:host"))
            .arg(host)
            .ignore()
            .query_async::<()>(&mut self.con.clone())
            .await
            .map_err(on(format!("games:{g}")))
    }

    /// Deletes every key of game `g` (a deterministic replay reuses its tokens: the earlier
    /// run's keys of that game must not leak into the new one).
    pub async fn reset_game(&self, g: &str) -> Result<()> {
        let members = self.participants(g).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for u in &members {
            pipe.cmd("DEL")
                .arg(format!("games:{g}:superheros:{u}"))
                .ignore();
        }
        for suffix in [
            "",
            ":participants",
            ":status",
            ":host",
            ":order",
            ":logs",
            ":superheros",
        ] {
            pipe.cmd("DEL").arg(format!("games:{g}{suffix}")).ignore();
        }
        for n in [2, 3] {
            pipe.cmd("LREM")
                .arg(format!("games:players:{n}"))
                .arg(0)
                .arg(g)
                .ignore();
        }
        pipe.cmd("ZREM").arg("games:participants").arg(g).ignore();
        pipe.query_async::<()>(&mut self.con.clone())
            .await
            .map_err(on(format!("games:{g}")))
    }

    /// Joins `user` to `g` if it is still waiting and not full (`ZINCRBY` + `SADD`).
    pub async fn join(&self, g: &str, user: &str) -> Result<bool> {
        let (status, size, members) = (
            format!("games:{g}:status"),
            format!("games:{g}:participants"),
            format!("games:{g}"),
        );
        let joined: i64 = eval(
            JOIN,
            &["games:participants", &status, &size, &members],
            &[g, user],
        )
        .query_async(&mut self.con.clone())
        .await
        .map_err(on(format!("games:{g}")))?;
        Ok(joined == 1)
    }

    /// Claims hero `id` in `g` for `user` (`SADD games:{g}:superheros`); on success writes the
    /// hero hash. False when another participant already has that hero.
    pub async fn claim_hero(
        &self,
        g: &str,
        user: &str,
        id: u16,
        heroes: &HeroTable,
    ) -> Result<bool> {
        let set = format!("games:{g}:superheros");
        let mut con = self.con.clone();
        let added: i64 = redis::cmd("SADD")
            .arg(&set)
            .arg(id)
            .query_async(&mut con)
            .await
            .map_err(on(&set))?;
        if added == 0 {
            return Ok(false);
        }
        let p = heroes.get(id).map(|h| h.powerstats);
        let (attack, health) = p.map_or((0, 0), |p| (p.attack, p.health));
        let hash = format!("games:{g}:superheros:{user}");
        redis::cmd("HSET")
            .arg(&hash)
            .arg("id")
            .arg(id)
            .arg("attack")
            .arg(attack)
            .arg("health")
            .arg(health)
            .query_async::<i64>(&mut con)
            .await
            .map_err(on(&hash))?;
        Ok(true)
    }

    /// Lobby check: starts the game when it is full (status `Starting`, order = sorted members).
    pub async fn try_start(&self, g: &str) -> Result<Lobby> {
        let (status, size, members, order) = (
            format!("games:{g}:status"),
            format!("games:{g}:participants"),
            format!("games:{g}"),
            format!("games:{g}:order"),
        );
        let r: String = eval(
            TRY_START,
            &["games:participants", &status, &size, &members, &order],
            &[g],
        )
        .query_async(&mut self.con.clone())
        .await
        .map_err(on(format!("games:{g}:status")))?;
        Ok(match r.as_str() {
            "started" => Lobby::Started,
            "timed_out" => Lobby::TimedOut,
            _ => Lobby::Waiting,
        })
    }

    /// Sets `Timed Out` unless the game already started; true when the lobby is (now) timed out.
    pub async fn time_out(&self, g: &str) -> Result<bool> {
        let key = format!("games:{g}:status");
        let r: i64 = eval(TIME_OUT, &[&key], &[])
            .query_async(&mut self.con.clone())
            .await
            .map_err(on(&key))?;
        Ok(r == 1)
    }

    /// `SMEMBERS games:{g}` (arbitrary order, like the original's `PARTICIPANTS`).
    pub async fn participants(&self, g: &str) -> Result<Vec<String>> {
        let key = format!("games:{g}");
        redis::cmd("SMEMBERS")
            .arg(&key)
            .query_async(&mut self.con.clone())
            .await
            .map_err(on(&key))
    }

    /// `HMGET games:{g}:superheros:{u} id attack health`; `None` when the hash is missing.
    pub async fn hero(&self, g: &str, user: &str) -> Result<Option<GameHero>> {
        let key = format!("games:{g}:superheros:{user}");
        let (id, attack, health): (Option<u16>, Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(&key)
            .arg("id")
            .arg("attack")
            .arg("health")
            .query_async(&mut self.con.clone())
            .await
            .map_err(on(&key))?;
        Ok(id.map(|id| GameHero {
            id,
            attack: attack.unwrap_or(0),
            health: health.unwrap_or(0),
        }))
    }

    /// `GET games:{g}:status`.
    pub async fn status(&self, g: &str) -> Result<Option<String>> {
        let key = format!("games:{g}:status");
        redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.con.clone())
            .await
            .map_err(on(&key))
    }

    /// `SET games:{g}:status value`.
    pub async fn set_status(&self, g: &str, value: &str) -> Result<()> {
        let key = format!("games:{g}:status");
        redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .query_async::<()>(&mut self.con.clone())
            .await
            .map_err(on(&key))
    }

    /// `LINDEX games:{g}:order 0`: whose turn it is.
    pub async fn turn(&self, g: &str) -> Result<Option<String>> {
        let key = format!("games:{g}:order");
        redis::cmd("LINDEX")
            .arg(&key)
            .arg(0)
            .query_async(&mut self.con.clone())
            .await
            .map_err(on(&key))
    }

    /// `HSET games:{g}:superheros:{enemy} health post` (before the attack is logged, like the original).
    pub async fn set_health(&self, g: &str, enemy: &str, post: u64) -> Result<()> {
        let key = format!("games:{g}:superheros:{enemy}");
        redis::cmd("HSET")
            .arg(&key)
            .arg("health")
            .arg(post)
            .query_async::<i64>(&mut self.con.clone())
            .await
            .map_err(on(&key))?;
        Ok(())
    }

    /// After a logged attack: `RPUSH games:{g}:logs task`, `LREM order 1 enemy` when it died, and
    /// `LMOVE order order LEFT RIGHT` to pass the turn.
    pub async fn after_attack(&self, g: &str, enemy: &str, died: bool, task: &str) -> Result<()> {
        let order = format!("games:{g}:order");
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("RPUSH")
            .arg(format!("games:{g}:logs"))
            .arg(task)
            .ignore();
        if died {
            pipe.cmd("LREM").arg(&order).arg(1).arg(enemy).ignore();
        }
        pipe.cmd("LMOVE")
            .arg(&order)
            .arg(&order)
            .arg("LEFT")
            .arg("RIGHT")
            .ignore();
        pipe.query_async::<()>(&mut self.con.clone())
            .await
            .map_err(on(order))
    }

    /// `LLEN games:{g}:logs` (progress, for the stall guard).
    pub async fn logs_len(&self, g: &str) -> Result<u64> {
        let key = format!("games:{g}:logs");
        redis::cmd("LLEN")
            .arg(&key)
            .query_async(&mut self.con.clone())
            .await
            .map_err(on(&key))
    }
}

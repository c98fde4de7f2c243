//! Configuration: the knobs ([`Config`]: flags over environment variables over defaults, each
//! declared once; see `service::config`), validated once into [`Settings`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};
use service::config::ConfigError;
use service::secret::Secret;
use service::telemetry::LogFormat;

use crate::messages::TimestampFormat;

/// Which games a player may join.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JoinScope {
    /// Any open game in Redis, whichever instance created it (the original's behaviour).
    #[default]
    Any,
    /// Only games created by this instance (isolated runs, e.g. tests sharing one Redis).
    Instance,
}

impl std::str::FromStr for JoinScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(JoinScope::Any),
            "instance" => Ok(JoinScope::Instance),
            other => Err(format!("`{other}` is not a join scope (any or instance)")),
        }
    }
}

/// Default of `DEAD_ENEMY_RATIO`; the bench harness's latency load uses it too.
pub const DEFAULT_DEAD_ENEMY_RATIO: f64 = 0.01;

/// Super Hero Combat player simulator: the reference Kafka messages and Redis game state.
///
/// Every flag overrides the environment variable named in brackets (an empty variable counts as
/// unset); unset, the variable falls back to the default.
#[derive(Debug, Parser)]
#[command(name = "simulator", version)]
pub struct Config {
    /// Mode (default: play).
    #[command(subcommand)]
    pub mode: Option<Mode>,
    /// Kafka bootstrap servers, host:port[,host:port]; required.
    #[arg(long, env, global = true)]
    pub kafka_brokers: Option<String>,
    /// Redis URL (a password in it is never logged, and only accepted through the environment).
    #[arg(long, env, global = true, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: Secret,
    /// Concurrent players.
    #[arg(long, env, global = true, default_value_t = 10)]
    pub players: usize,
    /// Games each player plays (timed-out lobbies count).
    #[arg(long, env, global = true, default_value_t = 10)]
    pub client_games: u32,
    /// Server step in seconds (lobby/turn poll; cleaning comes 3 steps after a game).
    #[arg(long, env, global = true, default_value_t = 0.2)]
    pub server_sleep: f64,
    /// Seconds before an unfilled lobby times out.
    #[arg(long, env, global = true, default_value_t = 5.0)]
    pub lobby_timeout: f64,
    /// Game-task TIMESTAMP: micros (%Y-%m-%dT%H:%M:%S.%f), zulu (%Y-%m-%dT%H:%M:%SZ) or mixed.
    #[arg(long, env, global = true, default_value = "micros")]
    pub timestamp_format: TimestampFormat,
    /// Seed of every random decision (u64); unset: random, written to the manifest.
    #[arg(long, env, global = true)]
    pub seed: Option<u64>,
    /// Maximum records per second, 0 = unlimited.
    #[arg(long, env, global = true, default_value_t = 0)]
    pub rate_limit: u64,
    /// Probability (0..1) of a malformed record after each good one, recorded in the manifest.
    #[arg(long, env, global = true, default_value_t = 0.0)]
    pub bad_ratio: f64,
    /// Probability (0..1) that a finished game gets a stale `Attacked Dead Enemy` turn.
    #[arg(long, env, global = true, default_value_t = DEFAULT_DEAD_ENEMY_RATIO)]
    pub dead_enemy_ratio: f64,
    /// Manifest file written on exit.
    #[arg(long, env, global = true, default_value = "simulator-manifest.json")]
    pub manifest_path: PathBuf,
    /// Instance namespace for user names and tokens ([A-Za-z0-9._-], max 64); unset: hostname-pid.
    #[arg(long, env, global = true)]
    pub instance_id: Option<String>,
    /// Serve /metrics, /healthz, /readyz on this address (e.g. 0.0.0.0:9100); unset: off.
    #[arg(long, env, global = true)]
    pub metrics_addr: Option<String>,
    /// Log format: json or text.
    #[arg(long, env, global = true, default_value = "json")]
    pub log_format: LogFormat,
    /// Lobby topic (2 partitions in the reference).
    #[arg(long, env, global = true, default_value = model::TOPIC_LOBBY)]
    pub topic_lobby: String,
    /// Game topic (4 partitions in the reference).
    #[arg(long, env, global = true, default_value = model::TOPIC_GAME)]
    pub topic_game: String,
    /// Start-up topic (1 partition in the reference).
    #[arg(long, env, global = true, default_value = model::TOPIC_CLIENT)]
    pub topic_client: String,
    /// Play games one after another in one task, without sleeps: same seed → same games.
    #[arg(long, env, global = true, default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub deterministic: bool,
    /// Create missing topics with the reference partition counts (lobby 2, game 4, client 1).
    #[arg(long, env, global = true, default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub create_topics: bool,
    /// Which open games players join: any (any instance's, like the original) or instance (own only).
    #[arg(long, env, global = true, default_value = "any")]
    pub join_scope: JoinScope,
    /// Flood mode: records to send, start-up messages included.
    #[arg(long, env, global = true, default_value_t = 100_000)]
    pub messages: u64,
}

/// The modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Mode {
    /// Play games: players log in, join lobbies, attack; Redis state and Kafka logs like the original.
    Play,
    /// Produce a realistic mix of records as fast as the broker takes them (no Redis writes; --messages).
    Flood,
}

/// The validated settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Redis URL.
    pub redis_url: Secret,
    /// Concurrent players (≥ 1).
    pub players: usize,
    /// Games per player.
    pub client_games: u32,
    /// Server step.
    pub server_sleep: Duration,
    /// Lobby timeout (> 0).
    pub lobby_timeout: Duration,
    /// Game-task TIMESTAMP form.
    pub timestamp_format: TimestampFormat,
    /// The seed (drawn at start when not configured).
    pub seed: u64,
    /// Records per second, 0 = unlimited.
    pub rate_limit: u64,
    /// 0..=1.
    pub bad_ratio: f64,
    /// 0..=1.
    pub dead_enemy_ratio: f64,
    /// Manifest file.
    pub manifest_path: PathBuf,
    /// Instance namespace.
    pub instance_id: String,
    /// Ops address.
    pub metrics_addr: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Lobby, game, client topics.
    pub topics: [String; 3],
    /// Sequential reproducible games.
    pub deterministic: bool,
    /// Which games players join.
    pub join_scope: JoinScope,
    /// Flood mode record count.
    pub messages: u64,
    /// Create missing topics at start.
    pub create_topics: bool,
}

impl Settings {
    /// Validated settings from `KEY=VALUE` pairs alone (tests; the binary reads its command line
    /// and environment with `service::config::parse`).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::try_from(service::config::from_vars::<Config, _, _, _>(vars)?)
    }
}

fn ratio(var: &str, r: f64) -> Result<f64, ConfigError> {
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(ConfigError::invalid(
            var,
            format!("{r} is not a probability between 0 and 1"),
        ))
    }
}

fn seconds(var: &str, s: f64, allow_zero: bool) -> Result<Duration, ConfigError> {
    let ok = s.is_finite() && (s > 0.0 || (allow_zero && s == 0.0)) && s <= 86_400.0;
    if ok {
        Ok(Duration::from_secs_f64(s))
    } else {
        let floor = if allow_zero { "0" } else { "more than 0" };
        Err(ConfigError::invalid(
            var,
            format!("{s} is not a number of seconds from {floor} to 86400"),
        ))
    }
}

fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect();
    format!("{host}-{}", std::process::id())
}

impl TryFrom<Config> for Settings {
    type Error = ConfigError;

    fn try_from(c: Config) -> Result<Self, ConfigError> {
        let brokers = c.kafka_brokers.ok_or_else(|| ConfigError::Missing {
            var: "KAFKA_BROKERS".to_owned(),
        })?;
        if brokers.trim().is_empty() {
            return Err(ConfigError::invalid(
                "KAFKA_BROKERS",
                "it is empty; give host:port[,host:port]",
            ));
        }
        if c.players == 0 {
            return Err(ConfigError::invalid(
                "PLAYERS",
                "0 players play no game; use 1 or more",
            ));
        }
        let instance_id = c.instance_id.unwrap_or_else(default_instance_id);
        let valid_id = !instance_id.is_empty()
            && instance_id.len() <= 64
            && instance_id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
        if !valid_id {
            return Err(ConfigError::invalid(
                "INSTANCE_ID",
                format!("`{instance_id}` must be 1-64 characters of A-Z a-z 0-9 . _ -"),
            ));
        }
        let topics = [c.topic_lobby, c.topic_game, c.topic_client];
        for (var, t) in ["TOPIC_LOBBY", "TOPIC_GAME", "TOPIC_CLIENT"]
            .iter()
            .zip(&topics)
        {
            if t.is_empty()
                || t.len() > 249
                || !t
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
            {
                return Err(ConfigError::invalid(
                    var,
                    format!("`{t}` is not a Kafka topic name"),
                ));
            }
        }
        if topics[0] == topics[1] || topics[0] == topics[2] || topics[1] == topics[2] {
            return Err(ConfigError::invalid(
                "TOPIC_LOBBY",
                "TOPIC_LOBBY, TOPIC_GAME and TOPIC_CLIENT must differ",
            ));
        }
        if c.messages == 0 {
            return Err(ConfigError::invalid(
                "MESSAGES",
                "the flood mode needs at least 1 record",
            ));
        }
        Ok(Settings {
            brokers,
            redis_url: c.redis_url,
            players: c.players,
            client_games: c.client_games,
            server_sleep: seconds("SERVER_SLEEP", c.server_sleep, true)?,
            lobby_timeout: seconds("LOBBY_TIMEOUT", c.lobby_timeout, false)?,
            timestamp_format: c.timestamp_format,
            seed: c.seed.unwrap_or_else(rand::random),
            rate_limit: c.rate_limit,
            bad_ratio: ratio("BAD_RATIO", c.bad_ratio)?,
            dead_enemy_ratio: ratio("DEAD_ENEMY_RATIO", c.dead_enemy_ratio)?,
            manifest_path: c.manifest_path,
            instance_id,
            metrics_addr: c
                .metrics_addr
                .map(|a| {
                    a.parse::<SocketAddr>().map_err(|e| {
                        ConfigError::invalid(
                            "METRICS_ADDR",
                            format!("`{a}` is not host:port ({e})"),
                        )
                    })
                })
                .transpose()?,
            log_format: c.log_format,
            topics,
            deterministic: c.deterministic,
            join_scope: c.join_scope,
            messages: c.messages,
            create_topics: c.create_topics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The command line alone (and whatever the test process's environment sets).
    fn args(args: &[&str]) -> Result<Config, ConfigError> {
        let argv = ["simulator", "--kafka-brokers", "b"].iter().chain(args);
        service::config::parse_from::<Config, _, _>(argv)
    }

    #[test]
    fn the_knob_table_in_the_design_is_the_command() {
        let design =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DESIGN.md"))
                .expect("docs/DESIGN.md");
        let problems =
            service::config::knob_table_problems(&design, "Simulator", &Config::command());
        assert!(
            problems.is_empty(),
            "docs/DESIGN.md, simulator knobs:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn help_names_every_variable_in_every_mode() {
        let mut cmd = service::config::command::<Config>();
        let help = cmd.render_long_help().to_string();
        let flood = cmd
            .find_subcommand_mut("flood")
            .expect("flood")
            .render_long_help()
            .to_string();
        for key in service::config::arg_env_keys::<Config>() {
            assert!(help.contains(&format!("[env: {key}]")), "{key}: {help}");
            assert!(flood.contains(&format!("[env: {key}]")), "{key}: {flood}");
        }
        assert!(
            help.contains("[default: 0.2]"),
            "SERVER_SLEEP default: {help}"
        );
    }

    #[test]
    fn flags_set_the_knobs_before_and_after_the_mode() {
        let c = args(&[
            "--players",
            "3",
            "flood",
            "--messages",
            "7",
            "--bad-ratio",
            "0.5",
            "--deterministic",
        ])
        .expect("args");
        assert_eq!(c.mode, Some(Mode::Flood));
        let s = Settings::try_from(c).expect("valid");
        assert_eq!(
            (s.players, s.messages, s.bad_ratio, s.deterministic),
            (3, 7, 0.5, true)
        );
        let s = Settings::try_from(args(&["--deterministic", "false"]).expect("args"));
        assert!(!s.expect("valid").deterministic);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::from_vars(vars(&[
            ("KAFKA_BROKERS", "b"),
            ("SEED", "5"),
            ("INSTANCE_ID", "i"),
        ]))
        .expect("valid");
        assert_eq!(s.redis_url.expose(), "redis://127.0.0.1:6379/0");
        assert_eq!(
            (s.players, s.client_games, s.seed, s.rate_limit),
            (10, 10, 5, 0)
        );
        assert_eq!(
            (s.server_sleep, s.lobby_timeout),
            (Duration::from_millis(200), Duration::from_secs(5))
        );
        assert_eq!(s.timestamp_format, TimestampFormat::Micros);
        assert_eq!((s.bad_ratio, s.dead_enemy_ratio), (0.0, 0.01));
        assert_eq!(s.manifest_path, PathBuf::from("simulator-manifest.json"));
        assert_eq!(
            s.topics,
            ["lib.server.lobby", "lib.server.game", "client.__main__"]
        );
        assert_eq!(
            (s.deterministic, s.join_scope, s.messages),
            (false, JoinScope::Any, 100_000)
        );
        let auto = Settings::from_vars(vars(&[("KAFKA_BROKERS", "b")])).expect("valid");
        assert!(
            auto.instance_id
                .ends_with(&format!("-{}", std::process::id())),
            "{}",
            auto.instance_id
        );
    }

    #[test]
    fn invalid_values_are_named_with_the_variable() {
        let cases = [
            (vec![], "KAFKA_BROKERS is not set"),
            (
                vec![("PLAYERS", "0")],
                "PLAYERS is invalid: 0 players play no game",
            ),
            (vec![("PLAYERS", "many")], "PLAYERS is invalid"),
            (
                vec![("BAD_RATIO", "1.5")],
                "BAD_RATIO is invalid: 1.5 is not a probability between 0 and 1",
            ),
            (
                vec![("DEAD_ENEMY_RATIO", "-0.1")],
                "DEAD_ENEMY_RATIO is invalid",
            ),
            (
                vec![("SERVER_SLEEP", "-1")],
                "SERVER_SLEEP is invalid: -1 is not a number of seconds from 0 to 86400",
            ),
            (
                vec![("LOBBY_TIMEOUT", "0")],
                "LOBBY_TIMEOUT is invalid: 0 is not a number of seconds from more than 0",
            ),
            (
                vec![("TIMESTAMP_FORMAT", "iso")],
                "TIMESTAMP_FORMAT is invalid: `iso` is not a timestamp format",
            ),
            (
                vec![("JOIN_SCOPE", "world")],
                "JOIN_SCOPE is invalid: `world` is not a join scope",
            ),
            (
                vec![("INSTANCE_ID", "a b")],
                "INSTANCE_ID is invalid: `a b` must be 1-64 characters",
            ),
            (
                vec![("TOPIC_GAME", "lib.server.lobby")],
                "TOPIC_LOBBY is invalid: TOPIC_LOBBY, TOPIC_GAME and TOPIC_CLIENT must differ",
            ),
            (
                vec![("TOPIC_CLIENT", "a/b")],
                "TOPIC_CLIENT is invalid: `a/b` is not a Kafka topic name",
            ),
            (vec![("MESSAGES", "0")], "MESSAGES is invalid"),
            (
                vec![("METRICS_ADDR", "nowhere")],
                "METRICS_ADDR is invalid: `nowhere` is not host:port",
            ),
            (
                vec![("LOG_FORMAT", "xml")],
                "LOG_FORMAT is invalid: `xml` is not a log format",
            ),
        ];
        for (extra, expected) in cases {
            let mut v = if expected.starts_with("KAFKA_BROKERS") {
                vec![]
            } else {
                vec![("KAFKA_BROKERS", "b")]
            };
            v.extend(extra);
            let err = Settings::from_vars(vars(&v))
                .expect_err(expected)
                .to_string();
            assert!(
                err.starts_with(expected),
                "{err} does not start with {expected}"
            );
        }
    }

    #[test]
    fn a_password_bearing_redis_url_flag_is_refused_naming_redis_url() {
        for argv in [
            &["--redis-url", "redis://:hunter2@h:6379/0"][..],
            &["flood", "--redis-url", "redis://:hunter2@h:6379/0"],
        ] {
            let err = args(argv).expect_err("refused").to_string();
            assert!(err.starts_with("--redis-url carries a password"), "{err}");
            assert!(
                err.contains("pass the value through the environment as REDIS_URL"),
                "{err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
        let plain = args(&["--redis-url", "redis://h:6379/0"]).expect("no password");
        assert_eq!(plain.redis_url.expose(), "redis://h:6379/0");
    }

    #[test]
    fn redis_password_never_prints() {
        let s = Settings::from_vars(vars(&[
            ("KAFKA_BROKERS", "b"),
            ("REDIS_URL", "redis://:hunter2@h:6379/0"),
        ]))
        .expect("valid");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

//! Configuration: environment variables first, CLI flags as overrides, validated once.
//!
//! [`Config`] is read with `service::config` (field = lower-case variable name). Each CLI flag
//! `--some-knob` overrides the variable `SOME_KNOB`: the flags given on the command line are
//! turned into variables and merged over the environment *before* parsing, so one parser, one
//! set of defaults and one set of error texts (naming the variable) serve both.
//! [`Settings`] is the validated result.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};
use serde::Deserialize;
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

/// Parses an enumerated knob, naming the variable on failure.
fn parse<T: std::str::FromStr<Err = String>>(var: &str, value: &str) -> Result<T, ConfigError> {
    value
        .parse()
        .map_err(|problem: String| ConfigError::invalid(var, problem))
}

/// The simulator's environment (field names are the variable names, lower-case).
#[derive(Debug, Deserialize)]
pub struct Config {
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
    /// Redis URL.
    #[serde(default = "default_redis_url")]
    pub redis_url: Secret,
    /// Concurrent players.
    #[serde(default = "default_players")]
    pub players: usize,
    /// Games each player plays.
    #[serde(default = "default_client_games")]
    pub client_games: u32,
    /// Server step in seconds.
    #[serde(default = "default_server_sleep")]
    pub server_sleep: f64,
    /// Lobby timeout in seconds.
    #[serde(default = "default_lobby_timeout")]
    pub lobby_timeout: f64,
    /// Game-task TIMESTAMP form (`micros`, `zulu`, `mixed`; parsed in validation so errors name it).
    #[serde(default = "default_timestamp_format")]
    pub timestamp_format: String,
    /// Seed of every random decision (random when unset).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Records per second, 0 = unlimited.
    #[serde(default)]
    pub rate_limit: u64,
    /// Probability of a malformed record after each good one.
    #[serde(default)]
    pub bad_ratio: f64,
    /// Probability that a finished game gets a stale `Attacked Dead Enemy` turn.
    #[serde(default = "default_dead_enemy_ratio")]
    pub dead_enemy_ratio: f64,
    /// Where the manifest is written.
    #[serde(default = "default_manifest_path")]
    pub manifest_path: PathBuf,
    /// Namespace of user names and tokens.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Address of /metrics, /healthz, /readyz.
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// Log line format (`json`, `text`).
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// Lobby topic.
    #[serde(default = "default_topic_lobby")]
    pub topic_lobby: String,
    /// Game topic.
    #[serde(default = "default_topic_game")]
    pub topic_game: String,
    /// Start-up topic.
    #[serde(default = "default_topic_client")]
    pub topic_client: String,
    /// Sequential, sleep-free, fully reproducible games.
    #[serde(default)]
    pub deterministic: bool,
    /// Which open games players join (`any`, `instance`).
    #[serde(default = "default_join_scope")]
    pub join_scope: String,
    /// Records the flood mode sends.
    #[serde(default = "default_messages")]
    pub messages: u64,
    /// Create missing topics at start.
    #[serde(default)]
    pub create_topics: bool,
}

fn default_redis_url() -> Secret {
    Secret::new("redis://127.0.0.1:6379/0")
}
fn default_timestamp_format() -> String {
    "micros".to_owned()
}
fn default_log_format() -> String {
    "json".to_owned()
}
fn default_join_scope() -> String {
    "any".to_owned()
}
fn default_players() -> usize {
    10
}
fn default_client_games() -> u32 {
    10
}
fn default_server_sleep() -> f64 {
    0.2
}
fn default_lobby_timeout() -> f64 {
    5.0
}
fn default_dead_enemy_ratio() -> f64 {
    0.01
}
fn default_manifest_path() -> PathBuf {
    PathBuf::from("simulator-manifest.json")
}
fn default_topic_lobby() -> String {
    model::TOPIC_LOBBY.to_owned()
}
fn default_topic_game() -> String {
    model::TOPIC_GAME.to_owned()
}
fn default_topic_client() -> String {
    model::TOPIC_CLIENT.to_owned()
}
fn default_messages() -> u64 {
    100_000
}

/// Super Hero Combat player simulator: the reference Kafka messages and Redis game state.
///
/// Every flag overrides the environment variable named after it; unset flags fall back to the
/// variable, then to the default.
#[derive(Debug, Parser)]
#[command(name = "simulator", version)]
pub struct Cli {
    /// Knobs shared by every mode.
    #[command(flatten)]
    pub knobs: Knobs,
    /// Mode (default: play).
    #[command(subcommand)]
    pub mode: Option<Mode>,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Play games: players log in, join lobbies, attack; Redis state and Kafka logs like the original.
    Play,
    /// Produce a realistic mix of records as fast as the broker takes them (no Redis writes).
    Flood {
        /// Records to send, start-up messages included; default 100000. [env: MESSAGES]
        #[arg(long, value_name = "N")]
        messages: Option<String>,
    },
}

/// The knobs, as CLI overrides of their variables.
#[derive(Debug, Args)]
pub struct Knobs {
    /// Kafka bootstrap servers, host:port[,host:port]; required. [env: KAFKA_BROKERS]
    #[arg(long, global = true, value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,
    /// Redis URL (a password in it is never logged, and only accepted through the environment); default redis://127.0.0.1:6379/0. [env: REDIS_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Concurrent players; default 10. [env: PLAYERS]
    #[arg(long, global = true, value_name = "N")]
    pub players: Option<String>,
    /// Games each player plays (timed-out lobbies count); default 10. [env: CLIENT_GAMES]
    #[arg(long, global = true, value_name = "N")]
    pub client_games: Option<String>,
    /// Server step in seconds (lobby/turn poll; cleaning comes 3 steps after a game); default 0.2. [env: SERVER_SLEEP]
    #[arg(long, global = true, value_name = "SECONDS")]
    pub server_sleep: Option<String>,
    /// Seconds before an unfilled lobby times out; default 5. [env: LOBBY_TIMEOUT]
    #[arg(long, global = true, value_name = "SECONDS")]
    pub lobby_timeout: Option<String>,
    /// Game-task TIMESTAMP: micros (%Y-%m-%dT%H:%M:%S.%f), zulu (%Y-%m-%dT%H:%M:%SZ) or mixed; default micros. [env: TIMESTAMP_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub timestamp_format: Option<String>,
    /// Seed of every random decision (u64); default: random, written to the manifest. [env: SEED]
    #[arg(long, global = true, value_name = "U64")]
    pub seed: Option<String>,
    /// Maximum records per second, 0 = unlimited; default 0. [env: RATE_LIMIT]
    #[arg(long, global = true, value_name = "PER_SECOND")]
    pub rate_limit: Option<String>,
    /// Probability (0..1) of a malformed record after each good one, recorded in the manifest; default 0. [env: BAD_RATIO]
    #[arg(long, global = true, value_name = "R")]
    pub bad_ratio: Option<String>,
    /// Probability (0..1) that a finished game gets a stale `Attacked Dead Enemy` turn; default 0.01. [env: DEAD_ENEMY_RATIO]
    #[arg(long, global = true, value_name = "R")]
    pub dead_enemy_ratio: Option<String>,
    /// Manifest file written on exit; default simulator-manifest.json. [env: MANIFEST_PATH]
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest_path: Option<String>,
    /// Instance namespace for user names and tokens ([A-Za-z0-9._-], max 64); default hostname-pid. [env: INSTANCE_ID]
    #[arg(long, global = true, value_name = "ID")]
    pub instance_id: Option<String>,
    /// Serve /metrics, /healthz, /readyz on this address (e.g. 0.0.0.0:9100); default: off. [env: METRICS_ADDR]
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Log format: json or text; default json. [env: LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Lobby topic (2 partitions in the reference); default lib.server.lobby. [env: TOPIC_LOBBY]
    #[arg(long, global = true, value_name = "TOPIC")]
    pub topic_lobby: Option<String>,
    /// Game topic (4 partitions in the reference); default lib.server.game. [env: TOPIC_GAME]
    #[arg(long, global = true, value_name = "TOPIC")]
    pub topic_game: Option<String>,
    /// Start-up topic (1 partition in the reference); default client.__main__. [env: TOPIC_CLIENT]
    #[arg(long, global = true, value_name = "TOPIC")]
    pub topic_client: Option<String>,
    /// Play games one after another in one task, without sleeps: same seed → same games; default false. [env: DETERMINISTIC]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub deterministic: Option<String>,
    /// Create missing topics with the reference partition counts (lobby 2, game 4, client 1); default false. [env: CREATE_TOPICS]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub create_topics: Option<String>,
    /// Which open games players join: any (any instance's, like the original) or instance (own only); default any. [env: JOIN_SCOPE]
    #[arg(long, global = true, value_name = "SCOPE")]
    pub join_scope: Option<String>,
}

/// The variables the flags given on the command line stand for: `--bad-ratio 0.1` → `BAD_RATIO=0.1`.
pub fn overrides(cmd: &clap::Command, matches: &ArgMatches) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect(cmd, matches, &mut out);
    if let Some((name, sub)) = matches.subcommand()
        && let Some(sub_cmd) = cmd.find_subcommand(name)
    {
        collect(sub_cmd, sub, &mut out);
    }
    out
}

fn collect(cmd: &clap::Command, matches: &ArgMatches, out: &mut Vec<(String, String)>) {
    for arg in cmd.get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        if let Ok(Some(values)) = matches.try_get_raw(id) {
            let value: Vec<String> = values.map(|v| v.to_string_lossy().into_owned()).collect();
            out.push((env_name(long), value.join(",")));
        }
    }
}

/// `--bad-ratio` → `BAD_RATIO`.
pub fn env_name(long_flag: &str) -> String {
    service::config::env_var_of_flag(long_flag)
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
    /// Parses and validates variables (the environment merged with CLI overrides).
    pub fn from_vars<I: IntoIterator<Item = (String, String)>>(
        vars: I,
    ) -> Result<Self, ConfigError> {
        Self::try_from(service::config::from_iter::<Config, _>(vars)?)
    }

    /// The process environment with `overrides` (from [`overrides`]) taking precedence. A
    /// `--redis-url` with a password is refused ([`refuse_secret_flags`]).
    pub fn from_env_and(overrides: Vec<(String, String)>) -> Result<Self, ConfigError> {
        refuse_secret_flags(&overrides)?;
        let mut vars: BTreeMap<String, String> = std::env::vars().collect();
        vars.extend(overrides);
        Self::from_vars(vars)
    }
}

/// Variables whose value may carry a credential: as a flag they are accepted only without one.
pub const SECRET_BEARING: [&str; 1] = ["REDIS_URL"];

/// Refuses command-line overrides (from [`overrides`]) that carry a credential, e.g.
/// `--redis-url redis://:pw@host`: a password on the command line shows in `ps`, so it must
/// come from the environment (`REDIS_URL`).
pub fn refuse_secret_flags(overrides: &[(String, String)]) -> Result<(), ConfigError> {
    overrides
        .iter()
        .filter(|(var, _)| SECRET_BEARING.contains(&var.as_str()))
        .try_for_each(|(var, value)| service::config::refuse_secret_flag(var, value))
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
        if c.kafka_brokers.trim().is_empty() {
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
            brokers: c.kafka_brokers,
            redis_url: c.redis_url,
            players: c.players,
            client_games: c.client_games,
            server_sleep: seconds("SERVER_SLEEP", c.server_sleep, true)?,
            lobby_timeout: seconds("LOBBY_TIMEOUT", c.lobby_timeout, false)?,
            timestamp_format: parse("TIMESTAMP_FORMAT", &c.timestamp_format)?,
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
            log_format: parse("LOG_FORMAT", &c.log_format)?,
            topics,
            deterministic: c.deterministic,
            join_scope: parse("JOIN_SCOPE", &c.join_scope)?,
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

    fn long_flags(cmd: &clap::Command) -> Vec<String> {
        let mut flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(str::to_owned)
            .collect();
        for sub in cmd.get_subcommands() {
            flags.extend(long_flags(sub));
        }
        flags.retain(|f| f != "help" && f != "version");
        flags.sort();
        flags.dedup();
        flags
    }

    #[test]
    fn every_flag_is_a_variable_and_every_variable_has_a_flag() {
        let keys = service::config::env_keys::<Config>();
        let flags = long_flags(&Cli::command());
        for flag in &flags {
            assert!(
                keys.contains(&env_name(flag)),
                "--{flag} has no variable {}",
                env_name(flag)
            );
        }
        let flag_vars: Vec<String> = flags.iter().map(|f| env_name(f)).collect();
        for key in &keys {
            // No exceptions: even REDIS_URL has a flag (refused when it carries a password).
            assert!(flag_vars.contains(key), "{key} has no flag");
        }
    }

    #[test]
    fn help_names_every_variable_and_its_default() {
        let help = Cli::command().render_long_help().to_string();
        let flood = Cli::command()
            .find_subcommand_mut("flood")
            .expect("flood")
            .render_long_help()
            .to_string();
        for key in service::config::env_keys::<Config>() {
            assert!(
                help.contains(&format!("[env: {key}]")) || flood.contains(&format!("[env: {key}]")),
                "{key}"
            );
        }
        assert!(help.contains("default 0.2"), "SERVER_SLEEP default: {help}");
    }

    #[test]
    fn flags_override_variables() {
        let cmd = Cli::command();
        let m = cmd
            .clone()
            .try_get_matches_from([
                "simulator",
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
        let mut o = overrides(&cmd, &m);
        o.sort();
        assert_eq!(
            o,
            vars(&[
                ("BAD_RATIO", "0.5"),
                ("DETERMINISTIC", "true"),
                ("MESSAGES", "7"),
                ("PLAYERS", "3")
            ])
        );
        let mut v: BTreeMap<String, String> = vars(&[("KAFKA_BROKERS", "b"), ("PLAYERS", "9")])
            .into_iter()
            .collect();
        v.extend(o);
        let s = Settings::from_vars(v).expect("valid");
        assert_eq!(
            (s.players, s.messages, s.bad_ratio, s.deterministic),
            (3, 7, 0.5, true)
        );
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
        let cmd = Cli::command();
        let m = cmd
            .clone()
            .try_get_matches_from(["simulator", "--redis-url", "redis://:hunter2@h:6379/0"])
            .expect("args");
        let err = Settings::from_env_and(overrides(&cmd, &m))
            .expect_err("refused")
            .to_string();
        assert!(err.starts_with("--redis-url carries a password"), "{err}");
        assert!(
            err.contains("pass the value through the environment as REDIS_URL"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let plain = cmd
            .clone()
            .try_get_matches_from(["simulator", "--redis-url", "redis://h:6379/0"])
            .expect("args");
        assert_eq!(refuse_secret_flags(&overrides(&cmd, &plain)), Ok(()));
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

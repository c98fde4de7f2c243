//! The simulator's log envelope and task payloads (input contract, see
//! `../shared/reference/simulator-messages.md` §1.2–1.4).
//!
//! Struct fields are declared in the order the Python simulator writes them, so serializing these
//! types with a Python-style formatter reproduces the original bytes.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `log_message` of the lobby's match start (one per participant).
pub const STARTING_MATCH: &str = "Starting Match";
/// `log_message` of a lobby time-out (one per waiting participant).
pub const GAME_TIMED_OUT: &str = "Game Timed Out";
/// `log_message` asking for a game's Redis keys to be cleaned (one per participant).
pub const CLEANING_GAME_RECORDS: &str = "Cleaning Game Records";
/// `log_message` of a completed attack.
pub const ATTACK_COMPLETED: &str = "Attack Completed";
/// `log_message` of an attack without a living enemy (level ERROR).
pub const ATTACKED_DEAD_ENEMY: &str = "Attacked Dead Enemy";
/// First `client.__main__` start-up message.
pub const STARTING_SERVER: &str = "Starting Web Socket Server";

/// The JSON object every published log record carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<'a> {
    /// `INFO` or `ERROR`.
    pub level: std::borrow::Cow<'a, str>,
    /// Naive ISO-8601 time of the server (`%Y-%m-%dT%H:%M:%S[.%f]`), taken as UTC.
    pub timestamp: std::borrow::Cow<'a, str>,
    /// Logger name, e.g. `kafka.lib.server.lobby`.
    pub name: std::borrow::Cow<'a, str>,
    /// The message, e.g. `Starting Match`.
    pub log_message: std::borrow::Cow<'a, str>,
    /// The task: a JSON string holding JSON, a JSON object, or absent.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub task: Option<&'a RawValue>,
}

/// Why a task or timestamp could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The message has no `task` but its kind needs one.
    #[error("`task` is missing")]
    Missing,
    /// `task` (after decoding a JSON string once) does not have the expected shape.
    #[error("`task` does not match the `{kind}` shape: {source}")]
    Shape {
        /// Which message kind was expected.
        kind: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl Envelope<'_> {
    /// Decodes `task` as `T`, accepting both a JSON object and a JSON string holding one.
    pub fn task<T: serde::de::DeserializeOwned>(&self, kind: &'static str) -> Result<T, TaskError> {
        let raw = self.task.ok_or(TaskError::Missing)?;
        let shape = |source| TaskError::Shape { kind, source };
        if raw.get().starts_with('"') {
            let inner: String = serde_json::from_str(raw.get()).map_err(shape)?;
            serde_json::from_str(&inner).map_err(shape)
        } else {
            serde_json::from_str(raw.get()).map_err(shape)
        }
    }
}

/// `PAYLOAD` of a `Starting Match` task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StartingMatchPayload {
    /// The game.
    pub game_token: String,
    /// User tokens from `SMEMBERS games:{g}` (arbitrary order).
    pub participants: Vec<String>,
    /// One entry per participant, keyed by user token, in the same order as `participants`.
    pub participants_heros: indexmap_like::OrderedHeroes,
}

/// A participant's hero as logged in `Starting Match`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeroEntry {
    /// The participant's user token.
    pub token: String,
    /// Hero id 1..=732, `null` when the hero hash was missing.
    pub id: Option<u16>,
    /// Attack stat.
    pub attack: u64,
    /// Health at the time of logging.
    pub health: u64,
}

/// Keeps `PARTICIPANTS_HEROS` in insertion order (Python dicts are ordered).
pub mod indexmap_like {
    use super::HeroEntry;
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// An ordered `user token → hero` map.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct OrderedHeroes(pub Vec<(String, HeroEntry)>);

    impl Serialize for OrderedHeroes {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    impl<'de> Deserialize<'de> for OrderedHeroes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = OrderedHeroes;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object of user token → hero")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some(entry) = m.next_entry::<String, HeroEntry>()? {
                        out.push(entry);
                    }
                    Ok(OrderedHeroes(out))
                }
            }
            d.deserialize_map(V)
        }
    }
}

/// `STATUS` of lobby tasks: `{"GAME": "START"}` or `{"GAME": "TIMED OUT"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct GameStatus {
    /// `START` or `TIMED OUT`.
    pub game: String,
}

/// The decoded `task` of `Starting Match`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StartingMatchTask {
    /// `%Y-%m-%dT%H:%M:%SZ`, UTC.
    pub timestamp: String,
    /// Game and participants.
    pub payload: StartingMatchPayload,
    /// `{"GAME": "START"}`.
    pub status: GameStatus,
}

/// `PAYLOAD` of `Game Timed Out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct GamePayload {
    /// The game.
    pub game_token: String,
}

/// The decoded `task` of `Game Timed Out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct TimedOutTask {
    /// `%Y-%m-%dT%H:%M:%SZ`, UTC.
    pub timestamp: String,
    /// The game.
    pub payload: GamePayload,
    /// `{"GAME": "TIMED OUT"}`.
    pub status: GameStatus,
}

/// The `task` object of `Cleaning Game Records` (lower-case keys, never a string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleaningTask {
    /// The finished game.
    pub game_token: String,
    /// The participant whose records are cleaned.
    pub user_token: String,
}

/// `PAYLOAD` of game tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct AttackPayload {
    /// The game.
    pub game_token: String,
    /// The attacker.
    pub user_token: String,
}

/// `STATUS.DETAILS` of `Attack Completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct AttackDetails {
    /// The defender.
    pub enemy_token: String,
    /// The attacker's full attack stat.
    pub enemy_damage: u64,
    /// Defender health before.
    pub enemy_health_prior: u64,
    /// `max(prior - damage, 0)`.
    pub enemy_health_post: u64,
}

/// `STATUS` of `Attack Completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct AttackStatus {
    /// `ATTACK`.
    pub action: String,
    /// The hit.
    pub details: AttackDetails,
}

/// The decoded `task` of `Attack Completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct AttackTask {
    /// `%Y-%m-%dT%H:%M:%S.%f` (current) or `%Y-%m-%dT%H:%M:%SZ` (older), UTC.
    pub timestamp: String,
    /// Game and attacker.
    pub payload: AttackPayload,
    /// The hit.
    pub status: AttackStatus,
}

/// `STATUS.DETAILS` of `Attacked Dead Enemy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct DeadEnemyDetails {
    /// Always `null`.
    pub enemy_token: Option<String>,
    /// `DEAD`.
    pub enemy_status: String,
}

/// `STATUS` of `Attacked Dead Enemy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct DeadEnemyStatus {
    /// `NA`.
    pub action: String,
    /// No enemy.
    pub details: DeadEnemyDetails,
}

/// The decoded `task` of `Attacked Dead Enemy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct DeadEnemyTask {
    /// `%Y-%m-%dT%H:%M:%S.%f`, UTC.
    pub timestamp: String,
    /// Game and attacker.
    pub payload: AttackPayload,
    /// No enemy.
    pub status: DeadEnemyStatus,
}

/// Why a timestamp could not be read.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not an ISO-8601 timestamp (%Y-%m-%dT%H:%M:%S[.%f][Z])")]
pub struct TimestampError {
    /// The offending text.
    pub value: String,
}

/// Parses every timestamp form the simulator has written, as UTC:
/// `%Y-%m-%dT%H:%M:%S`, with an optional fraction (1–9 digits) and an optional `Z`.
/// The envelope's naive local time is taken as UTC (the server containers run in UTC).
pub fn parse_timestamp(value: &str) -> Result<DateTime<Utc>, TimestampError> {
    let naive = value.strip_suffix('Z').unwrap_or(value);
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| TimestampError {
            value: value.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_simulator_timestamp_form() {
        let micros = |s: &str| parse_timestamp(s).expect(s).timestamp_micros();
        assert_eq!(micros("2024-01-14T18:22:04Z"), 1_705_256_524_000_000);
        assert_eq!(micros("2024-01-14T18:22:04"), 1_705_256_524_000_000);
        assert_eq!(micros("2024-01-14T18:22:04.771092"), 1_705_256_524_771_092);
        assert_eq!(micros("2024-01-14T18:22:04.771092Z"), 1_705_256_524_771_092);
        for bad in [
            "",
            "2024-01-14",
            "2024-01-14 18:22:04",
            "yesterday",
            "2024-13-14T18:22:04",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn task_is_read_from_a_json_string_or_an_object() {
        let s = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.771305", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g\", \"USER_TOKEN\": \"a\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 141120, \"ENEMY_HEALTH_POST\": 14220}}}"}"#;
        let env: Envelope<'_> = serde_json::from_str(s).expect("envelope");
        let task: AttackTask = env.task("Attack Completed").expect("task");
        assert_eq!(task.status.details.enemy_health_post, 14220);

        let c = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:06.640118", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {"game_token": "g", "user_token": "u"}}"#;
        let env: Envelope<'_> = serde_json::from_str(c).expect("envelope");
        let task: CleaningTask = env.task("Cleaning Game Records").expect("task");
        assert_eq!(task.user_token, "u");
    }

    #[test]
    fn participants_heros_keep_their_order() {
        let s = r#"{"TIMESTAMP": "2024-01-14T18:22:04Z", "PAYLOAD": {"GAME_TOKEN": "g", "PARTICIPANTS": ["b", "a"], "PARTICIPANTS_HEROS": {"b": {"token": "b", "id": 191, "attack": 40992, "health": 141120}, "a": {"token": "a", "id": null, "attack": 0, "health": 0}}}, "STATUS": {"GAME": "START"}}"#;
        let t: StartingMatchTask = serde_json::from_str(s).expect("task");
        let keys: Vec<_> = t
            .payload
            .participants_heros
            .0
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(t.payload.participants_heros.0[1].1.id, None);
    }
}

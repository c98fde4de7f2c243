//! Record classification: is a Kafka record GOOD (it fits the data contract) or DEAD?
//!
//! [`classify`] is a pure function of one decoded raw line, so it is easy to fuzz and property
//! test: any bytes as a value yield either a [`Good`] record or a [`Rejection`], never a panic.
//!
//! A record is GOOD when its value is present, at most `max_value_bytes` long, valid UTF-8, a JSON
//! object with string fields `level`, `timestamp`, `name`, `log_message`, its envelope timestamp
//! parses, and — for the kinds that carry a task (`Starting Match`, `Attack Completed`,
//! `Game Timed Out`, `Attacked Dead Enemy`, `Cleaning Game Records`) — the task has the right
//! shape and its `TIMESTAMP` (where it has one) parses. Unknown `log_message`s with a valid
//! envelope are GOOD and only produce a `log_meta` row.

use model::envelope::{
    self, AttackTask, CleaningTask, DeadEnemyTask, Envelope, StartingMatchTask, TaskError,
    TimedOutTask,
};
use model::raw::RawLine;
use serde::de::DeserializeOwned;

use crate::deadletter::{Reason, Rejection};

/// The envelope columns of a GOOD record (`log_meta`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// `INFO` / `ERROR`.
    pub level: String,
    /// Envelope timestamp, µs since the epoch, UTC.
    pub timestamp_us: i64,
    /// Logger name.
    pub name: String,
    /// Message kind.
    pub log_message: String,
}

/// One `lib_server_lobby` row (a participant of a `Starting Match`).
#[derive(Debug, Clone, PartialEq)]
pub struct LobbyRow {
    /// The participant's user token (the `PARTICIPANTS_HEROS` key).
    pub user_token: String,
    /// Hero id, `None` when the simulator logged `null`.
    pub superhero_id: Option<u16>,
    /// Attack stat.
    pub superhero_attack: u64,
    /// Health at logging time.
    pub superhero_health: u64,
}

/// One `lib_server_game` row (an `Attack Completed`).
#[derive(Debug, Clone, PartialEq)]
pub struct GameRow {
    /// Task `TIMESTAMP`, µs since the epoch, UTC.
    pub timestamp_us: i64,
    /// The game.
    pub game_token: String,
    /// The attacker.
    pub user_token: String,
    /// `ATTACK`.
    pub action: String,
    /// The defender.
    pub enemy_token: String,
    /// Damage dealt (the attacker's full attack stat).
    pub enemy_damage: u64,
    /// Defender health before.
    pub enemy_health_prior: u64,
    /// Defender health after.
    pub enemy_health_post: u64,
}

/// What a GOOD record adds beyond `log_meta`.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// Nothing (other kinds, or kinds whose task only needs validating).
    None,
    /// A `Starting Match`: one lobby row per participant.
    Lobby {
        /// Task `TIMESTAMP`, µs, UTC.
        timestamp_us: i64,
        /// The game.
        game_token: String,
        /// Participants in `PARTICIPANTS_HEROS` order.
        rows: Vec<LobbyRow>,
    },
    /// An `Attack Completed`.
    Game(GameRow),
}

/// A record that fits the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Good {
    /// Its `log_meta` row.
    pub log: LogRow,
    /// Its model rows.
    pub detail: Detail,
}

/// Classifies one decoded raw line. `max_value_bytes` bounds the value size.
pub fn classify(line: &RawLine<'_>, max_value_bytes: usize) -> Result<Good, Rejection> {
    let value = line
        .value_bytes()
        .map_err(|e| Rejection::new(Reason::BadRawLine, e.to_string()))?;
    let Some(value) = value else {
        return Err(Rejection::new(
            Reason::NullValue,
            "record has no value (tombstone)",
        ));
    };
    classify_value(&value, max_value_bytes)
}

/// Classifies a record value (the bytes that were in Kafka).
pub fn classify_value(value: &[u8], max_value_bytes: usize) -> Result<Good, Rejection> {
    if value.len() > max_value_bytes {
        return Err(Rejection::new(
            Reason::ValueTooLarge,
            format!(
                "value is {} bytes, more than MAX_VALUE_BYTES={max_value_bytes}",
                value.len()
            ),
        ));
    }
    let text = std::str::from_utf8(value)
        .map_err(|e| Rejection::new(Reason::InvalidUtf8, format!("value is not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Err(Rejection::new(Reason::InvalidJson, "value is empty"));
    }
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| envelope_error(text, &e))?;
    let timestamp_us = micros(&env.timestamp, "envelope timestamp")?;
    let detail = detail(&env)?;
    Ok(Good {
        log: LogRow {
            level: env.level.into_owned(),
            timestamp_us,
            name: env.name.into_owned(),
            log_message: env.log_message.into_owned(),
        },
        detail,
    })
}

/// Explains why the envelope did not deserialize. Only runs on the error path, so the dynamic
/// `serde_json::Value` costs nothing for good records.
fn envelope_error(text: &str, err: &serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    if matches!(
        err.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return Rejection::new(Reason::InvalidJson, format!("value is not JSON: {err}"));
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Rejection::new(Reason::WrongType, "value is JSON but not an object");
    };
    for field in ["level", "timestamp", "name", "log_message"] {
        match map.get(field) {
            None => {
                return Rejection::new(Reason::MissingField, format!("envelope has no `{field}`"));
            }
            Some(serde_json::Value::String(_)) => {}
            Some(other) => {
                return Rejection::new(
                    Reason::WrongType,
                    format!("envelope `{field}` is not a string: {other}"),
                );
            }
        }
    }
    Rejection::new(
        Reason::WrongType,
        format!("envelope does not deserialize: {err}"),
    )
}

fn micros(value: &str, what: &str) -> Result<i64, Rejection> {
    envelope::parse_timestamp(value)
        .map(|t| t.timestamp_micros())
        .map_err(|e| Rejection::new(Reason::BadTimestamp, format!("{what}: {e}")))
}

fn task<T: DeserializeOwned>(env: &Envelope<'_>, kind: &'static str) -> Result<T, Rejection> {
    env.task(kind).map_err(|e| match e {
        TaskError::Missing => {
            Rejection::new(Reason::MissingField, format!("`{kind}` has no `task`"))
        }
        TaskError::Shape { .. } => Rejection::new(Reason::BadTask, e.to_string()),
    })
}

fn detail(env: &Envelope<'_>) -> Result<Detail, Rejection> {
    match env.log_message.as_ref() {
        envelope::STARTING_MATCH => {
            let t: StartingMatchTask = task(env, envelope::STARTING_MATCH)?;
            let timestamp_us = micros(&t.timestamp, "task TIMESTAMP")?;
            let rows = t
                .payload
                .participants_heros
                .0
                .into_iter()
                .map(|(user_token, hero)| LobbyRow {
                    user_token,
                    superhero_id: hero.id,
                    superhero_attack: hero.attack,
                    superhero_health: hero.health,
                })
                .collect();
            Ok(Detail::Lobby {
                timestamp_us,
                game_token: t.payload.game_token,
                rows,
            })
        }
        envelope::ATTACK_COMPLETED => {
            let t: AttackTask = task(env, envelope::ATTACK_COMPLETED)?;
            let d = t.status.details;
            Ok(Detail::Game(GameRow {
                timestamp_us: micros(&t.timestamp, "task TIMESTAMP")?,
                game_token: t.payload.game_token,
                user_token: t.payload.user_token,
                action: t.status.action,
                enemy_token: d.enemy_token,
                enemy_damage: d.enemy_damage,
                enemy_health_prior: d.enemy_health_prior,
                enemy_health_post: d.enemy_health_post,
            }))
        }
        envelope::GAME_TIMED_OUT => {
            let t: TimedOutTask = task(env, envelope::GAME_TIMED_OUT)?;
            micros(&t.timestamp, "task TIMESTAMP")?;
            Ok(Detail::None)
        }
        envelope::ATTACKED_DEAD_ENEMY => {
            let t: DeadEnemyTask = task(env, envelope::ATTACKED_DEAD_ENEMY)?;
            micros(&t.timestamp, "task TIMESTAMP")?;
            Ok(Detail::None)
        }
        envelope::CLEANING_GAME_RECORDS => {
            let _: CleaningTask = task(env, envelope::CLEANING_GAME_RECORDS)?;
            Ok(Detail::None)
        }
        _ => Ok(Detail::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::raw::{RecordPosition, TimestampType, encode_line};
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;

    fn reason(value: &[u8]) -> Reason {
        classify_value(value, MAX).expect_err("dead").reason
    }

    #[test]
    fn reference_attack_is_a_game_row_in_utc_micros() {
        let v = br#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.771305", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g\", \"USER_TOKEN\": \"a\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 141120, \"ENEMY_HEALTH_POST\": 14220}}}"}"#;
        let good = classify_value(v, MAX).expect("good");
        assert_eq!(good.log.timestamp_us, 1_705_256_524_771_305);
        let Detail::Game(g) = good.detail else {
            panic!("game detail")
        };
        assert_eq!(
            (g.timestamp_us, g.enemy_health_post),
            (1_705_256_524_771_092, 14220)
        );
    }

    #[test]
    fn unknown_messages_with_a_valid_envelope_are_good() {
        let v = br#"{"level": "INFO", "timestamp": "2024-01-14T18:20:31.118904", "name": "kafka.client.__main__", "log_message": "Starting Web Socket Server"}"#;
        assert_eq!(classify_value(v, MAX).expect("good").detail, Detail::None);
    }

    #[test]
    fn each_defect_has_its_reason_code() {
        assert_eq!(reason(b"\xff\xfe"), Reason::InvalidUtf8);
        assert_eq!(reason(b"{\"level\": \"INFO\""), Reason::InvalidJson);
        assert_eq!(reason(b""), Reason::InvalidJson);
        assert_eq!(reason(b"[1, 2]"), Reason::WrongType);
        assert_eq!(
            reason(br#"{"level": "INFO", "timestamp": "2024-01-14T18:20:31", "name": "n"}"#),
            Reason::MissingField
        );
        assert_eq!(reason(br#"{"level": 1, "timestamp": "2024-01-14T18:20:31", "name": "n", "log_message": "m"}"#), Reason::WrongType);
        assert_eq!(
            reason(br#"{"level": "I", "timestamp": "yesterday", "name": "n", "log_message": "m"}"#),
            Reason::BadTimestamp
        );
        assert_eq!(reason(br#"{"level": "I", "timestamp": "2024-01-14T18:20:31", "name": "n", "log_message": "Attack Completed", "task": "{}"}"#), Reason::BadTask);
        assert_eq!(reason(br#"{"level": "I", "timestamp": "2024-01-14T18:20:31", "name": "n", "log_message": "Starting Match"}"#), Reason::MissingField);
        assert_eq!(
            classify_value(&[b' '; 11], 10).expect_err("big").reason,
            Reason::ValueTooLarge
        );
    }

    fn line_for(value: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        let pos = RecordPosition {
            topic: "lib.server.game",
            partition: 0,
            offset: 7,
            timestamp: Some(0),
            timestamp_type: TimestampType::CreateTime,
        };
        encode_line(&mut out, pos, None, value, &[]);
        out.pop();
        out
    }

    #[test]
    fn a_tombstone_is_a_null_value() {
        let bytes = line_for(None);
        let line = RawLine::decode(&bytes).expect("decodes");
        assert_eq!(
            classify(&line, MAX).expect_err("dead").reason,
            Reason::NullValue
        );
    }

    proptest! {
        #[test]
        fn any_value_bytes_classify_without_panicking(value in proptest::collection::vec(any::<u8>(), 0..600)) {
            let bytes = line_for(Some(&value));
            let line = RawLine::decode(&bytes).expect("encode_line output decodes");
            let _ = classify(&line, 256);
        }

        #[test]
        fn any_envelope_like_text_classifies(level in ".{0,8}", ts in "[0-9T:.Z-]{0,30}", msg in prop_oneof![Just("Attack Completed".to_owned()), Just("Starting Match".to_owned()), ".{0,12}"], task in ".{0,40}") {
            let v = serde_json::json!({"level": level, "timestamp": ts, "name": "n", "log_message": msg, "task": task});
            let _ = classify_value(v.to_string().as_bytes(), MAX);
        }

        #[test]
        fn any_line_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(line) = RawLine::decode(&bytes) {
                let _ = classify(&line, MAX);
            }
        }
    }
}

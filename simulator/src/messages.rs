//! The published log records, byte for byte (spec §1.2–1.5).
//!
//! Every record is an [`Envelope`] serialized with [`crate::pyjson`]. The `task` of
//! `Starting Match`, `Game Timed Out`, `Attack Completed` and `Attacked Dead Enemy` is a JSON
//! *string* holding the `json.dumps` of the task (encoded twice, like the original's
//! `extra={'task': json.dumps(task)}`); the `task` of `Cleaning Game Records` is a JSON *object*.

use chrono::{NaiveDateTime, Timelike};
use model::envelope::{
    ATTACK_COMPLETED, ATTACKED_DEAD_ENEMY, AttackDetails, AttackPayload, AttackStatus, AttackTask,
    CLEANING_GAME_RECORDS, CleaningTask, DeadEnemyDetails, DeadEnemyStatus, DeadEnemyTask,
    Envelope, GAME_TIMED_OUT, GamePayload, GameStatus, HeroEntry, STARTING_MATCH, STARTING_SERVER,
    StartingMatchPayload, StartingMatchTask, TimedOutTask, indexmap_like::OrderedHeroes,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::pyjson;

/// Second `client.__main__` start-up message (`'Listening on %s:%d'` with the server's bind address).
pub const LISTENING: &str = "Listening on 0.0.0.0:5678";

/// Which form the `TIMESTAMP` of game tasks (`Attack Completed`, `Attacked Dead Enemy`) takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampFormat {
    /// `%Y-%m-%dT%H:%M:%S.%f`, no `Z` (the simulator since 2024-01-13).
    #[default]
    Micros,
    /// `%Y-%m-%dT%H:%M:%SZ` (older simulators).
    Zulu,
    /// Either form, chosen at random per message (a topic holding both generations).
    Mixed,
}

impl std::str::FromStr for TimestampFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "micros" => Ok(Self::Micros),
            "zulu" => Ok(Self::Zulu),
            "mixed" => Ok(Self::Mixed),
            other => Err(format!(
                "`{other}` is not a timestamp format (micros, zulu or mixed)"
            )),
        }
    }
}

/// Python `datetime.isoformat()` of a naive time: the fraction is left out when it is zero.
pub fn isoformat(t: NaiveDateTime) -> String {
    let micros = micros_of(t);
    if micros == 0 {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// `strftime('%Y-%m-%dT%H:%M:%SZ')`: whole seconds and a literal `Z` (lobby tasks).
pub fn zulu(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `strftime('%Y-%m-%dT%H:%M:%S.%f')`: always six fraction digits, no `Z` (current game tasks).
pub fn micros(t: NaiveDateTime) -> String {
    format!("{}.{:06}", t.format("%Y-%m-%dT%H:%M:%S"), micros_of(t))
}

fn micros_of(t: NaiveDateTime) -> u32 {
    // A leap second shows as nanosecond >= 1e9; Python has no leap seconds, so clamp.
    (t.nanosecond() / 1000).min(999_999)
}

/// The game-task `TIMESTAMP` in the chosen form; `pick_zulu` decides for [`TimestampFormat::Mixed`].
pub fn game_timestamp(format: TimestampFormat, t: NaiveDateTime, pick_zulu: bool) -> String {
    match format {
        TimestampFormat::Micros => micros(t),
        TimestampFormat::Zulu => zulu(t),
        TimestampFormat::Mixed if pick_zulu => zulu(t),
        TimestampFormat::Mixed => micros(t),
    }
}

/// Builds the records of one logger (`name` = `kafka.{topic}`).
#[derive(Debug, Clone)]
pub struct Logger {
    name: String,
}

impl Logger {
    /// The logger publishing to `topic`.
    pub fn new(topic: &str) -> Self {
        Logger {
            name: format!("kafka.{topic}"),
        }
    }

    /// The logger name written in `name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn record(
        &self,
        level: &str,
        at: NaiveDateTime,
        log_message: &str,
        task: Option<&RawValue>,
    ) -> Vec<u8> {
        let env = Envelope {
            level: level.into(),
            timestamp: isoformat(at).into(),
            name: self.name.as_str().into(),
            log_message: log_message.into(),
            task,
        };
        pyjson::to_vec(&env).expect("an envelope of strings always serializes")
    }

    /// `Starting Web Socket Server` (no task).
    pub fn starting_server(&self, at: NaiveDateTime) -> Vec<u8> {
        self.record("INFO", at, STARTING_SERVER, None)
    }

    /// `Listening on 0.0.0.0:5678` (no task).
    pub fn listening(&self, at: NaiveDateTime) -> Vec<u8> {
        self.record("INFO", at, LISTENING, None)
    }

    /// `Starting Match`; `heroes` in `participants` order; `task_at` is whole-second UTC.
    pub fn starting_match(
        &self,
        at: NaiveDateTime,
        task_at: NaiveDateTime,
        game_token: &str,
        participants: &[String],
        heroes: &[HeroEntry],
    ) -> Vec<u8> {
        let task = StartingMatchTask {
            timestamp: zulu(task_at),
            payload: StartingMatchPayload {
                game_token: game_token.to_owned(),
                participants: participants.to_vec(),
                participants_heros: OrderedHeroes(
                    heroes
                        .iter()
                        .map(|h| (h.token.clone(), h.clone()))
                        .collect(),
                ),
            },
            status: GameStatus {
                game: "START".into(),
            },
        };
        self.record("INFO", at, STARTING_MATCH, Some(&string_task(&task)))
    }

    /// `Game Timed Out`.
    pub fn timed_out(
        &self,
        at: NaiveDateTime,
        task_at: NaiveDateTime,
        game_token: &str,
    ) -> Vec<u8> {
        let task = TimedOutTask {
            timestamp: zulu(task_at),
            payload: GamePayload {
                game_token: game_token.to_owned(),
            },
            status: GameStatus {
                game: "TIMED OUT".into(),
            },
        };
        self.record("INFO", at, GAME_TIMED_OUT, Some(&string_task(&task)))
    }

    /// `Cleaning Game Records` (task is an object with lower-case keys).
    pub fn cleaning(&self, at: NaiveDateTime, game_token: &str, user_token: &str) -> Vec<u8> {
        let task = CleaningTask {
            game_token: game_token.to_owned(),
            user_token: user_token.to_owned(),
        };
        let raw = pyjson::to_string(&task).expect("strings serialize");
        let raw = RawValue::from_string(raw).expect("pyjson writes valid JSON");
        self.record("INFO", at, CLEANING_GAME_RECORDS, Some(&raw))
    }

    /// `Attack Completed`; also returns the task JSON string that goes to `games:{g}:logs`.
    pub fn attack(
        &self,
        at: NaiveDateTime,
        task_timestamp: String,
        hit: &Hit<'_>,
    ) -> (Vec<u8>, String) {
        let task = AttackTask {
            timestamp: task_timestamp,
            payload: AttackPayload {
                game_token: hit.game_token.to_owned(),
                user_token: hit.attacker.to_owned(),
            },
            status: AttackStatus {
                action: "ATTACK".into(),
                details: AttackDetails {
                    enemy_token: hit.enemy.to_owned(),
                    enemy_damage: hit.damage,
                    enemy_health_prior: hit.prior,
                    enemy_health_post: hit.post(),
                },
            },
        };
        let inner = pyjson::to_string(&task).expect("plain task serializes");
        let raw = string_raw(&inner);
        (self.record("INFO", at, ATTACK_COMPLETED, Some(&raw)), inner)
    }

    /// `Attacked Dead Enemy` (level ERROR): an attack request that named no living enemy.
    pub fn dead_enemy(
        &self,
        at: NaiveDateTime,
        task_timestamp: String,
        game_token: &str,
        attacker: &str,
    ) -> Vec<u8> {
        let task = DeadEnemyTask {
            timestamp: task_timestamp,
            payload: AttackPayload {
                game_token: game_token.to_owned(),
                user_token: attacker.to_owned(),
            },
            status: DeadEnemyStatus {
                action: "NA".into(),
                details: DeadEnemyDetails {
                    enemy_token: None,
                    enemy_status: "DEAD".into(),
                },
            },
        };
        self.record("ERROR", at, ATTACKED_DEAD_ENEMY, Some(&string_task(&task)))
    }
}

/// One attack: the attacker's full `attack` stat hits the enemy's current health.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    /// The game.
    pub game_token: &'a str,
    /// Attacker's user token.
    pub attacker: &'a str,
    /// Defender's user token.
    pub enemy: &'a str,
    /// The attacker's attack stat (not capped at the remaining health).
    pub damage: u64,
    /// Defender health before the hit.
    pub prior: u64,
}

impl Hit<'_> {
    /// `max(prior - damage, 0)`.
    pub fn post(&self) -> u64 {
        self.prior.saturating_sub(self.damage)
    }
}

/// `json.dumps(task)` embedded as a JSON string.
fn string_task<T: Serialize>(task: &T) -> Box<RawValue> {
    string_raw(&pyjson::to_string(task).expect("plain task serializes"))
}

fn string_raw(inner: &str) -> Box<RawValue> {
    let quoted = pyjson::to_string(inner).expect("a string serializes");
    RawValue::from_string(quoted).expect("pyjson writes valid JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").expect(s)
    }

    #[test]
    fn timestamps_follow_python_formatting() {
        assert_eq!(
            isoformat(t("2024-01-14T18:22:04.518263")),
            "2024-01-14T18:22:04.518263"
        );
        assert_eq!(
            isoformat(t("2024-01-14T18:22:04.000001")),
            "2024-01-14T18:22:04.000001"
        );
        assert_eq!(
            isoformat(t("2024-01-14T18:22:04")),
            "2024-01-14T18:22:04",
            "fraction dropped at 0"
        );
        assert_eq!(
            micros(t("2024-01-14T18:22:04")),
            "2024-01-14T18:22:04.000000",
            "%f always prints"
        );
        assert_eq!(zulu(t("2024-01-14T18:22:04.9")), "2024-01-14T18:22:04Z");
        let at = t("2024-01-14T18:22:04.771092");
        assert_eq!(
            game_timestamp(TimestampFormat::Mixed, at, true),
            "2024-01-14T18:22:04Z"
        );
        assert_eq!(
            game_timestamp(TimestampFormat::Mixed, at, false),
            "2024-01-14T18:22:04.771092"
        );
    }

    #[test]
    fn timestamp_format_names_are_the_env_values() {
        for (s, f) in [
            ("micros", TimestampFormat::Micros),
            ("zulu", TimestampFormat::Zulu),
            ("mixed", TimestampFormat::Mixed),
        ] {
            assert_eq!(s.parse::<TimestampFormat>(), Ok(f));
        }
        assert!("iso".parse::<TimestampFormat>().is_err());
    }
}

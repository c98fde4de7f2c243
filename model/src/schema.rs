//! Arrow schemas of the five log models written to `standard` (output contract).
//!
//! Types follow the original's tables with documented fixes (see `docs/DESIGN.md`, "Data
//! contract"): ids are deterministic strings (`msg_id` = `topic+partition+offset`, `etl_id` = the
//! raw blob's base name); every timestamp is `Timestamp(Microsecond, "UTC")`; serialized sizes are
//! `Int32` (the original's `int16` overflows on large values); hero id `UInt16`; attack, health and
//! damage `UInt64`.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The five log models, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogModel {
    /// One row per raw blob.
    EtlMeta,
    /// One row per Kafka record.
    BufferMeta,
    /// One row per record with a valid envelope.
    LogMeta,
    /// One row per participant of each `Starting Match`.
    LibServerLobby,
    /// One row per `Attack Completed`.
    LibServerGame,
}

impl LogModel {
    /// Every model.
    pub const ALL: [LogModel; 5] = [
        LogModel::EtlMeta,
        LogModel::BufferMeta,
        LogModel::LogMeta,
        LogModel::LibServerLobby,
        LogModel::LibServerGame,
    ];

    /// Folder name in `standard`.
    pub fn name(self) -> &'static str {
        match self {
            LogModel::EtlMeta => "etl_meta",
            LogModel::BufferMeta => "buffer_meta",
            LogModel::LogMeta => "log_meta",
            LogModel::LibServerLobby => "lib_server_lobby",
            LogModel::LibServerGame => "lib_server_game",
        }
    }

    /// The models a raw blob of `topic` produces (each written even when empty).
    pub fn for_topic(topic: &str) -> &'static [LogModel] {
        const META: [LogModel; 3] = [LogModel::EtlMeta, LogModel::BufferMeta, LogModel::LogMeta];
        const LOBBY: [LogModel; 4] = [
            LogModel::EtlMeta,
            LogModel::BufferMeta,
            LogModel::LogMeta,
            LogModel::LibServerLobby,
        ];
        const GAME: [LogModel; 4] = [
            LogModel::EtlMeta,
            LogModel::BufferMeta,
            LogModel::LogMeta,
            LogModel::LibServerGame,
        ];
        match topic {
            crate::TOPIC_LOBBY => &LOBBY,
            crate::TOPIC_GAME => &GAME,
            _ => &META,
        }
    }

    /// The model's Arrow schema.
    pub fn schema(self) -> SchemaRef {
        match self {
            LogModel::EtlMeta => ETL_META.clone(),
            LogModel::BufferMeta => BUFFER_META.clone(),
            LogModel::LogMeta => LOG_META.clone(),
            LogModel::LibServerLobby => LIB_SERVER_LOBBY.clone(),
            LogModel::LibServerGame => LIB_SERVER_GAME.clone(),
        }
    }
}

/// `Timestamp(Microsecond, "UTC")`.
pub fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn ids() -> [Field; 2] {
    [
        Field::new("etl_id", DataType::Utf8, false),
        Field::new("msg_id", DataType::Utf8, false),
    ]
}

static ETL_META: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("etl_id", DataType::Utf8, false),
        Field::new("service", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("timestamp_start", utc_micros(), true),
        Field::new("timestamp_end", utc_micros(), true),
    ]))
});

static BUFFER_META: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = ids().to_vec();
    f.extend([
        Field::new("key", DataType::Utf8, true),
        Field::new("headers", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("timestamp", utc_micros(), true),
        Field::new("timestamp_type", DataType::Utf8, false),
        Field::new("serialized_key_size", DataType::Int32, false),
        Field::new("serialized_value_size", DataType::Int32, false),
    ]);
    Arc::new(Schema::new(f))
});

static LOG_META: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = ids().to_vec();
    f.extend([
        Field::new("level", DataType::Utf8, false),
        Field::new("timestamp", utc_micros(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("log_message", DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(f))
});

static LIB_SERVER_LOBBY: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = ids().to_vec();
    f.extend([
        Field::new("timestamp", utc_micros(), false),
        Field::new("game_token", DataType::Utf8, false),
        Field::new("user_token", DataType::Utf8, false),
        Field::new("superhero_id", DataType::UInt16, true),
        Field::new("superhero_attack", DataType::UInt64, false),
        Field::new("superhero_health", DataType::UInt64, false),
    ]);
    Arc::new(Schema::new(f))
});

static LIB_SERVER_GAME: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = ids().to_vec();
    f.extend([
        Field::new("timestamp", utc_micros(), false),
        Field::new("game_token", DataType::Utf8, false),
        Field::new("user_token", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("enemy_token", DataType::Utf8, false),
        Field::new("enemy_damage", DataType::UInt64, false),
        Field::new("enemy_health_prior", DataType::UInt64, false),
        Field::new("enemy_health_post", DataType::UInt64, false),
    ]);
    Arc::new(Schema::new(f))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_model_starts_with_the_ids() {
        for m in LogModel::ALL.into_iter().skip(1) {
            let s = m.schema();
            assert_eq!(s.field(0).name(), "etl_id", "{}", m.name());
            assert_eq!(s.field(1).name(), "msg_id", "{}", m.name());
        }
    }

    #[test]
    fn topics_imply_their_models() {
        assert!(LogModel::for_topic(crate::TOPIC_LOBBY).contains(&LogModel::LibServerLobby));
        assert!(LogModel::for_topic(crate::TOPIC_GAME).contains(&LogModel::LibServerGame));
        assert_eq!(LogModel::for_topic("client.__main__").len(), 3);
    }
}

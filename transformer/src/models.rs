//! Arrow record batches of the five log models, built row by row with typed builders.
//!
//! Column order and types come from [`model::schema::LogModel::schema`]; the builders here must
//! match it column for column (`RecordBatch::try_new` checks, and a unit test covers every model).
//!
//! The builders hold one batch of rows per model at a time: [`ModelBuilders::take`] hands a
//! model's rows over (to its Parquet writer) and starts it again, while the per-blob totals (row
//! counts, timestamp range) go on.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    UInt16Builder, UInt64Builder,
};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use model::raw::{Encoding, RawLine};
use model::schema::LogModel;
use serde::Serialize;

use crate::classify::{Detail, Good};

fn ts_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(schema, columns)
}

#[derive(Debug, Default)]
struct BufferMeta {
    etl_id: StringBuilder,
    msg_id: StringBuilder,
    key: StringBuilder,
    headers: StringBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: Option<TimestampMicrosecondBuilder>,
    timestamp_type: StringBuilder,
    key_size: Int32Builder,
    value_size: Int32Builder,
}

#[derive(Debug, Default)]
struct LogMeta {
    etl_id: StringBuilder,
    msg_id: StringBuilder,
    level: StringBuilder,
    timestamp: Option<TimestampMicrosecondBuilder>,
    name: StringBuilder,
    log_message: StringBuilder,
}

#[derive(Debug, Default)]
struct Lobby {
    etl_id: StringBuilder,
    msg_id: StringBuilder,
    timestamp: Option<TimestampMicrosecondBuilder>,
    game_token: StringBuilder,
    user_token: StringBuilder,
    superhero_id: UInt16Builder,
    superhero_attack: UInt64Builder,
    superhero_health: UInt64Builder,
}

#[derive(Debug, Default)]
struct Game {
    etl_id: StringBuilder,
    msg_id: StringBuilder,
    timestamp: Option<TimestampMicrosecondBuilder>,
    game_token: StringBuilder,
    user_token: StringBuilder,
    action: StringBuilder,
    enemy_token: StringBuilder,
    enemy_damage: UInt64Builder,
    enemy_health_prior: UInt64Builder,
    enemy_health_post: UInt64Builder,
}

/// `Option<Builder>` with a UTC builder made on first use (`Default` cannot set the zone).
fn ts(b: &mut Option<TimestampMicrosecondBuilder>) -> &mut TimestampMicrosecondBuilder {
    b.get_or_insert_with(ts_builder)
}

fn ts_finish(b: &mut Option<TimestampMicrosecondBuilder>) -> ArrayRef {
    Arc::new(ts(b).finish())
}

#[derive(Serialize)]
struct HeaderJson<'a> {
    key: &'a str,
    /// Only for a name that is not UTF-8 (then `base64`): the usual header keeps the shape
    /// `{key, encoding, value}` it always had.
    #[serde(skip_serializing_if = "is_utf8")]
    key_encoding: Encoding,
    encoding: Encoding,
    value: Option<&'a str>,
}

fn is_utf8(e: &Encoding) -> bool {
    *e == Encoding::Utf8
}

/// Row counts per model, in [`LogModel::ALL`] order.
pub type RowCounts = [(LogModel, u64); 5];

/// The rows of one raw blob, for every model.
#[derive(Debug)]
pub struct ModelBuilders {
    etl_id: String,
    ts_min: Option<i64>,
    ts_max: Option<i64>,
    buffer: BufferMeta,
    log: LogMeta,
    lobby: Lobby,
    game: Game,
    rows: [u64; 5],
    /// Rows already handed over by [`ModelBuilders::take`], per model.
    taken: [u64; 5],
    headers_buf: Vec<u8>,
}

impl ModelBuilders {
    /// Empty builders for the blob with this etl id.
    pub fn new(etl_id: &str) -> Self {
        ModelBuilders {
            etl_id: etl_id.to_owned(),
            ts_min: None,
            ts_max: None,
            buffer: BufferMeta::default(),
            log: LogMeta::default(),
            lobby: Lobby::default(),
            game: Game::default(),
            rows: [0; 5],
            taken: [0; 5],
            headers_buf: Vec::new(),
        }
    }

    /// Adds the `buffer_meta` row of a decoded record (every decodable record has one).
    pub fn push_buffer(&mut self, line: &RawLine<'_>, msg_id: &str) {
        let b = &mut self.buffer;
        b.etl_id.append_value(&self.etl_id);
        b.msg_id.append_value(msg_id);
        b.key.append_option(line.key.as_deref());
        self.headers_buf.clear();
        let headers: Vec<HeaderJson<'_>> = line
            .headers
            .iter()
            .map(|h| HeaderJson {
                key: &h.key,
                key_encoding: h.key_encoding,
                encoding: h.encoding,
                value: h.value.as_deref(),
            })
            .collect();
        serde_json::to_writer(&mut self.headers_buf, &headers).expect("JSON to a Vec cannot fail");
        b.headers
            .append_value(std::str::from_utf8(&self.headers_buf).expect("serde_json writes UTF-8"));
        b.topic.append_value(&line.topic);
        b.partition.append_value(line.partition);
        b.offset.append_value(line.offset);
        let micros = line.timestamp.map(|ms| ms.saturating_mul(1000));
        ts(&mut b.timestamp).append_option(micros);
        b.timestamp_type.append_value(line.timestamp_type.as_str());
        b.key_size.append_value(line.key_size);
        b.value_size.append_value(line.value_size);
        if let Some(t) = micros {
            self.ts_min = Some(self.ts_min.map_or(t, |m| m.min(t)));
            self.ts_max = Some(self.ts_max.map_or(t, |m| m.max(t)));
        }
        self.rows[1] += 1;
    }

    /// Adds the `log_meta` row and the model rows of a GOOD record.
    pub fn push_good(&mut self, msg_id: &str, good: &Good) {
        let l = &mut self.log;
        l.etl_id.append_value(&self.etl_id);
        l.msg_id.append_value(msg_id);
        l.level.append_value(&good.log.level);
        ts(&mut l.timestamp).append_value(good.log.timestamp_us);
        l.name.append_value(&good.log.name);
        l.log_message.append_value(&good.log.log_message);
        self.rows[2] += 1;
        match &good.detail {
            Detail::None => {}
            Detail::Lobby {
                timestamp_us,
                game_token,
                rows,
            } => {
                let b = &mut self.lobby;
                for r in rows {
                    b.etl_id.append_value(&self.etl_id);
                    b.msg_id.append_value(msg_id);
                    ts(&mut b.timestamp).append_value(*timestamp_us);
                    b.game_token.append_value(game_token);
                    b.user_token.append_value(&r.user_token);
                    b.superhero_id.append_option(r.superhero_id);
                    b.superhero_attack.append_value(r.superhero_attack);
                    b.superhero_health.append_value(r.superhero_health);
                }
                self.rows[3] += rows.len() as u64;
            }
            Detail::Game(r) => {
                let b = &mut self.game;
                b.etl_id.append_value(&self.etl_id);
                b.msg_id.append_value(msg_id);
                ts(&mut b.timestamp).append_value(r.timestamp_us);
                b.game_token.append_value(&r.game_token);
                b.user_token.append_value(&r.user_token);
                b.action.append_value(&r.action);
                b.enemy_token.append_value(&r.enemy_token);
                b.enemy_damage.append_value(r.enemy_damage);
                b.enemy_health_prior.append_value(r.enemy_health_prior);
                b.enemy_health_post.append_value(r.enemy_health_post);
                self.rows[4] += 1;
            }
        }
    }

    /// Rows so far per model (`etl_meta` counts its single row).
    pub fn row_counts(&self) -> RowCounts {
        let mut out = [(LogModel::EtlMeta, 0); 5];
        for (i, m) in LogModel::ALL.into_iter().enumerate() {
            out[i] = (m, if i == 0 { 1 } else { self.rows[i] });
        }
        out
    }

    /// Rows of `m` held here, not yet handed over by [`ModelBuilders::take`] (`etl_meta`'s
    /// single row is built only when taken, at the end of the blob).
    pub fn pending_rows(&self, m: LogModel) -> u64 {
        match model_index(m) {
            0 => 0,
            i => self.rows[i] - self.taken[i],
        }
    }

    /// Bytes of column data of `m` held here: string bytes and offsets plus fixed-width values
    /// (validity bitmaps left out). Cheap: a few lengths per model.
    pub fn pending_bytes(&self, m: LogModel) -> usize {
        let rows = usize::try_from(self.pending_rows(m)).unwrap_or(usize::MAX);
        match m {
            LogModel::EtlMeta => 0,
            LogModel::BufferMeta => {
                let b = &self.buffer;
                let strings = [
                    &b.etl_id,
                    &b.msg_id,
                    &b.key,
                    &b.headers,
                    &b.topic,
                    &b.timestamp_type,
                ];
                // partition, key_size, value_size: 4 bytes; offset, timestamp: 8.
                string_bytes(&strings) + rows * (3 * 4 + 2 * 8)
            }
            LogModel::LogMeta => {
                let b = &self.log;
                let strings = [&b.etl_id, &b.msg_id, &b.level, &b.name, &b.log_message];
                string_bytes(&strings) + rows * 8
            }
            LogModel::LibServerLobby => {
                let b = &self.lobby;
                let strings = [&b.etl_id, &b.msg_id, &b.game_token, &b.user_token];
                // timestamp, attack, health: 8 bytes; superhero_id: 2.
                string_bytes(&strings) + rows * (3 * 8 + 2)
            }
            LogModel::LibServerGame => {
                let b = &self.game;
                let strings = [
                    &b.etl_id,
                    &b.msg_id,
                    &b.game_token,
                    &b.user_token,
                    &b.action,
                    &b.enemy_token,
                ];
                string_bytes(&strings) + rows * (4 * 8)
            }
        }
    }

    /// Hands over the pending rows of `m` as one batch and starts the model again. Taking
    /// `etl_meta` builds its single row from the timestamps seen so far, so it is taken last.
    pub fn take(&mut self, m: LogModel) -> Result<RecordBatch, ArrowError> {
        let i = model_index(m);
        self.taken[i] = self.rows[i];
        self.finish_model(m)
    }

    /// Finishes one batch per model, in [`LogModel::ALL`] order.
    pub fn finish(mut self) -> Result<Vec<(LogModel, RecordBatch)>, ArrowError> {
        let mut out = Vec::with_capacity(5);
        for m in LogModel::ALL {
            let b = self.take(m)?;
            out.push((m, b));
        }
        Ok(out)
    }

    fn finish_model(&mut self, m: LogModel) -> Result<RecordBatch, ArrowError> {
        let schema = m.schema();
        match m {
            LogModel::EtlMeta => {
                let mut id = StringBuilder::new();
                id.append_value(&self.etl_id);
                let mut service = StringBuilder::new();
                service.append_value("Kafka");
                let mut mode = StringBuilder::new();
                mode.append_value("Batch");
                let mut start = ts_builder();
                start.append_option(self.ts_min);
                let mut end = ts_builder();
                end.append_option(self.ts_max);
                batch(
                    schema,
                    vec![
                        Arc::new(id.finish()),
                        Arc::new(service.finish()),
                        Arc::new(mode.finish()),
                        Arc::new(start.finish()),
                        Arc::new(end.finish()),
                    ],
                )
            }
            LogModel::BufferMeta => {
                let b = &mut self.buffer;
                batch(
                    schema,
                    vec![
                        Arc::new(b.etl_id.finish()),
                        Arc::new(b.msg_id.finish()),
                        Arc::new(b.key.finish()),
                        Arc::new(b.headers.finish()),
                        Arc::new(b.topic.finish()),
                        Arc::new(b.partition.finish()),
                        Arc::new(b.offset.finish()),
                        ts_finish(&mut b.timestamp),
                        Arc::new(b.timestamp_type.finish()),
                        Arc::new(b.key_size.finish()),
                        Arc::new(b.value_size.finish()),
                    ],
                )
            }
            LogModel::LogMeta => {
                let b = &mut self.log;
                batch(
                    schema,
                    vec![
                        Arc::new(b.etl_id.finish()),
                        Arc::new(b.msg_id.finish()),
                        Arc::new(b.level.finish()),
                        ts_finish(&mut b.timestamp),
                        Arc::new(b.name.finish()),
                        Arc::new(b.log_message.finish()),
                    ],
                )
            }
            LogModel::LibServerLobby => {
                let b = &mut self.lobby;
                batch(
                    schema,
                    vec![
                        Arc::new(b.etl_id.finish()),
                        Arc::new(b.msg_id.finish()),
                        ts_finish(&mut b.timestamp),
                        Arc::new(b.game_token.finish()),
                        Arc::new(b.user_token.finish()),
                        Arc::new(b.superhero_id.finish()),
                        Arc::new(b.superhero_attack.finish()),
                        Arc::new(b.superhero_health.finish()),
                    ],
                )
            }
            LogModel::LibServerGame => {
                let b = &mut self.game;
                batch(
                    schema,
                    vec![
                        Arc::new(b.etl_id.finish()),
                        Arc::new(b.msg_id.finish()),
                        ts_finish(&mut b.timestamp),
                        Arc::new(b.game_token.finish()),
                        Arc::new(b.user_token.finish()),
                        Arc::new(b.action.finish()),
                        Arc::new(b.enemy_token.finish()),
                        Arc::new(b.enemy_damage.finish()),
                        Arc::new(b.enemy_health_prior.finish()),
                        Arc::new(b.enemy_health_post.finish()),
                    ],
                )
            }
        }
    }
}

/// The position of `m` in [`LogModel::ALL`] (the index of `rows` and `taken`).
fn model_index(m: LogModel) -> usize {
    match m {
        LogModel::EtlMeta => 0,
        LogModel::BufferMeta => 1,
        LogModel::LogMeta => 2,
        LogModel::LibServerLobby => 3,
        LogModel::LibServerGame => 4,
    }
}

fn string_bytes(builders: &[&StringBuilder]) -> usize {
    builders
        .iter()
        .map(|b| b.values_slice().len() + 4 * b.offsets_slice().len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_builders_match_every_schema() {
        let batches = ModelBuilders::new("e").finish().expect("schemas match");
        assert_eq!(batches.len(), 5);
        for (m, b) in batches {
            assert_eq!(b.schema(), m.schema(), "{}", m.name());
            let want = usize::from(m == LogModel::EtlMeta);
            assert_eq!(b.num_rows(), want, "{}", m.name());
        }
    }
}

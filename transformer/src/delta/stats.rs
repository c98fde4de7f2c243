//! Per-file statistics of a Delta `add` action, gathered from the batches as they are written.
//!
//! Readers skip files by these bounds, so every bound written must hold for every row: a wrong
//! bound silently drops rows from query results. What is written:
//! - `numRecords` and `nullCount` of every column;
//! - `minValues`/`maxValues` of integer columns;
//! - of timestamp columns, rounded outwards to the millisecond (Spark reads stats at millisecond
//!   precision: a microsecond maximum truncated on read would exclude the last rows);
//! - of string columns only while every value seen is at most [`MAX_STRING_STAT_CHARS`] long
//!   (Spark truncates longer ones with rules we do not reproduce; no bound is a safe bound).
//!
//! Decimal and binary columns get null counts only.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{max, max_string, min, min_string};
use arrow::datatypes::{
    DataType, Int32Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use chrono::{DateTime, Datelike, SecondsFormat};
use serde_json::{Map, Value, json};

/// Longest string (in characters) whose value is written as a bound.
pub const MAX_STRING_STAT_CHARS: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Bound {
    Int(i64),
    Micros(i64),
    Str(String),
}

#[derive(Debug, Clone, Default)]
struct ColumnStats {
    nulls: u64,
    min: Option<Bound>,
    max: Option<Bound>,
    /// A value was seen that cannot be bounded (a long string): no bounds for this file.
    unbounded: bool,
}

/// The statistics of one data file, fed batch by batch.
#[derive(Debug, Clone)]
pub struct FileStats {
    schema: SchemaRef,
    rows: u64,
    columns: Vec<ColumnStats>,
}

impl FileStats {
    /// Empty statistics for files of `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        let columns = vec![ColumnStats::default(); schema.fields().len()];
        FileStats {
            schema,
            rows: 0,
            columns,
        }
    }

    /// The file's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Takes in the rows of `batch` (of this file's schema).
    pub fn update(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        for (col, stats) in batch.columns().iter().zip(self.columns.iter_mut()) {
            stats.nulls += col.null_count() as u64;
            if stats.unbounded || col.null_count() == col.len() {
                continue;
            }
            let (lo, hi) = match col.data_type() {
                DataType::Int32 => {
                    let a = col.as_primitive::<Int32Type>();
                    (
                        min(a).map(|v| Bound::Int(v.into())),
                        max(a).map(|v| Bound::Int(v.into())),
                    )
                }
                DataType::Int64 => {
                    let a = col.as_primitive::<Int64Type>();
                    (min(a).map(Bound::Int), max(a).map(Bound::Int))
                }
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    let a = col.as_primitive::<TimestampMicrosecondType>();
                    (
                        min(a).map(|v| Bound::Micros(floor_millis(v))),
                        max(a).map(|v| Bound::Micros(ceil_millis(v))),
                    )
                }
                DataType::Utf8 => {
                    let a = col.as_string::<i32>();
                    let too_long = a.iter().flatten().any(|s| {
                        s.len() > MAX_STRING_STAT_CHARS && s.chars().count() > MAX_STRING_STAT_CHARS
                    });
                    if too_long {
                        stats.unbounded = true;
                        stats.min = None;
                        stats.max = None;
                        continue;
                    }
                    (
                        min_string(a).map(|s| Bound::Str(s.to_owned())),
                        max_string(a).map(|s| Bound::Str(s.to_owned())),
                    )
                }
                _ => (None, None),
            };
            stats.min = pick(stats.min.take(), lo, |a, b| a <= b);
            stats.max = pick(stats.max.take(), hi, |a, b| a >= b);
        }
    }

    /// The `stats` string of the `add` action.
    pub fn to_json(&self) -> String {
        let mut mins = Map::new();
        let mut maxs = Map::new();
        let mut nulls = Map::new();
        for (field, c) in self.schema.fields().iter().zip(&self.columns) {
            nulls.insert(field.name().clone(), json!(c.nulls));
            if c.unbounded {
                continue;
            }
            // A timestamp beyond chrono's range has no text form: no bounds then.
            if let (Some(lo), Some(hi)) = (&c.min, &c.max)
                && let (Some(lo), Some(hi)) = (bound_json(lo), bound_json(hi))
            {
                mins.insert(field.name().clone(), lo);
                maxs.insert(field.name().clone(), hi);
            }
        }
        let mut stats = BTreeMap::new();
        stats.insert("numRecords", json!(self.rows));
        stats.insert("minValues", Value::Object(mins));
        stats.insert("maxValues", Value::Object(maxs));
        stats.insert("nullCount", Value::Object(nulls));
        serde_json::to_string(&stats).expect("stats serialize")
    }
}

fn pick(
    old: Option<Bound>,
    new: Option<Bound>,
    keep_old: impl Fn(&Bound, &Bound) -> bool,
) -> Option<Bound> {
    match (old, new) {
        (Some(o), Some(n)) => Some(if keep_old(&o, &n) { o } else { n }),
        (o, n) => o.or(n),
    }
}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Bound::Int(a), Bound::Int(b)) | (Bound::Micros(a), Bound::Micros(b)) => {
                a.partial_cmp(b)
            }
            (Bound::Str(a), Bound::Str(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

fn bound_json(b: &Bound) -> Option<Value> {
    match b {
        Bound::Int(v) => Some(json!(v)),
        // Readers parse four-digit years only (delta-rs fails the whole table on `+10000-…`):
        // a bound outside years 0001–9999 is left out, which is always safe.
        Bound::Micros(us) => DateTime::from_timestamp_micros(*us)
            .filter(|t| (1..=9999).contains(&t.year()))
            .map(|t| json!(t.to_rfc3339_opts(SecondsFormat::Millis, true))),
        Bound::Str(s) => Some(json!(s)),
    }
}

/// `us` rounded down to the millisecond (saturating at i64's range).
fn floor_millis(us: i64) -> i64 {
    us.div_euclid(1000).saturating_mul(1000)
}

/// `us` rounded up to the millisecond (saturating at i64's range).
fn ceil_millis(us: i64) -> i64 {
    let floor = floor_millis(us);
    if floor == us {
        us
    } else {
        floor.saturating_add(1000)
    }
}

/// Checks a staged `stats` string against the table's file schema before it reaches the log: a
/// value a reader cannot parse makes the whole table unreadable for it, so the committer drops
/// such stats (the file stays, without skipping information). `Err` says what is wrong.
pub fn check(stats: &str, schema: &SchemaRef) -> Result<(), String> {
    let v: Value = serde_json::from_str(stats).map_err(|e| format!("not JSON: {e}"))?;
    if !v["numRecords"].is_u64() {
        return Err("numRecords is not a count".to_owned());
    }
    for key in ["minValues", "maxValues"] {
        let Some(map) = v.get(key).and_then(Value::as_object) else {
            continue;
        };
        for (col, val) in map {
            let field = schema
                .field_with_name(col)
                .map_err(|_| format!("{key}.{col}: no such column"))?;
            let ok = match field.data_type() {
                DataType::Int32 => val.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                DataType::Int64 => val.is_i64(),
                DataType::Utf8 => val.is_string(),
                DataType::Timestamp(TimeUnit::Microsecond, _) => val
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| (1..=9999).contains(&t.year())),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "{key}.{col} = {val} does not fit {}",
                    field.data_type()
                ));
            }
        }
    }
    if let Some(map) = v.get("nullCount").and_then(Value::as_object) {
        for (col, n) in map {
            if schema.field_with_name(col).is_err() || !n.is_u64() {
                return Err(format!("nullCount.{col} = {n}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("offset", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn batch(offsets: Vec<i64>, ts: Vec<Option<i64>>, names: Vec<Option<&str>>) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(offsets)),
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
                Arc::new(StringArray::from(names)),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn bounds_hold_over_every_batch_and_timestamps_round_outwards() {
        let mut s = FileStats::new(schema());
        s.update(&batch(
            vec![5, 3],
            vec![Some(1_500), None],
            vec![Some("b"), None],
        ));
        s.update(&batch(vec![9], vec![Some(2_000_001)], vec![Some("a")]));
        let v: Value = serde_json::from_str(&s.to_json()).expect("json");
        assert_eq!(v["numRecords"], 3);
        assert_eq!(v["minValues"]["offset"], 3);
        assert_eq!(v["maxValues"]["offset"], 9);
        assert_eq!(v["minValues"]["ts"], "1970-01-01T00:00:00.001Z");
        assert_eq!(v["maxValues"]["ts"], "1970-01-01T00:00:02.001Z");
        assert_eq!(v["minValues"]["name"], "a");
        assert_eq!(v["maxValues"]["name"], "b");
        assert_eq!(v["nullCount"]["ts"], 1);
        assert_eq!(v["nullCount"]["name"], 1);
    }

    #[test]
    fn a_long_string_removes_the_columns_bounds() {
        let long = "x".repeat(MAX_STRING_STAT_CHARS + 1);
        let mut s = FileStats::new(schema());
        s.update(&batch(vec![1], vec![Some(0)], vec![Some("a")]));
        s.update(&batch(vec![2], vec![Some(0)], vec![Some(&long)]));
        s.update(&batch(vec![3], vec![Some(0)], vec![Some("b")]));
        let v: Value = serde_json::from_str(&s.to_json()).expect("json");
        assert!(v["minValues"].get("name").is_none(), "{v}");
        assert!(v["maxValues"].get("name").is_none(), "{v}");
        assert_eq!(v["maxValues"]["offset"], 3);
    }

    #[test]
    fn extreme_timestamps_neither_overflow_nor_write_a_bound_without_text() {
        let mut s = FileStats::new(schema());
        s.update(&batch(vec![1], vec![Some(i64::MAX)], vec![None]));
        s.update(&batch(vec![1], vec![Some(i64::MIN)], vec![None]));
        let v: Value = serde_json::from_str(&s.to_json()).expect("json");
        assert!(v["maxValues"].get("ts").is_none(), "{v}");
        // Year 10000 has a text form, but not one readers parse.
        let mut s = FileStats::new(schema());
        s.update(&batch(
            vec![1],
            vec![Some(253_402_300_800_000_000)],
            vec![None],
        ));
        let v: Value = serde_json::from_str(&s.to_json()).expect("json");
        assert!(v["minValues"].get("ts").is_none(), "{v}");
        assert_eq!(ceil_millis(i64::MAX), i64::MAX);
        assert_eq!(ceil_millis(1_001), 2_000);
        assert_eq!(floor_millis(-1), -1_000);
    }

    #[test]
    fn what_we_write_passes_the_check_and_unparsable_bounds_do_not() {
        let mut s = FileStats::new(schema());
        s.update(&batch(
            vec![5, 3],
            vec![Some(1_500), None],
            vec![Some("b"), None],
        ));
        assert_eq!(check(&s.to_json(), &schema()), Ok(()));
        for bad in [
            r#"{"numRecords":1,"minValues":{"ts":"+10000-01-01T00:00:00.000Z"}}"#,
            r#"{"numRecords":1,"minValues":{"offset":"x"}}"#,
            r#"{"numRecords":1,"maxValues":{"nope":1}}"#,
            r#"{"numRecords":-1}"#,
            r#"{"numRecords":1,"nullCount":{"ts":-2}}"#,
            "not json",
        ] {
            assert!(check(bad, &schema()).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_all_null_column_has_a_null_count_and_no_bounds() {
        let mut s = FileStats::new(schema());
        s.update(&batch(vec![1], vec![None], vec![None]));
        let v: Value = serde_json::from_str(&s.to_json()).expect("json");
        assert_eq!(v["nullCount"]["ts"], 1);
        assert!(v["minValues"].get("ts").is_none());
    }
}

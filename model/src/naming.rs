//! Deterministic blob names.
//!
//! Raw blobs (container `raw`):
//! `{topic}/{yyyy}/{mm}/{dd}/{hh}/{topic}+{partition}+{first_offset:020}.json.gz`, where the date
//! is the UTC Kafka timestamp of the batch's first record (or the Unix epoch when the record has
//! none). The name depends only on record data, so a re-run that starts a batch at the same offset
//! lands on the same name.
//!
//! Parquet files (container `standard`): `{model}/{yyyy}/{mm}/{dd}/{hh}/{raw base}.parquet`, with
//! the date path and base name copied from the raw name. Dead letters:
//! `_deadletter/{topic}/{yyyy}/{mm}/{dd}/{hh}/{raw base}.jsonl`.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Suffix of raw blobs.
pub const RAW_SUFFIX: &str = ".json.gz";
/// Blob user-metadata key holding the first offset of a raw blob.
pub const META_FIRST_OFFSET: &str = "first_offset";
/// Blob user-metadata key holding the last offset of a raw blob (inclusive).
pub const META_LAST_OFFSET: &str = "last_offset";
/// Blob user-metadata key holding the record count of a raw blob.
pub const META_RECORD_COUNT: &str = "record_count";

/// The user metadata of a raw blob holding offsets `first..=last` (`records` of them): what the
/// worker writes and what readers (the watcher's probes, the worker's chain walk) rely on.
pub fn raw_blob_metadata(first: i64, last: i64, records: usize) -> [(&'static str, String); 3] {
    [
        (META_FIRST_OFFSET, first.to_string()),
        (META_LAST_OFFSET, last.to_string()),
        (META_RECORD_COUNT, records.to_string()),
    ]
}
/// Prefix of dead-letter files in `standard`.
pub const DEADLETTER_PREFIX: &str = "_deadletter";

/// `"{topic}+{partition}+{offset}"`, the stable id of a Kafka record.
pub fn msg_id(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}+{partition}+{offset}")
}

fn hour_path(ts_millis: Option<i64>) -> String {
    let t: DateTime<Utc> = ts_millis
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(DateTime::UNIX_EPOCH);
    format!(
        "{:04}/{:02}/{:02}/{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

/// The raw blob name of a batch starting at `first_offset` whose first record has `ts_millis`.
pub fn raw_blob_name(
    topic: &str,
    partition: i32,
    first_offset: i64,
    ts_millis: Option<i64>,
) -> String {
    format!(
        "{topic}/{}/{topic}+{partition}+{first_offset:020}{RAW_SUFFIX}",
        hour_path(ts_millis)
    )
}

/// A raw blob name taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBlobName {
    /// Topic the batch came from.
    pub topic: String,
    /// Partition the batch came from.
    pub partition: i32,
    /// First offset in the batch.
    pub first_offset: i64,
    /// `yyyy/mm/dd/hh` of the first record.
    pub hour_path: String,
    /// `{topic}+{partition}+{first_offset:020}`: the etl id of the batch.
    pub base: String,
}

/// Why a name is not a raw blob name.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{name}` is not a raw blob name ({{topic}}/yyyy/mm/dd/hh/{{topic}}+{{partition}}+{{offset:020}}.json.gz): {why}"
)]
pub struct NameError {
    /// The offending name.
    pub name: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl RawBlobName {
    /// Parses a raw blob name (relative to the `raw` container).
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let err = |why| NameError {
            name: name.to_owned(),
            why,
        };
        let stem = name
            .strip_suffix(RAW_SUFFIX)
            .ok_or_else(|| err("missing .json.gz suffix"))?;
        let parts: Vec<&str> = stem.split('/').collect();
        let [topic, y, m, d, h, base] = parts[..] else {
            return Err(err("expected 6 path segments"));
        };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(y, 4) && digits(m, 2) && digits(d, 2) && digits(h, 2)) {
            return Err(err("date path is not yyyy/mm/dd/hh"));
        }
        let mut it = base.rsplitn(3, '+');
        let (Some(off), Some(part), Some(base_topic)) = (it.next(), it.next(), it.next()) else {
            return Err(err("file name is not topic+partition+offset"));
        };
        if base_topic != topic {
            return Err(err("file name topic differs from folder topic"));
        }
        if !digits(off, 20) {
            return Err(err("offset is not 20 digits"));
        }
        Ok(RawBlobName {
            topic: topic.to_owned(),
            partition: part.parse().map_err(|_| err("partition is not a number"))?,
            first_offset: off.parse().map_err(|_| err("offset is not a number"))?,
            hour_path: format!("{y}/{m}/{d}/{h}"),
            base: base.to_owned(),
        })
    }

    /// The etl id of this batch (its base name).
    pub fn etl_id(&self) -> &str {
        &self.base
    }

    /// `{model}/{yyyy}/{mm}/{dd}/{hh}/{base}.parquet` in `standard`.
    pub fn parquet_name(&self, model: &str) -> String {
        format!("{model}/{}/{}.parquet", self.hour_path, self.base)
    }

    /// `_deadletter/{topic}/{yyyy}/{mm}/{dd}/{hh}/{base}.jsonl` in `standard`.
    pub fn deadletter_name(&self) -> String {
        format!(
            "{DEADLETTER_PREFIX}/{}/{}/{}.jsonl",
            self.topic, self.hour_path, self.base
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_name_is_zero_padded_and_dated_by_first_record() {
        // 2024-01-14T18:22:04.771Z
        let n = raw_blob_name("lib.server.game", 3, 42, Some(1_705_256_524_771));
        assert_eq!(
            n,
            "lib.server.game/2024/01/14/18/lib.server.game+3+00000000000000000042.json.gz"
        );
        let p = RawBlobName::parse(&n).expect("parses");
        assert_eq!(
            (p.topic.as_str(), p.partition, p.first_offset),
            ("lib.server.game", 3, 42)
        );
        assert_eq!(
            p.parquet_name("log_meta"),
            "log_meta/2024/01/14/18/lib.server.game+3+00000000000000000042.parquet"
        );
        assert_eq!(
            p.deadletter_name(),
            "_deadletter/lib.server.game/2024/01/14/18/lib.server.game+3+00000000000000000042.jsonl"
        );
    }

    #[test]
    fn missing_timestamp_dates_the_blob_at_the_epoch() {
        assert!(raw_blob_name("t", 0, 0, None).starts_with("t/1970/01/01/00/"));
    }

    #[test]
    fn rejects_foreign_names() {
        for bad in [
            "x.json.gz",
            "t/2024/01/14/18/u+0+00000000000000000001.json.gz",
            "t/2024/01/14/18/t+0+1.json.gz",
            "t/2024/1/14/18/t+0+00000000000000000001.json.gz",
        ] {
            assert!(RawBlobName::parse(bad).is_err(), "{bad}");
        }
    }
}

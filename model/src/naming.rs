//! Deterministic blob names.
//!
//! Raw blobs (container `raw`):
//! `{topic}/{yyyy}/{mm}/{dd}/{hh}/{topic}+{partition}+{first_offset:020}.json.gz`, where the date
//! is the UTC Kafka timestamp of the batch's first record (or the Unix epoch when the record has
//! none; clamped to 0000-01-01T00 or 9999-12-31T23 when it lies outside four-digit years). The name depends only on record data, so a re-run that starts a batch at the same offset
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
/// Blob user-metadata key holding the fingerprint of a raw blob's first record
/// (`fnv1a64:{16 hex}` of its timestamp, key and value; see the worker's `fingerprint` module).
/// The worker compares it with the record it reads at that offset before treating the blob as
/// already landed: a different record means the offsets were handed out again (a topic deleted
/// and re-created, a broker that lost its log). Written by the worker since 2026-12-06; blobs
/// without it are trusted.
pub const META_FIRST_FINGERPRINT: &str = "first_fingerprint";

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

/// The first and last hours a blob name can carry: `yyyy` is four digits.
fn name_bounds() -> (DateTime<Utc>, DateTime<Utc>) {
    let hour = |y, m, d, h| {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .map(|t| t.and_utc())
            .expect("a valid constant date")
    };
    (hour(0, 1, 1, 0), hour(9999, 12, 31, 23))
}

/// `yyyy/mm/dd/hh` of a record timestamp. A timestamp outside years 0000–9999 (a microsecond
/// value sent as milliseconds, a negative year) is clamped to the nearest bound, so every name
/// the worker writes has four-digit years and parses; no timestamp at all is the Unix epoch.
fn hour_path(ts_millis: Option<i64>) -> String {
    let (first, last) = name_bounds();
    let t: DateTime<Utc> = match ts_millis {
        None => DateTime::UNIX_EPOCH,
        Some(ms) => DateTime::from_timestamp_millis(ms)
            .unwrap_or(if ms < 0 { first } else { last })
            .clamp(first, last),
    };
    format!(
        "{:04}/{:02}/{:02}/{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

/// The hours of records with no timestamp (the Unix epoch) or one outside years 0000–9999
/// (clamped to the nearest bound), as `yyyy/mm/dd/hh`. A crafted or broken timestamp dates a
/// blob into one of these, far from the hours its neighbours are in, so the watcher lists
/// them with every listing of the recent hours.
pub fn fallback_hour_paths() -> [String; 3] {
    [
        hour_path(Some(i64::MIN)),
        hour_path(None),
        hour_path(Some(i64::MAX)),
    ]
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
        // Workers before the clamp wrote chrono's own year for timestamps outside 0000–9999
        // (`10000`, `56007`, `-002`): those names still parse, so their records are not lost.
        let year = |s: &str| {
            let unsigned = s.strip_prefix('-').unwrap_or(s);
            digits(s, 4) || (unsigned.len() >= 3 && digits(unsigned, unsigned.len()))
        };
        if !(year(y) && digits(m, 2) && digits(d, 2) && digits(h, 2)) {
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
    fn fallback_hours_are_the_bounds_and_the_epoch() {
        assert_eq!(
            fallback_hour_paths(),
            ["0000/01/01/00", "1970/01/01/00", "9999/12/31/23"].map(String::from)
        );
        for ts in [
            None,
            Some(0),
            Some(i64::MIN),
            Some(-62_200_000_000_000),
            Some(i64::MAX),
        ] {
            let name = raw_blob_name("t", 0, 0, ts);
            assert!(
                fallback_hour_paths()
                    .iter()
                    .any(|h| name.starts_with(&format!("t/{h}/"))),
                "{ts:?} -> {name}"
            );
        }
    }

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
    fn timestamps_outside_four_digit_years_are_clamped() {
        let at = |ms| raw_blob_name("t", 0, 0, Some(ms));
        assert!(
            at(253_402_300_800_000).starts_with("t/9999/12/31/23/"),
            "year 10000"
        );
        // 2024 in microseconds read as milliseconds: year 56007.
        assert!(at(1_705_256_524_771_000).starts_with("t/9999/12/31/23/"));
        assert!(
            at(-62_198_755_200_000).starts_with("t/0000/01/01/00/"),
            "year -2"
        );
        assert!(at(i64::MAX).starts_with("t/9999/12/31/23/"));
        assert!(at(i64::MIN).starts_with("t/0000/01/01/00/"));
        assert!(at(-1).starts_with("t/1969/12/31/23/"));
    }

    #[test]
    fn names_of_earlier_workers_with_wide_years_still_parse() {
        for legacy in [
            "t/10000/01/01/00/t+0+00000000000000000001.json.gz",
            "t/56007/03/02/11/t+0+00000000000000000001.json.gz",
            "t/-002/12/31/23/t+0+00000000000000000001.json.gz",
        ] {
            let p = RawBlobName::parse(legacy).expect(legacy);
            assert_eq!(p.first_offset, 1);
        }
    }

    proptest::proptest! {
        #[test]
        fn every_name_the_worker_writes_parses(
            ts in proptest::option::of(proptest::prelude::any::<i64>()),
            partition in 0..i32::MAX,
            offset in 0..i64::MAX,
        ) {
            let name = raw_blob_name("lib.server.game", partition, offset, ts);
            let p = RawBlobName::parse(&name).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(p.partition, partition);
            proptest::prop_assert_eq!(p.first_offset, offset);
            proptest::prop_assert_eq!(p.hour_path.len(), 13, "{}", name);
        }
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

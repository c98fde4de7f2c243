//! Staged blobs: data files written to a table's folder but not yet in its log.
//!
//! A transform in delta mode writes each table's data file at a fresh name (never one a reader
//! may be reading), then one manifest `_delta_staging/{key}.{write_id}.json` listing them with
//! their sizes and statistics. The manifest is the durable hand-over to the committer
//! ([`crate::delta::commit`]): whichever process runs it next (the same watcher, another one, the
//! Functions timer) commits the files and deletes the manifest afterwards. A data file without a
//! manifest (a process killed before writing it) is never committed: readers never see it, and
//! vacuum's full mode removes it.
//!
//! Names: `{table}/date={yyyy-mm-dd}/{key}.{write_id}.parquet`, with `key` the raw blob's etl id
//! (`{topic}-{partition}-{first_offset:020}`: `+` is replaced because URL form decoding, which
//! some readers apply to paths, turns it into a space; a topic has no `+`, and the last two
//! fields are digits, so the key still names one blob) and `write_id` 32 hex digits, unique per transform. The committer tells
//! which blob a live file holds by its name alone.

use chrono::{DateTime, Utc};
use model::naming::RawBlobName;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::schema::{PARTITION_COLUMN, Table};

/// Prefix of staging manifests in `standard`.
pub const STAGING_PREFIX: &str = "_delta_staging";

/// The id of one transform's writes, written as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(u128);

impl WriteId {
    /// A fresh (random) id.
    pub fn new() -> Self {
        WriteId(uuid::Uuid::new_v4().as_u128())
    }

    /// The id as written in names.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    fn parse(s: &str) -> Option<WriteId> {
        if s.len() != 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(WriteId)
    }
}

impl Serialize for WriteId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for WriteId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WriteId::parse(&s)
            .ok_or_else(|| serde::de::Error::custom("a write id is 32 lowercase hex digits"))
    }
}

/// The key of a raw blob in data-file names: its etl id with `+` as `-`.
pub fn blob_key(name: &RawBlobName) -> String {
    name.etl_id().replace('+', "-")
}

/// `yyyy-mm-dd` of the raw blob's hour: the value of the `date` partition column.
pub fn partition_date(name: &RawBlobName) -> String {
    name.hour_path
        .get(..10)
        .unwrap_or("1970/01/01")
        .replace('/', "-")
}

/// The path of a data file relative to its table's root.
pub fn data_file(name: &RawBlobName, write: WriteId) -> String {
    format!(
        "{PARTITION_COLUMN}={}/{}.{}.parquet",
        partition_date(name),
        blob_key(name),
        write.to_hex()
    )
}

/// The blob key and write id of a data file's table-relative path; `None` for a file we did
/// not name (then it belongs to no blob: the committer leaves it alone).
pub fn parse_data_file(path: &str) -> Option<(&str, WriteId)> {
    let file = path.rsplit('/').next()?.strip_suffix(".parquet")?;
    let (key, write) = file.rsplit_once('.')?;
    Some((key, WriteId::parse(write)?))
}

/// One staged data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// The table's folder name.
    pub table: String,
    /// Path relative to the table root.
    pub path: String,
    /// Bytes.
    pub size: i64,
    /// Rows.
    pub rows: u64,
    /// The `stats` JSON of its `add` action.
    pub stats: String,
}

/// A blob's staged files: the manifest the committer reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedBlob {
    /// The raw blob name.
    pub blob: String,
    /// Its key in data-file names.
    pub key: String,
    /// The version of the raw blob that was read.
    pub etag: Option<String>,
    /// This transform's id.
    pub write_id: WriteId,
    /// `date` partition value.
    pub date: String,
    /// A replay (`backfill`, `POST /runs`): the blob's live rows are replaced by these in one
    /// commit per table. Otherwise (a first delivery or a redelivery) the files are committed
    /// only where the blob has no rows yet.
    pub replace: bool,
    /// When the manifest was written.
    pub staged_at: DateTime<Utc>,
    /// The files, at most one per table.
    pub files: Vec<StagedFile>,
}

impl StagedBlob {
    /// `_delta_staging/{key}.{write_id}.json`.
    pub fn manifest_path(&self) -> Path {
        Path::from(format!(
            "{STAGING_PREFIX}/{}.{}.json",
            self.key,
            self.write_id.to_hex()
        ))
    }

    /// The file of `table`, if the blob has one.
    pub fn file(&self, table: Table) -> Option<&StagedFile> {
        self.files.iter().find(|f| f.table == table.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_names_round_trip_to_their_blob_and_write() {
        let name = RawBlobName::parse(
            "client.__main__/2026/12/07/13/client.__main__+0+00000000000000000042.json.gz",
        )
        .expect("raw name");
        let w = WriteId::new();
        let path = data_file(&name, w);
        assert!(
            path.starts_with("date=2026-12-07/client.__main__-0-00000000000000000042."),
            "{path}"
        );
        assert!(!path.contains('+'), "{path}");
        let (key, write) = parse_data_file(&path).expect("ours");
        assert_eq!((key, write), (blob_key(&name).as_str(), w));
        assert_eq!(
            parse_data_file("date=2026-12-07/part-0001.snappy.parquet"),
            None
        );
        assert_eq!(parse_data_file("date=2026-12-07/x.parquet"), None);
    }
}

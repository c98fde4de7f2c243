//! When each record became visible as Parquet: lists `standard/buffer_meta/` and reads the
//! (topic, partition, offset) columns of every file not seen before. A record's visibility time
//! is the instant the listing that first showed its file returned, so the bench's own resolution
//! is `BENCH_POLL_MS` plus one GET.
//!
//! `buffer_meta` has one row per Kafka record (good or bad), so it is the one model where every
//! sent record must appear; a record seen in two files is counted as a duplicate.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The folder of the model read.
pub const BUFFER_META: &str = "buffer_meta";

/// A record's identity.
pub type RecordKey = (String, i32, i64);

/// Errors of the visibility poller.
#[derive(Debug, thiserror::Error)]
pub enum VisibilityError {
    /// Listing `buffer_meta/` failed.
    #[error("listing {prefix}/ in the standard container: {source}")]
    List {
        /// The prefix.
        prefix: &'static str,
        /// Why.
        source: object_store::Error,
    },
    /// Fetching a Parquet file failed.
    #[error("reading {path}: {source}")]
    Get {
        /// The blob.
        path: String,
        /// Why.
        source: object_store::Error,
    },
    /// A Parquet file did not decode.
    #[error("decoding Parquet {path}: {source}")]
    Decode {
        /// The blob.
        path: String,
        /// Why.
        source: parquet::errors::ParquetError,
    },
    /// A file lacks a column the contract promises.
    #[error("{path} has no {column} column of the expected type")]
    Column {
        /// The blob.
        path: String,
        /// The column.
        column: &'static str,
    },
}

/// First-seen instants of every record in the Parquet outputs.
#[derive(Debug)]
pub struct Visibility {
    store: Arc<dyn ObjectStore>,
    files: HashSet<Path>,
    first_seen: HashMap<RecordKey, Instant>,
    duplicates: u64,
}

impl Visibility {
    /// A poller on the `standard` container.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Visibility {
            store,
            files: HashSet::new(),
            first_seen: HashMap::new(),
            duplicates: 0,
        }
    }

    /// Lists once and reads every new file; returns the number of new rows.
    pub async fn poll(&mut self) -> Result<usize, VisibilityError> {
        let prefix = Path::from(BUFFER_META);
        let listed: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|source| VisibilityError::List {
                prefix: BUFFER_META,
                source,
            })?;
        let seen_at = Instant::now();
        let mut new_rows = 0;
        for path in listed {
            if self.files.contains(&path) || !path.as_ref().ends_with(".parquet") {
                continue;
            }
            for key in self.read_keys(&path).await? {
                match self.first_seen.entry(key) {
                    std::collections::hash_map::Entry::Occupied(_) => self.duplicates += 1,
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(seen_at);
                        new_rows += 1;
                    }
                }
            }
            self.files.insert(path);
        }
        Ok(new_rows)
    }

    async fn read_keys(&self, path: &Path) -> Result<Vec<RecordKey>, VisibilityError> {
        let name = path.to_string();
        let bytes = self
            .store
            .get(path)
            .await
            .map_err(|source| VisibilityError::Get {
                path: name.clone(),
                source,
            })?
            .bytes()
            .await
            .map_err(|source| VisibilityError::Get {
                path: name.clone(),
                source,
            })?;
        keys_of(&name, bytes)
    }

    /// When `key` was first seen.
    pub fn first_seen(&self, key: &RecordKey) -> Option<Instant> {
        self.first_seen.get(key).copied()
    }

    /// Rows seen so far (distinct records).
    pub fn rows(&self) -> usize {
        self.first_seen.len()
    }

    /// Files read so far.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Rows whose record had already been seen in another file.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

/// The (topic, partition, offset) of every row of a `buffer_meta` Parquet file.
pub fn keys_of(name: &str, bytes: bytes::Bytes) -> Result<Vec<RecordKey>, VisibilityError> {
    let decode = |source| VisibilityError::Decode {
        path: name.to_owned(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(decode)?;
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = ["topic", "partition", "offset"]
        .iter()
        .filter_map(|c| schema.columns().iter().position(|d| d.name() == *c))
        .collect();
    let mask = ProjectionMask::leaves(schema, wanted);
    let reader = builder.with_projection(mask).build().map_err(decode)?;
    let mut keys = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| decode(e.into()))?;
        let column = |c: &'static str| {
            batch
                .column_by_name(c)
                .cloned()
                .ok_or_else(|| VisibilityError::Column {
                    path: name.to_owned(),
                    column: c,
                })
        };
        let (topic, partition, offset) =
            (column("topic")?, column("partition")?, column("offset")?);
        let missing = |c| VisibilityError::Column {
            path: name.to_owned(),
            column: c,
        };
        let topic = topic
            .as_string_opt::<i32>()
            .ok_or_else(|| missing("topic"))?;
        let partition = partition
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| missing("partition"))?;
        let offset = offset
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| missing("offset"))?;
        for i in 0..batch.num_rows() {
            if topic.is_null(i) || partition.is_null(i) || offset.is_null(i) {
                continue;
            }
            keys.push((
                topic.value(i).to_owned(),
                partition.value(i),
                offset.value(i),
            ));
        }
    }
    Ok(keys)
}

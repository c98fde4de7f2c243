//! The outputs in `standard` read back: Parquet `msg_id`s and row counts, dead letters, poison
//! entries.

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use model::naming::RawBlobName;
use model::schema::LogModel;
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;
use transformer::delta::Lakehouse;
use transformer::delta::compact;
use transformer::delta::schema::Table;
use transformer::delta::staged::{self, STAGING_PREFIX};

use super::{POISON_PREFIX, RawBlob, Scope, SummaryError, get, list};

/// One dead letter as the transformer writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct DeadLetter {
    /// `topic+partition+offset`, `None` for an undecodable raw line.
    pub msg_id: Option<String>,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: Option<i32>,
    /// Offset.
    pub offset: Option<i64>,
    /// Reason code.
    pub reason: String,
    /// The record's value bytes in base64; `None` for a record without value (a tombstone).
    #[serde(default)]
    pub value_base64: Option<String>,
}

/// What was read from `standard` for the raw blobs in scope.
#[derive(Debug, Clone, Default)]
pub struct Standard {
    /// Scoped rows per model (`etl_meta`: one per raw blob in scope).
    pub rows: BTreeMap<&'static str, u64>,
    /// How often each scoped `msg_id` appears in `buffer_meta`.
    pub buffer_msg_ids: HashMap<String, u32>,
    /// Scoped dead letters.
    pub dead_letters: Vec<DeadLetter>,
}

/// Scoped `msg_id`s of one Parquet file (`None` when the file does not exist).
pub async fn parquet_msg_ids(
    store: &dyn ObjectStore,
    path: &str,
) -> Result<Option<Vec<String>>, SummaryError> {
    let Some(bytes) = get(store, path).await? else {
        return Ok(None);
    };
    let perr = |source| SummaryError::Parquet {
        path: path.to_owned(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(perr)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["msg_id"]);
    let reader = builder.with_projection(mask).build().map_err(perr)?;
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| SummaryError::Arrow {
            path: path.to_owned(),
            source,
        })?;
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| SummaryError::Arrow {
                path: path.to_owned(),
                source: arrow::error::ArrowError::SchemaError("msg_id is not Utf8".into()),
            })?;
        ids.extend(
            (0..col.len())
                .filter(|i| col.is_valid(*i))
                .map(|i| col.value(i).to_owned()),
        );
    }
    Ok(Some(ids))
}

/// Rows of a Parquet file from its footer (`None` when the file does not exist).
pub async fn parquet_rows(
    store: &dyn ObjectStore,
    path: &str,
) -> Result<Option<u64>, SummaryError> {
    let Some(bytes) = get(store, path).await? else {
        return Ok(None);
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|source| {
        SummaryError::Parquet {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(Some(
        builder.metadata().file_metadata().num_rows().max(0) as u64
    ))
}

/// `topic+partition+offset` back into its parts (topics may contain `+`; the last two fields are numbers).
pub fn split_msg_id(id: &str) -> Option<(&str, i32, i64)> {
    let mut it = id.rsplitn(3, '+');
    let offset = it.next()?.parse().ok()?;
    let partition = it.next()?.parse().ok()?;
    Some((it.next()?, partition, offset))
}

/// Reads the outputs of `blobs` from `standard`, keeping only scoped rows: from the Delta
/// tables' snapshots when `standard` holds Delta tables, else from the per-blob files.
pub async fn read_standard<'a>(
    standard: &Arc<dyn ObjectStore>,
    blobs: impl Iterator<Item = &'a RawBlob>,
    scope: &Scope,
) -> Result<Standard, SummaryError> {
    if is_delta(standard.as_ref()).await? {
        return read_delta(standard, blobs, scope).await;
    }
    let standard = standard.as_ref();
    let mut out = Standard::default();
    for m in LogModel::ALL {
        out.rows.insert(m.name(), 0);
    }
    let in_scope = |id: &str| split_msg_id(id).is_some_and(|(t, p, o)| scope.contains(t, p, o));
    for blob in blobs {
        for m in LogModel::ALL {
            let path = blob.parsed.parquet_name(m.name());
            if m == LogModel::EtlMeta {
                let n = parquet_rows(standard, &path).await?.unwrap_or(0);
                *out.rows.entry(m.name()).or_default() += n;
                continue;
            }
            let Some(ids) = parquet_msg_ids(standard, &path).await? else {
                continue;
            };
            for id in ids.into_iter().filter(|id| in_scope(id)) {
                *out.rows.entry(m.name()).or_default() += 1;
                if m == LogModel::BufferMeta {
                    *out.buffer_msg_ids.entry(id).or_default() += 1;
                }
            }
        }
        if let Some(text) = get(standard, &blob.parsed.deadletter_name()).await? {
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let Ok(d) = serde_json::from_slice::<DeadLetter>(line) {
                    let scoped = match (d.partition, d.offset) {
                        (Some(p), Some(o)) => scope.contains(&d.topic, p, o),
                        _ => true,
                    };
                    if scoped {
                        out.dead_letters.push(d);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `standard` holds Delta tables (`STANDARD_FORMAT=delta`): a log or staged blobs exist.
pub async fn is_delta(standard: &dyn ObjectStore) -> Result<bool, SummaryError> {
    for prefix in ["etl_meta/_delta_log", STAGING_PREFIX] {
        if !list(standard, Some(prefix)).await?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Delta mode: reads each table's snapshot through delta-rs and the live files of `blobs`
/// (named by blob key, [`transformer::delta::staged`]).
async fn read_delta<'a>(
    standard: &Arc<dyn ObjectStore>,
    blobs: impl Iterator<Item = &'a RawBlob>,
    scope: &Scope,
) -> Result<Standard, SummaryError> {
    let mut out = Standard::default();
    for m in LogModel::ALL {
        out.rows.insert(m.name(), 0);
    }
    let keys: std::collections::HashSet<String> =
        blobs.map(|b| staged::blob_key(&b.parsed)).collect();
    let lake = Lakehouse::new(standard.clone(), "az://standard");
    let in_scope = |id: &str| split_msg_id(id).is_some_and(|(t, p, o)| scope.contains(t, p, o));
    for table in Table::ALL {
        let files = lake.live_files(table).await?;
        for f in files.files {
            // A blob's own file is in or out whole; a compacted file holds many blobs' rows,
            // each kept by its blob (etl_meta, dead letters) or its offset (the models).
            let compacted = compact::is_compacted(&f.path);
            match staged::parse_data_file(&f.path) {
                Some((key, _)) if keys.contains(key) => {}
                None if compacted => {}
                _ => continue,
            }
            let of_run = |blob_key: &str| !compacted || keys.contains(blob_key);
            let Some(bytes) = get(standard.as_ref(), &f.path).await? else {
                return Err(SummaryError::LiveFileMissing {
                    path: f.path,
                    table: table.name(),
                });
            };
            let batches = read_batches(&f.path, bytes)?;
            match table.model() {
                Some(LogModel::EtlMeta) => {
                    let n = batches
                        .iter()
                        .flat_map(|b| strings(b, "etl_id"))
                        .flatten()
                        .filter(|id| of_run(&id.replace('+', "-")))
                        .count();
                    *out.rows.entry("etl_meta").or_default() += n as u64;
                }
                Some(m) => {
                    for b in &batches {
                        for id in strings(b, "msg_id").into_iter().flatten() {
                            if !in_scope(&id) {
                                continue;
                            }
                            *out.rows.entry(m.name()).or_default() += 1;
                            if m == LogModel::BufferMeta {
                                *out.buffer_msg_ids.entry(id).or_default() += 1;
                            }
                        }
                    }
                }
                None => {
                    for b in &batches {
                        let sources = strings(b, "source_blob");
                        for (d, source) in dead_letter_rows(b).into_iter().zip(sources) {
                            let key = source
                                .as_deref()
                                .and_then(|s| RawBlobName::parse(s).ok())
                                .map(|n| staged::blob_key(&n))
                                .unwrap_or_default();
                            let scoped = match (d.partition, d.offset) {
                                (Some(p), Some(o)) => scope.contains(&d.topic, p, o),
                                _ => true,
                            };
                            if scoped && of_run(&key) {
                                out.dead_letters.push(d);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

fn read_batches(path: &str, bytes: bytes::Bytes) -> Result<Vec<RecordBatch>, SummaryError> {
    let perr = |source| SummaryError::Parquet {
        path: path.to_owned(),
        source,
    };
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(perr)?
        .build()
        .map_err(perr)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| SummaryError::Arrow {
            path: path.to_owned(),
            source,
        })
}

fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let Some(a) = b.column_by_name(col).and_then(|c| c.as_string_opt::<i32>()) else {
        return Vec::new();
    };
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
        .collect()
}

/// The rows of a `_deadletter` data file as [`DeadLetter`]s.
fn dead_letter_rows(b: &RecordBatch) -> Vec<DeadLetter> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int32Type, Int64Type};
    use base64::Engine as _;
    let msg_ids = strings(b, "msg_id");
    let topics = strings(b, "topic");
    let reasons = strings(b, "reason");
    let part = b
        .column_by_name("partition")
        .and_then(|c| c.as_primitive_opt::<Int32Type>());
    let off = b
        .column_by_name("offset")
        .and_then(|c| c.as_primitive_opt::<Int64Type>());
    let value = b
        .column_by_name("value")
        .and_then(|c| c.as_binary_opt::<i32>());
    (0..b.num_rows())
        .map(|i| DeadLetter {
            msg_id: msg_ids.get(i).cloned().flatten(),
            topic: topics.get(i).cloned().flatten().unwrap_or_default(),
            partition: part.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            offset: off.and_then(|a| a.is_valid(i).then(|| a.value(i))),
            reason: reasons.get(i).cloned().flatten().unwrap_or_default(),
            value_base64: value.and_then(|a| {
                a.is_valid(i)
                    .then(|| base64::engine::general_purpose::STANDARD.encode(a.value(i)))
            }),
        })
        .collect()
}

/// Raw names (relative to `raw`) with a poison entry in `standard`.
pub async fn poisoned(standard: &dyn ObjectStore) -> Result<Vec<String>, SummaryError> {
    let names = list(standard, Some(POISON_PREFIX)).await?;
    Ok(names
        .into_iter()
        .filter_map(|n| {
            n.strip_prefix(&format!("{POISON_PREFIX}/"))
                .and_then(|r| r.strip_suffix(".json"))
                .map(str::to_owned)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_ids_split_even_when_topics_contain_plus() {
        assert_eq!(
            split_msg_id("lib.server.game+3+42"),
            Some(("lib.server.game", 3, 42))
        );
        assert_eq!(split_msg_id("a+b+0+7"), Some(("a+b", 0, 7)));
        assert_eq!(split_msg_id("nope"), None);
    }
}

//! The outputs in `standard` read back: Parquet `msg_id`s and row counts, dead letters, poison
//! entries.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, StringArray};
use model::schema::LogModel;
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;

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

/// Reads the outputs of `blobs` from `standard`, keeping only scoped rows.
pub async fn read_standard<'a>(
    standard: &dyn ObjectStore,
    blobs: impl Iterator<Item = &'a RawBlob>,
    scope: &Scope,
) -> Result<Standard, SummaryError> {
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

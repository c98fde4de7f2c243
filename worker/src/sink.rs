//! Landing a sealed batch in the raw container, exactly once.
//!
//! Per partition the raw blobs form a chain of contiguous, non-overlapping offset ranges: each
//! blob starts at the first record at or after the previous blob's `last_offset + 1` (the
//! *frontier*). [`Sink::land`] walks that chain from the frontier it is given: it drops the
//! records below the frontier and uploads the batch create-only (`If-None-Match: *`) under the
//! deterministic name of its first record (the name depends only on topic, partition, offset and
//! that record's timestamp). If a blob is already there (a previous run landed it but died before
//! committing, or another worker raced us) the upload is refused; a HEAD then reads that blob's
//! `last_offset`, the frontier moves past it and the walk tries again. Every writer therefore
//! walks the same chain and at most one blob starts at any offset.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use flate2::Compression;
use model::naming::{META_LAST_OFFSET, raw_blob_metadata, raw_blob_name};
use model::raw::RawLine;
use object_store::path::Path;
use object_store::{Attribute, Attributes, GetOptions, ObjectStore, PutMode, PutOptions};

use crate::batch::Sealed;
use crate::buffers::BufferPool;
use crate::metrics as m;

/// Content type of raw blobs (the body is gzip; the name says `.json.gz`, so no Content-Encoding).
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// Why a batch could not be landed (the caller retries: landing is idempotent).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The existence check failed.
    #[error("checking raw blob {blob}: {source}")]
    Head {
        /// Blob name.
        blob: String,
        /// Storage error.
        #[source]
        source: object_store::Error,
    },
    /// The upload failed.
    #[error("uploading raw blob {blob} (offsets {first}..={last}): {source}")]
    Put {
        /// Blob name.
        blob: String,
        /// First offset.
        first: i64,
        /// Last offset.
        last: i64,
        /// Storage error.
        #[source]
        source: object_store::Error,
    },
    /// Reading an existing blob (to find its last offset) failed.
    #[error("reading raw blob {blob} to find its last offset: {source}")]
    Read {
        /// Blob name.
        blob: String,
        /// Storage error.
        #[source]
        source: object_store::Error,
    },
    /// An existing blob does not say where it ends.
    #[error("raw blob {blob} exists but its last offset cannot be read: {why}")]
    Unreadable {
        /// Blob name.
        blob: String,
        /// What is wrong.
        why: String,
    },
    /// Gzip failed (out of memory or a panicked compression thread).
    #[error("compressing the batch for raw blob {blob}: {why}")]
    Gzip {
        /// Blob name.
        blob: String,
        /// What failed.
        why: String,
    },
}

/// One blob this call created.
#[derive(Debug, Clone)]
pub struct Written {
    /// Blob name.
    pub blob: String,
    /// First offset.
    pub first_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// Records.
    pub records: usize,
    /// Uncompressed bytes.
    pub bytes: usize,
    /// Stored (gzip) bytes.
    pub stored_bytes: usize,
}

/// What [`Sink::land`] did.
#[derive(Debug, Clone)]
pub struct Landed {
    /// Every offset below this is durable in storage.
    pub frontier: i64,
    /// Every chain position the walk reached, in order (the end of each blob found or written;
    /// the last is `frontier`). Only these may be committed: a commit inside a blob would start
    /// the next owner's chain there.
    pub positions: Vec<i64>,
    /// The blob created, if any.
    pub written: Option<Written>,
    /// Records dropped because storage already held them.
    pub skipped: usize,
}

/// Freed gzip outputs kept for reuse (a few dozen at `BATCH_SIZE` 1 000).
const GZ_POOL_BYTES: usize = 8 * 1024 * 1024;

/// The raw container.
#[derive(Debug)]
pub struct Sink {
    store: Arc<dyn ObjectStore>,
    level: Compression,
    /// Gzip output buffers, reused once the upload is done with them.
    gz_buffers: Arc<BufferPool>,
    /// Cleared after a store refuses user metadata (local folders); readers then fall back to
    /// the last line of the blob.
    metadata: AtomicBool,
}

impl Sink {
    /// A sink writing gzip at `level` (0-9).
    pub fn new(store: Arc<dyn ObjectStore>, level: u32) -> Self {
        Sink {
            store,
            level: Compression::new(level),
            gz_buffers: BufferPool::new(GZ_POOL_BYTES),
            metadata: AtomicBool::new(true),
        }
    }

    /// The store (for readiness probes).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Lands `batch` starting at `frontier` (records below it are already durable); see the
    /// module docs. Returns the new frontier: every offset of the batch is durable below it.
    pub async fn land(&self, batch: &mut Sealed, frontier: i64) -> Result<Landed, SinkError> {
        let mut landed = Landed {
            frontier,
            positions: Vec::new(),
            written: None,
            skipped: 0,
        };
        loop {
            landed.skipped += batch.trim_below(landed.frontier);
            let Some(first) = batch.first_offset() else {
                return Ok(landed);
            };
            let blob = raw_blob_name(
                &batch.topic,
                batch.partition,
                first,
                batch.first_timestamp(),
            );
            let path = Path::from(blob.as_str());
            // Create-only upload first: a blob under this name exists only after a crash or a
            // race, and then the conflict says so, so the common case costs one round trip.
            match self.put_create(&path, &blob, batch).await? {
                Some(written) => {
                    landed.frontier = written.last_offset + 1;
                    landed.positions.push(landed.frontier);
                    landed.written = Some(written);
                    return Ok(landed);
                }
                None => {
                    let started = Instant::now();
                    let existing = self.last_offset_of(&path, &blob).await;
                    metrics::histogram!(m::HEAD_SECONDS).record(started.elapsed().as_secs_f64());
                    let last = existing?.ok_or_else(|| SinkError::Unreadable {
                        blob: blob.clone(),
                        why: "the upload said it exists, then it was not found".to_owned(),
                    })?;
                    self.reconciled(batch, &blob, first, last, "conflict");
                    landed.frontier = last + 1;
                    landed.positions.push(landed.frontier);
                }
            }
        }
    }

    fn reconciled(&self, batch: &Sealed, blob: &str, first: i64, last: i64, how: &'static str) {
        tracing::info!(
            event = "blob_already_landed",
            topic = %batch.topic,
            partition = batch.partition,
            first_offset = first,
            last_offset = last,
            blob,
            how,
        );
        metrics::counter!(m::RECONCILIATIONS, "topic" => batch.topic.to_string(), "how" => how)
            .increment(1);
    }

    /// The last offset of the blob at `path`, `None` if there is none. Reads the `last_offset`
    /// metadata; when absent (a store without metadata) it reads the blob's last line.
    pub async fn last_offset_of(&self, path: &Path, blob: &str) -> Result<Option<i64>, SinkError> {
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(path, head).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => {
                return Err(SinkError::Head {
                    blob: blob.to_owned(),
                    source,
                });
            }
        };
        let unreadable = |why: String| SinkError::Unreadable {
            blob: blob.to_owned(),
            why,
        };
        let first = first_offset_in_name(blob);
        if let Some(v) = result
            .attributes
            .get(&Attribute::Metadata(META_LAST_OFFSET.into()))
        {
            let last: i64 = v.parse().map_err(|_| {
                unreadable(format!(
                    "metadata {META_LAST_OFFSET}=`{}` is not an offset",
                    v.as_ref()
                ))
            })?;
            if first.is_some_and(|f| last < f) {
                return Err(unreadable(format!(
                    "metadata {META_LAST_OFFSET}={last} is before its first offset"
                )));
            }
            return Ok(Some(last));
        }
        let read = |source| SinkError::Read {
            blob: blob.to_owned(),
            source,
        };
        let gz = self
            .store
            .get(path)
            .await
            .map_err(read)?
            .bytes()
            .await
            .map_err(read)?;
        let last = last_offset_in_body(&gz).map_err(unreadable)?;
        if first.is_some_and(|f| last < f) {
            return Err(unreadable(format!(
                "its last line's offset {last} is before its first offset"
            )));
        }
        Ok(Some(last))
    }

    /// Uploads the batch create-only; `None` when a blob already has that name.
    async fn put_create(
        &self,
        path: &Path,
        blob: &str,
        batch: &Sealed,
    ) -> Result<Option<Written>, SinkError> {
        let first = batch
            .first_offset()
            .expect("land checks for an empty batch");
        let last = batch.last_offset().expect("non-empty");
        let body = batch.body();
        let bytes = body.len();
        let level = self.level;
        let out = self.gz_buffers.take(crate::gzip::capacity_for(bytes));
        let gz = tokio::task::spawn_blocking(move || crate::gzip::compress_into(&body, level, out))
            .await
            .map_err(|e| SinkError::Gzip {
                blob: blob.to_owned(),
                why: e.to_string(),
            })?
            .map_err(|e| SinkError::Gzip {
                blob: blob.to_owned(),
                why: e.to_string(),
            })?;
        let gz = self.gz_buffers.freeze(gz);
        let stored_bytes = gz.len();
        let records = batch.records();
        let started = Instant::now();
        loop {
            let mut attributes = Attributes::new();
            if self.metadata.load(Ordering::Relaxed) {
                attributes.insert(Attribute::ContentType, CONTENT_TYPE.into());
                for (key, value) in raw_blob_metadata(first, last, records) {
                    attributes.insert(Attribute::Metadata(key.into()), value.into());
                }
            }
            let opts = PutOptions {
                mode: PutMode::Create,
                attributes,
                ..PutOptions::default()
            };
            match self.store.put_opts(path, gz.clone().into(), opts).await {
                Ok(_) => {
                    metrics::histogram!(m::UPLOAD_SECONDS).record(started.elapsed().as_secs_f64());
                    return Ok(Some(Written {
                        blob: blob.to_owned(),
                        first_offset: first,
                        last_offset: last,
                        records,
                        bytes,
                        stored_bytes,
                    }));
                }
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => {
                    return Ok(None);
                }
                Err(object_store::Error::NotImplemented)
                    if self.metadata.load(Ordering::Relaxed) =>
                {
                    // A local folder stores no attributes: land without them (readers fall back).
                    tracing::warn!(event = "blob_metadata_unsupported", blob);
                    self.metadata.store(false, Ordering::Relaxed);
                }
                Err(source) => {
                    return Err(SinkError::Put {
                        blob: blob.to_owned(),
                        first,
                        last,
                        source,
                    });
                }
            }
        }
    }
}

fn first_offset_in_name(blob: &str) -> Option<i64> {
    model::naming::RawBlobName::parse(blob)
        .ok()
        .map(|n| n.first_offset)
}

/// The offset of the last line of a gzipped raw blob.
pub fn last_offset_in_body(gz: &[u8]) -> Result<i64, String> {
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(gz), &mut text)
        .map_err(|e| format!("not gzip: {e}"))?;
    let line = text
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .ok_or_else(|| "it holds no line".to_owned())?;
    RawLine::decode(line)
        .map(|l| l.offset)
        .map_err(|e| format!("its last line is not a raw record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{FlushReason, Limits, PartitionBuffer, Record};
    use model::naming::{META_FIRST_OFFSET, META_RECORD_COUNT};
    use model::raw::{RecordPosition, TimestampType};
    use object_store::memory::InMemory;
    use std::time::Duration;

    fn sealed(offsets: std::ops::RangeInclusive<i64>) -> Sealed {
        let limits = Limits {
            max_records: 1_000_000,
            max_bytes: 1 << 30,
            max_wait: Duration::from_secs(1),
        };
        let mut b = PartitionBuffer::new(Arc::from("t"), 0, BufferPool::new(0));
        for o in offsets {
            let rec = Record {
                position: RecordPosition {
                    topic: "t",
                    partition: 0,
                    offset: o,
                    timestamp: Some(1_000 * o),
                    timestamp_type: TimestampType::CreateTime,
                },
                key: None,
                value: Some(b"{\"a\": 1}"),
                headers: &[],
            };
            let _ = b.push(&rec, &limits, tokio::time::Instant::now());
        }
        b.take(FlushReason::Shutdown).expect("records")
    }

    async fn ranges(store: &dyn ObjectStore) -> Vec<(i64, i64)> {
        use futures::TryStreamExt;
        let metas: Vec<_> = store.list(None).try_collect().await.expect("list");
        let mut out = Vec::new();
        for meta in metas {
            let gz = store
                .get(&meta.location)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            let first = first_offset_in_name(meta.location.as_ref()).expect("raw name");
            out.push((first, last_offset_in_body(&gz).expect("last")));
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn walks_past_blobs_a_previous_run_landed_whatever_its_cuts() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let sink = Sink::new(store.clone(), 1);
        // A previous run landed 0..=4 and 5..=9 but committed nothing.
        assert_eq!(
            sink.land(&mut sealed(0..=4), 0)
                .await
                .expect("land")
                .frontier,
            5
        );
        assert_eq!(
            sink.land(&mut sealed(5..=9), 5)
                .await
                .expect("land")
                .frontier,
            10
        );
        // This run starts over at 0 with different cuts.
        let l = sink.land(&mut sealed(0..=6), 0).await.expect("land");
        assert_eq!((l.frontier, l.skipped, l.written.is_none()), (10, 7, true));
        assert_eq!(l.positions, [5, 10], "every blob end it walked past");
        let l = sink
            .land(&mut sealed(7..=12), l.frontier)
            .await
            .expect("land");
        assert_eq!((l.frontier, l.skipped), (13, 3));
        assert_eq!(l.written.expect("written").first_offset, 10);
        assert_eq!(ranges(store.as_ref()).await, [(0, 4), (5, 9), (10, 12)]);
    }

    #[tokio::test]
    async fn create_only_conflict_recuts_the_batch() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let sink = Sink::new(store.clone(), 1);
        let mut late = sealed(0..=9);
        // Another writer lands 0..=3 between our HEAD and our PUT: simulate by putting directly.
        sink.land(&mut sealed(0..=3), 0)
            .await
            .expect("other writer");
        let path = Path::from(raw_blob_name("t", 0, 0, Some(0)));
        assert_eq!(
            sink.put_create(&path, path.as_ref(), &late)
                .await
                .expect("put")
                .map(|w| w.records),
            None
        );
        let l = sink.land(&mut late, 0).await.expect("land");
        assert_eq!(l.frontier, 10);
        assert_eq!(
            l.positions,
            [4, 10],
            "the conflicting blob's end, then ours"
        );
        assert_eq!(ranges(store.as_ref()).await, [(0, 3), (4, 9)]);
    }

    #[tokio::test]
    async fn metadata_records_the_range_and_local_folders_fall_back_to_the_last_line() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let sink = Sink::new(store.clone(), 6);
        sink.land(&mut sealed(3..=8), 3).await.expect("land");
        let path = Path::from(raw_blob_name("t", 0, 3, Some(3000)));
        let head = store
            .get_opts(
                &path,
                GetOptions {
                    head: true,
                    ..Default::default()
                },
            )
            .await
            .expect("head");
        let meta = |k: &str| {
            head.attributes
                .get(&Attribute::Metadata(k.to_owned().into()))
                .map(|v| v.to_string())
        };
        assert_eq!(meta(META_FIRST_OFFSET).as_deref(), Some("3"));
        assert_eq!(meta(META_LAST_OFFSET).as_deref(), Some("8"));
        assert_eq!(meta(META_RECORD_COUNT).as_deref(), Some("6"));

        let dir = std::env::temp_dir().join(format!("worker-sink-{}", std::process::id()));
        let local =
            service::storage::open("RAW_URL", &format!("file://{}", dir.display())).expect("local");
        let sink = Sink::new(local, 1);
        sink.land(&mut sealed(0..=4), 0).await.expect("land");
        let l = sink.land(&mut sealed(0..=5), 0).await.expect("land");
        assert_eq!((l.skipped, l.frontier), (5, 6));
        let _ = std::fs::remove_dir_all(dir);
    }
}

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
//!
//! Before walking past a blob it found, the sink checks that the blob holds the records it read:
//! each blob carries the [`Fingerprint`] of its first record in its metadata, compared with the
//! batch's record at the same offset (the batch's first record left, which the blob's name is
//! made of). A different record means Kafka hands out offsets it handed out before (a topic
//! deleted and re-created, a broker that lost its log): landing then stops with
//! [`SinkError::Incarnation`] instead of skipping the new records as landed. Blobs without the
//! fingerprint (written before it existed) are trusted, as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use flate2::Compression;
use model::naming::{META_FIRST_FINGERPRINT, META_LAST_OFFSET, raw_blob_metadata, raw_blob_name};
use model::raw::{RawLine, RawLineError};
use object_store::path::Path;
use object_store::{Attribute, Attributes, GetOptions, ObjectStore, PutMode, PutOptions};
use tracing::Instrument as _;

use crate::batch::Sealed;
use crate::buffers::BufferPool;
use crate::fingerprint::{Fingerprint, Verdict};
use crate::telemetry;

/// Content type of raw blobs (the body is gzip; the name says `.json.gz`, so no Content-Encoding).
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// Why a batch could not be landed. The caller retries (landing is idempotent) unless
/// [`SinkError::is_fatal`].
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A blob under the batch's name holds other records than Kafka has now at its offsets.
    #[error(
        "raw blob {blob} does not hold the records {topic}/{partition} has now from offset \
         {offset} on (its first record is {stored}, Kafka's record at {offset} is {fetched}): \
         the topic was deleted and re-created, or the broker lost its log, and old offsets are \
         handed out again. Nothing from offset {offset} on was landed or committed, and nothing \
         was skipped. To land the new records, move this topic's blobs of the old incarnation \
         (everything under `{topic}/` in the raw container, and their outputs in `standard`) \
         elsewhere, or point RAW_URL at a new container, then restart the worker \
         (docs/DESIGN.md, \"Another incarnation of a topic\")"
    )]
    Incarnation {
        /// Blob name.
        blob: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The blob's first offset (the batch's record there differs).
        offset: i64,
        /// The fingerprint in the blob's metadata (or of its first line).
        stored: Fingerprint,
        /// The fingerprint of the record Kafka gave at `offset`.
        fetched: Fingerprint,
    },
    /// The batch's first record cannot be read back from its own raw line (a bug).
    #[error("fingerprinting the record at offset {offset} for raw blob {blob}: {source}")]
    Fingerprint {
        /// Blob name.
        blob: String,
        /// Offset of the record.
        offset: i64,
        /// Why its line does not decode.
        #[source]
        source: RawLineError,
    },
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
    #[error("compressing the batch for raw blob {blob}: {source}")]
    Gzip {
        /// Blob name.
        blob: String,
        /// The compressor's error, or the compression task's.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SinkError {
    /// True when retrying cannot help: the partition must stop and a person decide.
    pub fn is_fatal(&self) -> bool {
        matches!(self, SinkError::Incarnation { .. })
    }
}

/// What a blob already under a batch's name says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// Its last offset (inclusive).
    pub last_offset: i64,
    /// The fingerprint of its first record, `None` for blobs written before it was recorded.
    pub first_fingerprint: Option<Fingerprint>,
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

impl Written {
    /// What [`telemetry::batch_landed`] reports of it.
    pub fn event(&self) -> telemetry::BlobWritten<'_> {
        telemetry::BlobWritten {
            blob: &self.blob,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            records: self.records,
            bytes: self.bytes,
            stored_bytes: self.stored_bytes,
        }
    }
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
            let line = batch.first_line().expect("non-empty");
            let fetched = Fingerprint::of_line(line).map_err(|source| SinkError::Fingerprint {
                blob: blob.clone(),
                offset: first,
                source,
            })?;
            let span = telemetry::blob_span(&blob, first);
            // Create-only upload first: a blob under this name exists only after a crash or a
            // race, and then the conflict says so, so the common case costs one round trip.
            match self
                .put_create(&path, &blob, batch, fetched)
                .instrument(span.clone())
                .await?
            {
                Some(written) => {
                    landed.frontier = written.last_offset + 1;
                    landed.positions.push(landed.frontier);
                    landed.written = Some(written);
                    return Ok(landed);
                }
                None => {
                    let started = Instant::now();
                    let existing = self.existing(&path, &blob).instrument(span).await;
                    telemetry::blob_head(started.elapsed());
                    let existing = existing?.ok_or_else(|| SinkError::Unreadable {
                        blob: blob.clone(),
                        why: "the upload said it exists, then it was not found".to_owned(),
                    })?;
                    // The blob starts at `first` (its name says so): its first record must be
                    // the batch's record at `first`, or none of its records are ours.
                    let verdict = Verdict::of(existing.first_fingerprint, fetched);
                    if let Verdict::Different(stored) = verdict {
                        return Err(SinkError::Incarnation {
                            blob,
                            topic: batch.topic.to_string(),
                            partition: batch.partition,
                            offset: first,
                            stored,
                            fetched,
                        });
                    }
                    let last = existing.last_offset;
                    self.reconciled(batch, &blob, first, last, verdict);
                    landed.frontier = last + 1;
                    landed.positions.push(landed.frontier);
                }
            }
        }
    }

    fn reconciled(&self, batch: &Sealed, blob: &str, first: i64, last: i64, verdict: Verdict) {
        telemetry::blob_already_landed(
            &batch.topic,
            batch.partition,
            first,
            last,
            blob,
            "conflict",
            verdict.as_str(),
        );
    }

    /// What the blob at `path` says about itself, `None` if there is none. Reads the
    /// `last_offset` and `first_fingerprint` metadata; when `last_offset` is absent (a store
    /// without metadata) it reads the blob's first and last lines.
    pub async fn existing(&self, path: &Path, blob: &str) -> Result<Option<Existing>, SinkError> {
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
            // Absent on blobs of earlier workers; another hash's value cannot be compared.
            let first_fingerprint = result
                .attributes
                .get(&Attribute::Metadata(META_FIRST_FINGERPRINT.into()))
                .and_then(|v| Fingerprint::parse(v));
            return Ok(Some(Existing {
                last_offset: last,
                first_fingerprint,
            }));
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
        let existing = read_body(&gz).map_err(unreadable)?;
        if first.is_some_and(|f| existing.last_offset < f) {
            return Err(unreadable(format!(
                "its last line's offset {} is before its first offset",
                existing.last_offset
            )));
        }
        Ok(Some(existing))
    }

    /// Uploads the batch create-only, its first record's fingerprint `first_fingerprint` in the
    /// metadata; `None` when a blob already has that name.
    async fn put_create(
        &self,
        path: &Path,
        blob: &str,
        batch: &Sealed,
        first_fingerprint: Fingerprint,
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
                source: Box::new(e),
            })?
            .map_err(|e| SinkError::Gzip {
                blob: blob.to_owned(),
                source: Box::new(e),
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
                attributes.insert(
                    Attribute::Metadata(META_FIRST_FINGERPRINT.into()),
                    first_fingerprint.to_string().into(),
                );
            }
            let opts = PutOptions {
                mode: PutMode::Create,
                attributes,
                ..PutOptions::default()
            };
            match self.store.put_opts(path, gz.clone().into(), opts).await {
                Ok(_) => {
                    telemetry::blob_uploaded(started.elapsed());
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
                    telemetry::blob_metadata_unsupported(blob);
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

/// What a gzipped raw blob says about itself when its store keeps no metadata: the offset of its
/// last line and the fingerprint of its first.
pub fn read_body(gz: &[u8]) -> Result<Existing, String> {
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(gz), &mut text)
        .map_err(|e| format!("not gzip: {e}"))?;
    let mut lines = text.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let first = lines.next().ok_or_else(|| "it holds no line".to_owned())?;
    let last = lines.next_back().unwrap_or(first);
    let first_fingerprint = Fingerprint::of_line(first)
        .map_err(|e| format!("its first line is not a raw record: {e}"))?;
    let last_offset = RawLine::decode(last)
        .map(|l| l.offset)
        .map_err(|e| format!("its last line is not a raw record: {e}"))?;
    Ok(Existing {
        last_offset,
        first_fingerprint: Some(first_fingerprint),
    })
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
        sealed_of(offsets, b"{\"a\": 1}")
    }

    /// Records `offsets` with `value` (another value: another incarnation of the topic).
    fn sealed_of(offsets: std::ops::RangeInclusive<i64>, value: &[u8]) -> Sealed {
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
                value: Some(value),
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
            out.push((first, read_body(&gz).expect("body").last_offset));
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
        let fingerprint = Fingerprint::of_line(late.first_line().expect("line")).expect("fp");
        assert_eq!(
            sink.put_create(&path, path.as_ref(), &late, fingerprint)
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
        assert_eq!(
            meta(META_FIRST_FINGERPRINT),
            Some(Fingerprint::of(Some(3000), None, Some(b"{\"a\": 1}")).to_string()),
            "the fingerprint of the record at offset 3"
        );

        let dir = std::env::temp_dir().join(format!("worker-sink-{}", std::process::id()));
        let local =
            service::storage::open("RAW_URL", &format!("file://{}", dir.display())).expect("local");
        let sink = Sink::new(local, 1);
        sink.land(&mut sealed(0..=4), 0).await.expect("land");
        let l = sink.land(&mut sealed(0..=5), 0).await.expect("land");
        assert_eq!((l.skipped, l.frontier), (5, 6));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_blob_of_another_incarnation_stops_the_walk_at_its_offset() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let sink = Sink::new(store.clone(), 1);
        // 0..=4 was landed from these very records; 5..=9 holds other records at those offsets.
        sink.land(&mut sealed(0..=4), 0).await.expect("land");
        sink.land(&mut sealed_of(5..=9, b"{\"old\": true}"), 5)
            .await
            .expect("land");
        // The batch starts below the foreign blob: it walks past 0..=4 (same first record), then
        // compares its own record at 5, not at 0, with the blob starting there.
        let mut batch = sealed(0..=9);
        let err = sink
            .land(&mut batch, 0)
            .await
            .expect_err("another incarnation");
        let SinkError::Incarnation {
            blob,
            topic,
            partition,
            offset,
            stored,
            fetched,
        } = &err
        else {
            panic!("not an incarnation error: {err}");
        };
        assert_eq!(
            (blob.as_str(), topic.as_str(), *partition, *offset),
            (raw_blob_name("t", 0, 5, Some(5000)).as_str(), "t", 0, 5)
        );
        assert_eq!(
            *fetched,
            Fingerprint::of(Some(5000), None, Some(b"{\"a\": 1}"))
        );
        assert_eq!(
            *stored,
            Fingerprint::of(Some(5000), None, Some(b"{\"old\": true}"))
        );
        assert!(err.is_fatal());
        let text = err.to_string();
        for part in [
            blob.as_str(),
            "t/0",
            "offset 5",
            &stored.to_string(),
            &fetched.to_string(),
            "re-created",
            "lost its log",
            "nothing was skipped",
            "RAW_URL",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert_eq!(
            ranges(store.as_ref()).await,
            [(0, 4), (5, 9)],
            "nothing written"
        );
        // A normal restart of the other incarnation walks past both as before.
        let l = sink
            .land(&mut sealed_of(5..=9, b"{\"old\": true}"), 5)
            .await
            .expect("same records");
        assert_eq!((l.frontier, l.skipped), (10, 5));
    }

    #[tokio::test]
    async fn a_blob_without_a_fingerprint_is_trusted_as_before() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let sink = Sink::new(store.clone(), 1);
        // An earlier worker's blob: offsets in its metadata, no fingerprint, other records.
        let old = sealed_of(0..=4, b"{\"old\": true}");
        let mut attributes = Attributes::new();
        for (k, v) in raw_blob_metadata(0, 4, 5) {
            attributes.insert(Attribute::Metadata(k.into()), v.into());
        }
        let opts = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        let gz = crate::gzip::compress(&old.body(), Compression::new(1)).expect("gzip");
        store
            .put_opts(
                &Path::from(raw_blob_name("t", 0, 0, Some(0))),
                gz.into(),
                opts,
            )
            .await
            .expect("put");
        let l = sink.land(&mut sealed(0..=6), 0).await.expect("land");
        assert_eq!((l.skipped, l.frontier), (5, 7));
    }

    #[tokio::test]
    async fn local_folders_tell_another_incarnation_by_the_first_line() {
        let dir = std::env::temp_dir().join(format!("worker-sink-inc-{}", std::process::id()));
        let local =
            service::storage::open("RAW_URL", &format!("file://{}", dir.display())).expect("local");
        let sink = Sink::new(local, 1);
        sink.land(&mut sealed_of(0..=4, b"{\"old\": true}"), 0)
            .await
            .expect("land");
        let err = sink.land(&mut sealed(0..=5), 0).await.expect_err("foreign");
        assert!(
            matches!(err, SinkError::Incarnation { offset: 0, .. }),
            "{err}"
        );
        let l = sink
            .land(&mut sealed_of(0..=5, b"{\"old\": true}"), 0)
            .await
            .expect("same records");
        assert_eq!((l.skipped, l.frontier), (5, 6));
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! Per-partition batching: encoding records into raw lines as they arrive and deciding when a
//! batch is cut.
//!
//! A batch is a contiguous offset range of one partition, already encoded as JSON lines (so no
//! Kafka message is held after it is routed). It is cut when it reaches [`Limits::max_records`]
//! records, when the next record would push it over [`Limits::max_bytes`] (a single record bigger
//! than that lands alone), or [`Limits::max_wait`] after its first record; the pipeline also cuts
//! under memory pressure, on revoke and on shutdown. Cut batches are [`Sealed`]: immutable bytes
//! plus an index of offsets, which the sink trims when storage already holds a prefix.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use memchr::memmem;
use model::envelope::{CLEANING_GAME_RECORDS, CleaningTask, Envelope};
use model::raw::{Encoding, RecordPosition, encode_line};
use tokio::time::Instant;

use crate::buffers::BufferPool;

/// Flush triggers of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `BATCH_SIZE`.
    pub max_records: usize,
    /// `BATCH_MAX_BYTES` (uncompressed).
    pub max_bytes: usize,
    /// `BATCH_MAX_WAIT_MS`, counted from the batch's first record.
    pub max_wait: Duration,
}

/// Why a batch was cut; the `reason` label of `worker_batches_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    /// `BATCH_SIZE` records.
    Count,
    /// `BATCH_MAX_BYTES` reached.
    Bytes,
    /// `BATCH_MAX_WAIT_MS` since the first record.
    MaxWait,
    /// `BUFFER_MAX_BYTES` pressure: the largest open batch is cut early.
    Memory,
    /// The partition was revoked (the batch is dropped, not landed).
    Revoke,
    /// SIGTERM/SIGINT.
    Shutdown,
}

impl FlushReason {
    /// The metric label and log field value.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Count => "count",
            FlushReason::Bytes => "bytes",
            FlushReason::MaxWait => "max_wait",
            FlushReason::Memory => "memory",
            FlushReason::Revoke => "revoke",
            FlushReason::Shutdown => "shutdown",
        }
    }
}

/// What a record's value was, for `worker_records_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Embedded verbatim as JSON.
    Json,
    /// UTF-8 text that is not (single-line) JSON.
    Text,
    /// Not UTF-8, kept as base64.
    Binary,
    /// Absent (tombstone).
    Null,
}

impl ValueKind {
    /// The kind of a value carried with `encoding`.
    pub fn of(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Json => ValueKind::Json,
            Encoding::Utf8 => ValueKind::Text,
            Encoding::Base64 => ValueKind::Binary,
            Encoding::Null => ValueKind::Null,
        }
    }

    /// All kinds, in the order of [`Batch::kinds`].
    pub const ALL: [ValueKind; 4] = [
        ValueKind::Json,
        ValueKind::Text,
        ValueKind::Binary,
        ValueKind::Null,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Json => "json",
            ValueKind::Text => "text",
            ValueKind::Binary => "binary",
            ValueKind::Null => "null",
        }
    }
}

/// A clean-up request found in a record, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupRequest {
    /// Offset of the `Cleaning Game Records` record.
    pub offset: i64,
    /// The task.
    pub task: CleaningTask,
}

/// One encoded record in a batch.
#[derive(Debug, Clone, Copy)]
struct Line {
    offset: i64,
    /// End of the line (exclusive) in the batch buffer.
    end: usize,
    timestamp: Option<i64>,
    kind: ValueKind,
}

/// A record as the consumer hands it over (borrowed from the Kafka message).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Topic, partition, offset, timestamp.
    pub position: RecordPosition<'a>,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes.
    pub value: Option<&'a [u8]>,
    /// Headers in order: names and values as bytes.
    pub headers: &'a [crate::headers::RecordHeader<'a>],
}

/// An open batch of one partition.
#[derive(Debug)]
pub struct Batch {
    topic: Arc<str>,
    partition: i32,
    buf: Vec<u8>,
    lines: Vec<Line>,
    cleanups: Vec<CleanupRequest>,
    kinds: [u64; 4],
    opened: Instant,
}

impl Batch {
    fn new(topic: Arc<str>, partition: i32, opened: Instant) -> Self {
        Batch {
            topic,
            partition,
            buf: Vec::new(),
            lines: Vec::new(),
            cleanups: Vec::new(),
            kinds: [0; 4],
            opened,
        }
    }

    /// Uncompressed bytes.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Record count.
    pub fn records(&self) -> usize {
        self.lines.len()
    }

    /// When this batch must land at the latest.
    pub fn deadline(&self, limits: &Limits) -> Instant {
        self.opened + limits.max_wait
    }

    /// Appends `record`; true when it is a clean-up request.
    fn push(&mut self, record: &Record<'_>) -> bool {
        let kind = ValueKind::of(encode_line(
            &mut self.buf,
            record.position,
            record.key,
            record.value,
            record.headers,
        ));
        self.kinds[kind as usize] += 1;
        let task = (kind == ValueKind::Json)
            .then(|| record.value.and_then(cleaning_task))
            .flatten();
        let found = task.is_some();
        if let Some(task) = task {
            self.cleanups.push(CleanupRequest {
                offset: record.position.offset,
                task,
            });
        }
        self.lines.push(Line {
            offset: record.position.offset,
            end: self.buf.len(),
            timestamp: record.position.timestamp,
            kind,
        });
        found
    }

    /// Moves the last record into a new batch opened at `now` (the record that overflowed).
    fn split_last(&mut self, now: Instant) -> Batch {
        let last = self.lines.pop().expect("split_last needs two records");
        let start = self.lines.last().map_or(0, |l| l.end);
        let mut tail = Batch::new(self.topic.clone(), self.partition, now);
        tail.buf = self.buf[start..].to_vec();
        self.buf.truncate(start);
        tail.lines.push(Line {
            end: tail.buf.len(),
            ..last
        });
        if let Some(c) = self.cleanups.last()
            && c.offset == last.offset
        {
            tail.cleanups.push(self.cleanups.pop().expect("checked"));
        }
        self.kinds[last.kind as usize] -= 1;
        tail.kinds[last.kind as usize] += 1;
        tail
    }

    /// Seals the batch for upload; its buffer goes back to `pool` once the upload is done with it.
    pub fn seal(mut self, reason: FlushReason, pool: &Arc<BufferPool>) -> Sealed {
        let base = self.buf.len();
        // The body stays in memory until it is durable, with its whole allocation: give back
        // what a doubling growth over-reserved (an in-place shrink, no copy). A buffer reserved
        // from the last batch's size, or reused from the pool, is at most twice what it holds.
        // Never below the pool's minimum: a smaller buffer could not be handed out again.
        if self.buf.capacity() > 2 * base + SHRINK_SLACK {
            self.buf.shrink_to(pool.min_capacity());
        }
        Sealed {
            topic: self.topic,
            partition: self.partition,
            body: pool.freeze(self.buf),
            lines: self.lines,
            start: 0,
            cleanups: self.cleanups,
            kinds: self.kinds,
            reason,
            original_bytes: base,
        }
    }
}

/// Spare capacity a sealed body may keep without being shrunk, beyond twice its length.
const SHRINK_SLACK: usize = 64 * 1024;

/// Finds the clean-up marker in a value (SIMD substring search, built once: it runs on every
/// record).
static CLEANING_MARKER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(CLEANING_GAME_RECORDS.as_bytes()));

/// The clean-up task of a `Cleaning Game Records` envelope, if `value` is one.
pub fn cleaning_task(value: &[u8]) -> Option<CleaningTask> {
    // Cheap pre-check: a capital C is rare in these logs, the full parse is not.
    CLEANING_MARKER.find(value)?;
    let envelope: Envelope<'_> = serde_json::from_slice(value).ok()?;
    if envelope.log_message != CLEANING_GAME_RECORDS {
        return None;
    }
    match envelope.task::<CleaningTask>(CLEANING_GAME_RECORDS) {
        Ok(task) => Some(task),
        Err(e) => {
            // Rate-limited: it can repeat for every record of a producer gone wrong.
            crate::telemetry::cleanup_task_unreadable(&e);
            None
        }
    }
}

/// A cut batch waiting for (or in) upload. Trimming drops a prefix already durable in storage.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    body: Bytes,
    lines: Vec<Line>,
    start: usize,
    /// Clean-up requests of the batch's records (all of them, trimmed or not: clean-up is
    /// idempotent, and a trimmed record's clean-up may not have run before a crash).
    pub cleanups: Vec<CleanupRequest>,
    /// Record counts by [`ValueKind`].
    pub kinds: [u64; 4],
    /// Why it was cut.
    pub reason: FlushReason,
    /// Uncompressed bytes when it was sealed (what it occupies in memory).
    pub original_bytes: usize,
}

impl Sealed {
    /// True when trimming removed every record.
    pub fn is_empty(&self) -> bool {
        self.start >= self.lines.len()
    }

    /// Records left.
    pub fn records(&self) -> usize {
        self.lines.len() - self.start
    }

    /// First offset left.
    pub fn first_offset(&self) -> Option<i64> {
        self.lines.get(self.start).map(|l| l.offset)
    }

    /// Timestamp of the first record left (names the blob).
    pub fn first_timestamp(&self) -> Option<i64> {
        self.lines.get(self.start).and_then(|l| l.timestamp)
    }

    /// The raw line of the first record left, without its newline (its fingerprint goes into
    /// the blob's metadata).
    pub fn first_line(&self) -> Option<&[u8]> {
        let line = self.lines.get(self.start)?;
        let from = if self.start == 0 {
            0
        } else {
            self.lines[self.start - 1].end
        };
        // Every line ends with the newline `encode_line` wrote.
        Some(&self.body[from..line.end - 1])
    }

    /// Last offset.
    pub fn last_offset(&self) -> Option<i64> {
        self.lines.last().map(|l| l.offset)
    }

    /// The JSON lines left (what the blob holds, before gzip).
    pub fn body(&self) -> Bytes {
        let from = if self.start == 0 {
            0
        } else {
            self.lines[self.start - 1].end
        };
        self.body.slice(from..)
    }

    /// Drops records with an offset below `frontier` (they are already durable); returns how many.
    pub fn trim_below(&mut self, frontier: i64) -> usize {
        let keep = self.lines.partition_point(|l| l.offset < frontier);
        let dropped = keep.saturating_sub(self.start);
        self.start = self.start.max(keep);
        dropped
    }
}

/// The open batch of one partition and the cut rules.
#[derive(Debug)]
pub struct PartitionBuffer {
    topic: Arc<str>,
    partition: i32,
    open: Option<Batch>,
    cleanups_found: u64,
    /// Bytes of the last batch cut: the next one reserves that much up front instead of
    /// doubling its way there (each doubling copies, and leaves up to half the capacity unused).
    size_hint: usize,
    /// Where batch buffers come from and go back to.
    pool: Arc<BufferPool>,
}

impl PartitionBuffer {
    /// An empty buffer whose batches take their memory from `pool`.
    pub fn new(topic: Arc<str>, partition: i32, pool: Arc<BufferPool>) -> Self {
        PartitionBuffer {
            topic,
            partition,
            open: None,
            cleanups_found: 0,
            size_hint: 0,
            pool,
        }
    }

    /// Clean-up requests found in the records pushed so far (the pipeline registers each one's
    /// hold on the commit as its record arrives).
    pub fn cleanups_found(&self) -> u64 {
        self.cleanups_found
    }

    /// The open batch, if any.
    pub fn open(&self) -> Option<&Batch> {
        self.open.as_ref()
    }

    /// Appends a record at `now`; returns the batches it completed (0, 1 or 2) and the bytes
    /// the record added.
    pub fn push(
        &mut self,
        record: &Record<'_>,
        limits: &Limits,
        now: Instant,
    ) -> (Vec<Sealed>, usize) {
        let batch = self.open.get_or_insert_with(|| {
            let mut b = Batch::new(self.topic.clone(), self.partition, now);
            b.buf = self.pool.take(self.size_hint.min(limits.max_bytes) / 8 * 9);
            b
        });
        let before = batch.bytes();
        if batch.push(record) {
            self.cleanups_found += 1;
        }
        let added = batch.bytes() - before;
        let mut out = Vec::new();
        if batch.bytes() > limits.max_bytes && batch.records() > 1 {
            // The record overflowed the byte budget: land what came before it, and start the
            // next batch with it, so a blob exceeds BATCH_MAX_BYTES only for one huge record.
            let tail = batch.split_last(now);
            let full = std::mem::replace(batch, tail);
            let sealed = full.seal(FlushReason::Bytes, &self.pool);
            self.size_hint = sealed.original_bytes;
            out.push(sealed);
        }
        if let Some(reason) = self.full(limits) {
            out.extend(self.take(reason));
        }
        (out, added)
    }

    fn full(&self, limits: &Limits) -> Option<FlushReason> {
        let b = self.open.as_ref()?;
        if b.records() >= limits.max_records {
            Some(FlushReason::Count)
        } else if b.bytes() >= limits.max_bytes {
            Some(FlushReason::Bytes)
        } else {
            None
        }
    }

    /// Cuts the open batch if its max wait is over at `now`.
    pub fn expire(&mut self, limits: &Limits, now: Instant) -> Option<Sealed> {
        let due = self
            .open
            .as_ref()
            .is_some_and(|b| b.deadline(limits) <= now);
        if due {
            self.take(FlushReason::MaxWait)
        } else {
            None
        }
    }

    /// Cuts the open batch for `reason`.
    pub fn take(&mut self, reason: FlushReason) -> Option<Sealed> {
        let sealed = self.open.take().map(|b| b.seal(reason, &self.pool))?;
        self.size_hint = sealed.original_bytes;
        Some(sealed)
    }

    /// The deadline of the open batch.
    pub fn deadline(&self, limits: &Limits) -> Option<Instant> {
        self.open.as_ref().map(|b| b.deadline(limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::raw::{RawLine, TimestampType};

    const LIMITS: Limits = Limits {
        max_records: 3,
        max_bytes: 4096,
        max_wait: Duration::from_millis(500),
    };

    fn record(offset: i64, value: &[u8]) -> Record<'_> {
        Record {
            position: RecordPosition {
                topic: "t",
                partition: 1,
                offset,
                timestamp: Some(1_705_256_524_771 + offset),
                timestamp_type: TimestampType::CreateTime,
            },
            key: None,
            value: Some(value),
            headers: &[],
        }
    }

    fn offsets(s: &Sealed) -> Vec<i64> {
        s.body()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| RawLine::decode(l).expect("line").offset)
            .collect()
    }

    fn buffer() -> PartitionBuffer {
        PartitionBuffer::new(Arc::from("t"), 1, BufferPool::new(1 << 24))
    }

    #[test]
    fn a_landed_batch_buffer_carries_a_later_batch() {
        a_landed_buffer_is_reused(BufferPool::new(1 << 24));
    }

    #[test]
    fn a_small_batch_keeps_the_pools_minimum_so_its_buffer_is_reused() {
        // ~20 kB of lines in a 128 KiB buffer: sealing must not shrink it below the minimum.
        a_landed_buffer_is_reused(BufferPool::with_min_capacity(1 << 24, 128 * 1024));
    }

    fn a_landed_buffer_is_reused(pool: Arc<BufferPool>) {
        let mut b = PartitionBuffer::new(Arc::from("t"), 1, pool.clone());
        let limits = Limits {
            max_records: 50,
            max_bytes: 1 << 20,
            ..LIMITS
        };
        let value = [b'7'; 300];
        let mut cut = |from: i64| {
            let mut sealed = Vec::new();
            for offset in from..from + 50 {
                sealed.extend(b.push(&record(offset, &value), &limits, Instant::now()).0);
            }
            assert_eq!(sealed.len(), 1);
            sealed.pop().expect("one batch")
        };
        let first = cut(0);
        let memory = first.body().as_ptr();
        let second = cut(50);
        assert_ne!(second.body().as_ptr(), memory, "the first is still held");
        drop(first);
        assert!(pool.free_bytes() > 0, "given back once dropped");
        let third = cut(100);
        assert_eq!(third.body().as_ptr(), memory, "and reused");
        assert_eq!(offsets(&third), (100..150).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn cuts_at_batch_size() {
        let mut b = buffer();
        let now = Instant::now();
        assert!(b.push(&record(0, b"{}"), &LIMITS, now).0.is_empty());
        assert!(b.push(&record(1, b"{}"), &LIMITS, now).0.is_empty());
        let (sealed, _) = b.push(&record(2, b"{}"), &LIMITS, now);
        assert_eq!(sealed.len(), 1);
        assert_eq!(sealed[0].reason, FlushReason::Count);
        assert_eq!(offsets(&sealed[0]), [0, 1, 2]);
        assert!(b.open().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_batch_expires_after_max_wait_from_its_first_record() {
        let mut b = buffer();
        let start = Instant::now();
        b.push(&record(0, b"{}"), &LIMITS, start);
        tokio::time::advance(Duration::from_millis(400)).await;
        b.push(&record(1, b"{}"), &LIMITS, Instant::now());
        tokio::time::advance(Duration::from_millis(99)).await;
        assert!(b.expire(&LIMITS, Instant::now()).is_none(), "not yet due");
        assert_eq!(
            b.deadline(&LIMITS),
            Some(start + LIMITS.max_wait),
            "counted from the first record"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let s = b.expire(&LIMITS, Instant::now()).expect("due");
        assert_eq!((s.reason, offsets(&s)), (FlushReason::MaxWait, vec![0, 1]));
        assert!(b.deadline(&LIMITS).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn byte_budget_cuts_before_the_overflowing_record() {
        let limits = Limits {
            max_records: 1000,
            max_bytes: 1024,
            max_wait: Duration::from_secs(1),
        };
        let value = vec![b'x'; 300];
        let text = std::str::from_utf8(&value).expect("ascii");
        let json = format!("\"{text}\"");
        let mut b = buffer();
        let now = Instant::now();
        let mut sealed = Vec::new();
        for o in 0..10 {
            sealed.extend(b.push(&record(o, json.as_bytes()), &limits, now).0);
        }
        assert!(!sealed.is_empty());
        let mut next = 0;
        for s in &sealed {
            assert_eq!(s.reason, FlushReason::Bytes);
            assert!(
                s.body().len() <= limits.max_bytes,
                "{} bytes",
                s.body().len()
            );
            let o = offsets(s);
            assert_eq!(o[0], next, "contiguous");
            next = *o.last().expect("non-empty") + 1;
        }
        assert_eq!(b.open().expect("rest").records() as i64, 10 - next);
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_bigger_than_the_budget_lands_alone() {
        let limits = Limits {
            max_records: 1000,
            max_bytes: 1024,
            max_wait: Duration::from_secs(1),
        };
        let huge = vec![0xffu8; 5000];
        let mut b = buffer();
        let now = Instant::now();
        assert!(b.push(&record(0, b"{}"), &limits, now).0.is_empty());
        let (sealed, _) = b.push(&record(1, &huge), &limits, now);
        assert_eq!(
            sealed.iter().map(offsets).collect::<Vec<_>>(),
            [vec![0], vec![1]]
        );
        assert_eq!(sealed[1].kinds[ValueKind::Binary as usize], 1);
        assert_eq!(sealed[0].kinds[ValueKind::Json as usize], 1);
    }

    #[tokio::test(start_paused = true)]
    async fn trimming_keeps_only_records_past_the_frontier() {
        let limits = Limits {
            max_records: 10,
            ..LIMITS
        };
        let mut b = buffer();
        let now = Instant::now();
        for o in [5, 6, 8, 9] {
            b.push(&record(o, b"1"), &limits, now);
        }
        let mut s = b.take(FlushReason::Shutdown).expect("open");
        assert_eq!(s.trim_below(7), 2);
        assert_eq!(
            (s.first_offset(), s.last_offset(), s.records()),
            (Some(8), Some(9), 2)
        );
        assert_eq!(s.first_timestamp(), Some(1_705_256_524_771 + 8));
        assert_eq!(offsets(&s), [8, 9]);
        let first = model::raw::RawLine::decode(s.first_line().expect("a line")).expect("raw");
        assert_eq!(first.offset, 8, "the first line left, without its newline");
        assert_eq!(s.trim_below(6), 0, "never grows back");
        assert_eq!(s.trim_below(10), 2);
        assert!(s.is_empty());
    }

    #[test]
    fn counts_value_kinds_and_finds_cleanup_tasks() {
        let mut batch = Batch::new(Arc::from("t"), 1, Instant::now());
        let clean = br#"{"level": "INFO", "timestamp": "2024-01-14T18:22:06.640118", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {"game_token": "g", "user_token": "u"}}"#;
        assert!(batch.push(&record(0, clean)), "a clean-up request");
        assert!(!batch.push(&record(1, b"not json")));
        assert!(!batch.push(&record(2, b"\xc3\x28")));
        assert!(!batch.push(&Record {
            value: None,
            ..record(3, b"")
        }));
        assert!(!batch.push(&record(4, br#"{"log_message": "Cleaning Game Records"}"#)));
        assert_eq!(batch.kinds, [2, 1, 1, 1]);
        assert_eq!(
            batch.cleanups,
            [CleanupRequest {
                offset: 0,
                task: CleaningTask {
                    game_token: "g".into(),
                    user_token: "u".into()
                }
            }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_buffer_counts_cleanup_requests_across_cuts() {
        let clean = br#"{"level": "INFO", "timestamp": "2024-01-14T18:22:06.640118", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {"game_token": "g", "user_token": "u"}}"#;
        let mut b = buffer();
        let now = Instant::now();
        for o in 0..7 {
            let value: &[u8] = if o % 3 == 0 { clean } else { b"{}" };
            let before = b.cleanups_found();
            let _ = b.push(&record(o, value), &LIMITS, now);
            assert_eq!(
                b.cleanups_found() - before,
                u64::from(o % 3 == 0),
                "offset {o}"
            );
        }
        assert_eq!(b.cleanups_found(), 3);
    }

    #[test]
    fn the_marker_is_found_anywhere_in_a_value_and_nowhere_else() {
        assert_eq!(CLEANING_MARKER.find(b"Cleaning Game Records"), Some(0));
        assert_eq!(
            CLEANING_MARKER.find(b"{\"m\": \"Cleaning Game Records\"}"),
            Some(7)
        );
        assert_eq!(CLEANING_MARKER.find(b"Cleaning Game Record"), None);
        assert_eq!(CLEANING_MARKER.find(b""), None);
    }
}

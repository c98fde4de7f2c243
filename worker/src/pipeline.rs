//! The consume loop: routes each record to its partition's batch, cuts batches (count, bytes,
//! max wait, memory, shutdown), runs uploads (one at a time per partition, up to
//! `UPLOAD_CONCURRENCY` overall), and commits each partition's frontier after its upload.
//!
//! ```text
//! loop select {
//!   shutdown            => break
//!   upload finished     => frontier := landed; commit frontier (async); queue clean-ups
//!   earliest deadline   => cut expired batches (max_wait)
//!   record              => skip if below frontier; encode into the open batch; cut if full
//! }
//! after each event: drop revoked partitions' buffers, relieve memory, start uploads
//! on shutdown: cut everything, wait for uploads (grace), commit synchronously
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Timestamp};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::{FlushReason, Limits, PartitionBuffer, Record, Sealed, ValueKind};
use crate::cleanup::{Cleaner, Job};
use crate::consumer::{Ownership, WorkerConsumer, offsets_list, record_commit};
use crate::metrics as m;
use crate::sink::Sink;
use crate::upload::{Outcome, UploadDone, upload};
use model::raw::{RecordPosition, TimestampType};

/// Records taken from the consumer per wake-up before timers and uploads get a turn.
const DRAIN: usize = 512;

/// What a run did (for logs, tests and the benchmark).
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Records consumed.
    pub consumed: u64,
    /// Records landed in blobs this run created.
    pub landed: u64,
    /// Blobs created.
    pub blobs: u64,
    /// Records found already landed.
    pub skipped: u64,
    /// Batches left unlanded when the grace period ran out.
    pub abandoned: u64,
}

/// Knobs the loop needs.
#[derive(Debug, Clone, Copy)]
pub struct LoopSettings {
    /// Cut rules.
    pub limits: Limits,
    /// `BUFFER_MAX_BYTES`.
    pub buffer_max_bytes: usize,
    /// `UPLOAD_CONCURRENCY`.
    pub upload_concurrency: usize,
    /// `SHUTDOWN_GRACE_MS`.
    pub shutdown_grace: Duration,
}

#[derive(Debug)]
struct Part {
    topic: Arc<str>,
    epoch: u64,
    buffer: PartitionBuffer,
    waiting: VecDeque<Sealed>,
    uploading: bool,
    /// Every offset below it is durable; `None` until the first upload of this epoch.
    frontier: Option<i64>,
}

/// The consume loop's state.
pub struct Pipeline {
    settings: LoopSettings,
    consumer: Arc<WorkerConsumer>,
    ownership: Arc<Ownership>,
    sink: Arc<Sink>,
    cleaner: Option<Cleaner>,
    parts: HashMap<String, HashMap<i32, Part>>,
    ready: VecDeque<(Arc<str>, i32)>,
    uploads: JoinSet<UploadDone>,
    in_flight: usize,
    buffered: usize,
    paused: bool,
    seen_changes: u64,
    next_deadline: Option<Instant>,
    deadline_dirty: bool,
    abort: CancellationToken,
    report: Report,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("in_flight", &self.in_flight)
            .field("buffered", &self.buffered)
            .field("paused", &self.paused)
            .finish()
    }
}

impl Pipeline {
    /// A loop over `consumer`, landing into `sink`.
    pub fn new(
        settings: LoopSettings,
        consumer: Arc<WorkerConsumer>,
        ownership: Arc<Ownership>,
        sink: Arc<Sink>,
        cleaner: Option<Cleaner>,
    ) -> Self {
        Pipeline {
            settings,
            consumer,
            ownership,
            sink,
            cleaner,
            parts: HashMap::new(),
            ready: VecDeque::new(),
            uploads: JoinSet::new(),
            in_flight: 0,
            buffered: 0,
            paused: false,
            seen_changes: 0,
            next_deadline: None,
            deadline_dirty: false,
            abort: CancellationToken::new(),
            report: Report::default(),
        }
    }

    /// Runs until `shutdown`, then lands what is buffered within the grace period.
    pub async fn run(mut self, shutdown: CancellationToken) -> Report {
        let consumer = self.consumer.clone();
        let far = || Instant::now() + Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        loop {
            if self.deadline_dirty {
                self.deadline_dirty = false;
                self.next_deadline = self
                    .parts
                    .values()
                    .flat_map(HashMap::values)
                    .filter_map(|p| p.buffer.deadline(&self.settings.limits))
                    .min();
            }
            sleep.as_mut().reset(self.next_deadline.unwrap_or_else(far));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = self.uploads.join_next(), if !self.uploads.is_empty() => {
                    self.on_upload(done);
                }
                _ = &mut sleep, if self.next_deadline.is_some() => self.expire(Instant::now()),
                msg = consumer.recv() => {
                    let before = self.report.consumed;
                    self.on_recv(msg);
                    // Take what is already fetched without another trip through select.
                    for _ in 0..DRAIN {
                        match consumer.recv().now_or_never() {
                            Some(msg) => self.on_recv(msg),
                            None => break,
                        }
                    }
                    metrics::counter!(m::CONSUMED).increment(self.report.consumed - before);
                }
            }
            self.check_rebalance();
            self.relieve_memory();
            self.schedule();
        }
        self.drain().await;
        self.report
    }

    fn on_recv(&mut self, msg: Result<BorrowedMessage<'_>, KafkaError>) {
        match msg {
            Ok(m) => self.on_message(&m),
            Err(e) => {
                metrics::counter!(m::ERRORS, "kind" => "kafka").increment(1);
                tracing::warn!(event = "consume_error", error = %e);
            }
        }
    }

    fn on_message(&mut self, msg: &BorrowedMessage<'_>) {
        // A rebalance runs inside recv(): notice it before routing this record.
        self.check_rebalance();
        let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
        self.report.consumed += 1;
        let limits = self.settings.limits;
        let Some(part) = self.part(topic, partition) else {
            metrics::counter!(m::ERRORS, "kind" => "stale_message").increment(1);
            return;
        };
        if part.frontier.is_some_and(|f| offset < f) {
            let part_topic = part.topic.clone();
            // Already durable (found in storage by an earlier upload): skip, but its clean-up
            // may not have run before the crash that left it uncommitted.
            metrics::counter!(m::SKIPPED_RECORDS, "topic" => topic.to_owned()).increment(1);
            self.report.skipped += 1;
            if let (Some(cleaner), Some(task)) = (
                &self.cleaner,
                msg.payload().and_then(crate::batch::cleaning_task),
            ) {
                cleaner.submit(Job {
                    topic: part_topic,
                    partition,
                    offset,
                    game: task.game_token,
                    user: task.user_token,
                });
            }
            return;
        }
        let (timestamp, timestamp_type) = match msg.timestamp() {
            Timestamp::NotAvailable => (None, TimestampType::NotAvailable),
            Timestamp::CreateTime(t) => (Some(t), TimestampType::CreateTime),
            Timestamp::LogAppendTime(t) => (Some(t), TimestampType::LogAppendTime),
        };
        let headers: Vec<(&str, Option<&[u8]>)> = msg
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default();
        let record = Record {
            position: RecordPosition {
                topic,
                partition,
                offset,
                timestamp,
                timestamp_type,
            },
            key: msg.key(),
            value: msg.payload(),
            headers: &headers,
        };
        let (sealed, added) = part.buffer.push(&record, &limits, Instant::now());
        let deadline = part.buffer.deadline(&limits);
        let topic = part.topic.clone();
        self.buffered += added;
        if let Some(d) = deadline
            && self.next_deadline.is_none_or(|n| d < n)
        {
            self.next_deadline = Some(d);
        }
        for s in sealed {
            self.enqueue(&topic, partition, s);
        }
    }

    /// The partition's state, created on its first record of an epoch; `None` when this process
    /// does not own the partition (a record fetched before a revoke).
    fn part(&mut self, topic: &str, partition: i32) -> Option<&mut Part> {
        if !self
            .parts
            .get(topic)
            .is_some_and(|ps| ps.contains_key(&partition))
        {
            let epoch = self.ownership.epoch(topic, partition)?;
            let name: Arc<str> = Arc::from(topic);
            self.parts.entry(topic.to_owned()).or_default().insert(
                partition,
                Part {
                    topic: name.clone(),
                    epoch,
                    buffer: PartitionBuffer::new(name, partition),
                    waiting: VecDeque::new(),
                    uploading: false,
                    frontier: None,
                },
            );
        }
        self.parts
            .get_mut(topic)
            .and_then(|ps| ps.get_mut(&partition))
    }

    fn enqueue(&mut self, topic: &Arc<str>, partition: i32, sealed: Sealed) {
        metrics::counter!(m::BATCHES, "topic" => topic.to_string(), "reason" => sealed.reason.as_str()).increment(1);
        for kind in ValueKind::ALL {
            let n = sealed.kinds[kind as usize];
            if n > 0 {
                metrics::counter!(m::RECORDS, "topic" => topic.to_string(), "kind" => kind.as_str()).increment(n);
            }
        }
        self.deadline_dirty = true;
        let Some(part) = self
            .parts
            .get_mut(&**topic)
            .and_then(|ps| ps.get_mut(&partition))
        else {
            return;
        };
        part.waiting.push_back(sealed);
        if !part.uploading && part.waiting.len() == 1 {
            self.ready.push_back((topic.clone(), partition));
        }
    }

    fn expire(&mut self, now: Instant) {
        let limits = self.settings.limits;
        let mut cut = Vec::new();
        for ps in self.parts.values_mut() {
            for (p, part) in ps.iter_mut() {
                if let Some(s) = part.buffer.expire(&limits, now) {
                    cut.push((part.topic.clone(), *p, s));
                }
            }
        }
        for (t, p, s) in cut {
            self.enqueue(&t, p, s);
        }
        self.deadline_dirty = true;
    }

    /// Drops the buffers of partitions whose epoch changed (revoked, maybe re-assigned).
    fn check_rebalance(&mut self) {
        let changes = self.ownership.changes();
        if changes == self.seen_changes {
            return;
        }
        self.seen_changes = changes;
        let mut freed = 0;
        for ps in self.parts.values_mut() {
            ps.retain(|p, part| {
                if self.ownership.is_current(&part.topic, *p, part.epoch) {
                    return true;
                }
                // Not landed, not committed: the next owner reads these records again.
                let open = part.buffer.take(FlushReason::Revoke).into_iter();
                for s in open.chain(part.waiting.drain(..)) {
                    freed += s.original_bytes;
                    metrics::counter!(m::BATCHES, "topic" => part.topic.to_string(), "reason" => "revoke").increment(1);
                }
                tracing::info!(event = "partition_dropped", topic = %part.topic, partition = *p, epoch = part.epoch);
                false
            });
        }
        self.buffered -= freed;
        self.deadline_dirty = true;
        if self.paused {
            // Newly assigned partitions start unpaused.
            self.set_paused(true, true);
        }
    }

    fn relieve_memory(&mut self) {
        let max = self.settings.buffer_max_bytes;
        metrics::gauge!(m::BUFFERED_BYTES).set(self.buffered as f64);
        if self.buffered > max {
            let open_total: usize = self
                .parts
                .values()
                .flat_map(HashMap::values)
                .filter_map(|p| p.buffer.open().map(|b| b.bytes()))
                .sum();
            if open_total >= max / 4 {
                // Open batches hold much of the budget: cut the largest so uploads free it.
                let largest = self
                    .parts
                    .values_mut()
                    .flat_map(HashMap::iter_mut)
                    .max_by_key(|(_, p)| p.buffer.open().map_or(0, |b| b.bytes()))
                    .and_then(|(p, part)| {
                        Some((
                            part.topic.clone(),
                            *p,
                            part.buffer.take(FlushReason::Memory)?,
                        ))
                    });
                if let Some((t, p, s)) = largest {
                    self.enqueue(&t, p, s);
                }
            }
            if !self.paused {
                self.set_paused(true, false);
            }
        } else if self.paused && self.buffered <= max / 4 * 3 {
            self.set_paused(false, false);
        }
    }

    fn set_paused(&mut self, pause: bool, again: bool) {
        let assignment = match self.consumer.assignment() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(event = "assignment_unknown", error = %e);
                return;
            }
        };
        let result = if pause {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        if let Err(e) = result {
            metrics::counter!(m::ERRORS, "kind" => "pause").increment(1);
            tracing::warn!(event = "pause_failed", pause, error = %e);
            return;
        }
        self.paused = pause;
        metrics::gauge!(m::PAUSED).set(if pause { 1.0 } else { 0.0 });
        if !again {
            tracing::info!(
                event = if pause {
                    "fetch_paused"
                } else {
                    "fetch_resumed"
                },
                buffered_bytes = self.buffered,
                buffer_max_bytes = self.settings.buffer_max_bytes,
            );
        }
    }

    /// Starts uploads for ready partitions while slots are free.
    fn schedule(&mut self) {
        while self.in_flight < self.settings.upload_concurrency {
            let Some((topic, partition)) = self.ready.pop_front() else {
                return;
            };
            let Some(part) = self
                .parts
                .get_mut(&*topic)
                .and_then(|ps| ps.get_mut(&partition))
            else {
                continue;
            };
            if part.uploading {
                continue;
            }
            let Some(batch) = part.waiting.pop_front() else {
                continue;
            };
            part.uploading = true;
            self.in_flight += 1;
            let frontier = part.frontier.or(batch.first_offset()).unwrap_or(0);
            self.uploads.spawn(upload(
                self.sink.clone(),
                self.ownership.clone(),
                batch,
                frontier,
                part.epoch,
                self.abort.clone(),
            ));
        }
    }

    fn on_upload(&mut self, joined: Result<UploadDone, tokio::task::JoinError>) {
        self.in_flight -= 1;
        let done = match joined {
            Ok(d) => d,
            Err(e) => {
                // A panicked upload task: its partition stays "uploading" and stops, visibly.
                metrics::counter!(m::ERRORS, "kind" => "upload_task").increment(1);
                tracing::error!(event = "upload_task_failed", error = %e);
                return;
            }
        };
        self.buffered -= done.bytes;
        let current = self
            .ownership
            .is_current(&done.topic, done.partition, done.epoch);
        let part = self
            .parts
            .get_mut(&*done.topic)
            .and_then(|ps| ps.get_mut(&done.partition))
            .filter(|p| p.epoch == done.epoch);
        let Outcome::Landed(landed) = done.outcome else {
            self.report.abandoned += 1;
            if let Some(part) = part {
                part.uploading = false;
            }
            return;
        };
        self.report.skipped += landed.skipped as u64;
        if let Some(w) = &landed.written {
            self.report.landed += w.records as u64;
            self.report.blobs += 1;
        }
        // The records are durable whoever wrote them: their clean-ups are due now.
        if let Some(cleaner) = &self.cleaner {
            for c in done.cleanups {
                cleaner.submit(Job {
                    topic: done.topic.clone(),
                    partition: done.partition,
                    offset: c.offset,
                    game: c.task.game_token,
                    user: c.task.user_token,
                });
            }
        }
        let Some(part) = part else { return };
        part.uploading = false;
        part.frontier = Some(landed.frontier);
        if !part.waiting.is_empty() {
            self.ready.push_back((done.topic.clone(), done.partition));
        }
        if current {
            let offsets = [(done.topic.to_string(), done.partition, landed.frontier)];
            let result = self
                .consumer
                .commit(&offsets_list(&offsets), CommitMode::Async);
            record_commit(&result, "batch");
            if let Err(e) = result {
                tracing::warn!(event = "commit_failed", topic = %done.topic, partition = done.partition, offset = landed.frontier, error = %e);
            }
        }
    }

    /// Shutdown: cut every open batch, land what fits in the grace period, commit synchronously.
    async fn drain(&mut self) {
        let started = Instant::now();
        let deadline = started + self.settings.shutdown_grace;
        let mut cut = Vec::new();
        for ps in self.parts.values_mut() {
            for (p, part) in ps.iter_mut() {
                if let Some(s) = part.buffer.take(FlushReason::Shutdown) {
                    cut.push((part.topic.clone(), *p, s));
                }
            }
        }
        for (t, p, s) in cut {
            self.enqueue(&t, p, s);
        }
        self.schedule();
        tracing::info!(
            event = "draining",
            uploads = self.in_flight,
            buffered_bytes = self.buffered
        );
        while self.in_flight > 0 {
            tokio::select! {
                Some(done) = self.uploads.join_next() => {
                    self.on_upload(done);
                    self.schedule();
                }
                _ = tokio::time::sleep_until(deadline) => {
                    // Uploads still retrying are abandoned: uncommitted, so read again next run.
                    self.abort.cancel();
                    while let Some(done) = self.uploads.join_next().await {
                        self.on_upload(done);
                    }
                    break;
                }
            }
        }
        let abandoned: usize = self
            .parts
            .values()
            .flat_map(HashMap::values)
            .map(|p| p.waiting.len())
            .sum();
        self.report.abandoned += abandoned as u64;
        let durable = self.ownership.durable();
        let result = if durable.is_empty() {
            Ok(())
        } else {
            self.consumer
                .commit(&offsets_list(&durable), CommitMode::Sync)
        };
        record_commit(&result, "shutdown");
        tracing::info!(
            event = "drained",
            duration_ms = started.elapsed().as_millis() as u64,
            committed = ?durable,
            commit_error = result.err().map(|e| e.to_string()),
            abandoned_batches = self.report.abandoned,
        );
    }
}

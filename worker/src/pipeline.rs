//! The consume loop: routes each record to its partition's batch, cuts batches (count, bytes,
//! max wait, memory, shutdown), runs uploads (one at a time per partition, up to
//! `UPLOAD_CONCURRENCY` overall), queues clean-ups of durable records, and commits each
//! partition's frontier ([`crate::frontier`]: durable, seen, and no clean-up pending below it).
//!
//! ```text
//! loop select {
//!   shutdown            => break
//!   upload finished     => frontier := landed; queue the batch's clean-ups; commit (async,
//!                          unless a commit went out within the last 100 ms)
//!   commit tick (100 ms) => commit every frontier that moved since (async, one request)
//!   earliest deadline   => cut expired batches (max_wait)
//!   record              => hold its clean-up, if any; skip it if below the frontier (and queue
//!                          its clean-up: it is durable); else encode into the open batch
//! }
//! after each event: drop revoked partitions' buffers, publish what was seen, relieve memory
//!                   and the clean-up backlog (pause/resume fetching), start uploads
//! on shutdown: cut everything, wait for uploads (grace), for clean-ups (clean-up grace),
//!              commit synchronously
//! ```
//!
//! An upload that cannot succeed (a raw blob of another incarnation of the topic under the
//! batch's name, [`crate::sink::SinkError::Incarnation`]) stops its partition: its buffered
//! batches are dropped, its records ignored, nothing past its durable frontier is committed.
//! The loop then shuts down as on SIGTERM (the other partitions land and commit what they
//! hold) and the [`Report`] carries the error, which the binary turns into a non-zero exit.
//!
//! Two positions of each partition are kept both here (in its `Part`) and in [`Ownership`], on
//! purpose:
//! - *durable* (`Part::frontier`): the upload task records the chain positions it reached in
//!   [`Ownership`] ([`Ownership::advance`]) as soon as the landing returns, under the epoch
//!   check; the loop copies the new frontier into its `Part` when it takes the upload's result.
//!   Commits read the first: the revoke commit runs in a rebalance callback while the loop polls
//!   the consumer, possibly after an upload finished and before the loop took its result, and
//!   still commits what it landed. Routing reads the second, per record and without a lock
//!   (records below it are skipped; the next upload starts there), and it moves only together
//!   with the partition's `uploading` flag. Once the loop took a result of the current epoch,
//!   both hold the same value.
//! - *seen* (`Part::seen`): the loop moves its own per record and publishes it to [`Ownership`]
//!   once per wake-up ([`Ownership::saw`]), so the lock is taken per drain, not per record.

mod pressure;
mod shutdown;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use rdkafka::Message as _;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Timestamp};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::batch::{FlushReason, Limits, PartitionBuffer, Record, Sealed, ValueKind};
use crate::buffers::BufferPool;
use crate::cleanup::{Cleaner, Job};
use crate::commit::{COMMIT_GAP, Committer};
use crate::consumer::WorkerConsumer;
use crate::frontier::Ownership;
use crate::partition::PartitionId;
use crate::pass::{Pass, PassSummary};
use crate::sink::{Sink, SinkError};
use crate::telemetry;
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
    /// Why a partition stopped for good (the first such error); the loop then shut down.
    pub failed: Option<Arc<SinkError>>,
    /// The final (synchronous) commit's error, if it failed.
    pub commit_error: Option<String>,
    /// Clean-ups still pending after the clean-up grace (their records stay uncommitted).
    pub cleanups_pending: usize,
    /// A single pass's summary (`BATCH_CONTINUOUS=false`), `None` for the daemon.
    pub pass: Option<PassSummary>,
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
    /// How long shutdown waits for uploads (part of `SHUTDOWN_GRACE_MS`).
    pub shutdown_grace: Duration,
    /// How long shutdown then waits for queued clean-ups (part of `SHUTDOWN_GRACE_MS`).
    pub cleanup_grace: Duration,
}

/// The loop's state of one partition under one ownership epoch: made by `Pipeline::part` on
/// the epoch's first record, dropped by `Pipeline::check_rebalance` once the epoch is no longer
/// current. Only the loop reads or writes it.
#[derive(Debug)]
struct Part {
    /// Topic name, shared with the partition's batches, uploads and clean-up jobs.
    topic: Arc<str>,
    /// The ownership epoch this state belongs to (read from [`Ownership`] when it was made).
    epoch: u64,
    /// The open batch and the cut rules; `on_message` encodes routed records into it.
    buffer: PartitionBuffer,
    /// Sealed batches waiting for their upload, oldest first: pushed by `enqueue`, popped by
    /// `schedule`.
    waiting: VecDeque<Sealed>,
    /// An upload of this partition runs (at most one does): set by `schedule`, cleared by
    /// `on_upload`.
    uploading: bool,
    /// Every offset below it is durable; `None` until the first upload of this epoch. Written
    /// by `on_upload` from the upload's landed frontier; the loop's copy of what the upload task
    /// recorded in [`Ownership`] (see the module doc).
    frontier: Option<i64>,
    /// The offset after the last record routed; written by `on_message`.
    seen: Option<i64>,
    /// `seen` as last published to [`Ownership`] (by `publish_seen`).
    published: Option<i64>,
    /// Landing failed for good: nothing more is buffered, landed or committed. Set by
    /// `on_upload`.
    failed: bool,
}

/// The consume loop's state. Only the loop's task touches it; what other tasks share with it is
/// behind `consumer`, `ownership`, `sink` and `cleaner`.
pub struct Pipeline {
    /// The knobs; fixed.
    settings: LoopSettings,
    /// The Kafka consumer: polled as a stream by `run`, paused and resumed by
    /// [`pressure`]; its rebalance callbacks write `ownership`.
    consumer: Arc<WorkerConsumer>,
    /// Epochs and commit frontiers (see [`crate::frontier`]), shared with the rebalance
    /// callbacks, the upload tasks and the clean-up task; the loop writes clean-up holds and
    /// how far it routed.
    ownership: Arc<Ownership>,
    /// The raw container; each upload task gets a clone.
    sink: Arc<Sink>,
    /// The clean-up queue; `None` with clean-up off.
    cleaner: Option<Cleaner>,
    /// Sends the commit frontiers `ownership` allows (after batches, on the tick, at shutdown).
    committer: Committer,
    /// Each partition's state under its current epoch, by topic then partition (so a record's
    /// `&str` topic finds it without allocating); see `Part` for who writes what.
    parts: HashMap<String, HashMap<i32, Part>>,
    /// Batch buffers, reused once their upload is done.
    buffers: Arc<BufferPool>,
    /// Partitions with a sealed batch waiting and no upload running, in the order they became
    /// ready: pushed by `enqueue` and `on_upload`, popped by `schedule` (which skips an entry
    /// whose partition is gone, uploading or has nothing waiting).
    ready: VecDeque<PartitionId>,
    /// The running upload tasks: spawned by `schedule`, joined by `run` and `drain`.
    uploads: JoinSet<UploadDone>,
    /// How many upload tasks run (at most `UPLOAD_CONCURRENCY`): counted up by `schedule`,
    /// down by `on_upload`.
    in_flight: usize,
    /// Bytes of records held in batches (open, waiting or uploading): counted up as records
    /// are encoded, down when a batch's upload ends or its partition's batches are dropped;
    /// [`pressure`] compares it with `BUFFER_MAX_BYTES`.
    buffered: usize,
    /// Whether the assignment is paused (`Consumer::pause`); written by `set_paused`.
    paused: bool,
    /// Since when records are not taken from the consumer (buffers full, see [`pressure`]).
    holding: Option<Instant>,
    /// [`Ownership::changes`] as of the last rebalance `check_rebalance` handled.
    seen_changes: u64,
    /// The earliest `BATCH_MAX_WAIT_MS` deadline of the open batches (the timer `run` sleeps
    /// until): lowered by `on_message`, recomputed by `run` when `deadline_dirty`.
    next_deadline: Option<Instant>,
    /// `next_deadline` may be stale (a batch was cut or dropped): `run` recomputes it.
    deadline_dirty: bool,
    /// Cancelled by `drain` when the shutdown grace runs out: running uploads give up.
    abort: CancellationToken,
    /// Cancelled when a partition failed for good: the loop stops as on shutdown.
    halt: CancellationToken,
    /// The end condition of a single pass; `None` for the daemon.
    pass: Option<Pass>,
    /// What the run did so far; `run` returns it.
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
            committer: Committer::new(consumer.clone(), ownership.clone()),
            consumer,
            ownership,
            sink,
            cleaner,
            parts: HashMap::new(),
            // Freed batch buffers kept for reuse: a quarter of the memory cap on top of it.
            buffers: BufferPool::with_min_capacity(
                settings.buffer_max_bytes / 4,
                service::alloc::MMAP_THRESHOLD_BYTES,
            ),
            ready: VecDeque::new(),
            uploads: JoinSet::new(),
            in_flight: 0,
            buffered: 0,
            paused: false,
            holding: None,
            seen_changes: 0,
            next_deadline: None,
            deadline_dirty: false,
            abort: CancellationToken::new(),
            halt: CancellationToken::new(),
            pass: None,
            report: Report::default(),
        }
    }

    /// Makes this loop a single pass: it ends once every assigned partition reached the high
    /// watermark seen at its assignment (see [`crate::pass`]).
    pub fn with_pass(mut self, pass: Pass) -> Self {
        self.pass = Some(pass);
        self
    }

    /// Runs until `shutdown`, then lands what is buffered within the grace period.
    pub async fn run(mut self, shutdown: CancellationToken) -> Report {
        let consumer = self.consumer.clone();
        // One stream for the whole loop: `recv()` makes (and drops) a stream per record, each a
        // registration in rdkafka's waker slab under its mutex.
        let mut stream = consumer.stream();
        let far = || Instant::now() + Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut tick = tokio::time::interval(COMMIT_GAP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let halt = self.halt.clone();
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
                _ = halt.cancelled() => break,
                Some(done) = self.uploads.join_next(), if !self.uploads.is_empty() => {
                    self.on_upload(done);
                }
                _ = tick.tick() => self.committer.moved_frontiers(),
                _ = &mut sleep, if self.next_deadline.is_some() => self.expire(Instant::now()),
                Some(msg) = stream.next(), if self.holding.is_none() => {
                    let before = self.report.consumed;
                    // One clock read per drain (microseconds apart) opens the batches it starts.
                    let now = Instant::now();
                    self.on_recv(msg, now);
                    // Take what is already fetched without another trip through select.
                    for _ in 0..DRAIN {
                        match stream.next().now_or_never() {
                            Some(Some(msg)) => self.on_recv(msg, now),
                            Some(None) | None => break,
                        }
                    }
                    telemetry::consumed(self.report.consumed - before);
                }
            }
            self.check_rebalance();
            self.publish_seen();
            self.relieve_pressure();
            self.schedule();
            if self.pass_ended() {
                break;
            }
        }
        self.drain().await;
        if let Some(pass) = &self.pass {
            let failure = self.report.failed.as_ref().map(|e| e.to_string());
            let failure = failure.or((self.report.cleanups_pending > 0).then(|| {
                format!(
                    "{} Redis clean-ups could not be applied (is Redis reachable?); their records stay uncommitted for the next pass",
                    self.report.cleanups_pending
                )
            }));
            self.report.pass = Some(pass.summary(
                self.report.abandoned,
                failure,
                self.report.commit_error.clone(),
            ));
        }
        self.report
    }

    /// Whether a single pass is over (always false for the daemon).
    fn pass_ended(&mut self) -> bool {
        let Some(pass) = &mut self.pass else {
            return false;
        };
        if pass.has_unknown_ends() {
            pass.on_rebalance(&self.consumer, &self.ownership);
        }
        let parts = &self.parts;
        pass.ended(self.report.consumed, &self.consumer, |topic, partition| {
            parts.get(topic)?.get(&partition)?.seen
        })
    }

    fn on_recv(&mut self, msg: Result<BorrowedMessage<'_>, KafkaError>, now: Instant) {
        match msg {
            Ok(m) => self.on_message(&m, now),
            // Rate-limited: a broken partition can return one per record.
            Err(e) => telemetry::consume_error(&e),
        }
    }

    fn on_message(&mut self, msg: &BorrowedMessage<'_>, now: Instant) {
        // A rebalance runs inside the stream's poll of the consumer: notice it before routing
        // this record.
        self.check_rebalance();
        let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
        self.report.consumed += 1;
        if self
            .pass
            .as_mut()
            .is_some_and(|p| !p.wants(topic, partition, offset))
        {
            // Past the end of this pass: neither routed nor committed, the next pass reads it.
            return;
        }
        let limits = self.settings.limits;
        let Some(part) = self.part(topic, partition) else {
            telemetry::stale_message();
            return;
        };
        if part.failed {
            // Neither landed nor skipped: uncommitted, read again once the cause is fixed.
            return;
        }
        part.seen = Some(offset + 1);
        if part.frontier.is_some_and(|f| offset < f) {
            let (part_topic, epoch) = (part.topic.clone(), part.epoch);
            // Already durable (found in storage by an earlier upload): skip, but its clean-up
            // may not have run before the crash that left it uncommitted: queue it again (it is
            // idempotent), holding the commit until it is applied.
            telemetry::records_skipped(topic, 1);
            self.report.skipped += 1;
            if let (Some(cleaner), Some(task)) = (
                &self.cleaner,
                msg.payload().and_then(crate::batch::cleaning_task),
            ) {
                self.ownership.hold(topic, partition, epoch, offset);
                cleaner.submit(Job {
                    topic: part_topic,
                    partition,
                    epoch,
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
        // Names as bytes, whole: rdkafka's `Headers::iter` panics on a name that is not UTF-8.
        let mut headers = Vec::new();
        crate::headers::read(msg, &mut headers);
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
        let found = part.buffer.cleanups_found();
        let (sealed, added) = part.buffer.push(&record, &limits, now);
        let is_cleanup = part.buffer.cleanups_found() > found;
        let epoch = part.epoch;
        let deadline = part.buffer.deadline(&limits);
        let topic = part.topic.clone();
        if is_cleanup && self.cleaner.is_some() {
            // Held from now until applied (it is queued once its batch is durable): the commit
            // can never pass it, whichever way the chain walk moves the durable frontier.
            self.ownership.hold(&topic, partition, epoch, offset);
        }
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
                    buffer: PartitionBuffer::new(name, partition, self.buffers.clone()),
                    waiting: VecDeque::new(),
                    uploading: false,
                    frontier: None,
                    seen: None,
                    published: None,
                    failed: false,
                },
            );
        }
        self.parts
            .get_mut(topic)
            .and_then(|ps| ps.get_mut(&partition))
    }

    fn enqueue(&mut self, topic: &Arc<str>, partition: i32, sealed: Sealed) {
        telemetry::batch_cut(
            topic,
            sealed.reason.as_str(),
            ValueKind::ALL.map(|kind| (kind.as_str(), sealed.kinds[kind as usize])),
        );
        self.deadline_dirty = true;
        let Some(part) = self
            .parts
            .get_mut(&**topic)
            .and_then(|ps| ps.get_mut(&partition))
        else {
            return;
        };
        if part.failed {
            self.buffered -= sealed.original_bytes;
            return;
        }
        part.waiting.push_back(sealed);
        if !part.uploading && part.waiting.len() == 1 {
            self.ready
                .push_back(PartitionId::new(topic.clone(), partition));
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
                let mut batches = 0;
                for s in open.chain(part.waiting.drain(..)) {
                    freed += s.original_bytes;
                    batches += 1;
                }
                telemetry::partition_dropped(&part.topic, *p, part.epoch, batches);
                false
            });
        }
        self.buffered -= freed;
        self.deadline_dirty = true;
        if let Some(pass) = &mut self.pass {
            pass.on_rebalance(&self.consumer, &self.ownership);
        }
        if self.paused {
            // Newly assigned partitions start unpaused.
            self.set_paused(true, true);
        }
    }

    /// Tells [`Ownership`] how far each partition's records have been routed (their clean-ups
    /// are held by then), once per wake-up rather than per record. A late publication only
    /// makes a commit lag.
    fn publish_seen(&mut self) {
        for ps in self.parts.values_mut() {
            for (p, part) in ps.iter_mut() {
                if let Some(seen) = part.seen
                    && part.published != part.seen
                {
                    self.ownership.saw(&part.topic, *p, part.epoch, seen);
                    part.published = part.seen;
                }
            }
        }
    }

    /// Starts uploads for ready partitions while slots are free.
    fn schedule(&mut self) {
        while self.in_flight < self.settings.upload_concurrency {
            let Some(PartitionId { topic, partition }) = self.ready.pop_front() else {
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
            let span = telemetry::batch_span(&topic, partition, batch.first_offset(), part.epoch);
            self.uploads.spawn(
                upload(
                    self.sink.clone(),
                    self.ownership.clone(),
                    batch,
                    frontier,
                    part.epoch,
                    self.abort.clone(),
                )
                .instrument(span),
            );
        }
    }

    fn on_upload(&mut self, joined: Result<UploadDone, tokio::task::JoinError>) {
        self.in_flight -= 1;
        let done = match joined {
            Ok(d) => d,
            Err(e) => {
                // A panicked upload task: its partition stays "uploading" and stops, visibly.
                telemetry::upload_task_failed(&e);
                return;
            }
        };
        // What follows (clean-ups queued, the commit) belongs to the batch.
        let span = done.span.clone();
        let _batch = span.enter();
        self.buffered -= done.bytes;
        let current = self
            .ownership
            .is_current(&done.topic, done.partition, done.epoch);
        let part = self
            .parts
            .get_mut(&*done.topic)
            .and_then(|ps| ps.get_mut(&done.partition))
            .filter(|p| p.epoch == done.epoch);
        let landed = match done.outcome {
            Outcome::Landed(landed) => landed,
            Outcome::Abandoned => {
                self.report.abandoned += 1;
                if let Some(part) = part {
                    part.uploading = false;
                }
                return;
            }
            Outcome::Failed(e) => {
                // Logged by the upload task. Stop the partition: drop what it buffered (read
                // again by the next run), commit nothing more of it; then stop the loop.
                if let Some(part) = part {
                    part.failed = true;
                    part.uploading = false;
                    let open = part.buffer.take(FlushReason::Revoke).into_iter();
                    for s in open.chain(part.waiting.drain(..)) {
                        self.buffered -= s.original_bytes;
                    }
                    self.deadline_dirty = true;
                }
                self.report.failed.get_or_insert(e);
                self.halt.cancel();
                return;
            }
        };
        self.report.skipped += landed.skipped as u64;
        if let Some(w) = &landed.written {
            self.report.landed += w.records as u64;
            self.report.blobs += 1;
        }
        if let Some(pass) = &mut self.pass {
            let written = landed.written.as_ref();
            pass.landed(
                &done.topic,
                done.partition,
                done.epoch,
                written.map_or(0, |w| w.records as u64),
                landed.skipped as u64,
                written.map(|w| w.stored_bytes as u64),
            );
        }
        // The records are durable whoever wrote them (trimmed ones included: found in storage,
        // their clean-up may have been lost in a crash): their clean-ups are due now.
        if let Some(cleaner) = &self.cleaner {
            for c in done.cleanups {
                cleaner.submit(Job {
                    topic: done.topic.clone(),
                    partition: done.partition,
                    epoch: done.epoch,
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
            self.ready
                .push_back(PartitionId::new(done.topic.clone(), done.partition));
        }
        if current {
            self.committer
                .after_batch(&done.topic, done.partition, done.epoch);
        }
    }
}

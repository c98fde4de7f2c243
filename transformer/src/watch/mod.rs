//! `transformer watch`: finds each new raw blob version and processes it once.
//!
//! Finding blobs ([`discovery`], a background task, so that blob work never waits on a listing):
//! ```text
//! full listing of raw (under WATCH_PREFIX) + listing of _poison/: at start (unless a checkpoint
//!     is in force), then every WATCH_FULL_LIST_MS: the safety net for versions dated into
//!     settled hours (rewrites, offset gaps)
//! listing of each topic's unsettled hours (from its checkpoint hour to the next hour) +
//!     _poison/: at start with a checkpoint, then every max(WATCH_POLL_MS, 10 × its duration),
//!     at most WATCH_LIST_MS
//! every WATCH_POLL_MS in between: probe each partition's next blob by name. A worker blob
//!     carries `last_offset` metadata, so the next blob of (topic, partition) is
//!     `{topic}/{hour}/{topic}+{partition}+{last_offset + 1}`; a HEAD (get with `head`) of that
//!     name in the tail's hour, the next hour and the current hour finds it, and its own
//!     metadata gives the one after (a burst is walked in one poll); a listing only notes
//!     each partition's newest blob, whose metadata the next probe round reads, so listed blobs
//!     are queued without waiting for those reads
//! ```
//! A listed version the [`checkpoint`] covers (dated before its topic's settled hour, modified
//! before the checkpoint's full listing) is skipped without a receipt read; after each listing
//! the watcher writes the checkpoint its books support, so a start-up lists and reads only what
//! is not settled yet, and the books forget what the checkpoint covers.
//!
//! Processing (bounded `JoinSet`, WATCH_CONCURRENCY at once), per blob version (name, ETag)
//! not done, queued, in flight or waiting for a retry:
//! ```text
//! receipt has this etag? → done          (only for listed blobs, which may be old: probed ones
//!                                          are new, and their receipt is read after the claim)
//! poison entry has this etag? → skip     (only if the last _poison/ listing has the name or the
//!                                          blob failed here before)
//! claim _leases/{name}@{etag} (Create, expiry now + WATCH_LEASE_TTL_MS; take over if
//!   expired) → busy? → retry next poll
//! receipt (again) has this etag? → done  (another watcher may have finished before our claim)
//! process_blob, renewing the lease every TTL/3 → write receipt → release lease
//! on failure: backoff WATCH_BACKOFF_MS·2^(n-1) (≤ 60 s); after WATCH_MAX_ATTEMPTS → poison entry
//! on storage errors (bookkeeping, reading the blob, writing an output): the same backoff, not
//!   counted towards the poison entry (the blob is fine; storage is down or overloaded)
//! ```
//! Outputs are deterministic overwrites, so even a lost race only rewrites identical bytes.

pub mod checkpoint;
mod discovery;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use model::naming::RawBlobName;
use object_store::ObjectMeta;
use object_store::path::Path;
use service::retry::Backoff;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::checkpoint::{Candidate, Checkpoint, CheckpointError, Pending};
use self::discovery::{Discovery, Listing, Scan, hour_of, hour_start};
use crate::config::WatchSettings;
use crate::delta::Lakehouse;
use crate::ledger::{self, LedgerError};
use crate::process::{
    Delivery, Handoff, ProcessError, Stores, hand_over_or_receipt, process_blob_to,
};
use crate::telemetry;
use crate::transform::TransformOptions;

/// What a watcher has done, for tests and the summary log.
#[derive(Debug, Default)]
pub struct WatchStats {
    /// Blobs this watcher transformed.
    pub processed: AtomicU64,
    /// Blob versions found already done by a receipt.
    pub already_done: AtomicU64,
    /// Claims lost to another live watcher.
    pub busy: AtomicU64,
    /// Failed attempts (the blob's fault: towards its poison entry).
    pub failures: AtomicU64,
    /// Tries that hit a storage error (retried, never poisoned).
    pub storage_errors: AtomicU64,
    /// Poison entries written.
    pub poisoned: AtomicU64,
    /// Blob versions skipped because a poison entry (this or an earlier watcher's) names them.
    pub already_poisoned: AtomicU64,
    /// Full listings of the raw container.
    pub full_listings: AtomicU64,
    /// Listings of the unsettled hours.
    pub hour_listings: AtomicU64,
    /// Prefix listings started (each one request per 5 000 names on Azure).
    pub list_calls: AtomicU64,
    /// Blob versions the listings returned.
    pub listed_blobs: AtomicU64,
    /// Listed versions skipped because the checkpoint covers them.
    pub covered: AtomicU64,
    /// Receipts read before a claim (listed versions the checkpoint does not cover).
    pub receipt_checks: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// Blobs found by a probe (by name, without a listing).
    pub probed: AtomicU64,
}

/// A watcher's set-up.
#[derive(Debug, Clone)]
pub struct Watcher {
    /// The containers.
    pub stores: Stores,
    /// Watch knobs.
    pub settings: WatchSettings,
    /// Transform knobs.
    pub transform: TransformOptions,
    /// This watcher's id in leases and receipts.
    pub owner: String,
    /// Counters.
    pub stats: Arc<WatchStats>,
    /// `watch --once`: stop once the first full listing's blobs (and whatever the probes found
    /// meanwhile) are settled, instead of polling until shutdown.
    pub once: bool,
    /// Delta mode: the tables staged blobs are committed to, and how often
    /// ([`Watcher::with_lakehouse`]); a last round runs when the watcher stops.
    pub lakehouse: Option<(Arc<Lakehouse>, Duration)>,
    /// Delta mode: compaction and vacuum on their timers ([`Watcher::with_maintenance`]).
    pub maintenance: Option<crate::maintenance::Maintenance>,
    /// How far a checkpoint's `listed_before` stays behind its full listing's start
    /// ([`checkpoint::CLOCK_MARGIN`]; tests on one host's clock use zero).
    pub clock_margin: TimeDelta,
}

/// What `watch --once` prints: the watcher's counters when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WatchSummary {
    /// Blobs transformed.
    pub processed: u64,
    /// Blob versions found already done by a receipt.
    pub already_done: u64,
    /// Poison entries written by this pass (blobs given up on, with their reason).
    pub poisoned: u64,
    /// Blobs skipped because an earlier poison entry names them.
    pub already_poisoned: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Tries that hit a storage error.
    pub storage_errors: u64,
}

impl WatchStats {
    /// The counters now.
    pub fn summary(&self) -> WatchSummary {
        WatchSummary {
            processed: self.processed.load(Ordering::Relaxed),
            already_done: self.already_done.load(Ordering::Relaxed),
            poisoned: self.poisoned.load(Ordering::Relaxed),
            already_poisoned: self.already_poisoned.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            storage_errors: self.storage_errors.load(Ordering::Relaxed),
        }
    }
}

/// A blob version: its name and normalized ETag.
type Key = (String, String);

/// A blob version's unsuccessful tries so far.
#[derive(Debug, Default, Clone, Copy)]
struct Tries {
    /// Failures of the blob itself (towards WATCH_MAX_ATTEMPTS and its poison entry).
    failed: u32,
    /// Storage errors (only space out the retries).
    storage: u32,
}

enum Outcome {
    Processed,
    AlreadyDone,
    Poisoned,
    Busy,
    /// The blob failed (content, name, panic): counts towards its poison entry.
    Failed(ProcessError),
    /// Storage failed (bookkeeping, or the blob's read or output writes): retried with
    /// backoff, never counted towards a poison entry.
    Transient(StorageTrouble),
}

/// Why storage failed a blob's attempt: its bookkeeping, or its read or writes.
#[derive(Debug, thiserror::Error)]
enum StorageTrouble {
    /// Receipts, leases, poison entries.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The blob's read or its output writes.
    #[error(transparent)]
    Process(ProcessError),
}

/// Which reads a blob gets before its claim.
#[derive(Debug, Clone, Copy)]
struct Checks {
    /// Read the receipt before claiming: the blob may well be done (found by a listing, or
    /// retried after another watcher held it).
    receipt_first: bool,
    /// Read the poison entry: the name is in the last `_poison/` listing, or failed here.
    poison: bool,
}

/// A blob to process and how it was found.
struct Job {
    meta: ObjectMeta,
    receipt_first: bool,
}

/// A blob waiting to be queued again.
struct Waiting {
    at: Instant,
    meta: ObjectMeta,
}

/// A blob version known done (receipt or poison entry).
struct Finished {
    /// Its normalized ETag.
    etag: String,
    /// When that version was written.
    modified: DateTime<Utc>,
}

/// The main loop's books: every blob version found, by what is happening to it.
#[derive(Default)]
struct Books {
    /// Versions done, by name; forgotten once the checkpoint in force covers them.
    done: HashMap<String, Finished>,
    /// Unsuccessful tries of versions not done.
    failures: HashMap<Key, Tries>,
    /// Versions waiting out a backoff (or a busy claim).
    waiting: HashMap<Key, Waiting>,
    /// Versions to process, in order.
    queued: VecDeque<Job>,
    /// The keys of `queued`.
    queued_keys: HashSet<Key>,
    /// Versions being processed, with when they were written.
    in_flight: HashMap<Key, DateTime<Utc>>,
    /// Listed names that are not raw names, poisoned once.
    ignored: HashSet<String>,
    /// Raw names with a poison entry (the last listing of `_poison/`).
    poisoned: HashSet<String>,
}

impl Books {
    /// Nothing queued, in flight or waiting.
    fn is_idle(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty() && self.waiting.is_empty()
    }

    /// Whether `key` is done or on its way.
    fn knows(&self, key: &Key) -> bool {
        self.done.get(&key.0).is_some_and(|f| f.etag == key.1)
            || self.waiting.contains_key(key)
            || self.in_flight.contains_key(key)
            || self.queued_keys.contains(key)
    }

    /// Queues a version found by a listing (`receipt_first`) or a probe.
    fn enqueue(&mut self, key: Key, meta: ObjectMeta, receipt_first: bool) {
        self.queued_keys.insert(key);
        self.queued.push_back(Job {
            meta,
            receipt_first,
        });
    }

    /// The next job, now in flight, with the reads it needs before its claim.
    fn start_next(&mut self) -> Option<(Job, Key, Checks)> {
        let job = self.queued.pop_front()?;
        let key = key_of(&job.meta);
        self.queued_keys.remove(&key);
        self.in_flight.insert(key.clone(), job.meta.last_modified);
        let checks = Checks {
            receipt_first: job.receipt_first,
            poison: self.poisoned.contains(&key.0)
                || self.failures.get(&key).is_some_and(|t| t.failed > 0),
        };
        Some((job, key, checks))
    }

    /// Every version found and not done (queued, in flight or waiting).
    fn pending(&self) -> Vec<Pending> {
        let queued = self.queued.iter().map(|j| &j.meta);
        let waiting = self.waiting.values().map(|w| &w.meta);
        let found = queued
            .chain(waiting)
            .map(|m| (m.location.as_ref(), m.last_modified))
            .chain(self.in_flight.iter().map(|(k, at)| (k.0.as_str(), *at)));
        found
            .filter_map(|(name, modified)| {
                let n = RawBlobName::parse(name).ok()?;
                Some(Pending {
                    hour: hour_of(&n)?,
                    topic: n.topic,
                    modified,
                })
            })
            .collect()
    }

    /// Forgets the done versions `checkpoint` covers (listings skip them from now on).
    fn forget_covered(&mut self, checkpoint: &Checkpoint) {
        self.done.retain(|name, f| {
            let Ok(n) = RawBlobName::parse(name) else {
                return true;
            };
            !hour_of(&n).is_some_and(|h| checkpoint.covers(&n.topic, h, f.modified))
        });
    }
}

/// The checkpoint in force and what the next one can claim.
struct Frontier {
    /// Where it is kept.
    path: Path,
    /// Read at start, or the last one written.
    current: Option<Checkpoint>,
    /// Start of this watcher's last full listing, less the clock margin.
    swept_before: Option<DateTime<Utc>>,
    /// Per topic, the hour the last listing of all its unsettled hours began in.
    listed: BTreeMap<String, DateTime<Utc>>,
    /// See [`Watcher::clock_margin`].
    margin: TimeDelta,
}

impl Frontier {
    /// Notes what a listing covered. Its topics' hours are listed up to the hour it began in,
    /// less the clock margin: a blob is written a batch's wait (and its upload) after the
    /// first record that dates it, so a listing early in an hour leaves the hour before
    /// unsettled until the margin has passed (else a blob of 13:59 written at 14:00:05, after
    /// a listing at 14:00:01, would wait for the full listing unless a probe predicted it).
    fn listed(&mut self, kind: Listing, started: DateTime<Utc>, scan: &Scan) {
        if kind == Listing::Full {
            self.swept_before = Some(started - self.margin);
        }
        for topic in &scan.topics {
            self.listed
                .insert(topic.clone(), hour_start(started - self.margin));
        }
    }

    /// The checkpoint the books support, when it claims something new.
    fn next(&self, books: &Books, owner: &str) -> Option<Checkpoint> {
        let pending = books.pending();
        let candidate = Candidate {
            current: self.current.as_ref(),
            swept_before: self.swept_before,
            listed: &self.listed,
            pending: &pending,
        }
        .checkpoint(owner, Utc::now())?;
        let new = self
            .current
            .as_ref()
            .is_none_or(|c| !c.same_claim(&candidate));
        new.then_some(candidate)
    }

    /// Settled hours for the next listing.
    fn settled(&self) -> BTreeMap<String, DateTime<Utc>> {
        self.current
            .as_ref()
            .map(|c| c.settled.clone())
            .unwrap_or_default()
    }
}

impl Watcher {
    /// A watcher with a fresh owner id.
    pub fn new(stores: Stores, settings: WatchSettings, transform: TransformOptions) -> Self {
        Watcher {
            stores,
            settings,
            transform,
            owner: format!("watch-{}", uuid::Uuid::new_v4().simple()),
            stats: Arc::new(WatchStats::default()),
            once: false,
            lakehouse: None,
            maintenance: None,
            clock_margin: checkpoint::CLOCK_MARGIN,
        }
    }

    /// Compacts and vacuums the lakehouse on `m`'s timers while watching (delta mode).
    pub fn with_maintenance(mut self, m: crate::maintenance::Maintenance) -> Self {
        self.maintenance = Some(m);
        self
    }

    /// Commits staged blobs to `lakehouse` every `interval` while watching (delta mode).
    pub fn with_lakehouse(mut self, lakehouse: Arc<Lakehouse>, interval: Duration) -> Self {
        self.lakehouse = Some((lakehouse, interval));
        self
    }

    /// Runs until `shutdown`, then waits for in-flight blobs (the caller bounds that wait).
    pub async fn run(self, shutdown: CancellationToken) {
        let me = Arc::new(self);
        let started = Instant::now();
        let mut books = Books::default();
        let mut frontier = me.read_checkpoint().await;
        let mut tasks: JoinSet<(Key, ObjectMeta, Outcome)> = JoinSet::new();
        let mut scans: JoinSet<(Discovery, Scan)> = JoinSet::new();
        let mut writes: JoinSet<Result<Checkpoint, CheckpointError>> = JoinSet::new();
        // A checkpoint in force makes the first listing one of the unsettled hours; `--once`
        // lists everything (the checkpoint still spares the receipt reads).
        let full_after = (frontier.current.is_some() && !me.once)
            .then(|| Instant::now() + me.settings.full_list);
        let mut discovery = Some(Discovery::new(full_after));
        // `--once`: a full listing has been queued, so the pass knows every blob there is.
        let mut listed = false;
        let mut caught_up = false;
        let mut tick = tokio::time::interval(me.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(
            event = "watch_started",
            owner = %me.owner,
            prefix = ?me.settings.prefix,
            checkpoint = frontier.current.is_some(),
        );
        let stop_committing = CancellationToken::new();
        let committer = me.lakehouse.clone().map(|(lakehouse, every)| {
            tokio::spawn(commit_every(lakehouse, every, stop_committing.clone()))
        });
        let upkeep = match (&me.lakehouse, &me.maintenance) {
            (Some((lakehouse, _)), Some(m)) if !me.once => {
                Some(tokio::spawn(crate::maintenance::maintain_every(
                    lakehouse.clone(),
                    m.clone(),
                    me.transform.compression,
                    stop_committing.clone(),
                )))
            }
            _ => None,
        };

        loop {
            if !caught_up && listed_any(&me.stats) && books.is_idle() && scans.is_empty() {
                caught_up = true;
                me.log_caught_up(started.elapsed());
            }
            if me.once && listed && books.is_idle() && tasks.is_empty() && scans.is_empty() {
                break;
            }
            while tasks.len() < me.settings.concurrency {
                let Some((job, key, checks)) = books.start_next() else {
                    break;
                };
                let w = me.clone();
                tasks.spawn(async move {
                    let outcome = w.handle(&job.meta, &key.1, checks).await;
                    (key, job.meta, outcome)
                });
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(joined) = tasks.join_next() => {
                    let Ok((key, meta, outcome)) = joined else { continue };
                    books.in_flight.remove(&key);
                    let retry = me.settle(&key, &meta, outcome, &mut books).await;
                    if let Some(after) = retry {
                        books.waiting.insert(key, Waiting { at: Instant::now() + after, meta });
                    }
                }
                Some(joined) = scans.join_next() => {
                    let (state, scan) = joined.unwrap_or_else(|e| {
                        // A panicked step loses its state: start over with a full listing.
                        tracing::error!(event = "watch_list_failed", error = %e);
                        (Discovery::new(None), Scan::default())
                    });
                    discovery = Some(state);
                    me.book_scan(scan, &mut books, &mut frontier, &mut listed).await;
                    if writes.is_empty()
                        && let Some(next) = frontier.next(&books, &me.owner)
                    {
                        let w = me.clone();
                        let path = frontier.path.clone();
                        writes.spawn(async move { w.write_checkpoint(&path, next).await });
                    }
                }
                Some(joined) = writes.join_next() => {
                    match joined {
                        Ok(Ok(written)) => {
                            books.forget_covered(&written);
                            frontier.current = Some(written);
                        }
                        Ok(Err(e)) => tracing::warn!(event = "watch_checkpoint_failed", error = %e),
                        Err(e) => tracing::error!(event = "watch_checkpoint_failed", error = %e),
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let due: Vec<Key> = books
                        .waiting
                        .iter()
                        .filter(|(_, w)| w.at <= now)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in due {
                        if let Some(w) = books.waiting.remove(&key) {
                            books.enqueue(key, w.meta, true);
                        }
                    }
                    if let Some(state) = discovery.take() {
                        let w = me.clone();
                        let settled = frontier.settled();
                        scans.spawn(async move { w.discover(state, settled).await });
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        scans.abort_all();
        while writes.join_next().await.is_some() {}
        if let Some(upkeep) = upkeep {
            stop_committing.cancel();
            let _ = upkeep.await;
        }
        if let Some(committer) = committer {
            stop_committing.cancel();
            let _ = committer.await;
        }
        // A last round (in write_checkpoint): what this watcher staged is committed before it
        // stops, and the checkpoint records what is settled for the next start.
        let last = frontier.next(&books, &me.owner);
        let round = match last {
            Some(next) => me.write_checkpoint(&frontier.path, next).await.map(|_| ()),
            None => me.commit_round().await,
        };
        if let Err(e) = round {
            tracing::warn!(event = "watch_checkpoint_failed", error = %e);
        }
        tracing::info!(
            event = "watch_stopped",
            owner = %me.owner,
            processed = me.stats.processed.load(Ordering::Relaxed),
            poisoned = me.stats.poisoned.load(Ordering::Relaxed),
            storage_errors = me.stats.storage_errors.load(Ordering::Relaxed),
        );
    }

    /// Books what a discovery step found: queues each version not known yet.
    async fn book_scan(
        &self,
        scan: Scan,
        books: &mut Books,
        frontier: &mut Frontier,
        listed: &mut bool,
    ) {
        if let Some(p) = &scan.poisoned {
            books.poisoned = p.clone();
        }
        if let Some((kind, started)) = scan.listing {
            *listed |= kind == Listing::Full;
            frontier.listed(kind, started, &scan);
        }
        let from_listing = scan.listing.is_some();
        for meta in scan.metas {
            let name = meta.location.to_string();
            let parsed = match RawBlobName::parse(&name) {
                Ok(n) => n,
                Err(e) => {
                    // Every name a worker writes parses: anything else is poisoned visibly
                    // with its reason, once, never silently passed over.
                    self.poison_unparsable(&name, &meta, &e.to_string(), books)
                        .await;
                    continue;
                }
            };
            if from_listing
                && let Some(current) = &frontier.current
                && hour_of(&parsed)
                    .is_some_and(|h| current.covers(&parsed.topic, h, meta.last_modified))
            {
                self.stats.covered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let key = key_of(&meta);
            if !books.knows(&key) {
                books.enqueue(key, meta, from_listing);
            }
        }
    }

    /// Writes the poison entry of a listed name that is not a raw name (once).
    async fn poison_unparsable(&self, name: &str, meta: &ObjectMeta, why: &str, books: &mut Books) {
        if books.poisoned.contains(name) || !books.ignored.insert(name.to_owned()) {
            return;
        }
        let etag = meta.e_tag.clone().unwrap_or_default();
        let standard = self.stores.standard.as_ref();
        match ledger::write_poison(standard, name, &etag, 0, why, &self.owner).await {
            Ok(()) => {
                self.stats.poisoned.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                books.ignored.remove(name);
                self.stats.storage_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(event = "watch_storage_failed", blob = %name, error = %err);
            }
        }
    }

    /// The checkpoint in force at start; an unreadable one counts as none (a full listing).
    async fn read_checkpoint(&self) -> Frontier {
        let path = checkpoint::path(self.settings.prefix.as_deref());
        let current = match checkpoint::read(self.stores.standard.as_ref(), &path).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(event = "watch_checkpoint_unreadable", error = %e);
                None
            }
        };
        Frontier {
            path,
            current,
            swept_before: None,
            listed: BTreeMap::new(),
            margin: self.clock_margin,
        }
    }

    /// Commits what was handed over (delta mode with this watcher's committer): after it, every
    /// version booked done has its receipt.
    async fn commit_round(&self) -> Result<(), CheckpointError> {
        let Some((lakehouse, _)) = &self.lakehouse else {
            return Ok(());
        };
        lakehouse.commit_staged().await.map(|_| ()).map_err(|e| {
            telemetry::delta_round_failed(&e);
            CheckpointError::Commit(e)
        })
    }

    /// Makes the books' done versions durable (a commit round), then writes `next`.
    async fn write_checkpoint(
        &self,
        path: &Path,
        next: Checkpoint,
    ) -> Result<Checkpoint, CheckpointError> {
        self.commit_round().await?;
        checkpoint::write(self.stores.standard.as_ref(), path, &next).await?;
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            event = "watch_checkpoint_written",
            listed_before = %next.listed_before,
            topics = next.settled.len(),
        );
        Ok(next)
    }

    /// The first listing's versions are all settled: how long that took and what it cost.
    fn log_caught_up(&self, took: Duration) {
        let s = &self.stats;
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        tracing::info!(
            event = "watch_caught_up",
            elapsed_ms = took.as_millis() as u64,
            full_listings = n(&s.full_listings),
            hour_listings = n(&s.hour_listings),
            list_calls = n(&s.list_calls),
            listed_blobs = n(&s.listed_blobs),
            covered = n(&s.covered),
            receipt_checks = n(&s.receipt_checks),
            processed = n(&s.processed),
        );
    }

    async fn handle(&self, meta: &ObjectMeta, etag: &str, checks: Checks) -> Outcome {
        let name = meta.location.to_string();
        match self.try_handle(meta, &name, etag, checks).await {
            Ok(o) => o,
            Err(e) => Outcome::Transient(e.into()),
        }
    }

    async fn try_handle(
        &self,
        meta: &ObjectMeta,
        name: &str,
        etag: &str,
        checks: Checks,
    ) -> Result<Outcome, LedgerError> {
        let standard = self.stores.standard.as_ref();
        if checks.receipt_first {
            self.stats.receipt_checks.fetch_add(1, Ordering::Relaxed);
            if ledger::receipt_etag(standard, name).await?.as_deref() == Some(etag) {
                return Ok(Outcome::AlreadyDone);
            }
        }
        // Skipped for a name absent from the last `_poison/` listing that never failed here:
        // if another watcher poisoned it since, this blob fails here once and its retry reads
        // the entry (a poisoned blob costs one attempt more, never a missing one).
        if checks.poison && ledger::poison_etag(standard, name).await?.as_deref() == Some(etag) {
            return Ok(Outcome::Poisoned);
        }
        let Some(mut lease) = ledger::claim(
            &self.stores.standard,
            name,
            etag,
            &self.owner,
            self.settings.lease_ttl,
        )
        .await?
        else {
            return Ok(Outcome::Busy);
        };
        // The receipt read that decides, after the claim: every watcher writes its receipt
        // before it releases its lease, so a watcher that finished before our claim succeeded
        // has a receipt we see here, and one that has not finished still holds the lease (our
        // claim would have failed) unless its lease expired, the take-over case. Reading it only
        // before the claim would let a watcher finish between that read and our claim.
        let receipt = ledger::receipt_etag(standard, name).await?;
        if receipt.as_deref() == Some(etag) {
            lease.release().await?;
            return Ok(Outcome::AlreadyDone);
        }
        let lag = (chrono::Utc::now() - meta.last_modified).as_seconds_f64();
        telemetry::watch_lag(lag);
        // Renewed while the transform runs, so a slow blob is never taken over from a live
        // watcher, while a killed watcher's blob waits at most one TTL.
        // A receipt for another version: the blob was rewritten, its rows are replaced.
        let delivery = match receipt {
            Some(_) => Delivery::Replay,
            None => Delivery::First,
        };
        // Delta mode with our own committer: the staged files go to it in memory, and the
        // receipt is written once they are committed (no manifest round trips).
        let committer = self.lakehouse.as_ref().map(|(l, _)| l.as_ref());
        let handoff = Handoff::to(committer);
        let work = process_blob_to(
            &self.stores,
            name,
            self.transform,
            "watch",
            delivery,
            handoff,
        );
        let outcome = match lease.hold_while(work).await {
            Ok(p) => {
                // The receipt names the version we listed; if the blob was rewritten meanwhile,
                // the next listing shows a new ETag and it is processed again.
                let read = p.etag.as_deref().unwrap_or(etag).to_owned();
                hand_over_or_receipt(standard, committer, p, read, &self.owner).await?;
                Outcome::Processed
            }
            Err(
                e @ ProcessError::Read {
                    source: object_store::Error::NotFound { .. },
                    ..
                },
            ) => {
                // Deleted since the listing: nothing to do, and nothing to poison.
                tracing::info!(event = "blob_vanished", blob = name, error = %e);
                Outcome::AlreadyDone
            }
            Err(e) if e.is_storage() => Outcome::Transient(StorageTrouble::Process(e)),
            Err(e) => Outcome::Failed(e),
        };
        lease.release().await?;
        Ok(outcome)
    }

    /// Books an outcome; `Some(delay)` when the blob is to be tried again after `delay`.
    async fn settle(
        &self,
        key: &Key,
        meta: &ObjectMeta,
        outcome: Outcome,
        books: &mut Books,
    ) -> Option<Duration> {
        let s = &self.stats;
        let failures = &mut books.failures;
        let finished = || Finished {
            etag: key.1.clone(),
            modified: meta.last_modified,
        };
        match outcome {
            Outcome::Processed | Outcome::AlreadyDone | Outcome::Poisoned => {
                let counter = match outcome {
                    Outcome::Processed => &s.processed,
                    Outcome::AlreadyDone => &s.already_done,
                    _ => &s.already_poisoned,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                failures.remove(key);
                books.done.insert(key.0.clone(), finished());
                None
            }
            Outcome::Busy => {
                s.busy.fetch_add(1, Ordering::Relaxed);
                Some(self.settings.poll)
            }
            Outcome::Transient(error) => {
                s.storage_errors.fetch_add(1, Ordering::Relaxed);
                let tries = failures.entry(key.clone()).or_default();
                tries.storage += 1;
                tracing::warn!(event = "watch_storage_failed", blob = %key.0, retry = tries.storage, error = %error);
                Some(self.backoff(tries.storage))
            }
            Outcome::Failed(error) => {
                s.failures.fetch_add(1, Ordering::Relaxed);
                let tries = failures.entry(key.clone()).or_default();
                tries.failed += 1;
                let count = tries.failed;
                if count < self.settings.max_attempts {
                    tracing::warn!(event = "blob_retry", blob = %key.0, attempt = count, error = %error);
                    return Some(self.backoff(count));
                }
                let standard = self.stores.standard.as_ref();
                let why = error.to_string();
                match ledger::write_poison(standard, &key.0, &key.1, count, &why, &self.owner).await
                {
                    Ok(()) => {
                        s.poisoned.fetch_add(1, Ordering::Relaxed);
                        failures.remove(key);
                        books.done.insert(key.0.clone(), finished());
                        None
                    }
                    Err(e) => {
                        s.storage_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(event = "watch_storage_failed", blob = %key.0, error = %e);
                        Some(self.backoff(count))
                    }
                }
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        Backoff::after(self.settings.backoff, failures, Duration::from_secs(60))
    }
}

/// Whether a listing has run (the first one's versions are what `watch_caught_up` waits for).
fn listed_any(stats: &WatchStats) -> bool {
    stats.full_listings.load(Ordering::Relaxed) + stats.hour_listings.load(Ordering::Relaxed) > 0
}

fn key_of(meta: &ObjectMeta) -> Key {
    let etag = meta.e_tag.as_deref().map_or_else(
        || meta.last_modified.timestamp_micros().to_string(),
        |e| ledger::normalize_etag(e).to_owned(),
    );
    (meta.location.to_string(), etag)
}

/// Runs a committer round every `every` until `stop` (the caller runs the last round and reads
/// its result).
pub async fn commit_every(lakehouse: Arc<Lakehouse>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = lakehouse.commit_staged().await {
            telemetry::delta_round_failed(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("a time").to_utc()
    }

    #[test]
    fn a_listing_early_in_an_hour_leaves_the_hour_before_unsettled() {
        let mut frontier = Frontier {
            path: Path::from("_watch/checkpoint.json"),
            current: None,
            swept_before: None,
            listed: BTreeMap::new(),
            margin: checkpoint::CLOCK_MARGIN,
        };
        let scan = Scan {
            topics: ["t".to_owned()].into(),
            ..Scan::default()
        };
        frontier.listed(Listing::Hours, at("2026-12-07T14:00:30Z"), &scan);
        assert_eq!(frontier.listed["t"], at("2026-12-07T13:00:00Z"));
        frontier.listed(Listing::Hours, at("2026-12-07T14:05:30Z"), &scan);
        assert_eq!(frontier.listed["t"], at("2026-12-07T14:00:00Z"));
        assert_eq!(
            frontier.swept_before, None,
            "an hour listing is not a full one"
        );
        frontier.listed(Listing::Full, at("2026-12-07T14:20:00Z"), &scan);
        assert_eq!(frontier.swept_before, Some(at("2026-12-07T14:15:00Z")));
    }
}

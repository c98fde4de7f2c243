//! `transformer watch`: finds each new raw blob version and processes it once.
//!
//! Finding blobs (a background task, so that blob work never waits on a listing):
//! ```text
//! full listing of raw (under WATCH_PREFIX) + listing of _poison/: at start, then again after
//!     max(WATCH_POLL_MS, 10 × the last full listing's duration), at most WATCH_FULL_LIST_MS
//! every WATCH_POLL_MS in between: probe each partition's next blob by name. A worker blob
//!     carries `last_offset` metadata, so the next blob of (topic, partition) is
//!     `{topic}/{hour}/{topic}+{partition}+{last_offset + 1}`; a HEAD (get with `head`) of that
//!     name in the tail's hour, the next hour and the current hour finds it, and its own
//!     metadata gives the one after (a burst is walked in one poll); a full listing only notes
//!     each partition's newest blob, whose metadata the next probe round reads, so listed blobs
//!     are queued without waiting for those reads
//! ```
//! Probes cost a few HEADs per partition and poll however full the container is; the full
//! listing is the safety net for what they cannot predict (new partitions or topics, rewritten
//! blobs, blobs without metadata, offset gaps), and costs at most ~1/10 of the time.
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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use model::naming::{META_LAST_OFFSET, RawBlobName, raw_blob_name};
use object_store::path::Path;
use object_store::{Attribute, GetOptions, ObjectMeta};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::WatchSettings;
use crate::delta::Lakehouse;
use crate::ledger::{self, LedgerError};
use crate::process::{
    Delivery, Handoff, ProcessError, Stores, hand_over_or_receipt, process_blob_to,
};
use crate::telemetry;
use crate::transform::TransformOptions;

/// A full listing happens at most once per this many times its own duration.
const FULL_LIST_DUTY: u32 = 10;
/// Partitions probed at once.
const PROBE_CONCURRENCY: usize = 16;
/// Blobs one partition's probe walks per poll (a burst beyond waits for the next poll).
const PROBE_WALK: usize = 64;
/// The next hour is probed from this long before it starts (clocks differ a little).
const NEXT_HOUR_EARLY: TimeDelta = TimeDelta::minutes(15);

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

/// Where (topic, partition)'s next blob is expected.
#[derive(Debug, Clone)]
struct Tail {
    topic: String,
    partition: i32,
    /// First offset of the newest blob seen.
    first: i64,
    /// Hour of that blob's name.
    hour: DateTime<Utc>,
    /// First offset of the next blob (`last_offset + 1`); `None` without metadata.
    next: Option<i64>,
    /// The newest blob, still to be read (HEAD) for `next`: set by a full listing, read by the
    /// next probe round, so that listed blobs are queued without waiting for these reads.
    unread: Option<Path>,
}

/// State of blob discovery, owned by one discovery step at a time.
#[derive(Debug, Default)]
struct Discovery {
    tails: HashMap<(String, i32), Tail>,
    /// When the next full listing is due (`None`: now).
    next_full: Option<Instant>,
}

/// What one discovery step found.
#[derive(Default)]
struct Scan {
    /// Blobs, oldest first for a full listing.
    metas: Vec<ObjectMeta>,
    /// Found by a full listing (else by probes).
    full: bool,
    /// Raw names with a poison entry (after a full listing).
    poisoned: Option<HashSet<String>>,
}

/// A blob waiting to be queued again.
struct Waiting {
    at: Instant,
    meta: ObjectMeta,
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
        let mut done: HashMap<String, String> = HashMap::new();
        let mut failures: HashMap<Key, Tries> = HashMap::new();
        let mut waiting: HashMap<Key, Waiting> = HashMap::new();
        let mut queued: VecDeque<Job> = VecDeque::new();
        let mut queued_keys: HashSet<Key> = HashSet::new();
        let mut in_flight: HashSet<Key> = HashSet::new();
        let mut ignored: HashSet<String> = HashSet::new();
        let mut poisoned: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<(Key, ObjectMeta, Outcome)> = JoinSet::new();
        let mut scans: JoinSet<(Discovery, Scan)> = JoinSet::new();
        let mut discovery = Some(Discovery::default());
        // `--once`: a full listing has been queued, so the pass knows every blob there is.
        let mut listed = false;
        let mut tick = tokio::time::interval(me.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(event = "watch_started", owner = %me.owner, prefix = ?me.settings.prefix);
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
            if me.once
                && listed
                && queued.is_empty()
                && tasks.is_empty()
                && waiting.is_empty()
                && scans.is_empty()
            {
                break;
            }
            while tasks.len() < me.settings.concurrency {
                let Some(job) = queued.pop_front() else {
                    break;
                };
                let key = key_of(&job.meta);
                queued_keys.remove(&key);
                in_flight.insert(key.clone());
                let checks = Checks {
                    receipt_first: job.receipt_first,
                    poison: poisoned.contains(&key.0)
                        || failures.get(&key).is_some_and(|t| t.failed > 0),
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
                    in_flight.remove(&key);
                    let retry = me.settle(&key, outcome, &mut done, &mut failures).await;
                    if let Some(after) = retry {
                        waiting.insert(key, Waiting { at: Instant::now() + after, meta });
                    }
                }
                Some(joined) = scans.join_next() => {
                    let (state, scan) = joined.unwrap_or_else(|e| {
                        // A panicked step loses its state: start over with a full listing.
                        tracing::error!(event = "watch_list_failed", error = %e);
                        (Discovery::default(), Scan::default())
                    });
                    discovery = Some(state);
                    listed |= scan.full;
                    if let Some(p) = scan.poisoned {
                        poisoned = p;
                    }
                    for meta in scan.metas {
                        let name = meta.location.to_string();
                        if let Err(e) = RawBlobName::parse(&name) {
                            // Every name a worker writes parses: anything else is poisoned
                            // visibly with its reason, once, never silently passed over.
                            if !poisoned.contains(&name) && ignored.insert(name.clone()) {
                                let etag = meta.e_tag.clone().unwrap_or_default();
                                let standard = me.stores.standard.as_ref();
                                let why = e.to_string();
                                match ledger::write_poison(standard, &name, &etag, 0, &why, &me.owner).await {
                                    Ok(()) => {
                                        me.stats.poisoned.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Err(err) => {
                                        ignored.remove(&name);
                                        me.stats.storage_errors.fetch_add(1, Ordering::Relaxed);
                                        tracing::warn!(event = "watch_storage_failed", blob = %name, error = %err);
                                    }
                                }
                            }
                            continue;
                        }
                        let key = key_of(&meta);
                        let finished = done.get(&name).is_some_and(|e| *e == key.1);
                        if finished
                            || waiting.contains_key(&key)
                            || in_flight.contains(&key)
                            || queued_keys.contains(&key)
                        {
                            continue;
                        }
                        queued_keys.insert(key);
                        queued.push_back(Job { meta, receipt_first: scan.full });
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let due: Vec<Key> =
                        waiting.iter().filter(|(_, w)| w.at <= now).map(|(k, _)| k.clone()).collect();
                    for key in due {
                        if let Some(w) = waiting.remove(&key) {
                            queued_keys.insert(key);
                            queued.push_back(Job { meta: w.meta, receipt_first: true });
                        }
                    }
                    if let Some(state) = discovery.take() {
                        let w = me.clone();
                        scans.spawn(async move { w.discover(state).await });
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        scans.abort_all();
        if let Some(upkeep) = upkeep {
            stop_committing.cancel();
            let _ = upkeep.await;
        }
        if let Some(committer) = committer {
            stop_committing.cancel();
            let _ = committer.await;
        }
        if let Some((lakehouse, _)) = &me.lakehouse {
            // A last round: what this watcher staged is committed before it stops.
            if let Err(e) = lakehouse.commit_staged().await {
                telemetry::delta_round_failed(&e);
            }
        }
        tracing::info!(
            event = "watch_stopped",
            owner = %me.owner,
            processed = me.stats.processed.load(Ordering::Relaxed),
            poisoned = me.stats.poisoned.load(Ordering::Relaxed),
            storage_errors = me.stats.storage_errors.load(Ordering::Relaxed),
        );
    }

    /// One discovery step: a full listing when due, else probes of every partition's next blob.
    async fn discover(&self, mut state: Discovery) -> (Discovery, Scan) {
        let started = Instant::now();
        if state.next_full.is_none_or(|t| t <= started) {
            match self.full_listing(&mut state).await {
                Ok(scan) => {
                    let every = started.elapsed().saturating_mul(FULL_LIST_DUTY).clamp(
                        self.settings.poll,
                        self.settings.full_list.max(self.settings.poll),
                    );
                    state.next_full = Some(started + every);
                    self.stats.full_listings.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        event = "watch_listed",
                        blobs = scan.metas.len(),
                        partitions = state.tails.len(),
                        duration_ms = started.elapsed().as_millis() as u64,
                        next_in_ms = every.as_millis() as u64,
                    );
                    return (state, scan);
                }
                Err(e) => {
                    // Due again at the next poll; probes keep finding new blobs meanwhile.
                    tracing::warn!(event = "watch_list_failed", error = %e);
                }
            }
        }
        let tails: Vec<Tail> = state.tails.drain().map(|(_, t)| t).collect();
        let probed: Vec<(Tail, Vec<ObjectMeta>)> = futures::stream::iter(tails)
            .map(|t| self.probe(t))
            .buffer_unordered(PROBE_CONCURRENCY)
            .collect()
            .await;
        let mut scan = Scan::default();
        for (tail, metas) in probed {
            state
                .tails
                .insert((tail.topic.clone(), tail.partition), tail);
            scan.metas.extend(metas);
        }
        self.stats
            .probed
            .fetch_add(scan.metas.len() as u64, Ordering::Relaxed);
        (state, scan)
    }

    /// Lists the raw container and `_poison/`, and moves each partition's tail to its newest blob.
    async fn full_listing(&self, state: &mut Discovery) -> Result<Scan, object_store::Error> {
        let prefix = self.settings.prefix.as_deref().map(Path::from);
        let mut metas: Vec<ObjectMeta> =
            self.stores.raw.list(prefix.as_ref()).try_collect().await?;
        // Oldest first, so a backlog drains in arrival order.
        metas.sort_by(|a, b| (a.last_modified, &a.location).cmp(&(b.last_modified, &b.location)));
        let poison_prefix = Path::from(ledger::POISON_PREFIX);
        let poisoned: HashSet<String> = self
            .stores
            .standard
            .list(Some(&poison_prefix))
            .try_filter_map(|m| {
                let raw = ledger::poisoned_raw_name(m.location.as_ref()).map(str::to_owned);
                futures::future::ready(Ok(raw))
            })
            .try_collect()
            .await?;

        // The newest blob of each partition in this listing, as a tail still without its next.
        let mut newest: HashMap<(String, i32), Tail> = HashMap::new();
        for meta in &metas {
            let Ok(n) = RawBlobName::parse(meta.location.as_ref()) else {
                continue;
            };
            let Some(hour) = hour_of(&n) else { continue };
            let tail = Tail {
                topic: n.topic.clone(),
                partition: n.partition,
                first: n.first_offset,
                hour,
                next: None,
                unread: Some(meta.location.clone()),
            };
            let key = (n.topic, n.partition);
            if newest.get(&key).is_none_or(|t| t.first < tail.first) {
                newest.insert(key, tail);
            }
        }
        for (key, tail) in newest {
            // Moved, or still without a next offset (no metadata, or its HEAD failed): the next
            // probe round reads its `last_offset`, which names the next blob.
            if state
                .tails
                .get(&key)
                .is_none_or(|t| t.first < tail.first || t.next.is_none())
            {
                state.tails.insert(key, tail);
            }
        }
        Ok(Scan {
            metas,
            full: true,
            poisoned: Some(poisoned),
        })
    }

    /// Follows `tail`: HEADs of its expected next name in the likely hours, and on a hit the
    /// one after, up to [`PROBE_WALK`] blobs.
    async fn probe(&self, mut tail: Tail) -> (Tail, Vec<ObjectMeta>) {
        let mut found = Vec::new();
        if tail.next.is_none()
            && let Some(path) = tail.unread.take()
        {
            match self.head(&path).await {
                // Gone, or without metadata: the next full listing moves this tail.
                Ok(got) => tail.next = got.and_then(|(_, next)| next),
                Err(e) => {
                    tracing::debug!(event = "watch_probe_failed", blob = %path, error = %e);
                    tail.unread = Some(path);
                    return (tail, found);
                }
            }
        }
        'walk: while found.len() < PROBE_WALK {
            let Some(next) = tail.next else { break };
            for hour in probe_hours(tail.hour, Utc::now()) {
                let name = raw_blob_name(
                    &tail.topic,
                    tail.partition,
                    next,
                    Some(hour.timestamp_millis()),
                );
                if self
                    .settings
                    .prefix
                    .as_deref()
                    .is_some_and(|p| !name.starts_with(p))
                {
                    continue;
                }
                match self.head(&Path::from(name.as_str())).await {
                    Ok(Some((meta, after))) => {
                        found.push(meta);
                        tail.first = next;
                        tail.hour = hour;
                        tail.next = after;
                        continue 'walk;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(event = "watch_probe_failed", blob = name, error = %e);
                        break 'walk;
                    }
                }
            }
            break;
        }
        (tail, found)
    }

    /// HEAD of a raw blob: its metadata and the first offset of the blob after it (from its
    /// `last_offset` metadata); `None` when it does not exist.
    async fn head(
        &self,
        path: &Path,
    ) -> Result<Option<(ObjectMeta, Option<i64>)>, object_store::Error> {
        let opts = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self.stores.raw.get_opts(path, opts).await {
            Ok(got) => {
                let next = got
                    .attributes
                    .get(&Attribute::Metadata(META_LAST_OFFSET.into()))
                    .and_then(|v| v.parse::<i64>().ok())
                    .and_then(|last| last.checked_add(1));
                Ok(Some((got.meta, next)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
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
        if checks.receipt_first
            && ledger::receipt_etag(standard, name).await?.as_deref() == Some(etag)
        {
            return Ok(Outcome::AlreadyDone);
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
        outcome: Outcome,
        done: &mut HashMap<String, String>,
        failures: &mut HashMap<Key, Tries>,
    ) -> Option<Duration> {
        let s = &self.stats;
        match outcome {
            Outcome::Processed | Outcome::AlreadyDone | Outcome::Poisoned => {
                let counter = match outcome {
                    Outcome::Processed => &s.processed,
                    Outcome::AlreadyDone => &s.already_done,
                    _ => &s.already_poisoned,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                failures.remove(key);
                done.insert(key.0.clone(), key.1.clone());
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
                        done.insert(key.0.clone(), key.1.clone());
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
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.settings
            .backoff
            .saturating_mul(factor)
            .min(Duration::from_secs(60))
    }
}

/// The hour a raw name is dated by.
fn hour_of(n: &RawBlobName) -> Option<DateTime<Utc>> {
    let mut it = n.hour_path.split('/').map(str::parse::<u32>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d)), Some(Ok(h))) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    Some(date.and_hms_opt(h, 0, 0)?.and_utc())
}

/// Hours a partition's next blob may be dated by, most likely first: its newest blob's hour,
/// the hour after (once `now` is near or past it) and the current hour (after an idle spell).
fn probe_hours(tail: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut hours = vec![tail];
    let after = tail + TimeDelta::hours(1);
    if after <= now + NEXT_HOUR_EARLY {
        hours.push(after);
    }
    if let Some(c) = now
        .duration_trunc(TimeDelta::hours(1))
        .ok()
        .filter(|c| *c > after)
    {
        hours.push(c);
    }
    hours
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
        s.parse().expect("RFC 3339")
    }

    #[test]
    fn a_name_gives_its_hour() {
        let n = RawBlobName::parse(
            "lib.server.game/2024/01/14/18/lib.server.game+3+00000000000000000042.json.gz",
        )
        .expect("raw name");
        assert_eq!(hour_of(&n), Some(at("2024-01-14T18:00:00Z")));
    }

    #[test]
    fn probes_look_in_the_tail_hour_the_next_one_near_its_start_and_the_current_one() {
        let tail = at("2024-01-14T18:00:00Z");
        assert_eq!(probe_hours(tail, at("2024-01-14T18:20:00Z")), vec![tail]);
        assert_eq!(
            probe_hours(tail, at("2024-01-14T18:50:00Z")),
            vec![tail, at("2024-01-14T19:00:00Z")]
        );
        assert_eq!(
            probe_hours(tail, at("2024-01-14T19:10:00Z")),
            vec![tail, at("2024-01-14T19:00:00Z")]
        );
        assert_eq!(
            probe_hours(tail, at("2024-01-15T02:10:00Z")),
            vec![tail, at("2024-01-14T19:00:00Z"), at("2024-01-15T02:00:00Z")]
        );
    }
}

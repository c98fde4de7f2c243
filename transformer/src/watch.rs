//! `transformer watch`: polls the raw container and processes each new blob version once.
//!
//! Run loop (one task; blob work in a bounded `JoinSet`):
//! ```text
//! every WATCH_POLL_MS: list raw (under WATCH_PREFIX) → queue (name, etag) not done, not queued,
//!                      not in flight, not backing off; warn once per non-raw name
//! while in flight < WATCH_CONCURRENCY: spawn the next queued blob:
//!     receipt has this etag? → done          (lazy: one GET per new name, no bulk load)
//!     poison entry has this etag? → skip
//!     claim _leases/{name}@{etag} (Create, expiry now + WATCH_LEASE_TTL_MS; take over if
//!       expired) → busy? → retry next poll
//!     receipt again (another watcher may have finished just before our claim) → done
//!     process_blob, renewing the lease every TTL/3 → write receipt → release lease
//! on failure: backoff WATCH_BACKOFF_MS·2^(n-1) (≤ 60 s); after WATCH_MAX_ATTEMPTS → poison entry
//! ```
//! Outputs are deterministic overwrites, so even a lost race only rewrites identical bytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use model::naming::RawBlobName;
use object_store::ObjectMeta;
use object_store::path::Path;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::WatchSettings;
use crate::ledger::{self, LedgerError};
use crate::process::{ProcessError, Stores, process_blob};
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
    /// Failed attempts.
    pub failures: AtomicU64,
    /// Poison entries written.
    pub poisoned: AtomicU64,
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
}

type Key = (String, String);

enum Outcome {
    Processed,
    AlreadyDone,
    Poisoned,
    Busy,
    Failed(String),
    /// Bookkeeping I/O failed: retried with backoff, not counted as an attempt.
    Transient(String),
}

#[derive(Debug, Default)]
struct Attempts {
    count: u32,
    next_at: Option<Instant>,
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
        }
    }

    /// Runs until `shutdown`, then waits for in-flight blobs (the caller bounds that wait).
    pub async fn run(self, shutdown: CancellationToken) {
        let me = Arc::new(self);
        let mut done: HashMap<String, String> = HashMap::new();
        let mut attempts: HashMap<Key, Attempts> = HashMap::new();
        let mut queued: VecDeque<ObjectMeta> = VecDeque::new();
        let mut queued_keys: HashSet<Key> = HashSet::new();
        let mut in_flight: HashSet<Key> = HashSet::new();
        let mut ignored: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<(Key, Outcome)> = JoinSet::new();
        let mut tick = tokio::time::interval(me.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(event = "watch_started", owner = %me.owner, prefix = ?me.settings.prefix);

        loop {
            while tasks.len() < me.settings.concurrency {
                let Some(meta) = queued.pop_front() else {
                    break;
                };
                let key = key_of(&meta);
                queued_keys.remove(&key);
                in_flight.insert(key.clone());
                let w = me.clone();
                tasks.spawn(async move {
                    let outcome = w.handle(&meta, &key.1).await;
                    (key, outcome)
                });
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(joined) = tasks.join_next() => {
                    let Ok((key, outcome)) = joined else { continue };
                    in_flight.remove(&key);
                    me.settle(key, outcome, &mut done, &mut attempts).await;
                }
                _ = tick.tick() => {
                    let listing = match me.list().await {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::warn!(event = "watch_list_failed", error = %e);
                            continue;
                        }
                    };
                    let now = Instant::now();
                    for meta in listing {
                        let name = meta.location.to_string();
                        if let Err(e) = RawBlobName::parse(&name) {
                            if ignored.insert(name.clone()) {
                                telemetry::blob_ignored(&name, e.why);
                            }
                            continue;
                        }
                        let key = key_of(&meta);
                        let finished = done.get(&name).is_some_and(|e| *e == key.1);
                        let waiting = attempts.get(&key).and_then(|a| a.next_at).is_some_and(|t| t > now);
                        if finished || waiting || in_flight.contains(&key) || queued_keys.contains(&key) {
                            continue;
                        }
                        queued_keys.insert(key);
                        queued.push_back(meta);
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!(
            event = "watch_stopped",
            owner = %me.owner,
            processed = me.stats.processed.load(Ordering::Relaxed),
            poisoned = me.stats.poisoned.load(Ordering::Relaxed),
        );
    }

    async fn list(&self) -> Result<Vec<ObjectMeta>, object_store::Error> {
        let prefix = self.settings.prefix.as_deref().map(Path::from);
        let mut metas: Vec<ObjectMeta> =
            self.stores.raw.list(prefix.as_ref()).try_collect().await?;
        // Oldest first, so a backlog drains in arrival order.
        metas.sort_by(|a, b| (a.last_modified, &a.location).cmp(&(b.last_modified, &b.location)));
        Ok(metas)
    }

    async fn handle(&self, meta: &ObjectMeta, etag: &str) -> Outcome {
        let name = meta.location.to_string();
        match self.try_handle(meta, &name, etag).await {
            Ok(o) => o,
            Err(e) => Outcome::Transient(e.to_string()),
        }
    }

    async fn try_handle(
        &self,
        meta: &ObjectMeta,
        name: &str,
        etag: &str,
    ) -> Result<Outcome, LedgerError> {
        let standard = self.stores.standard.as_ref();
        if ledger::receipt_etag(standard, name).await?.as_deref() == Some(etag) {
            return Ok(Outcome::AlreadyDone);
        }
        if ledger::poison_etag(standard, name).await?.as_deref() == Some(etag) {
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
        if ledger::receipt_etag(standard, name).await?.as_deref() == Some(etag) {
            lease.release().await?;
            return Ok(Outcome::AlreadyDone);
        }
        let lag = (chrono::Utc::now() - meta.last_modified).as_seconds_f64();
        telemetry::watch_lag(lag);
        // Renewed while the transform runs, so a slow blob is never taken over from a live
        // watcher, while a killed watcher's blob waits at most one TTL.
        let work = process_blob(&self.stores, name, self.transform, "watch");
        let outcome = match lease.hold_while(work).await {
            Ok(p) => {
                // The receipt names the version we listed; if the blob was rewritten meanwhile,
                // the next listing shows a new ETag and it is processed again.
                let read = p.etag.as_deref().unwrap_or(etag);
                ledger::write_receipt(standard, name, read, &self.owner, &p.counts).await?;
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
            Err(e) => Outcome::Failed(e.to_string()),
        };
        lease.release().await?;
        Ok(outcome)
    }

    async fn settle(
        &self,
        key: Key,
        outcome: Outcome,
        done: &mut HashMap<String, String>,
        attempts: &mut HashMap<Key, Attempts>,
    ) {
        let s = &self.stats;
        match outcome {
            Outcome::Processed | Outcome::AlreadyDone | Outcome::Poisoned => {
                let counter = match outcome {
                    Outcome::Processed => &s.processed,
                    Outcome::AlreadyDone => &s.already_done,
                    _ => &s.poisoned,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                attempts.remove(&key);
                done.insert(key.0, key.1);
            }
            Outcome::Busy => {
                s.busy.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Transient(error) => {
                tracing::warn!(event = "watch_bookkeeping_failed", blob = %key.0, error);
                let a = attempts.entry(key).or_default();
                a.next_at = Some(Instant::now() + self.backoff(a.count.max(1)));
            }
            Outcome::Failed(error) => {
                s.failures.fetch_add(1, Ordering::Relaxed);
                let a = attempts.entry(key.clone()).or_default();
                a.count += 1;
                if a.count < self.settings.max_attempts {
                    a.next_at = Some(Instant::now() + self.backoff(a.count));
                    tracing::warn!(event = "blob_retry", blob = %key.0, attempt = a.count, error);
                    return;
                }
                let count = a.count;
                let standard = self.stores.standard.as_ref();
                match ledger::write_poison(standard, &key.0, &key.1, count, &error, &self.owner)
                    .await
                {
                    Ok(()) => {
                        s.poisoned.fetch_add(1, Ordering::Relaxed);
                        attempts.remove(&key);
                        done.insert(key.0, key.1);
                    }
                    Err(e) => {
                        tracing::warn!(event = "watch_bookkeeping_failed", blob = %key.0, error = %e);
                        if let Some(a) = attempts.get_mut(&key) {
                            a.next_at = Some(Instant::now() + self.backoff(count));
                        }
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

fn key_of(meta: &ObjectMeta) -> Key {
    let etag = meta.e_tag.as_deref().map_or_else(
        || meta.last_modified.timestamp_micros().to_string(),
        |e| ledger::normalize_etag(e).to_owned(),
    );
    (meta.location.to_string(), etag)
}

//! Finding raw blob versions: full listings, listings of the unsettled hours, and probes by name.
//!
//! One discovery step runs at a time, in the background, and owns [`Discovery`]; the main loop
//! owns everything a step reports ([`Scan`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use model::naming::{META_LAST_OFFSET, RawBlobName, raw_blob_name};
use object_store::path::Path;
use object_store::{Attribute, GetOptions, ObjectMeta};
use tokio::time::Instant;

use super::Watcher;
use crate::ledger;

/// A listing happens at most once per this many times its own duration.
const LIST_DUTY: u32 = 10;
/// Partitions probed at once.
const PROBE_CONCURRENCY: usize = 16;
/// Blobs one partition's probe walks per poll (a burst beyond waits for the next poll).
const PROBE_WALK: usize = 64;
/// The next hour is probed from this long before it starts (clocks differ a little).
const NEXT_HOUR_EARLY: TimeDelta = TimeDelta::minutes(15);
/// A tail in a settled hour has its hour listed with the recent hours for this long after it
/// last moved (a draining backlog keeps moving it; an idle partition's stops).
const TAIL_RECENT: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Hour folders listed at once.
const LIST_CONCURRENCY: usize = 8;
/// A topic with more unsettled hours than this is listed whole (fewer requests by then).
const MAX_HOUR_LISTINGS: i64 = 48;

/// A topic and partition, as raw names carry them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PartitionId {
    /// Kafka topic.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

/// Where a partition's next blob is expected.
#[derive(Debug, Clone)]
struct Tail {
    id: PartitionId,
    /// First offset of the newest blob seen.
    first: i64,
    /// Hour of that blob's name.
    hour: DateTime<Utc>,
    /// First offset of the next blob (`last_offset + 1`); `None` without metadata.
    next: Option<i64>,
    /// When it last moved to a newer blob (or was first seen).
    moved: Instant,
    /// The newest blob, still to be read (HEAD) for `next`: set by a listing, read by the
    /// next probe round, so that listed blobs are queued without waiting for these reads.
    unread: Option<Path>,
}

/// State of blob discovery, owned by one discovery step at a time.
#[derive(Debug)]
pub(super) struct Discovery {
    tails: HashMap<PartitionId, Tail>,
    /// When the next listing of the unsettled hours is due (`None`: now).
    next_listing: Option<Instant>,
    /// When the next full listing is due (`None`: now).
    next_full: Option<Instant>,
}

impl Discovery {
    /// Discovery from scratch; the first step is a full listing unless `full_after` says when.
    pub fn new(full_after: Option<Instant>) -> Self {
        Discovery {
            tails: HashMap::new(),
            next_listing: None,
            next_full: full_after,
        }
    }
}

/// Which listing found a scan's blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    /// Everything under the prefix.
    Full,
    /// The hours of each topic from its first unsettled one.
    Hours,
}

/// What one discovery step found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Blobs, oldest first for a listing.
    pub metas: Vec<ObjectMeta>,
    /// The listing that found them and when it started (`None`: probes).
    pub listing: Option<(Listing, DateTime<Utc>)>,
    /// Topics the listing covered from their first unsettled hour on.
    pub topics: BTreeSet<String>,
    /// Raw names with a poison entry (after a listing).
    pub poisoned: Option<HashSet<String>>,
}

impl Watcher {
    /// One discovery step: a full listing when due, else a listing of the unsettled hours when
    /// due, else probes of every partition's next blob. `settled` is the checkpoint in force.
    pub(super) async fn discover(
        &self,
        mut state: Discovery,
        settled: BTreeMap<String, DateTime<Utc>>,
    ) -> (Discovery, Scan) {
        let started = Instant::now();
        let full = state.next_full.is_none_or(|t| t <= started);
        if full || state.next_listing.is_none_or(|t| t <= started) {
            let kind = if full { Listing::Full } else { Listing::Hours };
            match self.listing(&mut state, kind, &settled).await {
                Ok(scan) => {
                    let took = started.elapsed();
                    let every = took.saturating_mul(LIST_DUTY).clamp(
                        self.settings.poll,
                        self.settings.list.max(self.settings.poll),
                    );
                    state.next_listing = Some(started + every);
                    if full {
                        state.next_full = Some(started + self.settings.full_list);
                        self.stats.full_listings.fetch_add(1, Relaxed);
                    } else {
                        self.stats.hour_listings.fetch_add(1, Relaxed);
                    }
                    self.stats
                        .listed_blobs
                        .fetch_add(scan.metas.len() as u64, Relaxed);
                    tracing::debug!(
                        event = "watch_listed",
                        full,
                        blobs = scan.metas.len(),
                        topics = scan.topics.len(),
                        partitions = state.tails.len(),
                        duration_ms = took.as_millis() as u64,
                        next_in_ms = every.as_millis() as u64,
                    );
                    return (state, scan);
                }
                Err(e) => {
                    // Due again at the next poll; probes keep finding new blobs meanwhile.
                    tracing::warn!(event = "watch_list_failed", full, error = %e);
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
            state.tails.insert(tail.id.clone(), tail);
            scan.metas.extend(metas);
        }
        self.stats
            .probed
            .fetch_add(scan.metas.len() as u64, Relaxed);
        (state, scan)
    }

    /// A listing of raw (whole, or each topic's unsettled hours) and of `_poison/`; moves each
    /// partition's tail to its newest blob.
    async fn listing(
        &self,
        state: &mut Discovery,
        kind: Listing,
        settled: &BTreeMap<String, DateTime<Utc>>,
    ) -> Result<Scan, object_store::Error> {
        let started = Utc::now();
        let prefix = self.settings.prefix.as_deref().map(Path::from);
        let (mut metas, topics) = match kind {
            Listing::Full => {
                self.stats.list_calls.fetch_add(1, Relaxed);
                let metas: Vec<ObjectMeta> =
                    self.stores.raw.list(prefix.as_ref()).try_collect().await?;
                let mut topics: BTreeSet<String> = settled.keys().cloned().collect();
                topics.extend(
                    metas
                        .iter()
                        .filter_map(|m| RawBlobName::parse(m.location.as_ref()).ok())
                        .map(|n| n.topic),
                );
                (metas, topics)
            }
            Listing::Hours => {
                // Where each partition's next blob most likely is: its tail's hour and the
                // next. A probe finds it there by name unless an offset gap (a transactional
                // producer's markers, a compacted topic) hides the name; a backlog drains
                // through settled hours, so these are listed too.
                // Only tails that moved lately: an idle partition's old hour (thousands of
                // blobs on a busy topic) is not listed again and again.
                let mut tail_hours: BTreeMap<String, BTreeSet<DateTime<Utc>>> = BTreeMap::new();
                let recent = state
                    .tails
                    .values()
                    .filter(|t| t.moved.elapsed() < TAIL_RECENT);
                for t in recent {
                    let hours = tail_hours.entry(t.id.topic.clone()).or_default();
                    hours.insert(t.hour);
                    hours.insert(t.hour + TimeDelta::hours(1));
                }
                self.hour_listing(settled, &tail_hours, started).await?
            }
        };
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
        let mut newest: HashMap<PartitionId, Tail> = HashMap::new();
        for meta in &metas {
            let Ok(n) = RawBlobName::parse(meta.location.as_ref()) else {
                continue;
            };
            let Some(hour) = hour_of(&n) else { continue };
            let id = PartitionId {
                topic: n.topic,
                partition: n.partition,
            };
            let tail = Tail {
                id: id.clone(),
                first: n.first_offset,
                hour,
                next: None,
                moved: Instant::now(),
                unread: Some(meta.location.clone()),
            };
            if newest.get(&id).is_none_or(|t| t.first < tail.first) {
                newest.insert(id, tail);
            }
        }
        for (id, tail) in newest {
            // Moved, or still without a next offset (no metadata, or its HEAD failed): the next
            // probe round reads its `last_offset`, which names the next blob.
            if state
                .tails
                .get(&id)
                .is_none_or(|t| t.first < tail.first || t.next.is_none())
            {
                state.tails.insert(id, tail);
            }
        }
        Ok(Scan {
            metas,
            listing: Some((kind, started)),
            topics,
            poisoned: Some(poisoned),
        })
    }

    /// Lists each topic's hours from its first unsettled one (by `settled`) to the next hour,
    /// its fallback hours ([`model::naming::fallback_hour_paths`]) and its partitions' tail
    /// hours (`tail_hours`), or the whole topic when it has no settled hour or too many
    /// unsettled ones.
    async fn hour_listing(
        &self,
        settled: &BTreeMap<String, DateTime<Utc>>,
        tail_hours: &BTreeMap<String, BTreeSet<DateTime<Utc>>>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ObjectMeta>, BTreeSet<String>), object_store::Error> {
        let prefix = self.settings.prefix.as_deref().map(|p| p.trim_matches('/'));
        let topics: BTreeSet<String> = match prefix {
            Some(p) => p.split('/').next().into_iter().map(str::to_owned).collect(),
            None => {
                self.stats.list_calls.fetch_add(1, Relaxed);
                let top = self.stores.raw.list_with_delimiter(None).await?;
                top.common_prefixes
                    .iter()
                    .filter_map(|p| p.parts().next().map(|s| s.as_ref().to_owned()))
                    .collect()
            }
        };
        let current = hour_start(now);
        let mut folders: Vec<String> = Vec::new();
        for topic in &topics {
            let hours = settled
                .get(topic)
                .map(|from| (*from, (current - *from).num_hours() + 1))
                .filter(|(_, n)| *n <= MAX_HOUR_LISTINGS);
            let Some((from, n)) = hours else {
                folders.extend(within(prefix, topic.clone()));
                continue;
            };
            let hour_folder = |hour: DateTime<Utc>| {
                within(prefix, format!("{topic}/{}", hour.format("%Y/%m/%d/%H")))
            };
            folders.extend((0..=n.max(0)).filter_map(|i| hour_folder(from + TimeDelta::hours(i))));
            // Where a record without a usable timestamp dates its blob: no probe predicts it,
            // and it is settled long before (else only the next full listing would find it).
            for hour in model::naming::fallback_hour_paths() {
                folders.extend(within(prefix, format!("{topic}/{hour}")));
            }
            // Tails in settled hours (those after are listed above).
            let tails = tail_hours.get(topic).into_iter().flatten();
            folders.extend(tails.filter(|h| **h < from).filter_map(|h| hour_folder(*h)));
        }
        folders.sort();
        folders.dedup();
        self.stats
            .list_calls
            .fetch_add(folders.len() as u64, Relaxed);
        let raw = self.stores.raw.clone();
        let lists: Vec<Vec<ObjectMeta>> = futures::stream::iter(folders)
            .map(|f| {
                let raw = raw.clone();
                async move { raw.list(Some(&Path::from(f))).try_collect::<Vec<_>>().await }
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        Ok((lists.into_iter().flatten().collect(), topics))
    }

    /// Follows `tail`: HEADs of its expected next name in the likely hours, and on a hit the
    /// one after, up to [`PROBE_WALK`] blobs.
    async fn probe(&self, mut tail: Tail) -> (Tail, Vec<ObjectMeta>) {
        let mut found = Vec::new();
        if tail.next.is_none()
            && let Some(path) = tail.unread.take()
        {
            match self.head(&path).await {
                // Gone, or without metadata: the next listing moves this tail.
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
                    &tail.id.topic,
                    tail.id.partition,
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
                        tail.moved = Instant::now();
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
}

/// `folder` intersected with the watcher's prefix: the folder itself when it lies under the
/// prefix, the prefix when the prefix lies inside it, nothing when they are disjoint.
fn within(prefix: Option<&str>, folder: String) -> Option<String> {
    let Some(p) = prefix else { return Some(folder) };
    let under =
        |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
    if under(p, &folder) {
        Some(folder)
    } else if under(&folder, p) {
        Some(p.to_owned())
    } else {
        None
    }
}

/// The hour a raw name is dated by.
pub(super) fn hour_of(n: &RawBlobName) -> Option<DateTime<Utc>> {
    let mut it = n.hour_path.split('/').map(str::parse::<u32>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d)), Some(Ok(h))) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    Some(date.and_hms_opt(h, 0, 0)?.and_utc())
}

/// The hour `t` falls in.
pub(super) fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// Hours a partition's next blob may be dated by, most likely first: its newest blob's hour,
/// the hour after (once `now` is near or past it) and the current hour (after an idle spell).
fn probe_hours(tail: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut hours = vec![tail];
    let after = tail + TimeDelta::hours(1);
    if after <= now + NEXT_HOUR_EARLY {
        hours.push(after);
    }
    let current = hour_start(now);
    if current > after {
        hours.push(current);
    }
    hours
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

    #[test]
    fn hour_folders_are_cut_to_the_watch_prefix() {
        let folder = || "game/2024/01/14/18".to_owned();
        assert_eq!(
            within(None, folder()).as_deref(),
            Some("game/2024/01/14/18")
        );
        assert_eq!(
            within(Some("game"), folder()).as_deref(),
            Some("game/2024/01/14/18")
        );
        assert_eq!(
            within(Some("game/2024/01"), folder()).as_deref(),
            Some("game/2024/01/14/18")
        );
        // A prefix inside the folder: only the prefix is listed.
        assert_eq!(
            within(Some("game/2024/01/14/18/game+3"), folder()).as_deref(),
            Some("game/2024/01/14/18/game+3")
        );
        assert_eq!(within(Some("game/2024/02"), folder()), None);
        assert_eq!(within(Some("gam"), folder()), None);
    }
}

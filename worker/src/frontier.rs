//! Which partitions this process owns, and how far each may be committed.
//!
//! Ownership is tracked per partition with an *epoch*, a number that changes on every assign.
//! Upload tasks carry the epoch they were started under; a task whose epoch is no longer current
//! neither commits nor starts another upload, so a revoked partition's late upload can never move
//! the committed offset. (Its blob is fine: the next owner finds it when it walks the chain.)
//!
//! Per owned partition three positions decide what may be committed:
//! - *durable*: every offset below it is in storage (advanced by upload tasks);
//! - *seen*: every record below it has been routed by the pipeline, so every `Cleaning Game
//!   Records` record below it is known (the chain walk can move *durable* past records that have
//!   not arrived yet, and their clean-ups are not known then);
//! - *pending*: offsets of clean-ups registered when their record was seen and not applied yet.
//!
//! With clean-up on, the commit frontier is the last *chain position* (the end of a blob: see
//! [`crate::sink`]) at or below `min(durable, seen, lowest pending)`: the committed offset never
//! passes a record whose clean-up has not run, so a crash (or a revoke) loses no clean-up — the
//! next run reads the record again, finds it durable, and queues its clean-up again. It must be
//! a chain position because the next owner starts its chain walk there: a commit inside a blob
//! would make it land an overlapping blob. With clean-up off it is `durable`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::TopicPartitionList;

use crate::partition::PartitionId;
use crate::telemetry;

/// What may be committed for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frontier {
    /// Every offset below it is durable in storage.
    pub durable: i64,
    /// The offset to commit, a chain position: below it, everything is durable and every
    /// clean-up has run. `None` when no chain position of this epoch qualifies yet (the offset
    /// committed before stays).
    pub commit: Option<i64>,
    /// The lowest offset whose clean-up is pending, when it (and not storage) holds the commit.
    pub held_by: Option<i64>,
    /// Clean-ups pending on the partition.
    pub pending: usize,
}

/// A partition this process owns, under which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPartition {
    /// The partition.
    pub id: PartitionId,
    /// Ownership epoch (new at every assignment).
    pub epoch: u64,
}

/// An owned partition's commit frontier under its current epoch (see
/// [`Ownership::commit_frontiers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFrontier {
    /// The partition.
    pub id: PartitionId,
    /// Its current ownership epoch.
    pub epoch: u64,
    /// The offset that may be committed ([`Frontier::commit`]).
    pub commit: i64,
}

/// The commit side's state of one owned partition, for one epoch: replaced at every assign,
/// removed at revoke (rebalance callbacks, [`Ownership::assign`] / [`Ownership::revoke`]).
#[derive(Debug, Clone, Default)]
struct Owned {
    /// The epoch this state belongs to; writes carrying another epoch are ignored.
    epoch: u64,
    /// Every offset below it is durable; written by the upload tasks as soon as a landing
    /// returns ([`Ownership::advance`]), so that a revoke commits it even before the pipeline
    /// has taken the upload's result (the pipeline keeps its own copy for routing, see
    /// [`crate::pipeline`]). `None` until the first landing of the epoch.
    durable: Option<i64>,
    /// Chain positions reached in this epoch, from the last commit frontier on; written with
    /// `durable`.
    positions: BTreeSet<i64>,
    /// Every record below it has been routed (its clean-up is held); published by the pipeline
    /// once per wake-up ([`Ownership::saw`]).
    seen: Option<i64>,
    /// Offset → how many clean-ups of it are pending (1 unless Kafka delivered it twice); added
    /// by the pipeline ([`Ownership::hold`]), removed by the clean-up task
    /// ([`Ownership::cleaned`]).
    pending: BTreeMap<i64, u32>,
    /// The sum of `pending`'s counts.
    pending_count: usize,
}

impl Owned {
    fn frontier(&self, hold_for_cleanup: bool) -> Option<Frontier> {
        let durable = self.durable?;
        if !hold_for_cleanup {
            return Some(Frontier {
                durable,
                commit: Some(durable),
                held_by: None,
                pending: 0,
            });
        }
        // Nothing seen yet means nothing is known about clean-ups: no commit.
        let known = durable.min(self.seen?);
        let lowest = self.pending.keys().next().copied();
        let held_by = lowest.filter(|l| *l < known);
        let limit = held_by.unwrap_or(known);
        Some(Frontier {
            durable,
            commit: self.positions.range(..=limit).next_back().copied(),
            held_by,
            pending: self.pending_count,
        })
    }
}

/// Which partitions this process owns, under which epoch, and how far each may be committed.
#[derive(Debug, Default)]
pub struct Ownership {
    /// Each owned partition's state; entries made by [`Ownership::assign`], removed by
    /// [`Ownership::revoke`] (both in rebalance callbacks).
    parts: Mutex<HashMap<PartitionId, Owned>>,
    /// The last epoch handed out; bumped for each partition [`Ownership::assign`] lists.
    next_epoch: AtomicU64,
    /// How many assigns and revokes happened ([`Ownership::changes`]).
    changes: AtomicU64,
    /// `CLEANUP_ENABLED`: commits wait for clean-ups.
    hold_for_cleanup: bool,
}

impl Ownership {
    /// Empty; with `hold_for_cleanup` (clean-up on) commits never pass a pending clean-up.
    pub fn new(hold_for_cleanup: bool) -> Self {
        Ownership {
            hold_for_cleanup,
            ..Ownership::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionId, Owned>> {
        // A panic while holding this lock cannot leave the map inconsistent (each change is one
        // field or one entry), so a poisoned lock is still usable.
        self.parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_current<T>(
        &self,
        topic: &str,
        partition: i32,
        epoch: u64,
        f: impl FnOnce(&mut Owned) -> T,
    ) -> Option<T> {
        match self.lock().get_mut(&PartitionId::new(topic, partition)) {
            Some(o) if o.epoch == epoch => Some(f(o)),
            _ => None,
        }
    }

    /// Bumped on every assign or revoke; the pipeline compares it to notice rebalances.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The current epoch of a partition, `None` if this process does not own it.
    pub fn epoch(&self, topic: &str, partition: i32) -> Option<u64> {
        self.lock()
            .get(&PartitionId::new(topic, partition))
            .map(|o| o.epoch)
    }

    /// True while `epoch` is the partition's current epoch.
    pub fn is_current(&self, topic: &str, partition: i32, epoch: u64) -> bool {
        self.epoch(topic, partition) == Some(epoch)
    }

    /// Records the chain `positions` a landing reached (the last one is its frontier: every
    /// offset below it is durable), if `epoch` is still current.
    pub fn advance(&self, topic: &str, partition: i32, epoch: u64, positions: &[i64]) -> bool {
        let hold = self.hold_for_cleanup;
        self.with_current(topic, partition, epoch, |o| {
            let Some(frontier) = positions.iter().copied().max() else {
                return;
            };
            o.durable = Some(o.durable.map_or(frontier, |d| d.max(frontier)));
            o.positions.extend(positions);
            // The commit frontier never moves back within an epoch (holds are only added at
            // offsets not yet seen), so positions below it are no longer needed.
            if let Some(commit) = o.frontier(hold).and_then(|f| f.commit) {
                o.positions = o.positions.split_off(&commit);
            }
        })
        .is_some()
    }

    /// Records that every record below `next` has been routed (its clean-up, if any, is
    /// registered). Publishing it late is safe: the commit only lags.
    pub fn saw(&self, topic: &str, partition: i32, epoch: u64, next: i64) {
        self.with_current(topic, partition, epoch, |o| {
            o.seen = Some(o.seen.map_or(next, |s| s.max(next)));
        });
    }

    /// Registers a clean-up of the record at `offset`; the commit stays at or below `offset`
    /// until [`Ownership::cleaned`]. Must be called before the record counts as seen.
    pub fn hold(&self, topic: &str, partition: i32, epoch: u64, offset: i64) {
        let held = self.with_current(topic, partition, epoch, |o| {
            *o.pending.entry(offset).or_default() += 1;
            o.pending_count += 1;
        });
        if held.is_some() {
            telemetry::cleanups_held(1);
        }
    }

    /// The clean-up of the record at `offset` has been applied. Ignored for an epoch that is no
    /// longer current (the partition's holds went with it).
    pub fn cleaned(&self, topic: &str, partition: i32, epoch: u64, offset: i64) {
        let released = self.with_current(topic, partition, epoch, |o| {
            let Some(n) = o.pending.get_mut(&offset) else {
                return false;
            };
            *n -= 1;
            if *n == 0 {
                o.pending.remove(&offset);
            }
            o.pending_count -= 1;
            true
        });
        if released == Some(true) {
            telemetry::cleanups_released(1);
        }
    }

    /// What may be committed for one partition under `epoch`.
    pub fn frontier(&self, topic: &str, partition: i32, epoch: u64) -> Option<Frontier> {
        let hold = self.hold_for_cleanup;
        self.with_current(topic, partition, epoch, |o| o.frontier(hold))
            .flatten()
    }

    /// The commit frontier of every owned partition (what a final commit sends).
    pub fn commits(&self) -> Vec<(String, i32, i64)> {
        let hold = self.hold_for_cleanup;
        self.lock()
            .iter()
            .filter_map(|(id, o)| {
                Some((
                    id.topic.to_string(),
                    id.partition,
                    o.frontier(hold)?.commit?,
                ))
            })
            .collect()
    }

    /// Every owned partition's epoch and commit frontier (partitions without one left out).
    pub fn commit_frontiers(&self) -> Vec<CommitFrontier> {
        let hold = self.hold_for_cleanup;
        self.lock()
            .iter()
            .filter_map(|(id, o)| {
                Some(CommitFrontier {
                    id: id.clone(),
                    epoch: o.epoch,
                    commit: o.frontier(hold)?.commit?,
                })
            })
            .collect()
    }

    /// Every partition this process owns, with its epoch.
    pub fn owned(&self) -> Vec<OwnedPartition> {
        self.lock()
            .iter()
            .map(|(id, o)| OwnedPartition {
                id: id.clone(),
                epoch: o.epoch,
            })
            .collect()
    }

    /// Clean-ups pending on all owned partitions.
    pub fn pending(&self) -> usize {
        self.lock().values().map(|o| o.pending_count).sum()
    }

    /// Takes ownership of the partitions, each under a new epoch (rebalance callback). Eager
    /// rebalancing lists the whole assignment, cooperative only the partitions added: the ones
    /// not listed keep their epoch and state.
    pub fn assign(&self, tpl: &TopicPartitionList) {
        let mut parts = self.lock();
        for e in tpl.elements() {
            let epoch = self.next_epoch.fetch_add(1, Ordering::AcqRel) + 1;
            let old = parts.insert(
                PartitionId::new(e.topic(), e.partition()),
                Owned {
                    epoch,
                    ..Owned::default()
                },
            );
            forget_pending(old.as_ref());
        }
        drop(parts);
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes the partitions and returns their commit frontiers (rebalance callback). Eager
    /// rebalancing lists every owned partition, cooperative only the ones that move.
    pub fn revoke(&self, tpl: &TopicPartitionList) -> Vec<(String, i32, i64)> {
        let hold = self.hold_for_cleanup;
        let mut parts = self.lock();
        let mut out = Vec::new();
        for e in tpl.elements() {
            let old = parts.remove(&PartitionId::new(e.topic(), e.partition()));
            forget_pending(old.as_ref());
            if let Some(commit) = old.and_then(|o| o.frontier(hold)?.commit) {
                out.push((e.topic().to_owned(), e.partition(), commit));
            }
        }
        drop(parts);
        self.changes.fetch_add(1, Ordering::AcqRel);
        out
    }
}

/// A partition's holds leave with it (its next owner registers them again when it re-reads).
fn forget_pending(old: Option<&Owned>) {
    if let Some(o) = old
        && o.pending_count > 0
    {
        telemetry::cleanups_released(o.pending_count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "t";

    fn owned(hold: bool) -> (Ownership, u64) {
        let own = Ownership::new(hold);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(T, 0);
        own.assign(&tpl);
        let epoch = own.epoch(T, 0).expect("assigned");
        (own, epoch)
    }

    fn revoke(own: &Ownership) -> Vec<(String, i32, i64)> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(T, 0);
        own.revoke(&tpl)
    }

    fn commit(own: &Ownership, epoch: u64) -> Option<i64> {
        own.frontier(T, 0, epoch).and_then(|f| f.commit)
    }

    #[test]
    fn without_cleanup_the_commit_is_the_durable_frontier() {
        let (own, e) = owned(false);
        assert_eq!(own.frontier(T, 0, e), None, "nothing durable yet");
        own.advance(T, 0, e, &[20, 50]);
        own.hold(T, 0, e, 10);
        let f = own.frontier(T, 0, e).expect("frontier");
        assert_eq!((f.commit, f.held_by), (Some(50), None));
        assert_eq!(own.commits(), vec![(T.to_owned(), 0, 50)]);
    }

    #[test]
    fn commit_stops_at_the_blob_holding_the_lowest_pending_cleanup_until_it_is_applied() {
        // Blobs [0, 10), [10, 20), [20, 30), [30, 40); clean-ups at 12 and 30.
        let (own, e) = owned(true);
        own.hold(T, 0, e, 12);
        own.hold(T, 0, e, 30);
        own.saw(T, 0, e, 40);
        own.advance(T, 0, e, &[10, 20]);
        own.advance(T, 0, e, &[30, 40]);
        let f = own.frontier(T, 0, e).expect("frontier");
        assert_eq!(
            f,
            Frontier {
                durable: 40,
                commit: Some(10),
                held_by: Some(12),
                pending: 2
            }
        );
        own.cleaned(T, 0, e, 12);
        assert_eq!(
            commit(&own, e),
            Some(30),
            "the start of the blob holding 30"
        );
        own.cleaned(T, 0, e, 30);
        let f = own.frontier(T, 0, e).expect("frontier");
        assert_eq!((f.commit, f.held_by, f.pending), (Some(40), None, 0));
        assert_eq!(own.pending(), 0);
    }

    #[test]
    fn a_cleanup_in_the_first_blob_of_the_epoch_commits_nothing() {
        let (own, e) = owned(true);
        own.hold(T, 0, e, 3);
        own.saw(T, 0, e, 10);
        own.advance(T, 0, e, &[10]);
        let f = own.frontier(T, 0, e).expect("frontier");
        assert_eq!((f.commit, f.held_by), (None, Some(3)));
        assert!(own.commits().is_empty());
        assert!(revoke(&own).is_empty(), "the offset committed before stays");
    }

    #[test]
    fn commit_never_passes_records_not_seen_yet() {
        // The chain walk found blobs up to 500 while only records below 120 arrived: the
        // clean-ups of 120..500 are unknown, so the commit stays at the last blob end <= 120.
        let (own, e) = owned(true);
        own.advance(T, 0, e, &[100, 300, 500]);
        assert_eq!(own.frontier(T, 0, e), None, "nothing seen yet");
        own.saw(T, 0, e, 120);
        assert_eq!(commit(&own, e), Some(100));
        own.saw(T, 0, e, 600);
        assert_eq!(commit(&own, e), Some(500));
    }

    #[test]
    fn a_cleanup_pending_above_the_durable_frontier_does_not_hold_it() {
        let (own, e) = owned(true);
        own.hold(T, 0, e, 70);
        own.saw(T, 0, e, 80);
        own.advance(T, 0, e, &[60]);
        let f = own.frontier(T, 0, e).expect("frontier");
        assert_eq!((f.commit, f.held_by), (Some(60), None));
    }

    #[test]
    fn revoke_returns_the_cleanup_safe_frontier_and_a_stale_epoch_releases_nothing() {
        let (own, e) = owned(true);
        own.hold(T, 0, e, 5);
        own.saw(T, 0, e, 9);
        own.advance(T, 0, e, &[5, 9]);
        assert_eq!(revoke(&own), vec![(T.to_owned(), 0, 5)]);
        assert_eq!(own.pending(), 0);

        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(T, 0);
        own.assign(&tpl);
        let e2 = own.epoch(T, 0).expect("assigned again");
        assert_ne!(e, e2);
        own.hold(T, 0, e2, 5);
        own.saw(T, 0, e2, 9);
        own.advance(T, 0, e2, &[9]);
        // The old epoch's clean-up finishing late does not release the new epoch's hold.
        own.cleaned(T, 0, e, 5);
        assert_eq!(commit(&own, e2), None);
        own.cleaned(T, 0, e2, 5);
        assert_eq!(commit(&own, e2), Some(9));
    }

    #[test]
    fn an_incremental_revoke_and_assign_leave_the_other_partitions_alone() {
        // Cooperative rebalancing: partition 1 moves away and partition 2 arrives; partition 0
        // keeps its epoch, its frontier and its holds.
        let own = Ownership::new(true);
        let mut all = TopicPartitionList::new();
        all.add_partition(T, 0);
        all.add_partition(T, 1);
        own.assign(&all);
        let (e0, e1) = (own.epoch(T, 0).expect("0"), own.epoch(T, 1).expect("1"));
        for (p, e) in [(0, e0), (1, e1)] {
            own.hold(T, p, e, 15);
            own.saw(T, p, e, 30);
            own.advance(T, p, e, &[10, 20, 30]);
        }
        let mut moving = TopicPartitionList::new();
        moving.add_partition(T, 1);
        assert_eq!(own.revoke(&moving), vec![(T.to_owned(), 1, 10)]);
        let mut arriving = TopicPartitionList::new();
        arriving.add_partition(T, 2);
        own.assign(&arriving);

        assert_eq!(own.epoch(T, 0), Some(e0), "kept partition, same epoch");
        assert_eq!(own.epoch(T, 1), None);
        assert!(own.epoch(T, 2).is_some_and(|e| e != e0 && e != e1));
        assert_eq!(commit(&own, e0), Some(10), "still held at 15");
        assert_eq!(own.pending(), 1, "partition 1's hold left with it");
        own.cleaned(T, 0, e0, 15);
        assert_eq!(commit(&own, e0), Some(30));
    }

    #[test]
    fn a_record_delivered_twice_holds_until_both_cleanups_ran() {
        let (own, e) = owned(true);
        own.hold(T, 0, e, 3);
        own.hold(T, 0, e, 3);
        own.saw(T, 0, e, 4);
        own.advance(T, 0, e, &[3, 4]);
        own.cleaned(T, 0, e, 3);
        assert_eq!(commit(&own, e), Some(3));
        own.cleaned(T, 0, e, 3);
        own.cleaned(T, 0, e, 3);
        assert_eq!(commit(&own, e), Some(4));
        assert_eq!(own.pending(), 0);
    }
}

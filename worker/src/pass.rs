//! A single pass (`BATCH_CONTINUOUS=false`, `--once`): the original's run-once mode, for teams
//! that land Kafka from a scheduler (cron, Airflow, Data Factory, a Container Apps Job).
//!
//! The pass joins the group like a daemon. When a partition is assigned it reads the partition's
//! high watermark: the pass's end for the partition. Once the consumer has routed everything
//! below it, the pass keeps taking what the client already has on the way for
//! `PASS_CATCH_UP_MS` (default 1 s), then finishes the partition: later records are left for the
//! next pass (not routed, so neither landed nor committed). The catch-up exists because some
//! Kafka-protocol brokers report a high watermark below the log end: Tansu answers ListOffsets
//! with the last batch's *base* offset + 1 (measured: 111 records in three batches give 12), so a
//! pass ending exactly at the watermark would leave the tail of the last batch behind forever.
//! Records of that batch arrive in the same fetch as the one at the watermark, well within the
//! catch-up. When every assigned partition is finished (or `--max-records` / `--max-seconds` ran
//! out) the loop ends as on SIGTERM: every open batch is cut however small, by the same naming rules, landed,
//! committed synchronously, clean-ups applied. So a pass is the daemon's run with an end: the
//! exactly-once argument is the daemon's (create-only deterministic names, chain walk, commit
//! only what is durable), and a later pass or daemon walks the same chain.
//!
//! The pass prints a JSON [`PassSummary`] on stdout and exits with [`PassSummary::exit_code`].

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use tokio::time::Instant;

use crate::consumer::WorkerConsumer;
use crate::frontier::{OwnedPartition, Ownership};
use crate::partition::PartitionId;

/// Bounds of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassLimits {
    /// `--max-records` / `PASS_MAX_RECORDS`: stop routing new batches after this many records
    /// (what is buffered then is still cut and landed).
    pub max_records: Option<u64>,
    /// `--max-seconds` / `PASS_MAX_SECONDS`: stop after this long, landing what is buffered.
    pub max_duration: Option<Duration>,
    /// `PASS_ASSIGN_TIMEOUT_MS`: fail if no partition is assigned within this long (the broker
    /// is unreachable, or the group has more members than partitions).
    pub assign_timeout: Duration,
    /// `PASS_CATCH_UP_MS`: how long a partition keeps taking records once it reached its high
    /// watermark (see the module doc).
    pub catch_up: Duration,
}

/// Why a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Every assigned partition reached the high watermark seen at its assignment.
    Complete,
    /// `--max-records` was reached; the rest is for the next pass.
    MaxRecords,
    /// `--max-seconds` ran out; the rest is for the next pass.
    MaxSeconds,
    /// No partition was assigned within `PASS_ASSIGN_TIMEOUT_MS`.
    NotAssigned,
    /// SIGTERM / SIGINT, or a partition failed for good.
    Interrupted,
}

/// One partition's share of a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionSummary {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset at assignment: the first offset this pass read.
    pub from: i64,
    /// The high watermark at assignment (exclusive): where this pass ends, plus what arrived
    /// during the catch-up.
    pub to: i64,
    /// The offset after the last record this pass routed (`from` if none): the next pass starts
    /// here.
    pub end: i64,
    /// Whether the pass got to `to`.
    pub reached: bool,
    /// Records this pass landed in blobs it created.
    pub records: u64,
    /// Records found already landed (an earlier pass or daemon died before committing them).
    pub skipped: u64,
    /// Blobs this pass created.
    pub blobs: u64,
    /// Stored (gzip) bytes of those blobs.
    pub bytes: u64,
}

/// What a pass prints on stdout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassSummary {
    /// True when everything the pass set out to land is landed and committed.
    pub ok: bool,
    /// Why it ended.
    pub ended_by: EndReason,
    /// What went wrong, when `ok` is false.
    pub error: Option<String>,
    /// Per assigned partition, in topic and partition order.
    pub partitions: Vec<PartitionSummary>,
    /// Records landed (sum over partitions).
    pub records: u64,
    /// Blobs created.
    pub blobs: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// Batches left unlanded when the grace period ran out (storage unreachable).
    pub abandoned: u64,
    /// Wall time of the pass.
    pub duration_ms: u64,
}

impl PassSummary {
    /// 0: done (or bounded by `--max-*`, the rest is for the next pass); 1: a partition failed
    /// for good, a batch could not be landed, or the commit failed; 3: no partition assigned
    /// in time; 4: interrupted by a signal.
    pub fn exit_code(&self) -> i32 {
        match (self.ok, self.ended_by) {
            (true, _) => 0,
            (false, EndReason::NotAssigned) => 3,
            (false, EndReason::Interrupted) if self.error.is_none() => 4,
            (false, _) => 1,
        }
    }
}

/// One assigned partition's end and tally ([`PartitionSummary`] once the pass is over).
#[derive(Debug, Clone)]
struct Target {
    /// The ownership epoch it was assigned under: landings of another epoch are not booked.
    epoch: u64,
    /// The committed offset at assignment (see [`PartitionSummary::from`]).
    from: i64,
    /// The high watermark at assignment (see [`PartitionSummary::to`]).
    to: i64,
    /// When everything below `to` had been routed; finished `catch_up` later.
    reached_at: Option<Instant>,
    /// Caught up: later records are left for the next pass (set by [`Pass::ended`]).
    finished: bool,
    /// The offset after the last record routed (moved by [`Pass::wants`]).
    end: i64,
    /// Records landed in blobs this pass created (booked by [`Pass::landed`], like the three
    /// below).
    records: u64,
    /// Records found already landed.
    skipped: u64,
    /// Blobs created.
    blobs: u64,
    /// Stored bytes of those blobs.
    bytes: u64,
}

/// The end condition and the tally of a pass; the pipeline drives it.
#[derive(Debug)]
pub struct Pass {
    /// Its bounds.
    limits: PassLimits,
    /// When it started (for `--max-seconds`, the assignment timeout and the summary).
    started: Instant,
    /// Each owned partition whose end is known, with its end and tally; entries made and dropped
    /// by [`Pass::on_rebalance`].
    targets: HashMap<PartitionId, Target>,
    /// Partitions owned whose end is not known yet (the watermark query failed: retried).
    unknown: usize,
    /// Some partition was assigned (and its end read) at some point.
    assigned_once: bool,
    /// Why it ended, once it has (set by [`Pass::ended`]).
    ended: Option<EndReason>,
}

/// How long one watermark or committed-offset query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

impl Pass {
    /// A pass starting now.
    pub fn new(limits: PassLimits) -> Self {
        Pass {
            limits,
            started: Instant::now(),
            targets: HashMap::new(),
            unknown: 0,
            assigned_once: false,
            ended: None,
        }
    }

    /// After a rebalance: forget partitions no longer owned (their records are the new owner's),
    /// and read the end of each newly owned one.
    ///
    /// The queries block for a round trip to the broker; they run once per assignment, which a
    /// pass sees once or twice.
    pub fn on_rebalance(&mut self, consumer: &WorkerConsumer, ownership: &Ownership) {
        let owned = ownership.owned();
        self.targets
            .retain(|id, target| owned.iter().any(|o| o.id == *id && o.epoch == target.epoch));
        self.unknown = 0;
        let new: Vec<&OwnedPartition> = owned
            .iter()
            .filter(|o| !self.targets.contains_key(&o.id))
            .collect();
        if new.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for o in &new {
            tpl.add_partition(&o.id.topic, o.id.partition);
        }
        let committed = consumer.committed_offsets(tpl, QUERY_TIMEOUT);
        for OwnedPartition { id, epoch } in new {
            let topic: &str = &id.topic;
            let partition = id.partition;
            let watermarks = consumer.fetch_watermarks(topic, partition, QUERY_TIMEOUT);
            let (low, high) = match watermarks {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(event = "pass_watermark_failed", topic, partition, error = %e);
                    self.unknown += 1;
                    continue;
                }
            };
            let from = committed
                .as_ref()
                .ok()
                .and_then(|c| c.find_partition(topic, partition))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(low)
                .max(low);
            tracing::info!(event = "pass_partition", topic, partition, from, to = high);
            self.targets.insert(
                id.clone(),
                Target {
                    epoch: *epoch,
                    from,
                    to: high,
                    reached_at: None,
                    finished: false,
                    end: from,
                    records: 0,
                    skipped: 0,
                    blobs: 0,
                    bytes: 0,
                },
            );
            self.assigned_once = true;
        }
    }

    /// Whether some owned partition's end is still unknown (its query failed: ask again).
    pub fn has_unknown_ends(&self) -> bool {
        self.unknown > 0
    }

    /// Whether a record belongs to this pass: anything until its partition is finished; later
    /// records are left for the next pass.
    pub fn wants(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        match self.targets.get_mut(&PartitionId::new(topic, partition)) {
            Some(t) if t.finished => false,
            Some(t) => {
                t.end = t.end.max(offset + 1);
                true
            }
            None => true,
        }
    }

    /// Records consumed so far, to bound the pass.
    fn over_records(&self, consumed: u64) -> bool {
        self.limits.max_records.is_some_and(|n| consumed >= n)
    }

    /// Books what an upload landed.
    pub fn landed(
        &mut self,
        topic: &str,
        partition: i32,
        epoch: u64,
        records: u64,
        skipped: u64,
        stored: Option<u64>,
    ) {
        if let Some(t) = self.targets.get_mut(&PartitionId::new(topic, partition))
            && t.epoch == epoch
        {
            t.records += records;
            t.skipped += skipped;
            if let Some(bytes) = stored {
                t.blobs += 1;
                t.bytes += bytes;
            }
        }
    }

    /// Whether the pass is over; `seen` gives how far each partition's records were routed.
    pub fn ended(
        &mut self,
        consumed: u64,
        consumer: &WorkerConsumer,
        seen: impl Fn(&str, i32) -> Option<i64>,
    ) -> bool {
        if self.ended.is_some() {
            return true;
        }
        let elapsed = self.started.elapsed();
        if self.limits.max_duration.is_some_and(|d| elapsed >= d) {
            self.ended = Some(EndReason::MaxSeconds);
        } else if self.over_records(consumed) {
            self.ended = Some(EndReason::MaxRecords);
        } else if !self.assigned_once {
            if elapsed >= self.limits.assign_timeout {
                self.ended = Some(EndReason::NotAssigned);
            }
        } else {
            let now = Instant::now();
            let positions = self
                .targets
                .values()
                .any(|t| t.reached_at.is_none())
                .then(|| consumer.position().ok())
                .flatten();
            for (id, t) in &mut self.targets {
                if let Some(at) = t.reached_at {
                    t.finished = t.finished || now.duration_since(at) >= self.limits.catch_up;
                    continue;
                }
                let topic: &str = &id.topic;
                let partition = id.partition;
                let routed = seen(topic, partition).is_some_and(|s| s >= t.to);
                // The position also passes offsets with no record (transaction markers).
                let position = positions
                    .as_ref()
                    .and_then(|tpl| tpl.find_partition(topic, partition))
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .is_some_and(|o| o >= t.to);
                if t.from >= t.to || routed || position {
                    t.reached_at = Some(now);
                }
            }
            if self.unknown == 0 && self.targets.values().all(|t| t.finished) {
                self.ended = Some(EndReason::Complete);
            }
        }
        if let Some(reason) = self.ended {
            tracing::info!(event = "pass_ended", reason = ?reason, elapsed_ms = elapsed.as_millis() as u64);
        }
        self.ended.is_some()
    }

    /// Whether the pass reached its end condition (not interrupted by a signal or a failure).
    pub fn ended_by_itself(&self) -> bool {
        self.ended.is_some()
    }

    /// The summary once the loop has drained; `failure` is the pipeline's error, if any.
    pub fn summary(
        &self,
        abandoned: u64,
        failure: Option<String>,
        commit_error: Option<String>,
    ) -> PassSummary {
        let ended_by = self.ended.unwrap_or(EndReason::Interrupted);
        let mut partitions: Vec<PartitionSummary> = self
            .targets
            .iter()
            .map(|(id, t)| PartitionSummary {
                topic: id.topic.to_string(),
                partition: id.partition,
                from: t.from,
                to: t.to,
                end: t.end,
                reached: t.reached_at.is_some(),
                records: t.records,
                skipped: t.skipped,
                blobs: t.blobs,
                bytes: t.bytes,
            })
            .collect();
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let error = failure
            .or(commit_error.map(|e| format!("the final commit failed: {e}")))
            .or((abandoned > 0).then(|| {
                format!("{abandoned} batches could not be landed within SHUTDOWN_GRACE_MS (storage unreachable?); they are read again by the next pass")
            }))
            .or((ended_by == EndReason::NotAssigned).then(|| {
                format!(
                    "no partition was assigned within PASS_ASSIGN_TIMEOUT_MS={} (is the broker reachable, and does the group have fewer members than partitions?)",
                    self.limits.assign_timeout.as_millis()
                )
            }));
        let ok = error.is_none() && ended_by != EndReason::Interrupted;
        PassSummary {
            ok,
            ended_by,
            error,
            records: partitions.iter().map(|p| p.records).sum(),
            blobs: partitions.iter().map(|p| p.blobs).sum(),
            bytes: partitions.iter().map(|p| p.bytes).sum(),
            partitions,
            abandoned,
            duration_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(ended_by: EndReason, error: Option<&str>) -> PassSummary {
        PassSummary {
            ok: error.is_none() && ended_by != EndReason::Interrupted,
            ended_by,
            error: error.map(str::to_owned),
            partitions: vec![],
            records: 0,
            blobs: 0,
            bytes: 0,
            abandoned: 0,
            duration_ms: 0,
        }
    }

    #[test]
    fn exit_codes_tell_the_scheduler_what_happened() {
        assert_eq!(summary(EndReason::Complete, None).exit_code(), 0);
        assert_eq!(summary(EndReason::MaxRecords, None).exit_code(), 0);
        assert_eq!(summary(EndReason::Complete, Some("commit")).exit_code(), 1);
        assert_eq!(summary(EndReason::NotAssigned, Some("none")).exit_code(), 3);
        assert_eq!(summary(EndReason::Interrupted, None).exit_code(), 4);
    }

    #[test]
    fn records_after_a_partition_finished_are_left_for_the_next_pass() {
        let mut pass = Pass::new(PassLimits {
            max_records: None,
            max_duration: None,
            assign_timeout: Duration::from_secs(1),
            catch_up: Duration::from_secs(1),
        });
        pass.targets.insert(
            PartitionId::new("t", 0),
            Target {
                epoch: 1,
                from: 3,
                to: 10,
                reached_at: None,
                finished: false,
                end: 3,
                records: 0,
                skipped: 0,
                blobs: 0,
                bytes: 0,
            },
        );
        assert!(pass.wants("t", 0, 9));
        assert!(pass.wants("t", 0, 10), "still catching up");
        pass.targets
            .get_mut(&PartitionId::new("t", 0))
            .expect("target")
            .finished = true;
        assert!(!pass.wants("t", 0, 11), "finished: the next pass's");
        pass.landed("t", 0, 1, 7, 0, Some(100));
        pass.landed("t", 0, 2, 5, 0, Some(100)); // another epoch: not this assignment's
        let s = pass.summary(0, None, None);
        assert_eq!((s.records, s.blobs, s.bytes), (7, 1, 100));
        assert_eq!(s.ended_by, EndReason::Interrupted);
        assert!(!s.ok);
    }
}

//! Offset commits: each owned partition's commit frontier ([`crate::frontier`]) is sent to
//! Kafka when it moves past what was last sent — after a batch lands (`batch`), unless another
//! commit went out less than [`COMMIT_GAP`] ago; on a timer every [`COMMIT_GAP`] that sends, in
//! one request, every frontier that moved since (batches that landed within the gap, clean-ups
//! that finished, records skipped) (`timer`); and synchronously at shutdown (`shutdown`). The
//! label is `what` of `worker_commits_total`. The revoke commit happens in the rebalance
//! callback ([`crate::consumer`]).
//!
//! An async commit the broker refuses is neither retried nor reported to us by librdkafka (it
//! logs COMMITFAIL). Commits of partitions kept through a cooperative rebalance are refused
//! while it runs (Tansu: "generation id is not valid"), and a partition that then goes idle
//! would keep its old committed offset (and a non-zero `worker_consumer_lag`) until its next
//! revoke. So the timer also sends again a frontier that librdkafka's statistics have not
//! confirmed as committed [`CONFIRM_WITHIN`] after it was sent (`retry`).
//!
//! Behind a backlog at `BATCH_SIZE` 1 000 the worker lands hundreds of batches a second; one
//! `OffsetCommit` each cost the broker ~0.25 µs of CPU per record (Tansu, ~0.25 ms a commit,
//! measured in docs/BENCHMARKS.md). Coalescing loses nothing: a commit only trails what is
//! durable, and a restarted worker reconciles with storage from whatever was committed
//! (docs/DESIGN.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _};

use crate::consumer::{STATISTICS_INTERVAL, WorkerConsumer, offsets_list};
use crate::frontier::{CommitFrontier, Ownership};
use crate::partition::PartitionId;
use crate::telemetry;

/// Least time between two commits sent after batches; also the period of the timer that sends
/// what moved in between.
pub const COMMIT_GAP: Duration = Duration::from_millis(100);

/// How long a commit may go unconfirmed by librdkafka's statistics (refreshed every
/// [`STATISTICS_INTERVAL`]) before it is sent again: two refreshes and a margin.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(STATISTICS_INTERVAL.as_secs() * 2 + 2);

/// Sends commit frontiers that moved.
pub struct Committer {
    /// Where commits are sent (and librdkafka's confirmed offsets read).
    consumer: Arc<WorkerConsumer>,
    /// What may be committed (read only: the committer writes no position).
    ownership: Arc<Ownership>,
    /// Last offset sent per partition, with the epoch it was sent under and when; written only
    /// here, by each commit decision.
    sent: HashMap<PartitionId, Sent>,
    /// When the last async commit went out.
    last_sent: Option<Instant>,
}

/// The last commit sent for one partition.
#[derive(Debug, Clone, Copy)]
struct Sent {
    /// The ownership epoch it was sent under (a new epoch sends again whatever the offset).
    epoch: u64,
    /// The offset sent.
    offset: i64,
    /// When it was sent (or last sent again).
    at: Instant,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("partitions", &self.sent.len())
            .finish()
    }
}

impl Committer {
    /// Commits through `consumer` what `ownership` allows.
    pub fn new(consumer: Arc<WorkerConsumer>, ownership: Arc<Ownership>) -> Self {
        Committer {
            consumer,
            ownership,
            sent: HashMap::new(),
            last_sent: None,
        }
    }

    /// After a batch of `topic`/`partition` landed under `epoch`: commits the partition's
    /// frontier if it moved and no commit went out within [`COMMIT_GAP`] (else the timer's
    /// [`Committer::moved_frontiers`] sends it), and says so when a pending clean-up holds it
    /// below what is durable.
    pub fn after_batch(&mut self, topic: &Arc<str>, partition: i32, epoch: u64) {
        let Some(f) = self.ownership.frontier(topic, partition, epoch) else {
            return;
        };
        if let Some(held_by) = f.held_by {
            telemetry::commit_held_for_cleanup(
                topic, partition, f.durable, f.commit, held_by, f.pending,
            );
        }
        if self.last_sent.is_some_and(|t| t.elapsed() < COMMIT_GAP) {
            return;
        }
        if let Some(commit) = f.commit
            && self.moved(
                &PartitionId::new(topic.clone(), partition),
                epoch,
                commit,
                Instant::now(),
            )
        {
            self.send(&[(topic.to_string(), partition, commit)], "batch");
        }
    }

    /// Commits, in one request, every owned partition whose frontier moved (batches landed
    /// within the gap, clean-ups released their holds, or records known to be landed arrived),
    /// and every frontier sent [`CONFIRM_WITHIN`] ago that librdkafka has not seen committed.
    pub fn moved_frontiers(&mut self) {
        let (out, retry) = self.due(Instant::now());
        if !out.is_empty() {
            self.send(&out, if retry { "retry" } else { "timer" });
        }
    }

    /// What the timer sends at `now`, and whether it holds a resend.
    fn due(&mut self, now: Instant) -> (Vec<(String, i32, i64)>, bool) {
        let mut out = Vec::new();
        let mut retry = false;
        for CommitFrontier { id, epoch, commit } in self.ownership.commit_frontiers() {
            if self.moved(&id, epoch, commit, now) {
                out.push((id.topic.to_string(), id.partition, commit));
            } else if self.unconfirmed(&id, commit, now) {
                retry = true;
                out.push((id.topic.to_string(), id.partition, commit));
            }
        }
        (out, retry)
    }

    /// Shutdown: commits every owned partition's frontier synchronously; returns what it sent.
    pub fn final_commit(&mut self) -> (Vec<(String, i32, i64)>, Option<String>) {
        let offsets = self.ownership.commits();
        let result = if offsets.is_empty() {
            Ok(())
        } else {
            self.consumer
                .commit(&offsets_list(&offsets), CommitMode::Sync)
        };
        telemetry::commit(&result, "shutdown");
        (offsets, result.err().map(|e| e.to_string()))
    }

    fn moved(&mut self, id: &PartitionId, epoch: u64, commit: i64, now: Instant) -> bool {
        let slot = self.sent.entry(id.clone()).or_insert(Sent {
            epoch: 0,
            offset: i64::MIN,
            at: now,
        });
        if slot.epoch == epoch && slot.offset >= commit {
            return false;
        }
        *slot = Sent {
            epoch,
            offset: commit,
            at: now,
        };
        true
    }

    /// True (and the send time reset) when `commit`, sent long enough ago for librdkafka's
    /// statistics to have seen its response, is still not the committed offset they report.
    fn unconfirmed(&mut self, id: &PartitionId, commit: i64, now: Instant) -> bool {
        let Some(slot) = self.sent.get_mut(id) else {
            return false;
        };
        if now.saturating_duration_since(slot.at) < CONFIRM_WITHIN {
            return false;
        }
        let confirmed = self.consumer.context().confirmed(&id.topic, id.partition);
        if confirmed.is_some_and(|c| c >= commit) {
            return false;
        }
        slot.at = now;
        true
    }

    fn send(&mut self, offsets: &[(String, i32, i64)], what: &'static str) {
        self.last_sent = Some(Instant::now());
        let result = self
            .consumer
            .commit(&offsets_list(offsets), CommitMode::Async);
        telemetry::async_commit(&result, what, offsets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AssignmentStrategy, EagerAssignor, KafkaSettings};
    use crate::consumer::{WorkerContext, client_config};
    use rdkafka::TopicPartitionList;

    const T: &str = "t";

    /// A committer over a consumer that never reaches a broker (its commits go nowhere), owning
    /// partition 0 with everything below 50 durable.
    fn committer() -> Committer {
        let settings = KafkaSettings {
            brokers: "127.0.0.1:1".into(),
            group_id: "g".into(),
            topics: vec![T.into()],
            security_protocol: "plaintext".into(),
            sasl: None,
            session_timeout_ms: 10_000,
            assignment: AssignmentStrategy::Eager(vec![EagerAssignor::Range]),
        };
        let ownership = Arc::new(Ownership::new(false));
        let consumer: WorkerConsumer = client_config(&settings, 1024)
            .create_with_context(WorkerContext::new(ownership.clone()))
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(T, 0);
        ownership.assign(&tpl);
        let epoch = ownership.epoch(T, 0).expect("owned");
        ownership.advance(T, 0, epoch, &[50]);
        Committer::new(Arc::new(consumer), ownership)
    }

    // A runtime only because a `StreamConsumer` needs one to be created.
    #[tokio::test]
    async fn a_commit_statistics_do_not_confirm_is_sent_again_and_a_confirmed_one_is_not() {
        let mut c = committer();
        let start = Instant::now();
        assert_eq!(c.due(start), (vec![(T.to_owned(), 0, 50)], false));
        assert_eq!(
            c.due(start + COMMIT_GAP),
            (vec![], false),
            "sent, not moved"
        );
        // Refused (or lost): statistics still show nothing committed.
        let later = start + CONFIRM_WITHIN;
        assert_eq!(c.due(later), (vec![(T.to_owned(), 0, 50)], true));
        assert_eq!(
            c.due(later + COMMIT_GAP),
            (vec![], false),
            "once per window"
        );
        // Statistics now report the commit: no more resends.
        c.consumer.context().confirm(T, 0, 50);
        assert_eq!(c.due(later + CONFIRM_WITHIN * 2), (vec![], false));
    }
}

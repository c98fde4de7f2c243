//! Offset commits: each owned partition's commit frontier ([`crate::frontier`]) is sent to
//! Kafka when it moves past what was last sent — after a batch lands (`batch`), unless another
//! commit went out less than [`COMMIT_GAP`] ago; on a timer every [`COMMIT_GAP`] that sends, in
//! one request, every frontier that moved since (batches that landed within the gap, clean-ups
//! that finished, records skipped) (`timer`); and synchronously at shutdown (`shutdown`). The
//! label is `what` of `worker_commits_total`. The revoke commit happens in the rebalance
//! callback ([`crate::consumer`]).
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

use crate::consumer::{WorkerConsumer, offsets_list, record_commit};
use crate::frontier::Ownership;
use crate::metrics as m;

/// Least time between two commits sent after batches; also the period of the timer that sends
/// what moved in between.
pub const COMMIT_GAP: Duration = Duration::from_millis(100);

/// Sends commit frontiers that moved.
pub struct Committer {
    consumer: Arc<WorkerConsumer>,
    ownership: Arc<Ownership>,
    /// Last offset sent per partition, with the epoch it was sent under.
    sent: HashMap<(Arc<str>, i32), (u64, i64)>,
    /// When the last async commit went out.
    last_sent: Option<Instant>,
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
            metrics::counter!(m::COMMITS_HELD).increment(1);
            tracing::info!(
                event = "commit_held_for_cleanup",
                topic = %topic,
                partition,
                durable = f.durable,
                committed = f.commit,
                pending_offset = held_by,
                pending = f.pending,
            );
        }
        if self.last_sent.is_some_and(|t| t.elapsed() < COMMIT_GAP) {
            return;
        }
        if let Some(commit) = f.commit
            && self.moved(topic, partition, epoch, commit)
        {
            self.send(&[(topic.to_string(), partition, commit)], "batch");
        }
    }

    /// Commits, in one request, every owned partition whose frontier moved (batches landed
    /// within the gap, clean-ups released their holds, or records known to be landed arrived).
    pub fn moved_frontiers(&mut self) {
        let mut out = Vec::new();
        for (topic, partition, epoch, commit) in self.ownership.commit_frontiers() {
            let topic: Arc<str> = Arc::from(topic);
            if self.moved(&topic, partition, epoch, commit) {
                out.push((topic.to_string(), partition, commit));
            }
        }
        if !out.is_empty() {
            self.send(&out, "timer");
        }
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
        record_commit(&result, "shutdown");
        (offsets, result.err().map(|e| e.to_string()))
    }

    fn moved(&mut self, topic: &Arc<str>, partition: i32, epoch: u64, commit: i64) -> bool {
        let slot = self.sent.entry((topic.clone(), partition)).or_default();
        if slot.0 == epoch && slot.1 >= commit {
            return false;
        }
        *slot = (epoch, commit);
        true
    }

    fn send(&mut self, offsets: &[(String, i32, i64)], what: &'static str) {
        self.last_sent = Some(Instant::now());
        let result = self
            .consumer
            .commit(&offsets_list(offsets), CommitMode::Async);
        record_commit(&result, what);
        if let Err(e) = result {
            tracing::warn!(event = "commit_failed", what, offsets = ?offsets, error = %e);
        }
    }
}

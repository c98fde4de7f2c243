//! Offset commits: each owned partition's commit frontier ([`crate::frontier`]) is sent to
//! Kafka when it moves past what was last sent — after a batch lands (`batch`), on a timer that
//! picks up frontiers released by finished clean-ups or by skipped records (`timer`), and
//! synchronously at shutdown (`shutdown`); the label is `what` of `worker_commits_total`. The
//! revoke commit happens in the rebalance callback ([`crate::consumer`]).

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::consumer::{CommitMode, Consumer as _};

use crate::consumer::{WorkerConsumer, offsets_list, record_commit};
use crate::frontier::Ownership;
use crate::metrics as m;

/// Sends commit frontiers that moved.
pub struct Committer {
    consumer: Arc<WorkerConsumer>,
    ownership: Arc<Ownership>,
    /// Last offset sent per partition, with the epoch it was sent under.
    sent: HashMap<(Arc<str>, i32), (u64, i64)>,
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
        }
    }

    /// After a batch of `topic`/`partition` landed under `epoch`: commits the partition's
    /// frontier if it moved, and says so when a pending clean-up holds it below what is durable.
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
        if let Some(commit) = f.commit
            && self.moved(topic, partition, epoch, commit)
        {
            self.send(&[(topic.to_string(), partition, commit)], "batch");
        }
    }

    /// Commits every owned partition whose frontier moved (clean-ups released their holds, or
    /// records known to be landed arrived).
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

    fn send(&self, offsets: &[(String, i32, i64)], what: &'static str) {
        let result = self
            .consumer
            .commit(&offsets_list(offsets), CommitMode::Async);
        record_commit(&result, what);
        if let Err(e) = result {
            tracing::warn!(event = "commit_failed", what, offsets = ?offsets, error = %e);
        }
    }
}

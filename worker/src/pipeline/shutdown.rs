//! Shutdown: cut every open batch, land what fits in the upload grace, give queued clean-ups the
//! clean-up grace, then commit every partition's frontier synchronously. What did not make it
//! stays uncommitted and is read again by the next owner.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::Pipeline;
use crate::batch::FlushReason;

impl Pipeline {
    /// Shutdown: cut every open batch, land what fits in the grace period, commit synchronously.
    pub(super) async fn drain(&mut self) {
        let started = Instant::now();
        let mut deadline = started + self.settings.shutdown_grace;
        // A pass that ended by itself (not a signal) is not in a hurry: its grace counts from
        // the last landed batch, so a slow store that still makes progress lands everything,
        // and only a store that lands nothing for the whole grace makes the pass give up.
        let patient = self.pass.as_ref().is_some_and(|p| p.ended_by_itself());
        let mut cut = Vec::new();
        for ps in self.parts.values_mut() {
            for (p, part) in ps.iter_mut() {
                if let Some(s) = part.buffer.take(FlushReason::Shutdown) {
                    cut.push((part.topic.clone(), *p, s));
                }
            }
        }
        for (t, p, s) in cut {
            self.enqueue(&t, p, s);
        }
        self.schedule();
        tracing::info!(
            event = "draining",
            uploads = self.in_flight,
            buffered_bytes = self.buffered
        );
        while self.in_flight > 0 {
            tokio::select! {
                Some(done) = self.uploads.join_next() => {
                    self.on_upload(done);
                    self.schedule();
                    if patient {
                        deadline = Instant::now() + self.settings.shutdown_grace;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    // Uploads still retrying are abandoned: uncommitted, so read again next run.
                    self.abort.cancel();
                    while let Some(done) = self.uploads.join_next().await {
                        self.on_upload(done);
                    }
                    break;
                }
            }
        }
        let abandoned: usize = self
            .parts
            .values()
            .flat_map(HashMap::values)
            .map(|p| p.waiting.len())
            .sum();
        self.report.abandoned += abandoned as u64;
        self.publish_seen();
        self.wait_for_cleanups(patient).await;
        let (committed, commit_error) = self.committer.final_commit();
        self.report.commit_error.clone_from(&commit_error);
        self.report.cleanups_pending = self.ownership.pending();
        tracing::info!(
            event = "drained",
            duration_ms = started.elapsed().as_millis() as u64,
            committed = ?committed,
            commit_error,
            abandoned_batches = self.report.abandoned,
            cleanups_pending = self.ownership.pending(),
        );
    }

    /// Gives queued clean-ups the clean-up grace to finish, so the final commit can include
    /// their records. If Redis is down they stay pending: their records stay uncommitted and the
    /// next owner queues them again. `patient` (a pass that ended by itself): the grace counts
    /// from the last progress, so a backlog of tens of thousands of clean-ups queued by the
    /// pass's last batches finishes, while a Redis that applies nothing still ends the wait.
    async fn wait_for_cleanups(&self, patient: bool) {
        let Some(cleaner) = &self.cleaner else {
            return;
        };
        let mut deadline = Instant::now() + self.settings.cleanup_grace;
        let mut last = cleaner.backlog();
        // Polling: the wait is short and bounded, and finishing clean-ups signal nothing else.
        while cleaner.backlog() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = cleaner.backlog();
            if patient && now < last {
                deadline = Instant::now() + self.settings.cleanup_grace;
            }
            last = now;
        }
        let left = cleaner.backlog();
        if left > 0 {
            tracing::warn!(
                event = "cleanup_abandoned",
                queued = left,
                pending = self.ownership.pending(),
                reason = "grace period over; their records stay uncommitted",
            );
        }
    }
}

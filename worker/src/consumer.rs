//! The Kafka consumer: its settings, and the context whose rebalance callbacks keep partition
//! ownership ([`Ownership`], epochs and commit frontiers: see [`crate::frontier`]) and commit
//! what is durable and cleaned before a partition moves away.
//!
//! Both rebalance protocols go through the same callbacks (`KAFKA_ASSIGNMENT_STRATEGY`). Eager
//! (`range`, `roundrobin`): a revoke lists every partition the worker owns and the next assign
//! the whole new assignment. Cooperative (`cooperative-sticky`): both list only the partitions
//! that move, and rdkafka's default `ConsumerContext::rebalance` applies them with
//! `incremental_assign`/`incremental_unassign`; the partitions not listed keep their epoch,
//! their buffers and their fetch position through the rebalance.

use std::collections::HashMap;
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
    StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaSettings;
use crate::frontier::Ownership;
use crate::partition::PartitionId;
use crate::telemetry;

/// Why the consumer could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// librdkafka rejected the settings.
    #[error("creating the Kafka consumer for {brokers} (group {group}): {source}")]
    Create {
        /// Bootstrap servers.
        brokers: String,
        /// Group id.
        group: String,
        /// rdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// Subscribing failed.
    #[error("subscribing to {topics:?}: {source}")]
    Subscribe {
        /// Topics.
        topics: Vec<String>,
        /// rdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
}

/// How long librdkafka postpones a partition's next fetch once the pre-fetch queue is full
/// (`fetch.queue.backoff.ms`). librdkafka's default, 1000 ms, throttled the worker to ~60k
/// records/s: the loop drained a full queue in ~100 ms, then sat idle for the rest of the
/// second. 50 ms refills it before it runs dry (measured in docs/bench/worker.md).
pub const FETCH_QUEUE_BACKOFF_MS: u64 = 50;

/// The consumer type the worker uses.
pub type WorkerConsumer = StreamConsumer<WorkerContext>;

/// Builds a commit list.
pub fn offsets_list(offsets: &[(String, i32, i64)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        // Only fails for an invalid offset, which a durable frontier never is.
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
    }
    tpl
}

/// Callbacks librdkafka runs while the pipeline polls the consumer.
#[derive(Debug, Default)]
pub struct WorkerContext {
    /// Shared with the pipeline and the upload tasks.
    pub ownership: std::sync::Arc<Ownership>,
    /// The committed offset of each owned partition as librdkafka last reported it in its
    /// statistics (moved by commit responses that succeeded, and by the offset fetch at
    /// assignment): what [`crate::commit::Committer`] checks its commits against. Written by
    /// the statistics callback, an entry removed when its partition is revoked.
    confirmed: Mutex<HashMap<PartitionId, i64>>,
}

impl WorkerContext {
    /// A context keeping `ownership`.
    pub fn new(ownership: std::sync::Arc<Ownership>) -> Self {
        WorkerContext {
            ownership,
            confirmed: Mutex::default(),
        }
    }

    /// The committed offset of an owned partition in librdkafka's last statistics (every
    /// [`STATISTICS_INTERVAL`]); `None` before the first.
    pub fn confirmed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.confirmed_map()
            .get(&PartitionId::new(topic, partition))
            .copied()
    }

    /// Records the committed offset librdkafka's statistics report for an owned partition.
    pub(crate) fn confirm(&self, topic: &str, partition: i32, committed: i64) {
        self.confirmed_map()
            .insert(PartitionId::new(topic, partition), committed);
    }

    fn confirmed_map(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionId, i64>> {
        // Each change is one entry: a poisoned lock is still consistent.
        self.confirmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// librdkafka's `statistics.interval.ms`: how often the lag gauge and the confirmed committed
/// offsets are refreshed.
pub const STATISTICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

impl ClientContext for WorkerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // Counts COMMITFAIL: the broker refused one of our async commits (see there).
        telemetry::kafka_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::InconsistentGroupProtocol) {
            // Measured on Tansu: the JoinGroup is refused every ~3 s while the group's members
            // use the other protocol; they keep every partition, nothing is lost, and this
            // worker joins once the last of them has left.
            telemetry::group_protocol_mismatch(&error, reason);
            return;
        }
        telemetry::kafka_error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1 is the internal "UA" partition and unknown offsets.
                if *partition < 0 || p.committed_offset < 0 {
                    continue;
                }
                // librdkafka keeps reporting a partition after it moved to another worker, with
                // the high watermark of its last fetch and the offset committed at the revoke:
                // a lag frozen at whatever it was then (issue 24: 1 393 and 1 873 for minutes
                // after the group had drained). Only the owner reports a partition; the revoke
                // set its series to 0.
                if self.ownership.epoch(topic, *partition).is_none() {
                    continue;
                }
                self.confirm(topic, *partition, p.committed_offset);
                if p.hi_offset >= 0 {
                    telemetry::consumer_lag(
                        topic,
                        *partition,
                        lag(p.hi_offset, p.committed_offset),
                    );
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                // Commit what is durable (and cleaned) now, inside the callback: the partition's
                // next owner starts from the committed offset, and would otherwise re-read (and
                // then skip, after a HEAD per blob) everything we landed since the last commit.
                // Records whose clean-up is still pending stay uncommitted: the next owner reads
                // them again and queues their clean-ups (idempotent).
                let durable = self.ownership.revoke(tpl);
                for e in tpl.elements() {
                    // The next owner reports it from its own statistics.
                    telemetry::consumer_lag(e.topic(), e.partition(), 0);
                    self.confirmed_map()
                        .remove(&PartitionId::new(e.topic(), e.partition()));
                }
                let result = if durable.is_empty() {
                    Ok(())
                } else {
                    consumer.commit(&offsets_list(&durable), CommitMode::Sync)
                };
                telemetry::partitions_revoked(
                    &describe(tpl),
                    protocol(consumer),
                    consumer.assignment_lost(),
                    &describe_owned(&self.ownership),
                    &durable,
                    &result,
                );
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => telemetry::rebalance_error(e),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // Eager: the whole assignment (everything was revoked before). Cooperative: only
            // the partitions added; the ones kept are not listed and keep their epoch.
            self.ownership.assign(tpl);
            telemetry::partitions_assigned(
                &describe(tpl),
                protocol(consumer),
                &describe_owned(&self.ownership),
            );
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        // librdkafka reports here only commits it made itself: the result of an explicit
        // `commit` (all of ours) is logged as COMMITFAIL instead (see `log`).
        if let Err(e) = result {
            telemetry::commit_callback_failed(&e, &describe(offsets));
        }
    }
}

/// `hi − committed`, never below 0. librdkafka's own `consumer_lag` is the same difference but
/// `-1` when the committed offset is above the high watermark.
fn lag(hi_offset: i64, committed_offset: i64) -> i64 {
    (hi_offset - committed_offset).max(0)
}

/// The group's rebalance protocol as librdkafka negotiated it.
fn protocol(consumer: &BaseConsumer<WorkerContext>) -> &'static str {
    match consumer.rebalance_protocol() {
        RebalanceProtocol::Cooperative => "cooperative",
        RebalanceProtocol::Eager => "eager",
        RebalanceProtocol::None => "none",
    }
}

/// Every partition the worker owns, with its epoch (`topic/partition#epoch`).
fn describe_owned(ownership: &Ownership) -> String {
    let mut owned = ownership.owned();
    owned.sort_by_key(|o| o.id.clone());
    owned
        .iter()
        .map(|o| format!("{}#{}", o.id, o.epoch))
        .collect::<Vec<_>>()
        .join(",")
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => format!("{}/{}@{o}", e.topic(), e.partition()),
            _ => format!("{}/{}", e.topic(), e.partition()),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The librdkafka settings of the worker's consumer.
pub(crate) fn client_config(settings: &KafkaSettings, prefetch_kbytes: usize) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("client.id", "superhero-worker")
        // Offsets move only when we say so, after the blob is durable.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // `KAFKA_ASSIGNMENT_STRATEGY`: incremental `cooperative-sticky` unless asked otherwise
        // (docs/DESIGN.md, "Rebalancing").
        .set(
            "partition.assignment.strategy",
            settings.assignment.librdkafka_value(),
        )
        .set(
            "session.timeout.ms",
            settings.session_timeout_ms.to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (settings.session_timeout_ms / 3).max(100).to_string(),
        )
        // The pre-fetch queue counts against memory too: keep it a fraction of BUFFER_MAX_BYTES.
        .set("queued.max.messages.kbytes", prefetch_kbytes.to_string())
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.to_string())
        .set(
            "statistics.interval.ms",
            STATISTICS_INTERVAL.as_millis().to_string(),
        )
        .set("security.protocol", &settings.security_protocol)
        .set_log_level(RDKafkaLogLevel::Warning);
    if let Some(sasl) = &settings.sasl {
        config
            .set("sasl.mechanism", &sasl.mechanism)
            .set("sasl.username", &sasl.username)
            .set("sasl.password", sasl.password.expose());
    }
    config
}

/// Creates the consumer and subscribes it.
pub fn create(
    settings: &KafkaSettings,
    ownership: std::sync::Arc<Ownership>,
    prefetch_kbytes: usize,
) -> Result<WorkerConsumer, ConsumerError> {
    let consumer: WorkerConsumer = client_config(settings, prefetch_kbytes)
        .create_with_context(WorkerContext::new(ownership))
        .map_err(|source| ConsumerError::Create {
            brokers: settings.brokers.clone(),
            group: settings.group_id.clone(),
            source: Box::new(source),
        })?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|source| ConsumerError::Subscribe {
            topics: settings.topics.clone(),
            source: Box::new(source),
        })?;
    Ok(consumer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AssignmentStrategy, EagerAssignor};

    fn settings() -> KafkaSettings {
        KafkaSettings {
            brokers: "127.0.0.1:9092".into(),
            group_id: "g".into(),
            topics: vec!["t".into()],
            security_protocol: "plaintext".into(),
            sasl: None,
            session_timeout_ms: 10_000,
            assignment: AssignmentStrategy::Eager(vec![EagerAssignor::Range]),
        }
    }

    #[test]
    fn fetching_resumes_well_before_a_full_prefetch_queue_drains() {
        // librdkafka's default backoff (1000 ms) idled the loop most of each second.
        let config = client_config(&settings(), 16_384);
        let backoff: u64 = config
            .get("fetch.queue.backoff.ms")
            .expect("the worker sets fetch.queue.backoff.ms")
            .parse()
            .expect("a number");
        assert!(backoff <= 100, "fetch.queue.backoff.ms = {backoff}");
        assert_eq!(config.get("queued.max.messages.kbytes"), Some("16384"));
    }

    #[test]
    fn the_assignment_strategy_knob_reaches_librdkafka() {
        assert_eq!(
            client_config(&settings(), 1024).get("partition.assignment.strategy"),
            Some("range")
        );
        let cooperative = KafkaSettings {
            assignment: AssignmentStrategy::CooperativeSticky,
            ..settings()
        };
        assert_eq!(
            client_config(&cooperative, 1024).get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
    }

    #[test]
    fn lag_never_goes_below_zero() {
        assert_eq!(lag(2000, 1650), 350);
        assert_eq!(lag(1001, 1500), 0);
    }
}

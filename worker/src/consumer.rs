//! The Kafka consumer: its settings, and the context whose rebalance callbacks keep partition
//! ownership ([`Ownership`]) and commit what is durable before a partition moves away.
//!
//! Ownership is tracked per partition with an *epoch*, a number that changes on every assign.
//! Upload tasks carry the epoch they were started under; a task whose epoch is no longer current
//! neither commits nor starts another upload, so a revoked partition's late upload can never move
//! the committed offset. (Its blob is fine: the next owner finds it when it walks the chain.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaSettings;
use crate::metrics as m;

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

/// The consumer type the worker uses.
pub type WorkerConsumer = StreamConsumer<WorkerContext>;

#[derive(Debug, Clone, Copy)]
struct Owned {
    epoch: u64,
    /// Every offset below it is durable in storage (committed, or about to be).
    durable: Option<i64>,
}

/// Which partitions this process owns, under which epoch, and how far each is durable.
#[derive(Debug, Default)]
pub struct Ownership {
    parts: Mutex<HashMap<(String, i32), Owned>>,
    next_epoch: AtomicU64,
    changes: AtomicU64,
}

impl Ownership {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), Owned>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bumped on every assign or revoke; the pipeline compares it to notice rebalances.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The current epoch of a partition, `None` if this process does not own it.
    pub fn epoch(&self, topic: &str, partition: i32) -> Option<u64> {
        self.lock()
            .get(&(topic.to_owned(), partition))
            .map(|o| o.epoch)
    }

    /// True while `epoch` is the partition's current epoch.
    pub fn is_current(&self, topic: &str, partition: i32, epoch: u64) -> bool {
        self.epoch(topic, partition) == Some(epoch)
    }

    /// Records that every offset below `frontier` is durable, if `epoch` is still current.
    pub fn advance(&self, topic: &str, partition: i32, epoch: u64, frontier: i64) -> bool {
        match self.lock().get_mut(&(topic.to_owned(), partition)) {
            Some(o) if o.epoch == epoch => {
                o.durable = Some(o.durable.map_or(frontier, |d| d.max(frontier)));
                true
            }
            _ => false,
        }
    }

    /// The durable frontier of every owned partition (what a final commit sends).
    pub fn durable(&self) -> Vec<(String, i32, i64)> {
        self.lock()
            .iter()
            .filter_map(|((t, p), o)| o.durable.map(|d| (t.clone(), *p, d)))
            .collect()
    }

    fn assign(&self, tpl: &TopicPartitionList) {
        let mut parts = self.lock();
        for e in tpl.elements() {
            let epoch = self.next_epoch.fetch_add(1, Ordering::AcqRel) + 1;
            parts.insert(
                (e.topic().to_owned(), e.partition()),
                Owned {
                    epoch,
                    durable: None,
                },
            );
        }
        drop(parts);
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes the partitions and returns their durable frontiers.
    fn revoke(&self, tpl: &TopicPartitionList) -> Vec<(String, i32, i64)> {
        let mut parts = self.lock();
        let mut out = Vec::new();
        for e in tpl.elements() {
            let key = (e.topic().to_owned(), e.partition());
            if let Some(Owned {
                durable: Some(d), ..
            }) = parts.remove(&key)
            {
                out.push((key.0, key.1, d));
            }
        }
        drop(parts);
        self.changes.fetch_add(1, Ordering::AcqRel);
        out
    }
}

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
}

impl ClientContext for WorkerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(event = "kafka_log", facility = fac, message = log_message)
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(event = "kafka_log", facility = fac, message = log_message)
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(event = "kafka_log", facility = fac, message = log_message)
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(event = "kafka_log", facility = fac, message = log_message)
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(event = "kafka_error", error = %error, reason);
        metrics::counter!(m::ERRORS, "kind" => "kafka").increment(1);
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1 is the internal "UA" partition and unknown offsets.
                if *partition < 0 || p.hi_offset < 0 || p.committed_offset < 0 {
                    continue;
                }
                metrics::gauge!(m::CONSUMER_LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                    .set((p.hi_offset - p.committed_offset) as f64);
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                // Commit what is durable now, inside the callback: the partition's next owner
                // starts from the committed offset, and would otherwise re-read (and then skip,
                // after a HEAD per blob) everything we landed since the last commit.
                let durable = self.ownership.revoke(tpl);
                metrics::counter!(m::REBALANCES, "kind" => "revoke").increment(1);
                let result = if durable.is_empty() {
                    Ok(())
                } else {
                    consumer.commit(&offsets_list(&durable), CommitMode::Sync)
                };
                record_commit(&result, "revoke");
                tracing::info!(
                    event = "partitions_revoked",
                    partitions = %describe(tpl),
                    committed = ?durable,
                    commit_error = result.err().map(|e| e.to_string()),
                );
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                metrics::counter!(m::REBALANCES, "kind" => "error").increment(1);
                tracing::warn!(event = "rebalance_error", error = %e);
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.ownership.assign(tpl);
            metrics::counter!(m::REBALANCES, "kind" => "assign").increment(1);
            tracing::info!(event = "partitions_assigned", partitions = %describe(tpl));
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(event = "commit_failed", error = %e, offsets = %describe(offsets));
        }
    }
}

/// Counts a commit result.
pub fn record_commit(result: &KafkaResult<()>, what: &'static str) {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(m::COMMITS, "result" => outcome, "what" => what).increment(1);
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

/// Creates the consumer and subscribes it.
pub fn create(
    settings: &KafkaSettings,
    ownership: std::sync::Arc<Ownership>,
    prefetch_kbytes: usize,
) -> Result<WorkerConsumer, ConsumerError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("client.id", "superhero-worker")
        // Offsets move only when we say so, after the blob is durable.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Eager range assignment: simple, and Tansu implements it.
        .set("partition.assignment.strategy", "range")
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
        .set("statistics.interval.ms", "5000")
        .set("security.protocol", &settings.security_protocol)
        .set_log_level(RDKafkaLogLevel::Warning);
    if let Some(sasl) = &settings.sasl {
        config
            .set("sasl.mechanism", &sasl.mechanism)
            .set("sasl.username", &sasl.username)
            .set("sasl.password", sasl.password.expose());
    }
    let consumer: WorkerConsumer = config
        .create_with_context(WorkerContext { ownership })
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

//! The Kafka consumer: its settings, and the context whose rebalance callbacks keep partition
//! ownership ([`Ownership`], epochs and commit frontiers: see [`crate::frontier`]) and commit
//! what is durable and cleaned before a partition moves away.

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaSettings;
use crate::frontier::Ownership;
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
                // Commit what is durable (and cleaned) now, inside the callback: the partition's
                // next owner starts from the committed offset, and would otherwise re-read (and
                // then skip, after a HEAD per blob) everything we landed since the last commit.
                // Records whose clean-up is still pending stay uncommitted: the next owner reads
                // them again and queues their clean-ups (idempotent).
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

/// The librdkafka settings of the worker's consumer.
fn client_config(settings: &KafkaSettings, prefetch_kbytes: usize) -> ClientConfig {
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
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.to_string())
        .set("statistics.interval.ms", "5000")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KafkaSettings {
        KafkaSettings {
            brokers: "127.0.0.1:9092".into(),
            group_id: "g".into(),
            topics: vec!["t".into()],
            security_protocol: "plaintext".into(),
            sasl: None,
            session_timeout_ms: 10_000,
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
}

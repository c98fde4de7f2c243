//! What the pipeline had in hand at each fault of the chaos run, measured from outside it:
//!
//! - produced: the sum of the three topics' high watermarks (every record the simulator has
//!   delivered so far, injected bad ones included);
//! - landed: the sum of the worker group's committed offsets. The worker commits only after the
//!   raw write, so these records are durable in raw; commits trail the writes by up to the
//!   worker's commit gap and are held back while a Redis clean-up is pending, so "landed" is a
//!   slight undercount;
//! - in flight = produced − landed: the records a `kill -9` or an outage catches between Kafka
//!   and raw;
//! - untransformed: raw blobs without a receipt in `standard` yet (the watcher's backlog; blobs,
//!   not records, since counting records would mean reading the blobs).
//!
//! A figure the services do not give within [`PROBE_TIMEOUT`] is unknown (`?`); so is the
//! untransformed count while the test has Azurite stopped (the probe does not wait for it then,
//! so that it does not delay the next fault).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tests::summary::RECEIPTS_PREFIX;

/// How long a probe waits for Kafka or storage before calling a figure unknown.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the figures of a [`Sample`]: the topics' watermarks, the worker group's commits and
/// the two containers' listings.
pub struct Probe {
    kafka: Arc<Kafka>,
    raw: Arc<dyn ObjectStore>,
    standard: Arc<dyn ObjectStore>,
}

struct Kafka {
    /// Never subscribes: it only reads watermarks and the group's committed offsets.
    consumer: BaseConsumer,
    partitions: TopicPartitionList,
}

/// The pipeline's load at one moment of the run.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Since the chaos controller started.
    pub at: Duration,
    /// What happened right after the sample (e.g. `KillWorker`).
    pub what: String,
    /// Whether that was a fault (a kill or the start of an outage) rather than a restart.
    pub fault: bool,
    /// Records in the topics.
    pub produced: Option<i64>,
    /// Records the worker group has committed (durable in raw).
    pub landed: Option<i64>,
    /// Raw blobs without a receipt.
    pub untransformed: Option<usize>,
}

impl Sample {
    /// Records produced but not yet landed, when both are known.
    pub fn in_flight(&self) -> Option<i64> {
        Some(self.produced? - self.landed?)
    }

    /// Whether records were between Kafka and raw.
    pub fn busy(&self) -> bool {
        self.in_flight().is_some_and(|n| n > 0)
    }
}

fn or_unknown<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "t={:>6.1}s {:<12} in flight {:>7} (produced {}, landed {}), raw blobs untransformed {}",
            self.at.as_secs_f64(),
            self.what,
            or_unknown(self.in_flight()),
            or_unknown(self.produced),
            or_unknown(self.landed),
            or_unknown(self.untransformed),
        )
    }
}

/// One line per sample, for the verdict and the panic messages.
pub fn table(samples: &[Sample]) -> String {
    samples
        .iter()
        .map(|s| format!("  {s}\n"))
        .collect::<String>()
}

impl Probe {
    /// A probe of `topics` (all their partitions), the consumer group `group` and the two
    /// containers.
    pub fn new(
        topics: &[&str],
        group: &str,
        raw: Arc<dyn ObjectStore>,
        standard: Arc<dyn ObjectStore>,
    ) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", testkit::brokers())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut partitions = TopicPartitionList::new();
        for topic in topics {
            let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let count = md.topics().first().map_or(0, |t| t.partitions().len());
            anyhow::ensure!(count > 0, "topic {topic} has no partitions");
            for p in 0..count as i32 {
                partitions.add_partition(topic, p);
            }
        }
        Ok(Probe {
            kafka: Arc::new(Kafka {
                consumer,
                partitions,
            }),
            raw,
            standard,
        })
    }

    /// The figures now; `what` and `fault` describe what is about to happen, `storage_up` says
    /// whether Azurite is running.
    pub async fn sample(
        &self,
        at: Duration,
        what: String,
        fault: bool,
        storage_up: bool,
    ) -> Sample {
        let kafka = self.kafka.clone();
        let (counts, untransformed) = tokio::join!(
            tokio::task::spawn_blocking(move || (kafka.produced(), kafka.landed())),
            async {
                if !storage_up {
                    return None;
                }
                tokio::time::timeout(PROBE_TIMEOUT, self.untransformed())
                    .await
                    .ok()
                    .flatten()
            },
        );
        let (produced, landed) = counts.unwrap_or((None, None));
        Sample {
            at,
            what,
            fault,
            produced,
            landed,
            untransformed,
        }
    }

    async fn untransformed(&self) -> Option<usize> {
        let raw = testkit::list_names(self.raw.as_ref(), None).await.ok()?;
        let receipts: BTreeSet<String> =
            testkit::list_names(self.standard.as_ref(), Some(RECEIPTS_PREFIX))
                .await
                .ok()?
                .into_iter()
                .collect();
        Some(
            raw.iter()
                .filter(|n| model::naming::RawBlobName::parse(n).is_ok())
                .filter(|n| !receipts.contains(&format!("{RECEIPTS_PREFIX}/{n}.json")))
                .count(),
        )
    }
}

impl Kafka {
    fn produced(&self) -> Option<i64> {
        self.partitions
            .elements()
            .iter()
            .map(|e| {
                self.consumer
                    .fetch_watermarks(e.topic(), e.partition(), PROBE_TIMEOUT)
                    .ok()
                    .map(|(_, high)| high)
            })
            .sum()
    }

    fn landed(&self) -> Option<i64> {
        let committed = self
            .consumer
            .committed_offsets(self.partitions.clone(), PROBE_TIMEOUT)
            .ok()?;
        // A partition the group has not committed yet has landed nothing (the topics are fresh).
        Some(
            committed
                .elements()
                .iter()
                .map(|e| match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                })
                .sum(),
        )
    }
}

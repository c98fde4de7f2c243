//! Kafka publishing: null keys, a uniformly random partition per record, delivery reports into
//! the [`Manifest`], optional bad-record injection and rate limiting.
//!
//! The producer is a `ThreadedProducer` whose context books every delivery report into the
//! manifest: sends only enqueue (many thousands stay in flight, which is what makes the flood
//! mode fast), and the ground truth still comes from the offsets the broker confirmed. A full
//! local queue is back-pressure: the sender waits a millisecond and tries again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use metrics::Counter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::bad::BadKind;
use crate::manifest::Manifest;

/// The three topics the server logs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicId {
    /// `lib.server.lobby` (`TOPIC_LOBBY`).
    Lobby = 0,
    /// `lib.server.game` (`TOPIC_GAME`).
    Game = 1,
    /// `client.__main__` (`TOPIC_CLIENT`).
    Client = 2,
}

/// Good `log_message` values, indexed by the delivery opaque.
const LOG_MESSAGES: [&str; 7] = [
    model::envelope::STARTING_MATCH,
    model::envelope::GAME_TIMED_OUT,
    model::envelope::CLEANING_GAME_RECORDS,
    model::envelope::ATTACK_COMPLETED,
    model::envelope::ATTACKED_DEAD_ENEMY,
    model::envelope::STARTING_SERVER,
    crate::messages::LISTENING,
];

/// What a record is, packed into the producer's `usize` delivery opaque (no allocation per record):
/// bits 0-1 topic, bit 2 bad, bits 3-6 kind index, bits 8.. participant rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A good record with its `log_message` and, for `Starting Match`, its participant rows.
    Good {
        /// One of the simulator's `log_message` strings.
        log_message: &'static str,
        /// `PARTICIPANTS_HEROS` entries (0 for other messages).
        rows: u32,
    },
    /// An injected malformed record.
    Bad(BadKind),
}

fn pack(topic: TopicId, kind: Kind) -> usize {
    let t = topic as usize;
    match kind {
        Kind::Good { log_message, rows } => {
            let i = LOG_MESSAGES
                .iter()
                .position(|m| *m == log_message)
                .unwrap_or(0);
            t | (i << 3) | ((rows as usize) << 8)
        }
        Kind::Bad(k) => {
            let i = BadKind::ALL.iter().position(|b| *b == k).unwrap_or(0);
            t | 0b100 | (i << 3)
        }
    }
}

fn unpack(opaque: usize) -> (usize, Kind) {
    let topic = opaque & 0b11;
    let index = (opaque >> 3) & 0b1111;
    if opaque & 0b100 != 0 {
        (
            topic,
            Kind::Bad(BadKind::ALL[index.min(BadKind::ALL.len() - 1)]),
        )
    } else {
        let log_message = LOG_MESSAGES[index.min(LOG_MESSAGES.len() - 1)];
        (
            topic,
            Kind::Good {
                log_message,
                rows: (opaque >> 8) as u32,
            },
        )
    }
}

/// Books delivery reports into the manifest and the metrics.
struct Ledger {
    manifest: Arc<Mutex<Manifest>>,
    delivered: [Counter; 3],
    bad: [Counter; 3],
    failed: [Counter; 3],
}

impl ClientContext for Ledger {}

impl ProducerContext for Ledger {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (topic, kind) = unpack(opaque);
        let mut m = self.manifest.lock().unwrap_or_else(PoisonError::into_inner);
        match (result, kind) {
            (Ok(msg), Kind::Good { log_message, rows }) => {
                self.delivered[topic].increment(1);
                m.good(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    log_message,
                    u64::from(rows),
                );
            }
            (Ok(msg), Kind::Bad(k)) => {
                self.bad[topic].increment(1);
                m.bad(msg.topic(), msg.partition(), msg.offset(), k.as_str());
            }
            (Err((e, msg)), _) => {
                self.failed[topic].increment(1);
                tracing::error!(event = "delivery_failed", topic = msg.topic(), partition = msg.partition(), error = %e);
                m.failed(msg.topic(), msg.partition(), &e.to_string());
            }
        }
    }
}

/// Errors of the publisher.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The producer could not be created.
    #[error("cannot create a Kafka producer for {brokers} (KAFKA_BROKERS): {source}")]
    Client {
        /// Bootstrap servers.
        brokers: String,
        /// The client's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// Topic metadata could not be read.
    #[error("cannot read metadata of topic {topic} from {brokers} (KAFKA_BROKERS): {source}")]
    Metadata {
        /// The topic.
        topic: String,
        /// Bootstrap servers.
        brokers: String,
        /// The client's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The topic does not exist (the simulator never creates topics).
    #[error(
        "topic {topic} ({var}) does not exist or has no partitions: create it first (reference: {expected} partitions)"
    )]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The variable naming it.
        var: &'static str,
        /// The reference partition count.
        expected: i32,
    },
    /// The producer refused a record for a reason other than a full queue.
    #[error("cannot enqueue a record for {topic}/{partition}: {source}")]
    Enqueue {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The client's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// Creating a topic failed.
    #[error("cannot create topic {topic} (CREATE_TOPICS): {reason}")]
    Create {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("publisher task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Settings of the publisher.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Lobby, game and client topic names (indexed by [`TopicId`]).
    pub topics: [String; 3],
    /// Seed of the partition and bad-record choices.
    pub seed: u64,
    /// Probability of a bad record after each good one.
    pub bad_ratio: f64,
    /// Records per second, 0 = unlimited.
    pub rate_limit: u64,
    /// Create missing topics with the reference partition counts (2, 4, 1).
    pub create_topics: bool,
}

const TOPIC_VARS: [(&str, i32); 3] = [("TOPIC_LOBBY", 2), ("TOPIC_GAME", 4), ("TOPIC_CLIENT", 1)];

/// Creates the topics that do not exist yet, with the reference partition counts.
async fn create_missing(s: &PublishSettings) -> Result<(), PublishError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &s.brokers)
        .create()
        .map_err(|source| PublishError::Client {
            brokers: s.brokers.clone(),
            source: Box::new(source),
        })?;
    let new: Vec<NewTopic<'_>> = s
        .topics
        .iter()
        .zip(TOPIC_VARS)
        .map(|(t, (_, partitions))| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|e| PublishError::Create {
            topic: s.topics.join(","),
            reason: e.to_string(),
        })?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(event = "topic_created", topic),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(PublishError::Create {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// A Kafka producer that books every delivery into a [`Manifest`].
pub struct Publisher {
    producer: ThreadedProducer<Ledger>,
    manifest: Arc<Mutex<Manifest>>,
    topics: [String; 3],
    partitions: [i32; 3],
    rng: Mutex<ChaCha8Rng>,
    bad_ratio: f64,
    /// Next free send slot when rate limited.
    pacer: Option<(Mutex<Instant>, Duration)>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topics", &self.topics)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Creates the producer and reads each topic's partition count from the broker.
    pub async fn connect(s: &PublishSettings) -> Result<Self, PublishError> {
        let topic_label = |i: usize| s.topics[i].clone();
        let ledger = Ledger {
            manifest: Arc::new(Mutex::new(Manifest::default())),
            delivered: std::array::from_fn(
                |i| metrics::counter!("simulator_records_delivered_total", "topic" => topic_label(i)),
            ),
            bad: std::array::from_fn(
                |i| metrics::counter!("simulator_bad_records_delivered_total", "topic" => topic_label(i)),
            ),
            failed: std::array::from_fn(
                |i| metrics::counter!("simulator_delivery_failures_total", "topic" => topic_label(i)),
            ),
        };
        let manifest = ledger.manifest.clone();
        let producer: ThreadedProducer<Ledger> = ClientConfig::new()
            .set("bootstrap.servers", &s.brokers)
            // Many records in flight and large batches: the flood mode's throughput.
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("linger.ms", "10")
            .set("batch.size", "1000000")
            .set("batch.num.messages", "10000")
            .set("compression.type", "none")
            // The original's aiokafka default.
            .set("acks", "1")
            // Oversized bad records (> 1 MiB) must still reach the broker.
            .set("message.max.bytes", "4194304")
            .set("message.timeout.ms", "60000")
            // A typo in TOPIC_* must fail, not create a one-partition topic.
            .set("allow.auto.create.topics", "false")
            .create_with_context(ledger)
            .map_err(|source| PublishError::Client {
                brokers: s.brokers.clone(),
                source: Box::new(source),
            })?;
        if s.create_topics {
            create_missing(s).await?;
        }
        let mut partitions = [0; 3];
        for (i, topic) in s.topics.iter().enumerate() {
            let client = producer.clone();
            let name = topic.clone();
            let md = tokio::task::spawn_blocking(move || {
                client
                    .client()
                    .fetch_metadata(Some(&name), Duration::from_secs(10))
            })
            .await?
            .map_err(|source| PublishError::Metadata {
                topic: topic.clone(),
                brokers: s.brokers.clone(),
                source: Box::new(source),
            })?;
            let count = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len() as i32);
            if count == 0 {
                let (var, expected) = TOPIC_VARS[i];
                return Err(PublishError::MissingTopic {
                    topic: topic.clone(),
                    var,
                    expected,
                });
            }
            partitions[i] = count;
        }
        tracing::info!(
            event = "topics_found",
            lobby = partitions[0],
            game = partitions[1],
            client = partitions[2]
        );
        Ok(Publisher {
            producer,
            manifest,
            topics: s.topics.clone(),
            partitions,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(s.seed ^ 0x9a27_1710)),
            bad_ratio: s.bad_ratio,
            pacer: (s.rate_limit > 0).then(|| {
                (
                    Mutex::new(Instant::now()),
                    Duration::from_secs_f64(1.0 / s.rate_limit as f64),
                )
            }),
        })
    }

    /// Partition counts read from the broker, indexed by [`TopicId`].
    pub fn partitions(&self) -> [i32; 3] {
        self.partitions
    }

    /// Sends a good record (and maybe an injected bad one), waiting asynchronously for queue room
    /// and the rate limit.
    pub async fn publish(
        &self,
        topic: TopicId,
        value: &[u8],
        log_message: &'static str,
        rows: u32,
    ) -> Result<(), PublishError> {
        for (bytes, kind) in self.plan(value, Kind::Good { log_message, rows }) {
            let value = bytes.as_deref().unwrap_or(value);
            if let Some(at) = self.reserve_slot() {
                tokio::time::sleep_until(at.into()).await;
            }
            while let Some(wait) = self.enqueue(topic, value, kind)? {
                tokio::time::sleep(wait).await;
            }
        }
        Ok(())
    }

    /// [`Publisher::publish`] for a plain thread (the flood mode's generator).
    pub fn publish_blocking(
        &self,
        topic: TopicId,
        value: &[u8],
        log_message: &'static str,
        rows: u32,
    ) -> Result<(), PublishError> {
        for (bytes, kind) in self.plan(value, Kind::Good { log_message, rows }) {
            let value = bytes.as_deref().unwrap_or(value);
            if let Some(at) = self.reserve_slot() {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            while let Some(wait) = self.enqueue(topic, value, kind)? {
                std::thread::sleep(wait);
            }
        }
        Ok(())
    }

    /// The good record, then with probability `bad_ratio` a malformed one derived from it.
    fn plan(&self, good: &[u8], kind: Kind) -> Vec<(Option<Vec<u8>>, Kind)> {
        let mut out = vec![(None, kind)];
        if self.bad_ratio > 0.0 {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            if rng.gen_bool(self.bad_ratio) {
                let bad = BadKind::pick(&mut *rng);
                out.push((Some(bad.corrupt(good, &mut *rng)), Kind::Bad(bad)));
            }
        }
        out
    }

    fn reserve_slot(&self) -> Option<Instant> {
        let (next, step) = self.pacer.as_ref()?;
        let mut next = next.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = (*next).max(Instant::now());
        *next = slot + *step;
        Some(slot)
    }

    /// Enqueues one record on a random partition; `Some(wait)` when the local queue is full.
    fn enqueue(
        &self,
        topic: TopicId,
        value: &[u8],
        kind: Kind,
    ) -> Result<Option<Duration>, PublishError> {
        let t = topic as usize;
        let partition = self
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .gen_range(0..self.partitions[t]);
        let record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topics[t], pack(topic, kind))
                .partition(partition)
                .payload(value);
        match self.producer.send(record) {
            Ok(()) => Ok(None),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                Ok(Some(Duration::from_millis(1)))
            }
            Err((source, _)) => Err(PublishError::Enqueue {
                topic: self.topics[t].clone(),
                partition,
                source: Box::new(source),
            }),
        }
    }

    /// Reads the lobby topic's metadata: the broker answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), String> {
        let producer = self.producer.clone();
        let topic = self.topics[0].clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(3))
        })
        .await
        .map_err(|e| e.to_string())?
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// Records handed to the producer and not yet confirmed.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// A snapshot of the manifest so far.
    pub fn snapshot(&self) -> Manifest {
        self.manifest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits up to `timeout` for every delivery report and returns the manifest; records still
    /// unconfirmed then count as failed deliveries.
    pub async fn finish(&self, timeout: Duration) -> Result<Manifest, PublishError> {
        let producer = self.producer.clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout)).await?;
        let left = self.producer.in_flight_count();
        let mut m = self
            .manifest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Err(e) = flushed {
            tracing::error!(event = "flush_failed", in_flight = left, error = %e);
            for _ in 0..left.max(0) {
                m.failed("*", -1, &format!("not confirmed within {timeout:?}: {e}"));
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_opaque_round_trips_every_kind() {
        for topic in [TopicId::Lobby, TopicId::Game, TopicId::Client] {
            for log_message in LOG_MESSAGES {
                let kind = Kind::Good {
                    log_message,
                    rows: 9,
                };
                assert_eq!(unpack(pack(topic, kind)), (topic as usize, kind));
            }
            for bad in BadKind::ALL {
                assert_eq!(
                    unpack(pack(topic, Kind::Bad(bad))),
                    (topic as usize, Kind::Bad(bad))
                );
            }
        }
    }
}

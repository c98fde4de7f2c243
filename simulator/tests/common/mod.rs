//! Helpers of the simulator suites: unique topics with the reference partition counts, settings
//! for the local stack, and reading every record of a topic back.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use simulator::Settings;

/// One record read back: partition, offset, value (`None` for a null value).
#[derive(Debug, Clone)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// Three fresh topics (lobby 2, game 4, client 1 partitions) and their names.
pub async fn topics(prefix: &str) -> anyhow::Result<[String; 3]> {
    let names = [
        testkit::unique(&format!("{prefix}-lobby")),
        testkit::unique(&format!("{prefix}-game")),
        testkit::unique(&format!("{prefix}-client")),
    ];
    for (name, partitions) in names.iter().zip([2, 4, 1]) {
        testkit::create_topic(name, partitions).await?;
    }
    Ok(names)
}

/// A manifest path in the test's own temporary folder (removed with it).
pub fn manifest_path(dir: &testkit::TempDir, prefix: &str) -> PathBuf {
    dir.join(&format!("{}.json", testkit::unique(prefix)))
}

/// Settings for the local stack and `topics`, with fast test timing, the manifest in `dir`,
/// plus `extra` variables.
pub fn settings(dir: &testkit::TempDir, topics: &[String; 3], extra: &[(&str, &str)]) -> Settings {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("KAFKA_BROKERS".into(), testkit::brokers());
    vars.insert("REDIS_URL".into(), testkit::var("REDIS_URL"));
    vars.insert("TOPIC_LOBBY".into(), topics[0].clone());
    vars.insert("TOPIC_GAME".into(), topics[1].clone());
    vars.insert("TOPIC_CLIENT".into(), topics[2].clone());
    vars.insert("SERVER_SLEEP".into(), "0.01".into());
    vars.insert("LOBBY_TIMEOUT".into(), "1".into());
    vars.insert("JOIN_SCOPE".into(), "instance".into());
    vars.insert("INSTANCE_ID".into(), testkit::unique("sim"));
    vars.insert(
        "MANIFEST_PATH".into(),
        manifest_path(dir, "manifest").display().to_string(),
    );
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_vars(vars).expect("test settings are valid")
}

/// Every record of `topic` (all partitions, from the beginning until nothing new comes for 2 s
/// once every partition reached its high watermark).
///
/// Tansu 0.6's high watermark is not "last offset + 1" (it lags by up to a batch), so the
/// reader does not stop at the watermarks: it reads until the topic is idle. The watermarks
/// only keep it from taking a slow start (connecting, fetching metadata) for an idle topic.
pub fn read_all(topic: &str) -> anyhow::Result<Vec<Record>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", testkit::brokers())
        .set("group.id", testkit::unique("sim-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.message.max.bytes", "8388608")
        .set("max.partition.fetch.bytes", "8388608")
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = md
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    anyhow::ensure!(partitions > 0, "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    // Per partition, the offset the reader must reach before the idle clock runs.
    let mut behind = BTreeMap::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        if high > 0 {
            behind.insert(p, high);
        }
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = Instant::now();
    while !behind.is_empty() || last.elapsed() < Duration::from_secs(2) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{topic} still delivering after 120 s (behind the watermark: {behind:?})"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m?;
            if behind
                .get(&m.partition())
                .is_some_and(|h| m.offset() + 1 >= *h)
            {
                behind.remove(&m.partition());
            }
            out.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                value: m.payload().unwrap_or_default().to_vec(),
            });
            last = Instant::now();
        }
    }
    Ok(out)
}

/// Per partition: (count, min offset, max offset) of `records`.
pub fn partition_stats(records: &[Record]) -> BTreeMap<i32, (u64, i64, i64)> {
    let mut stats: BTreeMap<i32, (u64, i64, i64)> = BTreeMap::new();
    for r in records {
        let e = stats.entry(r.partition).or_insert((0, i64::MAX, i64::MIN));
        e.0 += 1;
        e.1 = e.1.min(r.offset);
        e.2 = e.2.max(r.offset);
    }
    stats
}

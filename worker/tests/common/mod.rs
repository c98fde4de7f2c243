//! Helpers for the worker's suites: settings for a unique topic/container/group, running the
//! worker in-process or as a child process, producing records with keys and headers, and
//! reading back every raw line.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::TryStreamExt as _;
use metrics_exporter_prometheus::PrometheusHandle;
use model::raw::RawLine;
use object_store::ObjectStore;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

/// The process-wide Prometheus handle (the recorder can be installed once per process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(service::telemetry::init_metrics).clone()
}

/// Base environment for a worker on `topics`, landing into `raw_url`, in its own group.
pub fn base_env(topics: &[&str], raw_url: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("KAFKA_BROKERS".into(), testkit::brokers()),
        ("KAFKA_GROUP_ID".into(), testkit::unique("wg")),
        ("KAFKA_TOPICS".into(), topics.join(",")),
        ("KAFKA_SESSION_TIMEOUT_MS".into(), "6000".into()),
        ("RAW_URL".into(), raw_url.into()),
        ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("CLEANUP_ENABLED".into(), "false".into()),
        ("BATCH_MAX_WAIT_MS".into(), "500".into()),
        ("SHUTDOWN_GRACE_MS".into(), "10000".into()),
        ("LOG_FORMAT".into(), "json".into()),
    ];
    env.extend(testkit::azure_env());
    env
}

/// Sets (or adds) a variable.
pub fn set(env: &mut Vec<(String, String)>, key: &str, value: impl Into<String>) {
    let value = value.into();
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.to_owned(), value)),
    }
}

/// The value of `key` in `env` (panics when it is not set).
pub fn var(env: &[(String, String)], key: &str) -> String {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{key} is not set"))
}

/// A worker running in this process.
pub struct InProcess {
    pub running: worker::Running,
    pub shutdown: CancellationToken,
}

impl InProcess {
    /// Starts a worker from `env`.
    pub async fn start(env: &[(String, String)]) -> Self {
        // Logs only on request: the harness does not capture a subscriber's stderr.
        if std::env::var_os("WORKER_TEST_LOGS").is_some() {
            service::telemetry::init_logs(service::telemetry::LogFormat::Text);
        }
        let settings = worker::Settings::from_vars(env.iter().cloned()).expect("valid settings");
        let shutdown = CancellationToken::new();
        let running = worker::start(settings, metrics_handle(), shutdown.clone())
            .await
            .expect("worker starts");
        InProcess { running, shutdown }
    }

    /// Requests shutdown and waits for the report.
    pub async fn stop(self) -> worker::Report {
        self.shutdown.cancel();
        self.running.wait().await.expect("worker stops cleanly")
    }
}

/// A worker child process with stderr (JSON logs) captured to a file.
pub struct ChildWorker {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl ChildWorker {
    /// Spawns `target/debug/worker` with `env` (and nothing inherited but PATH).
    pub fn spawn(env: &[(String, String)], name: &str) -> Self {
        let log = std::env::temp_dir().join(format!("{}.log", testkit::unique(name)));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_worker"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn worker");
        ChildWorker { child, log }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -TERM`.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// The captured log lines.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Log events named `event`.
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.log_lines()
            .into_iter()
            .filter(|v| v.get("event").and_then(|e| e.as_str()) == Some(event))
            .collect()
    }
}

impl Drop for ChildWorker {
    fn drop(&mut self) {
        // Never leave a worker behind a failed assertion.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
        // Nothing left in the system temp folder but the log of a failed test, kept to read.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A free loopback port (for a child's METRICS_ADDR).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// GETs `http://{addr}{path}`.
pub async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let resp = reqwest::get(format!("http://{addr}{path}")).await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// Sum of a Prometheus metric's samples whose line contains every `filter` string.
pub fn metric_sum(text: &str, name: &str, filters: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .filter(|l| filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A producer.
pub fn producer() -> FutureProducer {
    testkit::producer()
}

/// Sends one record with an optional key, value and headers to an explicit partition.
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&[u8], Option<&[u8]>)],
) -> i64 {
    let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).partition(partition);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    if let Some(v) = value {
        rec = rec.payload(v);
    }
    if !headers.is_empty() {
        rec = rec.headers(testkit::byte_headers(headers));
    }
    producer
        .send(rec, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("delivered")
        .offset
}

/// Produces `n` simulator-like JSON records spread round-robin over `partitions`, fast (many in
/// flight). Returns every (partition, offset) → value.
pub async fn produce_many(topic: &str, partitions: i32, n: usize) -> BTreeMap<(i32, i64), Vec<u8>> {
    produce_range(&producer(), topic, partitions, 0..n).await
}

/// [`produce_many`] for the records numbered `range` (value `sample_value(i)` on partition
/// `i % partitions`), through `producer`.
pub async fn produce_range(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
) -> BTreeMap<(i32, i64), Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = futures::stream::FuturesUnordered::new();
    for i in range {
        let p = (i % partitions as usize) as i32;
        let value = sample_value(i);
        let fut = {
            let producer = producer.clone();
            let topic = topic.to_owned();
            async move {
                let rec: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&topic).partition(p).payload(&value);
                let d = producer
                    .send(rec, Duration::from_secs(60))
                    .await
                    .map_err(|(e, _)| e)
                    .expect("delivered");
                (p, d.offset, value)
            }
        };
        pending.push(fut);
        if pending.len() >= 2000 {
            let (p, o, v) = pending.try_next_ok().await;
            out.insert((p, o), v);
        }
    }
    while !pending.is_empty() {
        let (p, o, v) = pending.try_next_ok().await;
        out.insert((p, o), v);
    }
    out
}

trait NextOk<T> {
    async fn try_next_ok(&mut self) -> T;
}
impl<F: std::future::Future> NextOk<F::Output> for futures::stream::FuturesUnordered<F> {
    async fn try_next_ok(&mut self) -> F::Output {
        use futures::StreamExt as _;
        self.next().await.expect("non-empty")
    }
}

/// An `Attack Completed`-shaped record (~520 bytes), distinct per `i`.
pub fn sample_value(i: usize) -> Vec<u8> {
    format!(
        r#"{{"level": "INFO", "timestamp": "2024-01-14T18:22:04.{:06}", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-{:012}\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}}, \"STATUS\": {{\"ACTION\": \"ATTACK\", \"DETAILS\": {{\"ENEMY_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 141120, \"ENEMY_HEALTH_POST\": 14220}}}}}}"}}"#,
        i % 1_000_000,
        i
    )
    .into_bytes()
}

/// One record read back from a raw blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub blob: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub uncompressed_blob_bytes: usize,
    pub blob_records: usize,
}

/// Every record in every blob of `store`, in blob-name order.
pub async fn read_all(store: &Arc<dyn ObjectStore>) -> Vec<Landed> {
    let metas: Vec<_> = store.list(None).try_collect().await.expect("list");
    let mut names: Vec<_> = metas.into_iter().map(|m| m.location).collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let gz = store
            .get(&name)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .expect("gzip");
        let lines: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        for l in &lines {
            let r = RawLine::decode(l).expect("raw line");
            out.push(Landed {
                blob: name.to_string(),
                topic: r.topic.to_string(),
                partition: r.partition,
                offset: r.offset,
                key: r.key_bytes().expect("key").map(|k| k.into_owned()),
                value: r.value_bytes().expect("value").map(|v| v.into_owned()),
                headers: r
                    .headers
                    .iter()
                    .map(|h| {
                        let name = h.key_bytes().expect("header name decodes");
                        let value = h.value_bytes().expect("header value decodes");
                        (name.into_owned(), value.map(|v| v.into_owned()))
                    })
                    .collect(),
                uncompressed_blob_bytes: text.len(),
                blob_records: lines.len(),
            });
        }
    }
    out
}

/// Asserts every expected (partition, offset) of `topic` appears exactly once, and nothing else.
pub fn assert_exactly_once(
    landed: &[Landed],
    topic: &str,
    expected: &BTreeMap<(i32, i64), Vec<u8>>,
) {
    let expected: BTreeMap<(i32, i64), Option<Vec<u8>>> = expected
        .iter()
        .map(|(k, v)| (*k, Some(v.clone())))
        .collect();
    assert_exactly_once_values(landed, topic, &expected);
}

/// [`assert_exactly_once`] for values that may be null.
pub fn assert_exactly_once_values(
    landed: &[Landed],
    topic: &str,
    expected: &BTreeMap<(i32, i64), Option<Vec<u8>>>,
) {
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for l in landed.iter().filter(|l| l.topic == topic) {
        *seen.entry((l.partition, l.offset)).or_default() += 1;
        let want = expected.get(&(l.partition, l.offset));
        assert!(
            want.is_some(),
            "unexpected record {}/{}@{} in {}",
            topic,
            l.partition,
            l.offset,
            l.blob
        );
        assert_eq!(
            l.value.as_ref(),
            want.and_then(Option::as_ref),
            "value of {}@{}",
            l.partition,
            l.offset
        );
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "{} records landed more than once, e.g. {:?}",
        dups.len(),
        &dups[..dups.len().min(5)]
    );
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains_key(k)).collect();
    assert!(
        missing.is_empty(),
        "{} records missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Waits until `store` holds at least `n` records of `topic`; returns them all.
pub async fn wait_landed(
    store: &Arc<dyn ObjectStore>,
    topic: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Landed> {
    testkit::wait_for(
        &format!("{n} records of {topic} to land"),
        timeout,
        || async {
            let all = read_all(store).await;
            (all.iter().filter(|l| l.topic == topic).count() >= n).then_some(all)
        },
    )
    .await
    .expect("records land")
}

/// A consumer in `group` that only reads the group's committed offsets (never commits).
pub fn group_consumer(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", testkit::brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// The offset `group` has committed on partition 0 of `topic`, `None` when it has none.
pub fn committed(group: &str, topic: &str) -> Option<i64> {
    let consumer = group_consumer(group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let tpl = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .ok()?;
    match tpl.elements().first()?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

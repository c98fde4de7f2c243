//! `bench landing`: the worker's landing rate against a consume-and-discard baseline, on records
//! of its own.
//!
//! ```text
//! cargo run --release -p bench -- landing --landing-records 1000000 \
//!     --landing-batch-sizes 100,1000,10000,100000
//! ```
//!
//! Produces `LANDING_RECORDS` simulator-shaped records (250–920 B) into a fresh topic of
//! `LANDING_PARTITIONS` partitions, then:
//! 1. gzip levels 0–9 on a 10 000-record sample with the worker's own gzip
//!    ([`worker::gzip::compress`]): speed against ratio;
//! 2. the consume-and-discard baseline ([`crate::baseline::run`]) reads them all;
//! 3. per batch size, the worker binary (a child from `DATAFLOW_BIN_DIR`, [`crate::children`];
//!    fresh group and container, the worker's default `BATCH_MAX_WAIT_MS`) lands them all in
//!    Azurite from a full backlog: records/s, MB/s, peak RSS (`VmHWM`), mean HEAD and upload
//!    latency from its `/metrics`.
//!
//! It prints one JSON line per result ([`Line`]), then Markdown tables. Unlike `bench backlog`,
//! which reads the simulator flood's topics, it makes its own topic and records: `bench/run`
//! shows it as a second, independent measurement.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::backlog::{
    CONSUMED_METRIC, LANDED_METRIC, STORED_BYTES_METRIC, metric_sum, peak_rss_mb,
};
use crate::baseline::BaselinePlan;
use crate::config::LandingConfig;

/// Records in the in-memory gzip sample.
const GZIP_SAMPLE_RECORDS: usize = 10_000;
/// How often the worker's `/metrics` is read.
const POLL: Duration = Duration::from_millis(100);

/// What a landing run does.
#[derive(Debug, Clone)]
pub struct LandingPlan {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Records to produce, and to land per batch size.
    pub records: u64,
    /// Partitions of the fresh topic.
    pub partitions: i32,
    /// Worker `BATCH_SIZE`s, one worker run each.
    pub batch_sizes: Vec<usize>,
    /// Worker `GZIP_LEVEL` of every worker run.
    pub gzip_level: u32,
    /// Folder holding `worker`.
    pub bin_dir: PathBuf,
    /// The worker's log folder.
    pub log_dir: PathBuf,
    /// Limit of the baseline and of each worker run.
    pub timeout: Duration,
}

/// One result line of `bench landing`, its kind in the `bench` field.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "bench", rename_all = "snake_case")]
pub enum Line {
    /// `produce`.
    Produce(Produce),
    /// `gzip`.
    Gzip(Gzip),
    /// `baseline`.
    Baseline(Baseline),
    /// `worker`.
    Worker(Worker),
}

/// A `produce` line: the records produced into the fresh topic (it starts a landing run).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Produce {
    /// Records produced.
    pub records: u64,
    /// Their value MB.
    pub value_mb: f64,
    /// Seconds to the end of the producer's flush.
    pub secs: f64,
    /// The topic.
    pub topic: String,
}

/// A `gzip` line: the worker's gzip of the sample at one level, one core, mean of 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gzip {
    /// `GZIP_LEVEL`.
    pub level: u32,
    /// JSON-line bytes of the sample.
    pub input_bytes: usize,
    /// JSON-line MB in per second.
    pub mb_per_s: Option<f64>,
    /// JSON lines / gzip bytes.
    pub ratio: Option<f64>,
}

/// A `baseline` line: consume-and-discard of the produced records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// Records read.
    pub records: u64,
    /// Seconds from the first record to the last.
    pub secs: f64,
    /// Records per second.
    pub records_per_s: Option<f64>,
    /// Value MB per second.
    pub mb_per_s: Option<f64>,
}

/// A `worker` line: the worker binary landing the records at one `BATCH_SIZE` (a figure is
/// `null` where its division had no divisor).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Worker {
    /// Worker `BATCH_SIZE`.
    pub batch_size: usize,
    /// Records landed.
    pub records: u64,
    /// Seconds from the first consumed record to the last landed one.
    pub secs: f64,
    /// Records per second.
    pub records_per_s: Option<f64>,
    /// Value MB per second.
    pub mb_per_s: Option<f64>,
    /// Records per second against the baseline's.
    pub vs_baseline: Option<f64>,
    /// Peak RSS (`VmHWM`), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Mean HEAD latency from the worker's `/metrics`, ms.
    pub mean_head_ms: Option<f64>,
    /// Mean upload latency, ms.
    pub mean_upload_ms: Option<f64>,
    /// Value bytes / gzip bytes stored.
    pub gzip_ratio: Option<f64>,
    /// Worker `GZIP_LEVEL`.
    pub gzip_level: u32,
}

/// Every result of a landing run.
#[derive(Debug, Clone)]
pub struct Landing {
    /// The records produced.
    pub produce: Produce,
    /// Per gzip level.
    pub gzip: Vec<Gzip>,
    /// The baseline.
    pub baseline: Baseline,
    /// Per batch size.
    pub workers: Vec<Worker>,
}

/// `bench landing`: runs the plan, printing each result as a JSON line as it comes, then the
/// Markdown tables.
pub async fn command(config: LandingConfig) -> anyhow::Result<()> {
    let plan = config.validate()?;
    let landing = run(&plan, &service::shutdown::on_signals(), |line| {
        match serde_json::to_string(line) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("bench landing: encoding {line:?}: {e}"),
        }
        let _ = std::io::stdout().flush();
    })
    .await?;
    print_tables(&landing);
    Ok(())
}

/// Produces the records, then measures gzip, the baseline and the worker per batch size;
/// `emit` gets each result line as it is measured.
pub async fn run(
    plan: &LandingPlan,
    shutdown: &CancellationToken,
    mut emit: impl FnMut(&Line),
) -> anyhow::Result<Landing> {
    let topic = testkit::unique("bench");
    crate::topics::create(&plan.brokers, &topic, plan.partitions).await?;
    let started = Instant::now();
    let (brokers, to, partitions, n) = (
        plan.brokers.clone(),
        topic.clone(),
        plan.partitions,
        plan.records,
    );
    let bytes = tokio::task::spawn_blocking(move || produce(&brokers, &to, partitions, n))
        .await
        .context("the producing thread")??;
    let mb = bytes as f64 / 1e6;
    let produce = Produce {
        records: plan.records,
        value_mb: mb,
        secs: started.elapsed().as_secs_f64(),
        topic: topic.clone(),
    };
    emit(&Line::Produce(produce.clone()));

    let gzip = gzip_table(GZIP_SAMPLE_RECORDS)?;
    for g in &gzip {
        emit(&Line::Gzip(g.clone()));
    }

    let base = BaselinePlan {
        brokers: plan.brokers.clone(),
        topics: vec![topic.clone()],
        records: plan.records,
        // Paired with no batch size: its line has none.
        batch_size: 0,
        timeout: plan.timeout,
        label: "baseline".to_owned(),
        broker_pid: None,
    };
    let base = crate::baseline::run(&base, shutdown).await?;
    let baseline = Baseline {
        records: base.records,
        secs: base.seconds,
        records_per_s: Some(base.records_per_s),
        mb_per_s: Some(mb / base.seconds),
    };
    emit(&Line::Baseline(baseline.clone()));

    let mut workers = Vec::new();
    for &batch_size in &plan.batch_sizes {
        let r = land(plan, &topic, batch_size, shutdown).await?;
        let rps = plan.records as f64 / r.secs;
        let worker = Worker {
            batch_size,
            records: plan.records,
            secs: r.secs,
            records_per_s: Some(rps),
            mb_per_s: Some(mb / r.secs),
            vs_baseline: Some(rps / base.records_per_s),
            peak_rss_mib: Some(r.peak_rss_mib),
            mean_head_ms: Some(r.head_ms),
            mean_upload_ms: Some(r.upload_ms),
            gzip_ratio: Some(bytes as f64 / r.stored_bytes.max(1.0)),
            gzip_level: plan.gzip_level,
        };
        emit(&Line::Worker(worker.clone()));
        workers.push(worker);
    }
    Ok(Landing {
        produce,
        gzip,
        baseline,
        workers,
    })
}

/// A UUID-shaped token.
fn token(rng: &mut ChaCha8Rng) -> String {
    let h: u128 = rng.r#gen();
    let s = format!("{h:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &s[..8],
        &s[8..12],
        &s[13..16],
        &s[17..20],
        &s[20..]
    )
}

/// The simulator's message mix: mostly attacks, some lobby messages (reference §1.5).
fn record(i: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (g, a, b) = (token(rng), token(rng), token(rng));
    let ts = format!(
        "2024-01-14T18:{:02}:{:02}.{:06}",
        (i / 60_000) % 60,
        (i / 1000) % 60,
        rng.gen_range(0..1_000_000)
    );
    match i % 10 {
        0 => format!(r#"{{"level": "INFO", "timestamp": "{ts}", "name": "kafka.lib.server.lobby", "log_message": "Starting Match", "task": "{{\"TIMESTAMP\": \"2024-01-14T18:22:04Z\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{g}\", \"PARTICIPANTS\": [\"{a}\", \"{b}\"], \"PARTICIPANTS_HEROS\": {{\"{a}\": {{\"token\": \"{a}\", \"id\": {}, \"attack\": {}, \"health\": {}}}, \"{b}\": {{\"token\": \"{b}\", \"id\": 70, \"attack\": 126900, \"health\": 1300000}}}}}}, \"STATUS\": {{\"GAME\": \"START\"}}}}"}}"#, rng.gen_range(1..733), rng.gen_range(1..1_000_000), rng.gen_range(10..10_000_000)),
        1 => format!(r#"{{"level": "INFO", "timestamp": "{ts}", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {{"game_token": "{g}", "user_token": "{a}"}}}}"#),
        _ => format!(r#"{{"level": "INFO", "timestamp": "{ts}", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{{\"TIMESTAMP\": \"{ts}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{g}\", \"USER_TOKEN\": \"{a}\"}}, \"STATUS\": {{\"ACTION\": \"ATTACK\", \"DETAILS\": {{\"ENEMY_TOKEN\": \"{b}\", \"ENEMY_DAMAGE\": {}, \"ENEMY_HEALTH_PRIOR\": {}, \"ENEMY_HEALTH_POST\": {}}}}}}}"}}"#, rng.gen_range(1..1_000_000), rng.gen_range(0..10_000_000), rng.gen_range(0..10_000_000)),
    }
    .into_bytes()
}

/// Produces `n` records round-robin over the partitions of `topic`; their value bytes.
fn produce(brokers: &str, topic: &str, partitions: i32, n: u64) -> anyhow::Result<u64> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .with_context(|| format!("producer for {brokers}"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut bytes = 0u64;
    for i in 0..n as usize {
        let v = record(i, &mut rng);
        bytes += v.len() as u64;
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .payload(v.as_slice())
            .partition((i % partitions as usize) as i32);
        // A full queue: serve delivery reports, then offer the record again.
        while let Err((_, r)) = producer.send(rec) {
            producer.poll(Duration::from_millis(10));
            rec = r;
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .with_context(|| format!("flushing {n} records to {topic}"))?;
    Ok(bytes)
}

/// The worker's gzip of a sample of `records` records at every level.
fn gzip_table(records: usize) -> anyhow::Result<Vec<Gzip>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut body = Vec::new();
    for i in 0..records {
        body.extend(record(i, &mut rng));
        body.push(b'\n');
    }
    let mut out = Vec::new();
    for level in 0..=9 {
        let t = Instant::now();
        let mut gz_len = 0;
        for _ in 0..3 {
            gz_len = worker::gzip::compress(&body, flate2::Compression::new(level))
                .context("gzip to memory")?
                .len();
        }
        let secs = t.elapsed().as_secs_f64() / 3.0;
        out.push(Gzip {
            level,
            input_bytes: body.len(),
            mb_per_s: Some(body.len() as f64 / 1e6 / secs),
            ratio: Some(body.len() as f64 / gz_len as f64),
        });
    }
    Ok(out)
}

/// One worker run's figures.
struct Landed {
    secs: f64,
    peak_rss_mib: f64,
    head_ms: f64,
    upload_ms: f64,
    stored_bytes: f64,
}

/// The worker binary landing the whole topic at `batch_size`: a fresh group and container.
async fn land(
    plan: &LandingPlan,
    topic: &str,
    batch_size: usize,
    shutdown: &CancellationToken,
) -> anyhow::Result<Landed> {
    let (raw_url, _) = testkit::new_container("bench").context("the raw container")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("a free port for METRICS_ADDR")?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut env = testkit::azure_env();
    env.extend(
        [
            ("KAFKA_BROKERS", plan.brokers.clone()),
            ("KAFKA_GROUP_ID", testkit::unique("bench-worker")),
            ("KAFKA_TOPICS", topic.to_owned()),
            ("RAW_URL", raw_url),
            ("BATCH_SIZE", batch_size.to_string()),
            ("GZIP_LEVEL", plan.gzip_level.to_string()),
            ("CLEANUP_ENABLED", "false".to_owned()),
            ("METRICS_ADDR", addr.clone()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut worker = crate::children::start(
        "worker-landing",
        &plan.bin_dir,
        "worker",
        &[],
        &env,
        &plan.log_dir,
    )?;
    let (url, client) = (format!("http://{addr}/metrics"), reqwest::Client::new());
    let (started, mut first) = (Instant::now(), None::<Instant>);
    let text = loop {
        worker.check_alive()?;
        anyhow::ensure!(!shutdown.is_cancelled(), "interrupted");
        anyhow::ensure!(
            started.elapsed() < plan.timeout,
            "the worker (BATCH_SIZE {batch_size}) did not land {} records within {:?}; see {}",
            plan.records,
            plan.timeout,
            worker.log().display()
        );
        tokio::time::sleep(POLL).await;
        let Ok(resp) = client.get(&url).send().await else {
            continue;
        };
        let text = resp.text().await.unwrap_or_default();
        if metric_sum(&text, CONSUMED_METRIC) > 0.0 {
            first.get_or_insert_with(Instant::now);
        }
        if metric_sum(&text, LANDED_METRIC) >= plan.records as f64 {
            break text;
        }
    };
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let peak_rss_mib = worker.id().and_then(peak_rss_mb).unwrap_or(0.0);
    worker.kill().await?;
    let mean_ms = |name: &str| {
        1000.0 * metric_sum(&text, &format!("{name}_sum"))
            / metric_sum(&text, &format!("{name}_count")).max(1.0)
    };
    Ok(Landed {
        secs,
        peak_rss_mib,
        head_ms: mean_ms("worker_head_seconds"),
        upload_ms: mean_ms("worker_upload_seconds"),
        stored_bytes: metric_sum(&text, STORED_BYTES_METRIC),
    })
}

/// The results as Markdown tables (after the JSON lines; `bench collect` keeps only those).
fn print_tables(landing: &Landing) {
    let num = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let (base, mb) = (&landing.baseline, landing.produce.value_mb);
    let base_rps = num(base.records_per_s);
    println!(
        "\n| run | records/s | MB/s (values) | vs baseline | peak RSS MiB | mean HEAD ms | mean upload ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| baseline (consume+discard) | {base_rps:.0} | {:.1} | 100 % | – | – | – |",
        mb / base.secs
    );
    for w in &landing.workers {
        println!(
            "| worker BATCH_SIZE={} | {:.0} | {:.1} | {:.0} % | {:.0} | {:.2} | {:.2} |",
            w.batch_size,
            num(w.records_per_s),
            mb / w.secs,
            100.0 * num(w.vs_baseline),
            num(w.peak_rss_mib),
            num(w.mean_head_ms),
            num(w.mean_upload_ms)
        );
    }
    println!("\n| gzip level | MB/s | ratio |\n|---|---|---|");
    for g in &landing.gzip {
        println!(
            "| {} | {:.0} | {:.2} |",
            g.level,
            num(g.mb_per_s),
            num(g.ratio)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_their_kind_and_the_fields_the_report_reads() {
        let line = Line::Gzip(Gzip {
            level: 1,
            input_bytes: 10,
            mb_per_s: Some(f64::INFINITY),
            ratio: Some(2.5),
        });
        let json = serde_json::to_string(&line).expect("encodes");
        assert_eq!(
            json,
            r#"{"bench":"gzip","level":1,"input_bytes":10,"mb_per_s":null,"ratio":2.5}"#
        );
        let results = crate::results::Results::parse(&json);
        assert_eq!(results.gzip[0].result.ratio, Some(2.5));
        assert_eq!(results.gzip[0].result.mb_per_s, None);
    }

    #[test]
    fn records_are_the_simulator_shapes_and_sizes() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for i in 0..30 {
            let r = record(i, &mut rng);
            let v: serde_json::Value = serde_json::from_slice(&r).expect("valid JSON");
            assert!(v["log_message"].is_string(), "{v}");
            assert!((250..=920).contains(&r.len()), "{} bytes: {v}", r.len());
        }
    }
}

//! Worker throughput against a consume-and-discard baseline, on the same broker and records.
//!
//! ```text
//! set -a; . env/local.env; set +a
//! cargo bench -p worker --bench landing -- --records 1000000 --batch-sizes 100,1000,10000,100000
//! ```
//!
//! Produces `--records` simulator-shaped records (250-920 B) into a fresh topic, then:
//! 1. gzip levels 0-9 on a 10k-record sample (speed vs ratio);
//! 2. baseline: an rdkafka consumer with the worker's settings reads them all and drops them;
//! 3. for each batch size: the worker binary (a child process, fresh group and container)
//!    lands them all in Azurite from a full backlog; records/s, MB/s, peak RSS (VmHWM), mean
//!    HEAD and upload latency from its `/metrics`.
//!
//! Prints one JSON object per result, then a Markdown table. Without `--bench` (as
//! `cargo test --all-targets` runs it) it defaults to a 2000-record smoke run.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

struct Args {
    records: usize,
    partitions: i32,
    batch_sizes: Vec<usize>,
    gzip_level: u32,
}

fn args() -> Args {
    let mut a = Args {
        records: 1_000_000,
        partitions: 4,
        batch_sizes: vec![100, 1000, 10_000, 100_000],
        gzip_level: 1,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --all-targets` runs this binary without `--bench`: do a small smoke run then.
    if !argv.iter().any(|a| a == "--bench") {
        a.records = 2000;
        a.batch_sizes = vec![100];
    }
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--records" => a.records = value().parse().expect("--records N"),
            "--partitions" => a.partitions = value().parse().expect("--partitions N"),
            "--batch-sizes" => {
                a.batch_sizes = value()
                    .split(',')
                    .map(|s| s.parse().expect("--batch-sizes a,b"))
                    .collect()
            }
            "--gzip-level" => a.gzip_level = value().parse().expect("--gzip-level 0-9"),
            "--bench" => {}
            other => panic!(
                "unknown flag {other} (--records, --partitions, --batch-sizes, --gzip-level)"
            ),
        }
    }
    a
}

fn token(rng: &mut rand_chacha::ChaCha8Rng) -> String {
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
fn record(i: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<u8> {
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

fn produce(topic: &str, partitions: i32, n: usize) -> u64 {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", testkit::brokers())
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .expect("producer");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut bytes = 0u64;
    for i in 0..n {
        let v = record(i, &mut rng);
        bytes += v.len() as u64;
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .payload(v.as_slice())
            .partition((i % partitions as usize) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    producer.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    bytes
}

fn emit(json: serde_json::Value) {
    println!("{json}");
    let _ = std::io::stdout().flush();
}

fn gzip_table(seed_records: usize) -> Vec<(u32, f64, f64)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut body = Vec::new();
    for i in 0..seed_records {
        body.extend(record(i, &mut rng));
        body.push(b'\n');
    }
    let mut out = Vec::new();
    for level in 0..=9 {
        let t = Instant::now();
        let mut gz = Vec::new();
        for _ in 0..3 {
            gz = worker::gzip::compress(&body, flate2::Compression::new(level))
                .expect("gzip")
                .to_vec();
        }
        let secs = t.elapsed().as_secs_f64() / 3.0;
        let mbps = body.len() as f64 / 1e6 / secs;
        let ratio = body.len() as f64 / gz.len() as f64;
        emit(
            serde_json::json!({"bench": "gzip", "level": level, "input_bytes": body.len(), "mb_per_s": mbps, "ratio": ratio}),
        );
        out.push((level, mbps, ratio));
    }
    out
}

async fn baseline(topic: &str, n: usize) -> f64 {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", testkit::brokers())
        .set("group.id", testkit::unique("bench-baseline"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range")
        .set("queued.max.messages.kbytes", "16384")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = 0usize;
    let mut start = None;
    while seen < n {
        let m = consumer.recv().await.expect("message");
        start.get_or_insert_with(Instant::now);
        drop(m);
        seen += 1;
    }
    start.expect("started").elapsed().as_secs_f64()
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct WorkerRun {
    secs: f64,
    peak_rss_mib: f64,
    head_ms: f64,
    upload_ms: f64,
    stored_bytes: f64,
}

async fn worker_run(topic: &str, n: usize, batch_size: usize, gzip_level: u32) -> WorkerRun {
    let (url, _store) = testkit::new_container("bench").expect("container");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_worker"))
        .envs(testkit::azure_env())
        .env("KAFKA_BROKERS", testkit::brokers())
        .env("KAFKA_GROUP_ID", testkit::unique("bench-worker"))
        .env("KAFKA_TOPICS", topic)
        .env("RAW_URL", &url)
        .env("BATCH_SIZE", batch_size.to_string())
        .env("GZIP_LEVEL", gzip_level.to_string())
        .env("CLEANUP_ENABLED", "false")
        .env("METRICS_ADDR", &addr)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("worker");
    let pid = child.id();
    let mut start = None;
    let text = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(resp) = reqwest::get(format!("http://{addr}/metrics")).await else {
            continue;
        };
        let text = resp.text().await.unwrap_or_default();
        if metric(&text, "worker_consumed_records_total") > 0.0 {
            start.get_or_insert_with(Instant::now);
        }
        if metric(&text, "worker_landed_records_total") >= n as f64 {
            break text;
        }
    };
    let secs = start.expect("consumed").elapsed().as_secs_f64();
    let peak = vm_hwm_kib(pid).unwrap_or(0) as f64 / 1024.0;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
    let mean = |name: &str| {
        1000.0 * metric(&text, &format!("{name}_sum"))
            / metric(&text, &format!("{name}_count")).max(1.0)
    };
    WorkerRun {
        secs,
        peak_rss_mib: peak,
        head_ms: mean("worker_head_seconds"),
        upload_ms: mean("worker_upload_seconds"),
        stored_bytes: metric(&text, "worker_stored_bytes_total"),
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let topic = testkit::unique("bench");
    testkit::create_topic(&topic, a.partitions)
        .await
        .expect("topic");
    let t = Instant::now();
    let bytes = produce(&topic, a.partitions, a.records);
    let mb = bytes as f64 / 1e6;
    emit(
        serde_json::json!({"bench": "produce", "records": a.records, "value_mb": mb, "secs": t.elapsed().as_secs_f64(), "topic": topic}),
    );

    let gz = gzip_table(10_000);
    let secs = baseline(&topic, a.records).await;
    let base_rps = a.records as f64 / secs;
    emit(
        serde_json::json!({"bench": "baseline", "records": a.records, "secs": secs, "records_per_s": base_rps, "mb_per_s": mb / secs}),
    );

    let mut rows = Vec::new();
    for &bs in &a.batch_sizes {
        let r = worker_run(&topic, a.records, bs, a.gzip_level).await;
        let rps = a.records as f64 / r.secs;
        emit(serde_json::json!({
            "bench": "worker", "batch_size": bs, "records": a.records, "secs": r.secs, "records_per_s": rps,
            "mb_per_s": mb / r.secs, "vs_baseline": rps / base_rps, "peak_rss_mib": r.peak_rss_mib,
            "mean_head_ms": r.head_ms, "mean_upload_ms": r.upload_ms, "gzip_ratio": bytes as f64 / r.stored_bytes.max(1.0),
            "gzip_level": a.gzip_level,
        }));
        rows.push((bs, r, rps));
    }

    println!(
        "\n| run | records/s | MB/s (values) | vs baseline | peak RSS MiB | mean HEAD ms | mean upload ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| baseline (consume+discard) | {base_rps:.0} | {:.1} | 100 % | – | – | – |",
        mb / secs
    );
    for (bs, r, rps) in rows {
        println!(
            "| worker BATCH_SIZE={bs} | {rps:.0} | {:.1} | {:.0} % | {:.0} | {:.2} | {:.2} |",
            mb / r.secs,
            100.0 * rps / base_rps,
            r.peak_rss_mib,
            r.head_ms,
            r.upload_ms
        );
    }
    println!("\n| gzip level | MB/s | ratio |\n|---|---|---|");
    for (level, mbps, ratio) in gz {
        println!("| {level} | {mbps:.0} | {ratio:.2} |");
    }
}

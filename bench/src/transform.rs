//! `bench transformer`: throughput and memory of the transform on generated raw blobs.
//!
//! ```text
//! cargo run --release -p bench -- transformer --sizes 1000,10000,100000
//! cargo run --release -p bench -- transformer --azurite   # RAW_URL/STANDARD_URL
//! ```
//! Blobs mix the simulator's reference shapes (lobby: `Starting Match` with 2–3 heroes,
//! `Cleaning Game Records`, `Game Timed Out`; game: `Attack Completed` in both TIMESTAMP formats,
//! `Attacked Dead Enemy`). In-memory mode times the single-threaded pure transform (gunzip →
//! classify → Arrow → Parquet) and reports MB/s of inflated raw JSON and rows/s per model. Peak
//! RSS is the process's VmHWM. With `--azurite` each blob is also uploaded and processed
//! end to end against the stores in RAW_URL / STANDARD_URL. `bench` runs it on a single-threaded
//! Tokio runtime, as it ran before it was a subcommand. It prints a Markdown table, which
//! `bench collect` turns into `transformer` result lines.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Parser;
use flate2::write::GzEncoder;
use model::naming::{RawBlobName, raw_blob_name};
use model::raw::{RecordPosition, TimestampType, encode_line};
use transformer::process::{Stores, process_blob};
use transformer::transform::{TransformOptions, transform};
use transformer::writer::Compression;

/// Throughput and memory of the transform on generated raw blobs (in memory, and with --azurite
/// end to end against RAW_URL / STANDARD_URL). Flags only.
#[derive(Debug, Parser)]
#[command(name = "transformer", version)]
pub struct TransformArgs {
    /// Records per blob, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Parquet compressions to compare.
    #[arg(long, value_delimiter = ',', default_value = "zstd,snappy,none")]
    compression: Vec<Compression>,
    /// Minimum measured time per case (ms); small blobs are repeated until it is reached.
    #[arg(long, default_value_t = 1000)]
    min_ms: u64,
    /// Also upload and process each blob against RAW_URL / STANDARD_URL (e.g. Azurite).
    #[arg(long)]
    azurite: bool,
}

/// xorshift64*: deterministic, dependency-free token and stat generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn token(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xffff,
            b & 0xffff_ffff_ffff
        )
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ts(i: usize, frac: bool) -> String {
    let secs = i / 10;
    let (m, s) = ((secs / 60) % 60, secs % 60);
    if frac {
        format!("2024-01-14T18:{m:02}:{s:02}.{:06}", (i * 7919) % 1_000_000)
    } else {
        format!("2024-01-14T18:{m:02}:{s:02}Z")
    }
}

fn lobby_value(r: &mut Rng, i: usize) -> String {
    let game = r.token();
    match r.below(10) {
        0..=6 => {
            let n = 2 + r.below(2) as usize;
            let users: Vec<String> = (0..n).map(|_| r.token()).collect();
            let heroes: Vec<String> = users
                .iter()
                .map(|u| {
                    format!(
                        "\\\"{u}\\\": {{\\\"token\\\": \\\"{u}\\\", \\\"id\\\": {}, \\\"attack\\\": {}, \\\"health\\\": {}}}",
                        1 + r.below(732),
                        r.below(1_000_000),
                        r.below(10_000_000)
                    )
                })
                .collect();
            let parts: Vec<String> = users.iter().map(|u| format!("\\\"{u}\\\"")).collect();
            format!(
                r#"{{"level": "INFO", "timestamp": "{}", "name": "kafka.lib.server.lobby", "log_message": "Starting Match", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\", \"PARTICIPANTS\": [{}], \"PARTICIPANTS_HEROS\": {{{}}}}}, \"STATUS\": {{\"GAME\": \"START\"}}}}"}}"#,
                ts(i, true),
                ts(i, false),
                parts.join(", "),
                heroes.join(", ")
            )
        }
        7..=8 => format!(
            r#"{{"level": "INFO", "timestamp": "{}", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {{"game_token": "{game}", "user_token": "{}"}}}}"#,
            ts(i, true),
            r.token()
        ),
        _ => format!(
            r#"{{"level": "INFO", "timestamp": "{}", "name": "kafka.lib.server.lobby", "log_message": "Game Timed Out", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\"}}, \"STATUS\": {{\"GAME\": \"TIMED OUT\"}}}}"}}"#,
            ts(i, true),
            ts(i, false)
        ),
    }
}

fn game_value(r: &mut Rng, i: usize) -> String {
    let (game, user) = (r.token(), r.token());
    if r.below(20) == 0 {
        return format!(
            r#"{{"level": "ERROR", "timestamp": "{}", "name": "kafka.lib.server.game", "log_message": "Attacked Dead Enemy", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\", \"USER_TOKEN\": \"{user}\"}}, \"STATUS\": {{\"ACTION\": \"NA\", \"DETAILS\": {{\"ENEMY_TOKEN\": null, \"ENEMY_STATUS\": \"DEAD\"}}}}}}"}}"#,
            ts(i, true),
            ts(i, true)
        );
    }
    let (dmg, prior) = (1 + r.below(1_000_000), r.below(10_000_000));
    format!(
        r#"{{"level": "INFO", "timestamp": "{}", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\", \"USER_TOKEN\": \"{user}\"}}, \"STATUS\": {{\"ACTION\": \"ATTACK\", \"DETAILS\": {{\"ENEMY_TOKEN\": \"{}\", \"ENEMY_DAMAGE\": {dmg}, \"ENEMY_HEALTH_PRIOR\": {prior}, \"ENEMY_HEALTH_POST\": {}}}}}}}"}}"#,
        ts(i, true),
        ts(i, !i.is_multiple_of(10)),
        r.token(),
        prior.saturating_sub(dmg)
    )
}

/// A raw blob of `n` records of `topic`: (name, gzipped bytes, inflated bytes).
fn blob(topic: &str, n: usize, seed: u64) -> (String, Vec<u8>, usize) {
    let mut r = Rng(seed | 1);
    let mut lines = Vec::with_capacity(n * 700);
    let t0 = 946_684_800_000; // 2000-01-01: bench names never collide with real data.
    for i in 0..n {
        let v = if topic == model::TOPIC_LOBBY {
            lobby_value(&mut r, i)
        } else {
            game_value(&mut r, i)
        };
        let pos = RecordPosition {
            topic,
            partition: 0,
            offset: i as i64,
            timestamp: Some(t0 + i as i64),
            timestamp_type: TimestampType::CreateTime,
        };
        encode_line(&mut lines, pos, None, Some(v.as_bytes()), &[]);
    }
    let raw = lines.len();
    let mut gz = GzEncoder::new(Vec::with_capacity(raw / 5), flate2::Compression::default());
    gz.write_all(&lines).expect("gzip to memory");
    let name = raw_blob_name(topic, 0, n as i64 * 1_000_000, Some(t0));
    (name, gz.finish().expect("gzip to memory"), raw)
}

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

/// `bench transformer`: times the transform per size, topic and compression and prints the table.
pub async fn command(args: TransformArgs) -> anyhow::Result<()> {
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    println!(
        "| topic | records | raw JSON MB | gz MB | compression | MB/s/core | records/s | rows/s (model rows) | out KB | peak RSS MB |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        for topic in [model::TOPIC_GAME, model::TOPIC_LOBBY] {
            let (name, gz, raw) = blob(topic, n, n as u64 ^ 0x9E37_79B9);
            let parsed = RawBlobName::parse(&name)?;
            for &compression in &args.compression {
                let opts = TransformOptions {
                    compression,
                    ..TransformOptions::default()
                };
                let mut iters = 0u32;
                let started = Instant::now();
                let mut last = None;
                while iters == 0 || started.elapsed() < Duration::from_millis(args.min_ms) {
                    last = Some(transform(&parsed, &name, &gz, opts)?);
                    iters += 1;
                }
                let secs = started.elapsed().as_secs_f64() / f64::from(iters);
                let out = last.expect("at least one iteration");
                anyhow::ensure!(
                    out.counts.dead == 0,
                    "generator bug: {} dead records ({:?})",
                    out.counts.dead,
                    out.counts.dead_by_reason
                );
                let model_rows: u64 = out
                    .counts
                    .rows
                    .iter()
                    .filter(|(m, _)| m.starts_with("lib_server"))
                    .map(|(_, n)| *n)
                    .sum();
                let out_bytes: usize = out.files.iter().map(|f| f.bytes.len()).sum();
                println!(
                    "| {topic} | {n} | {:.1} | {:.2} | {} | {:.1} | {:.0} | {:.0} | {} | {:.0} |",
                    mb(raw),
                    mb(gz.len()),
                    compression.as_str(),
                    mb(raw) / secs,
                    n as f64 / secs,
                    model_rows as f64 / secs,
                    out_bytes / 1024,
                    vm_hwm_mb()
                );
            }
            if args.azurite {
                azurite(&name, &gz, raw, n).await?;
            }
        }
    }
    println!("\npeak RSS (VmHWM) at exit: {:.0} MB", vm_hwm_mb());
    Ok(())
}

async fn azurite(name: &str, gz: &[u8], raw: usize, n: usize) -> anyhow::Result<()> {
    let url = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let stores = Stores {
        raw: service::storage::open("RAW_URL", &url("RAW_URL", "az://raw"))?,
        standard: service::storage::open("STANDARD_URL", &url("STANDARD_URL", "az://standard"))?,
    };
    stores
        .raw
        .put(&object_store::path::Path::from(name), gz.to_vec().into())
        .await?;
    let started = Instant::now();
    let p = process_blob(&stores, name, TransformOptions::default(), "bench").await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| azurite end-to-end | {n} | {:.1} | {:.2} | zstd | {:.1} | {:.0} | - | - | {:.0} |",
        mb(raw),
        mb(gz.len()),
        mb(raw) / secs,
        p.counts.records as f64 / secs,
        vm_hwm_mb()
    );
    Ok(())
}

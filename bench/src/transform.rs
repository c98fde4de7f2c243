//! `bench transformer`: throughput and memory of the transform on generated raw blobs.
//!
//! ```text
//! cargo run --release -p bench -- transformer --sizes 1000,10000,100000
//! cargo run --release -p bench -- transformer --azurite   # RAW_URL/STANDARD_URL
//! ```
//! Blobs mix the simulator's reference shapes (lobby: `Starting Match` with 2–3 heroes,
//! `Cleaning Game Records`, `Game Timed Out`; game: `Attack Completed` in both TIMESTAMP formats,
//! `Attacked Dead Enemy`), one record at a time from [`Lines`], which `bench large-blob` streams
//! into one large blob ([`crate::large_blob`]). In-memory mode times the single-threaded pure
//! transform (gunzip → classify → Arrow → Parquet) and reports MB/s of inflated raw JSON and
//! rows/s per model. Peak RSS is the process's VmHWM. With `--azurite` each blob is also uploaded
//! and processed end to end against the stores in RAW_URL / STANDARD_URL. `bench` runs it on a single-threaded
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
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn token(&mut self) -> String {
        token_of(self.next(), self.next())
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A UUID-shaped token from two random words.
fn token_of(a: u64, b: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xffff,
        b & 0xffff_ffff_ffff
    )
}

/// The token of game (`kind` 1) or player (`kind` 2) number `n`: always the same one.
fn fixed_token(kind: u64, n: usize) -> String {
    let seed = (kind << 48) ^ n as u64;
    token_of(mix(seed), mix(!seed))
}

/// splitmix64: a stateless mixer, for [`fixed_token`].
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Records per game with [`Tokens::PerGame`].
pub const GAME_RECORDS: usize = 40;

/// Where a generated record's game and player tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// Drawn afresh for every record (`bench transformer`).
    Fresh,
    /// Games of [`GAME_RECORDS`] records with 3 players each, so tokens repeat as in a real run
    /// (`bench large-blob`).
    PerGame,
}

/// The raw JSON lines of a generated blob of one topic, one record at a time: values in the
/// simulator's reference shapes (see the module docs), each encoded as the worker encodes a
/// record ([`encode_line`]) at offset `i` with timestamp `t0 + i` ms. Deterministic per seed.
#[derive(Debug)]
pub struct Lines<'a> {
    topic: &'a str,
    rng: Rng,
    tokens: Tokens,
    next: usize,
}

/// The records' first timestamp, 2000-01-01: bench blob names never collide with real data.
const T0_MS: i64 = 946_684_800_000;

impl<'a> Lines<'a> {
    /// The lines of `topic` (lobby-shaped for [`model::TOPIC_LOBBY`], else game-shaped).
    pub fn new(topic: &'a str, seed: u64, tokens: Tokens) -> Self {
        Lines {
            topic,
            rng: Rng(seed | 1),
            tokens,
            next: 0,
        }
    }

    /// Appends the next record's line (JSON and a newline) to `out`.
    pub fn push_next(&mut self, out: &mut Vec<u8>) {
        let i = self.next;
        self.next += 1;
        let v = if self.topic == model::TOPIC_LOBBY {
            self.lobby_value(i)
        } else {
            self.game_value(i)
        };
        let pos = RecordPosition {
            topic: self.topic,
            partition: 0,
            offset: i as i64,
            timestamp: Some(T0_MS + i as i64),
            timestamp_type: TimestampType::CreateTime,
        };
        encode_line(out, pos, None, Some(v.as_bytes()), &[]);
    }

    /// The game token of record `i`.
    fn game(&mut self, i: usize) -> String {
        match self.tokens {
            Tokens::Fresh => self.rng.token(),
            Tokens::PerGame => fixed_token(1, i / GAME_RECORDS),
        }
    }

    /// The token of player `p` (0–2) of record `i`'s game.
    fn player(&mut self, i: usize, p: usize) -> String {
        match self.tokens {
            Tokens::Fresh => self.rng.token(),
            Tokens::PerGame => fixed_token(2, i / GAME_RECORDS * 3 + p),
        }
    }

    fn lobby_value(&mut self, i: usize) -> String {
        let game = self.game(i);
        match self.rng.below(10) {
            0..=6 => {
                let n = 2 + self.rng.below(2) as usize;
                let users: Vec<String> = (0..n).map(|p| self.player(i, p)).collect();
                let heroes: Vec<String> = users
                    .iter()
                    .map(|u| {
                        format!(
                            "\\\"{u}\\\": {{\\\"token\\\": \\\"{u}\\\", \\\"id\\\": {}, \\\"attack\\\": {}, \\\"health\\\": {}}}",
                            1 + self.rng.below(732),
                            self.rng.below(1_000_000),
                            self.rng.below(10_000_000)
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
                self.player(i, 0)
            ),
            _ => format!(
                r#"{{"level": "INFO", "timestamp": "{}", "name": "kafka.lib.server.lobby", "log_message": "Game Timed Out", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\"}}, \"STATUS\": {{\"GAME\": \"TIMED OUT\"}}}}"}}"#,
                ts(i, true),
                ts(i, false)
            ),
        }
    }

    fn game_value(&mut self, i: usize) -> String {
        let (game, user) = (self.game(i), self.player(i, i % 3));
        if self.rng.below(20) == 0 {
            return format!(
                r#"{{"level": "ERROR", "timestamp": "{}", "name": "kafka.lib.server.game", "log_message": "Attacked Dead Enemy", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\", \"USER_TOKEN\": \"{user}\"}}, \"STATUS\": {{\"ACTION\": \"NA\", \"DETAILS\": {{\"ENEMY_TOKEN\": null, \"ENEMY_STATUS\": \"DEAD\"}}}}}}"}}"#,
                ts(i, true),
                ts(i, true)
            );
        }
        let (dmg, prior) = (1 + self.rng.below(1_000_000), self.rng.below(10_000_000));
        format!(
            r#"{{"level": "INFO", "timestamp": "{}", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\", \"USER_TOKEN\": \"{user}\"}}, \"STATUS\": {{\"ACTION\": \"ATTACK\", \"DETAILS\": {{\"ENEMY_TOKEN\": \"{}\", \"ENEMY_DAMAGE\": {dmg}, \"ENEMY_HEALTH_PRIOR\": {prior}, \"ENEMY_HEALTH_POST\": {}}}}}}}"}}"#,
            ts(i, true),
            ts(i, !i.is_multiple_of(10)),
            self.player(i, (i + 1) % 3),
            prior.saturating_sub(dmg)
        )
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

/// The seed of a generated blob of `n` records.
pub fn seed_of(n: usize) -> u64 {
    n as u64 ^ 0x9E37_79B9
}

/// The raw blob name of a generated blob of `n` records of `topic` (dated 2000-01-01, the first
/// offset `n` million, so sizes do not collide).
pub fn blob_name(topic: &str, n: usize) -> String {
    raw_blob_name(topic, 0, n as i64 * 1_000_000, Some(T0_MS))
}

/// A raw blob of `n` records of `topic` with fresh tokens: (name, gzipped bytes, inflated bytes).
fn blob(topic: &str, n: usize) -> (String, Vec<u8>, usize) {
    let mut records = Lines::new(topic, seed_of(n), Tokens::Fresh);
    let mut lines = Vec::with_capacity(n * 700);
    for _ in 0..n {
        records.push_next(&mut lines);
    }
    let raw = lines.len();
    let mut gz = GzEncoder::new(Vec::with_capacity(raw / 5), flate2::Compression::default());
    gz.write_all(&lines).expect("gzip to memory");
    (
        blob_name(topic, n),
        gz.finish().expect("gzip to memory"),
        raw,
    )
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
            let (name, gz, raw) = blob(topic, n);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The game and user tokens of each line, in order.
    fn tokens(topic: &str, n: usize, tokens: Tokens) -> Vec<(String, String)> {
        let mut records = Lines::new(topic, seed_of(n), tokens);
        (0..n)
            .map(|_| {
                let mut line = Vec::new();
                records.push_next(&mut line);
                let text = String::from_utf8(line).expect("JSON");
                let after = |key: &str| {
                    let rest = &text[text.find(key).expect(key) + key.len()..];
                    rest.trim_start_matches([' ', ':', '"', '\\'])[..36].to_owned()
                };
                (after("GAME_TOKEN"), after("USER_TOKEN"))
            })
            .collect()
    }

    #[test]
    fn per_game_tokens_repeat_within_a_game_and_fresh_ones_do_not() {
        let fresh = tokens(model::TOPIC_GAME, 80, Tokens::Fresh);
        let per_game = tokens(model::TOPIC_GAME, 80, Tokens::PerGame);
        let distinct = |pick: fn(&(String, String)) -> &String, lines: &[(String, String)]| {
            let set: std::collections::BTreeSet<&String> = lines.iter().map(pick).collect();
            set.len()
        };
        assert_eq!(distinct(|t| &t.0, &fresh), 80);
        // Two games of 40 records, 3 players each.
        assert_eq!(distinct(|t| &t.0, &per_game), 2);
        assert_eq!(distinct(|t| &t.1, &per_game), 6);
        assert_eq!(per_game[0].0, per_game[39].0);
        assert_ne!(per_game[39].0, per_game[40].0);
    }

    #[test]
    fn both_token_schemes_make_records_the_transform_takes_whole() {
        for tokens in [Tokens::Fresh, Tokens::PerGame] {
            for topic in [model::TOPIC_GAME, model::TOPIC_LOBBY] {
                let mut records = Lines::new(topic, seed_of(200), tokens);
                let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
                let mut line = Vec::new();
                for _ in 0..200 {
                    line.clear();
                    records.push_next(&mut line);
                    gz.write_all(&line).expect("gzip to memory");
                }
                let gz = gz.finish().expect("gzip to memory");
                let name = blob_name(topic, 200);
                let parsed = RawBlobName::parse(&name).expect("a raw blob name");
                let out = transform(&parsed, &name, &gz, TransformOptions::default())
                    .expect("transforms");
                assert_eq!(
                    (out.counts.records, out.counts.dead),
                    (200, 0),
                    "{topic} {tokens:?}: {:?}",
                    out.counts.dead_by_reason
                );
            }
        }
    }
}

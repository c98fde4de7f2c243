//! Writes one large raw blob, shaped like the simulator's records and gzipped like the worker's,
//! into a fresh Azurite container. Lines are generated, gzipped and uploaded as a stream, so this
//! program's own memory stays flat whatever `--records`. It is how the transformer's peak memory
//! on big blobs is measured (docs/DESIGN.md, transformer "Memory"):
//!
//! ```text
//! set -a; . env/local.env; set +a
//! cargo run -p transformer --example large_blob -- --records 4000000
//! # prints the two container URLs and the blob name, then:
//! RAW_URL=az://… STANDARD_URL=az://… /usr/bin/time -v target/debug/transformer transform NAME
//! ```
//!
//! Game blobs are 95 % `Attack Completed` (both TIMESTAMP formats) and 5 % `Attacked Dead Enemy`;
//! lobby blobs 70 % `Starting Match` (2–3 heroes), 20 % `Cleaning Game Records`, 10 %
//! `Game Timed Out`. Games last 40 records and have 3 players, so tokens repeat as in a real run.

use std::io::Write;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use flate2::write::GzEncoder;
use model::naming::raw_blob_name;
use model::raw::{RecordPosition, TimestampType, encode_line};
use object_store::WriteMultipart;
use object_store::path::Path;

/// Generate and upload one large raw blob (see the file docs).
#[derive(Debug, Parser)]
struct Args {
    /// Records in the blob.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// `game` (lib.server.game) or `lobby` (lib.server.lobby).
    #[arg(long, default_value = "game")]
    topic: String,
}

/// splitmix64: a deterministic token source without dependencies.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn token(kind: u64, n: u64) -> String {
    let seed = (kind << 48) ^ n;
    let (a, b) = (mix(seed), mix(!seed));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xffff,
        b & 0xffff_ffff_ffff
    )
}

fn ts(i: u64, frac: bool) -> String {
    let secs = i / 10;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    if frac {
        format!(
            "2024-01-14T{h:02}:{m:02}:{s:02}.{:06}",
            (i * 7919) % 1_000_000
        )
    } else {
        format!("2024-01-14T{h:02}:{m:02}:{s:02}Z")
    }
}

fn game_value(i: u64) -> String {
    let g = i / 40;
    let (game, user, enemy) = (
        token(1, g),
        token(2, g * 3 + i % 3),
        token(2, g * 3 + (i + 1) % 3),
    );
    let r = mix(i);
    if r.is_multiple_of(20) {
        return format!(
            r#"{{"level": "ERROR", "timestamp": "{}", "name": "kafka.lib.server.game", "log_message": "Attacked Dead Enemy", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\", \"USER_TOKEN\": \"{user}\"}}, \"STATUS\": {{\"ACTION\": \"NA\", \"DETAILS\": {{\"ENEMY_TOKEN\": null, \"ENEMY_STATUS\": \"DEAD\"}}}}}}"}}"#,
            ts(i, true),
            ts(i, true)
        );
    }
    let (dmg, prior) = (1 + (r >> 8) % 1_000_000, (r >> 32) % 10_000_000);
    format!(
        r#"{{"level": "INFO", "timestamp": "{}", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\", \"USER_TOKEN\": \"{user}\"}}, \"STATUS\": {{\"ACTION\": \"ATTACK\", \"DETAILS\": {{\"ENEMY_TOKEN\": \"{enemy}\", \"ENEMY_DAMAGE\": {dmg}, \"ENEMY_HEALTH_PRIOR\": {prior}, \"ENEMY_HEALTH_POST\": {}}}}}}}"}}"#,
        ts(i, true),
        ts(i, !i.is_multiple_of(10)),
        prior.saturating_sub(dmg)
    )
}

fn lobby_value(i: u64) -> String {
    let g = i / 40;
    let game = token(1, g);
    let r = mix(i);
    match r % 10 {
        0..=6 => {
            let users: Vec<String> = (0..2 + r % 2).map(|p| token(2, g * 3 + p)).collect();
            let heroes: Vec<String> = users
                .iter()
                .enumerate()
                .map(|(p, u)| {
                    let h = mix(r ^ p as u64);
                    format!(
                        "\\\"{u}\\\": {{\\\"token\\\": \\\"{u}\\\", \\\"id\\\": {}, \\\"attack\\\": {}, \\\"health\\\": {}}}",
                        1 + h % 732,
                        (h >> 16) % 1_000_000,
                        (h >> 40) % 10_000_000
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
            token(2, g * 3)
        ),
        _ => format!(
            r#"{{"level": "INFO", "timestamp": "{}", "name": "kafka.lib.server.lobby", "log_message": "Game Timed Out", "task": "{{\"TIMESTAMP\": \"{}\", \"PAYLOAD\": {{\"GAME_TOKEN\": \"{game}\"}}, \"STATUS\": {{\"GAME\": \"TIMED OUT\"}}}}"}}"#,
            ts(i, true),
            ts(i, false)
        ),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let topic = match args.topic.as_str() {
        "game" => model::TOPIC_GAME,
        "lobby" => model::TOPIC_LOBBY,
        other => anyhow::bail!("--topic {other}: expected game or lobby"),
    };
    let (raw_url, raw) =
        testkit::new_container("raw").context("raw container (scripts/stack up)")?;
    let (std_url, _) = testkit::new_container("std").context("standard container")?;
    let t0 = 1_705_256_524_771; // 2024-01-14T18:22:04.771Z
    let name = raw_blob_name(topic, 0, 0, Some(t0));
    let upload = raw.put_multipart(&Path::from(name.as_str())).await?;
    let mut parts = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    let (mut line, mut json_bytes, mut gz_bytes) = (Vec::new(), 0u64, 0u64);
    for i in 0..args.records {
        let value = if topic == model::TOPIC_GAME {
            game_value(i)
        } else {
            lobby_value(i)
        };
        let pos = RecordPosition {
            topic,
            partition: 0,
            offset: i as i64,
            timestamp: Some(t0 + i as i64),
            timestamp_type: TimestampType::CreateTime,
        };
        line.clear();
        encode_line(&mut line, pos, None, Some(value.as_bytes()), &[]);
        json_bytes += line.len() as u64;
        gz.write_all(&line)?;
        if gz.get_ref().len() >= 8 << 20 {
            let chunk = std::mem::take(gz.get_mut());
            gz_bytes += chunk.len() as u64;
            parts.wait_for_capacity(2).await?;
            parts.put(Bytes::from(chunk));
        }
    }
    let rest = gz.finish()?;
    gz_bytes += rest.len() as u64;
    parts.put(Bytes::from(rest));
    parts.finish().await?;
    eprintln!(
        "{} records, {:.1} MB of JSON, {:.1} MB gzipped",
        args.records,
        json_bytes as f64 / 1e6,
        gz_bytes as f64 / 1e6
    );
    println!("RAW_URL={raw_url} STANDARD_URL={std_url} {name}");
    Ok(())
}

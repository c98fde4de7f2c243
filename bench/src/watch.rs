//! `bench watch`: does `transformer watch` keep up with a steady stream of raw blobs? Run by
//! hand; its tables are not collected.
//!
//! ```text
//! scripts/stack up; set -a; source env/local.env; set +a
//! cargo build --release -p transformer -p bench --bins
//! target/release/bench watch --prefill 3000 --rate 10 --seconds 60
//! WATCH_CONCURRENCY=8 target/release/bench watch --bin /tmp/transformer-before
//! ```
//! Creates two fresh Azurite containers, fills `raw` with `--prefill` already-processed blobs
//! (each with its receipt at the right ETag, like a container the watcher has worked through),
//! starts the watcher binary (`--bin`, default the `transformer` next to `bench`) with
//! RAW_URL/STANDARD_URL set to them (every other variable, e.g. `WATCH_*`, is inherited), then
//! uploads small raw blobs at `--rate` per second for `--seconds`, round-robin over
//! `--partitions`, dated now. Afterwards it waits for their receipts and reports, per `--slice`
//! of upload time, the time from upload to receipt (`finished_at`): flat p50/p99 across slices
//! means the watcher keeps up. It also reports the CPU the watcher and Azurite used meanwhile and
//! deletes both containers (unless `--keep`), so in-memory Azurite does not grow from run to run.
//!
//! `--startup` measures a start instead (issue 24 item 5): with `--prefill 24000
//! --prefill-spread-hours 24` (a day of blobs, all with receipts) it starts the watcher, waits for
//! its `watch_caught_up` line (the first listing's blobs settled), stops it with SIGTERM (it writes
//! its checkpoint), starts it again and reports both starts: time, prefix listings, blobs listed,
//! receipts read, CPU.

use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use clap::Parser;
use flate2::write::GzEncoder;
use futures::{StreamExt, TryStreamExt};
use model::naming::{raw_blob_metadata, raw_blob_name};
use model::raw::{RecordPosition, TimestampType, encode_line};
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, PutMode, PutOptions};
use transformer::ledger;
use transformer::transform::Counts;

/// Does `transformer watch` keep up with a stream of raw blobs (or, with --startup, how long do
/// its starts take)? Flags only: the watcher inherits the environment (`WATCH_*`, Azurite).
#[derive(Debug, Parser)]
#[command(name = "watch", version)]
pub struct WatchArgs {
    /// Watcher binary; default: `transformer` next to `bench`.
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Already-processed blobs (with receipts) in `raw` before the watcher starts.
    #[arg(long, default_value_t = 3000)]
    prefill: usize,
    /// Hours before now that the prefilled blobs are dated (0: the current hour, as new ones).
    #[arg(long, default_value_t = 0)]
    prefill_age_hours: i64,
    /// Hours the prefilled blobs are spread over, back from `--prefill-age-hours` (24: a day).
    #[arg(long, default_value_t = 1)]
    prefill_spread_hours: i64,
    /// Measure start-up instead of a stream: start the watcher on the prefilled container, wait
    /// until the first listing's blobs are settled (`watch_caught_up`), stop it (it writes its
    /// checkpoint), then start it again and measure the same; no uploads.
    #[arg(long)]
    startup: bool,
    /// New blobs per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// How long new blobs are uploaded.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Partitions the blobs are spread over (one topic).
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Records per blob.
    #[arg(long, default_value_t = 20)]
    records: usize,
    /// Report slice length in seconds of upload time.
    #[arg(long, default_value_t = 10)]
    slice: u64,
    /// Seconds the watcher runs before uploads start (it first meets the prefilled blobs).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Longest wait for the last receipts after the uploads end, in seconds.
    #[arg(long, default_value_t = 180)]
    drain: u64,
    /// Where the watcher's logs go (default: a file in the temp dir, printed).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Keep the containers afterwards.
    #[arg(long)]
    keep: bool,
}

const TOPIC: &str = model::TOPIC_GAME;
const ATTACK: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.771305", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 141120, \"ENEMY_HEALTH_POST\": 14220}}}"}"#;

/// Runs `script` (JavaScript) with the stack's Azure SDK and the container names as arguments.
fn node(script: &str, names: &[&str]) -> anyhow::Result<()> {
    let root = testkit::root();
    let status = std::process::Command::new("node")
        .arg("-e")
        .arg(script)
        .args(names)
        .env("NODE_PATH", root.join(".stack/npm/node_modules"))
        .status()
        .context("running node (scripts/stack up installs the Azure SDK)")?;
    ensure!(status.success(), "node failed on {names:?}");
    Ok(())
}

const SERVICE_CLIENT: &str = r#"
const { BlobServiceClient } = require("@azure/storage-blob");
const url = process.env.AZURITE_BLOB_STORAGE_URL || "http://127.0.0.1:10000";
const cred = BlobServiceClient.fromConnectionString("UseDevelopmentStorage=true").credential;
const client = new BlobServiceClient(`${url}/${cred.accountName}`, cred);
"#;

fn delete_containers(names: &[&str]) -> anyhow::Result<()> {
    let script = format!(
        "{SERVICE_CLIENT}(async () => {{ for (const n of process.argv.slice(1)) \
         await client.getContainerClient(n).deleteIfExists(); }})()\
         .catch((e) => {{ console.error(e.message); process.exit(1); }});"
    );
    node(&script, names)
}

/// A small raw blob as the worker writes it.
fn raw_blob(partition: i32, first_offset: i64, records: usize, t0_ms: i64) -> (String, Vec<u8>) {
    let mut lines = Vec::new();
    for i in 0..records {
        let pos = RecordPosition {
            topic: TOPIC,
            partition,
            offset: first_offset + i as i64,
            timestamp: Some(t0_ms + i as i64),
            timestamp_type: TimestampType::CreateTime,
        };
        encode_line(&mut lines, pos, None, Some(ATTACK.as_bytes()), &[]);
    }
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&lines).expect("gzip to memory");
    let name = raw_blob_name(TOPIC, partition, first_offset, Some(t0_ms));
    (name, gz.finish().expect("gzip to memory"))
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn azurite_pid() -> Option<u32> {
    std::fs::read_to_string(testkit::root().join(".stack/pids/azurite.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One row of the latency table (nothing for an empty slice).
fn print_row(label: &str, latencies_ms: Vec<f64>) {
    if let Some(s) = crate::stats::summarize(latencies_ms) {
        println!(
            "| {label} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        );
    }
}

/// One uploaded blob: its name, ETag and when the upload returned.
struct Uploaded {
    name: String,
    etag: String,
    at: DateTime<Utc>,
    /// Seconds since the uploads started.
    offset_secs: f64,
}

/// Uploads like the worker: create-only, with the offsets as user metadata.
async fn put(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    gz: Vec<u8>,
    first: i64,
    records: usize,
) -> anyhow::Result<String> {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, "application/x-ndjson".into());
    for (k, v) in raw_blob_metadata(first, first + records as i64 - 1, records) {
        attributes.insert(Attribute::Metadata(k.into()), v.into());
    }
    let opts = PutOptions {
        mode: PutMode::Create,
        attributes,
        ..PutOptions::default()
    };
    let path = Path::from(name);
    let payload = object_store::PutPayload::from(gz);
    let mut tries = 0;
    let etag = loop {
        tries += 1;
        match store.put_opts(&path, payload.clone(), opts.clone()).await {
            Ok(put) => break put.e_tag.context("Azurite returns ETags")?,
            // A create-only put is not retried by object_store: a reset connection (Azurite
            // closing an idle keep-alive) is retried here; if it had landed, HEAD says so.
            Err(object_store::Error::AlreadyExists { .. }) if tries > 1 => {
                let meta = store.head(&path).await?;
                break meta.e_tag.context("Azurite returns ETags")?;
            }
            Err(_) if tries < 4 => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(e).with_context(|| format!("uploading {name}")),
        }
    };
    Ok(ledger::normalize_etag(&etag).to_owned())
}

/// `bench watch`: runs the stream (or `--startup`) measurement and prints its tables.
pub async fn command(args: WatchArgs) -> anyhow::Result<()> {
    ensure!(args.rate > 0.0 && args.partitions > 0 && args.slice > 0);
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("transformer"),
    };
    ensure!(bin.exists(), "no watcher binary at {}", bin.display());
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (raw_c, std_c) = (format!("wb-raw-{id}"), format!("wb-std-{id}"));
    for c in [&raw_c, &std_c] {
        testkit::create_container(c)?;
    }
    let result = run(&args, &bin, &raw_c, &std_c).await;
    if !args.keep {
        if let Err(e) = delete_containers(&[&raw_c, &std_c]) {
            eprintln!("could not delete containers {raw_c}, {std_c}: {e}");
        }
    } else {
        println!("kept containers az://{raw_c} az://{std_c}");
    }
    result
}

async fn run(args: &WatchArgs, bin: &FsPath, raw_c: &str, std_c: &str) -> anyhow::Result<()> {
    let raw = service::storage::open("RAW_URL", &format!("az://{raw_c}"))?;
    let standard = service::storage::open("STANDARD_URL", &format!("az://{std_c}"))?;
    let parts = args.partitions as usize;
    let mut next_offset = vec![0i64; parts];

    // Already-processed blobs: uploaded, then a receipt at the ETag the upload returned.
    let started = Instant::now();
    let prefill_ms =
        (Utc::now() - chrono::Duration::hours(args.prefill_age_hours)).timestamp_millis();
    let spread = args.prefill_spread_hours.max(1);
    let mut jobs = Vec::with_capacity(args.prefill);
    for i in 0..args.prefill {
        let p = i % parts;
        // Oldest first, so each partition's offsets grow with its blobs' hours.
        let back = spread - 1 - (i as i64 * spread / args.prefill.max(1) as i64);
        let dated = prefill_ms - back * 3_600_000;
        let (name, gz) = raw_blob(p as i32, next_offset[p], args.records, dated);
        jobs.push((name, gz, next_offset[p]));
        next_offset[p] += args.records as i64;
    }
    futures::stream::iter(jobs)
        .map(|(name, gz, first)| {
            let (raw, standard) = (raw.clone(), standard.clone());
            let records = args.records;
            async move {
                let etag = put(&raw, &name, gz, first, records).await?;
                ledger::write_receipt(
                    standard.as_ref(),
                    &name,
                    &etag,
                    "prefill",
                    &Counts::default(),
                )
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await?;
    println!(
        "prefilled {} blobs with receipts in {:.1} s",
        args.prefill,
        started.elapsed().as_secs_f64()
    );

    let log_path = args
        .log
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("watch-bench-{raw_c}.log")));
    if args.startup {
        return startup(args, bin, raw_c, std_c, &log_path).await;
    }
    let mut watcher = spawn_watcher(bin, raw_c, std_c, &log_path)?;
    let watcher_pid = watcher.id().context("watcher pid")?;
    println!(
        "watcher {} (pid {watcher_pid}), logs in {}",
        bin.display(),
        log_path.display()
    );
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;

    let azurite = azurite_pid();
    let (az_cpu0, w_cpu0) = (azurite.and_then(cpu_secs), cpu_secs(watcher_pid));
    let total = (args.rate * args.seconds as f64).round() as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let t0 = Instant::now();
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let p = i % parts;
        let first = next_offset[p];
        let (name, gz) = raw_blob(p as i32, first, args.records, Utc::now().timestamp_millis());
        next_offset[p] += args.records as i64;
        let (raw, records) = (raw.clone(), args.records);
        uploads.spawn(async move {
            let etag = put(&raw, &name, gz, first, records).await?;
            let at = Utc::now();
            anyhow::Ok(Uploaded {
                name,
                etag,
                at,
                offset_secs: t0.elapsed().as_secs_f64(),
            })
        });
    }
    let mut produced = Vec::with_capacity(total);
    while let Some(u) = uploads.join_next().await {
        produced.push(u??);
    }
    let upload_secs = t0.elapsed().as_secs_f64();

    // Wait for the receipts (one listing every 5 s, only now that the uploads are over).
    let want = args.prefill + produced.len();
    let receipts_prefix = Path::from(format!("{}/{TOPIC}", ledger::RECEIPTS_PREFIX));
    let deadline = Instant::now() + Duration::from_secs(args.drain);
    let mut have = 0;
    while Instant::now() < deadline {
        have = standard
            .list(Some(&receipts_prefix))
            .try_collect::<Vec<_>>()
            .await?
            .len();
        if have >= want {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let drained_secs = t0.elapsed().as_secs_f64();
    let (az_cpu1, w_cpu1) = (azurite.and_then(cpu_secs), cpu_secs(watcher_pid));
    watcher.start_kill()?;
    let _ = watcher.wait().await;

    // Upload → receipt, per blob.
    let mut lat: Vec<(f64, f64)> = Vec::with_capacity(produced.len());
    let mut missing = 0usize;
    let mut wrong_etag = 0usize;
    let got: Vec<(f64, DateTime<Utc>, String, Option<serde_json::Value>)> =
        futures::stream::iter(produced)
            .map(|u| {
                let standard = standard.clone();
                async move {
                    let body = match standard.get(&ledger::receipt_path(&u.name)).await {
                        Ok(g) => Some(serde_json::from_slice(&g.bytes().await?)?),
                        Err(object_store::Error::NotFound { .. }) => None,
                        Err(e) => return Err(anyhow::Error::from(e)),
                    };
                    anyhow::Ok((u.offset_secs, u.at, u.etag, body))
                }
            })
            .buffer_unordered(32)
            .try_collect()
            .await?;
    for (offset, at, etag, body) in got {
        let Some(r) = body else {
            missing += 1;
            continue;
        };
        if r["etag"].as_str() != Some(etag.as_str()) {
            wrong_etag += 1;
        }
        let finished: DateTime<Utc> = r["finished_at"]
            .as_str()
            .context("receipt finished_at")?
            .parse()?;
        lat.push((offset, (finished - at).as_seconds_f64() * 1000.0));
    }

    println!(
        "\nuploaded {total} blobs in {upload_secs:.1} s ({:.1}/s), all receipts after {drained_secs:.1} s; \
         prefill {} dated {} h ago",
        total as f64 / upload_secs,
        args.prefill,
        args.prefill_age_hours
    );
    println!("\n| upload slice (s) | blobs | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    let slices = upload_secs.ceil() as u64 / args.slice + 1;
    for s in 0..slices {
        let (lo, hi) = ((s * args.slice) as f64, ((s + 1) * args.slice) as f64);
        let v: Vec<f64> = lat
            .iter()
            .filter(|(o, _)| *o >= lo && *o < hi)
            .map(|(_, l)| *l)
            .collect();
        print_row(&format!("{lo:.0}–{hi:.0}"), v);
    }
    print_row("all", lat.iter().map(|(_, l)| *l).collect());
    let cpu = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1} s", b - a),
        _ => "n/a".to_owned(),
    };
    println!(
        "\nCPU from first upload to last receipt ({:.0} s): watcher {}, Azurite {}",
        drained_secs,
        cpu(w_cpu0, w_cpu1),
        cpu(az_cpu0, az_cpu1)
    );
    println!(
        "receipts: {have}/{want} listed, {missing} new blobs without one, {wrong_etag} with another ETag"
    );
    if missing > 0 || wrong_etag > 0 {
        bail!("{missing} blobs never processed, {wrong_etag} receipts at the wrong ETag");
    }
    Ok(())
}

/// `transformer watch` on the two containers, logging to `log_path` (every other variable, e.g.
/// `WATCH_*`, is inherited).
fn spawn_watcher(
    bin: &FsPath,
    raw_c: &str,
    std_c: &str,
    log_path: &FsPath,
) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(log_path)?;
    tokio::process::Command::new(bin)
        .arg("watch")
        .env("RAW_URL", format!("az://{raw_c}"))
        .env("STANDARD_URL", format!("az://{std_c}"))
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// What one start-up cost, from the watcher's `watch_caught_up` line.
#[derive(Debug)]
struct Startup {
    elapsed_ms: u64,
    list_calls: u64,
    listed_blobs: u64,
    covered: u64,
    receipt_checks: u64,
    cpu_secs: Option<f64>,
}

/// `--startup`: two starts on the prefilled container, the second with the first's checkpoint.
async fn startup(
    args: &WatchArgs,
    bin: &FsPath,
    raw_c: &str,
    std_c: &str,
    log_path: &FsPath,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for run in ["first start (no checkpoint)", "restart (its checkpoint)"] {
        let mut watcher = spawn_watcher(bin, raw_c, std_c, log_path)?;
        let pid = watcher.id().context("watcher pid")?;
        let deadline = Instant::now() + Duration::from_secs(args.drain);
        let line = loop {
            let text = std::fs::read_to_string(log_path).unwrap_or_default();
            if let Some(l) = text.lines().find(|l| l.contains("\"watch_caught_up\"")) {
                break l.to_owned();
            }
            ensure!(
                Instant::now() < deadline,
                "{run}: not caught up within --drain"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let cpu = cpu_secs(pid);
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        rows.push((
            run,
            Startup {
                elapsed_ms: n("elapsed_ms"),
                list_calls: n("list_calls"),
                listed_blobs: n("listed_blobs"),
                covered: n("covered"),
                receipt_checks: n("receipt_checks"),
                cpu_secs: cpu,
            },
        ));
        // SIGTERM: the watcher drains and writes its checkpoint.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM {pid}");
        tokio::time::timeout(Duration::from_secs(60), watcher.wait())
            .await
            .context("the watcher stops within 60 s of SIGTERM")??;
    }
    println!(
        "\n{} blobs with receipts over {} h (dated up to {} h ago), {} partitions",
        args.prefill, args.prefill_spread_hours, args.prefill_age_hours, args.partitions
    );
    println!(
        "\n| start | caught up after (ms) | prefix listings | blobs listed | covered by checkpoint | receipts read | watcher CPU (s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (run, s) in rows {
        println!(
            "| {run} | {} | {} | {} | {} | {} | {} |",
            s.elapsed_ms,
            s.list_calls,
            s.listed_blobs,
            s.covered,
            s.receipt_checks,
            s.cpu_secs.map_or("n/a".into(), |c| format!("{c:.2}"))
        );
    }
    Ok(())
}

//! `docs/BENCHMARKS.md` from its template (`bench/BENCHMARKS.template.md`) and the results file.
//!
//! The template holds the prose; each `{{section}}` placeholder becomes a table built only from
//! result lines, so every figure in the report comes from a run of `bench/run`, and each table
//! says which run (date, machine, binaries, command) produced it. `bench/run` tags every line it
//! collects with `run` (the run id); a section shows the latest run that has lines for it, so a
//! partial rerun (`bench/run latency`) replaces only its own section.

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::config::ReportConfig;
use crate::plot::Series;
use crate::results::{num, of, text};

type Line = Map<String, Value>;

/// The template with every placeholder replaced.
pub fn render(template: &str, lines: &[Line], config: &ReportConfig) -> String {
    let svg = config
        .bench_svg
        .strip_prefix("docs")
        .map(|p| p.display().to_string().trim_start_matches('/').to_owned())
        .unwrap_or_else(|_| config.bench_svg.display().to_string());
    let sections: [(&str, String); 12] = [
        ("{{machine}}", machine(lines)),
        ("{{simulator}}", simulator(lines)),
        ("{{worker_cpu}}", worker_cpu(lines)),
        ("{{worker}}", worker(lines)),
        ("{{worker_lag}}", worker_lag(lines)),
        ("{{worker_gzip}}", worker_gzip(lines)),
        ("{{worker_crate}}", worker_crate(lines)),
        ("{{notes}}", notes(&config.bench_markdown)),
        ("{{transformer}}", transformer(lines)),
        ("{{latency}}", latency(lines)),
        (
            "{{plot}}",
            format!("![records/s against batch size]({svg})"),
        ),
        ("{{other}}", other(lines)),
    ];
    sections
        .iter()
        .fold(template.to_owned(), |doc, (key, value)| {
            doc.replace(key, value)
        })
}

/// The latest run id among `lines` of bench `name`, and those lines.
fn latest<'a>(lines: &'a [Line], names: &[&str]) -> Vec<&'a Line> {
    let picked: Vec<&Line> = lines
        .iter()
        .filter(|l| names.iter().any(|n| text(l, "bench") == Some(*n)))
        .collect();
    let Some(run) = picked.iter().filter_map(|l| text(l, "run")).max() else {
        return picked;
    };
    picked
        .into_iter()
        .filter(|l| text(l, "run") == Some(run))
        .collect()
}

/// "Run …: date, machine, binaries, command" for the run of `lines`.
fn provenance(all: &[Line], lines: &[&Line]) -> String {
    let run = lines.first().and_then(|l| text(l, "run"));
    let machine = of(all, "machine").filter(|m| text(m, "run") == run).last();
    match machine {
        Some(m) => format!(
            "\n_Run `{}`: {}, {} binaries, {} cores, {} GiB, broker {}; command `{}`._\n",
            run.unwrap_or("?"),
            text(m, "date").unwrap_or("?"),
            text(m, "binaries").unwrap_or("?"),
            fmt_num(num(m, "cores")),
            fmt_num(num(m, "memory_gib")),
            text(m, "broker").unwrap_or("?"),
            text(m, "command").unwrap_or("?"),
        ),
        None => format!(
            "\n_Run `{}` (no machine line recorded)._\n",
            run.unwrap_or("?")
        ),
    }
}

fn not_run(what: &str, how: &str) -> String {
    format!("_Not measured yet: no `{what}` lines in the results. Run `{how}`._\n")
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "–".to_owned(),
        Some(v) if v.abs() >= 100.0 || v.fract() == 0.0 => group(v.round() as i64),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// 1234567 → "1 234 567" (thin groups, no locale).
fn group(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.0} %", 100.0 * a / b),
        _ => "–".to_owned(),
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

fn machine(lines: &[Line]) -> String {
    let machines: Vec<&Line> = of(lines, "machine").collect();
    if machines.is_empty() {
        return not_run("machine", "bench/run all");
    }
    let rows: Vec<Vec<String>> = machines
        .iter()
        .map(|m| {
            [
                "run",
                "date",
                "cpu",
                "cores",
                "memory_gib",
                "load_1m",
                "broker",
                "binaries",
                "command",
            ]
            .iter()
            .map(|k| match m.get(*k) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => fmt_num(v.as_f64()),
                None => "–".to_owned(),
            })
            .collect()
        })
        .collect();
    table(
        &[
            "run",
            "date (UTC)",
            "CPU",
            "cores",
            "memory (GiB)",
            "load average at start",
            "broker",
            "binaries",
            "command",
        ],
        &rows,
    )
}

fn simulator(lines: &[Line]) -> String {
    let runs = latest(lines, &["simulator_flood"]);
    if runs.is_empty() {
        return not_run("simulator_flood", "bench/run simulator");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|l| {
            vec![
                fmt_num(num(l, "records")),
                fmt_num(num(l, "mb")),
                fmt_num(num(l, "seconds")),
                fmt_num(num(l, "records_per_s")),
                fmt_num(num(l, "mb_per_s")),
                ratio(num(l, "records_per_s"), Some(100_000.0)),
            ]
        })
        .collect();
    table(
        &[
            "records",
            "MB",
            "seconds",
            "records/s",
            "MB/s",
            "of the 100 k/s target",
        ],
        &rows,
    ) + &provenance(lines, &runs)
}

/// The worker runs' benches: the worker, the baseline before it and the baseline after it.
const WORKER_RUN: [&str; 4] = [
    "worker_lag",
    "worker_baseline",
    "worker_baseline_after",
    "kcat",
];

/// The mean of the values present (the baseline before and after a worker run; older runs have
/// only the one before).
fn mean(values: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// The latest worker run's lines, by bench.
struct WorkerRun<'a> {
    runs: Vec<&'a Line>,
    work: Vec<&'a Line>,
    before: Vec<&'a Line>,
    after: Vec<&'a Line>,
}

/// One `BATCH_SIZE` of a worker run: the worker line and the baselines around it.
struct Pair<'a> {
    work: Option<&'a Line>,
    before: Option<&'a Line>,
    after: Option<&'a Line>,
}

impl<'a> WorkerRun<'a> {
    fn latest(lines: &'a [Line]) -> Self {
        let runs = latest(lines, &WORKER_RUN);
        let of = |b: &str| -> Vec<&'a Line> {
            runs.iter()
                .copied()
                .filter(|l| text(l, "bench") == Some(b))
                .collect()
        };
        let (work, before, after) = (
            of("worker_lag"),
            of("worker_baseline"),
            of("worker_baseline_after"),
        );
        WorkerRun {
            runs,
            work,
            before,
            after,
        }
    }

    fn kcat(&self) -> Option<&'a Line> {
        self.runs
            .iter()
            .copied()
            .find(|l| text(l, "bench") == Some("kcat"))
    }

    fn pair(&self, batch: f64) -> Pair<'a> {
        Pair {
            work: find(&self.work, batch),
            before: find(&self.before, batch),
            after: find(&self.after, batch),
        }
    }
}

impl Pair<'_> {
    fn work(&self, key: &str) -> Option<f64> {
        self.work.and_then(|l| num(l, key))
    }

    fn before(&self, key: &str) -> Option<f64> {
        self.before.and_then(|l| num(l, key))
    }

    fn after(&self, key: &str) -> Option<f64> {
        self.after.and_then(|l| num(l, key))
    }

    /// The baseline's figure: the mean of before and after.
    fn base(&self, key: &str) -> Option<f64> {
        mean(&[self.before(key), self.after(key)])
    }
}

/// The worker section pairs, per `BATCH_SIZE`, a `worker_lag` line (the worker binary landing
/// the backlog, `bench-backlog`) with the `worker_baseline` and `worker_baseline_after` lines
/// (consume-and-discard, `bench-baseline`, just before and just after it), all read from the same
/// flood topics in the same run; the baseline figures are the mean of the two. `kcat` is the
/// outside reference on those topics.
fn worker(lines: &[Line]) -> String {
    let run = WorkerRun::latest(lines);
    if run.work.is_empty() && run.before.is_empty() {
        return not_run("worker_lag` or `worker_baseline", "bench/run worker");
    }
    let kcat = run.kcat();
    // A size whose worker run failed still shows its baseline.
    let batches = batch_sizes(run.work.iter().chain(&run.before));
    let rows: Vec<Vec<String>> = batches
        .iter()
        .map(|&b| {
            let p = run.pair(b);
            vec![
                fmt_num(Some(b)),
                fmt_num(p.work("landed").or(p.before("records"))),
                fmt_num(p.base("records_per_s")),
                fmt_num(p.work("records_per_s")),
                ratio(p.work("records_per_s"), p.base("records_per_s")),
                format!(
                    "{} / {}",
                    fmt_num(p.before("sustained_records_per_s")),
                    fmt_num(p.after("sustained_records_per_s"))
                ),
                fmt_num(p.base("sustained_records_per_s")),
                fmt_num(p.work("sustained_records_per_s")),
                ratio(
                    p.work("sustained_records_per_s"),
                    p.base("sustained_records_per_s"),
                ),
                fmt_num(p.base("mb_per_s")),
                fmt_num(p.work("landed_mb_per_s")),
                match (p.work("landed_mb"), p.work("stored_mb")) {
                    (Some(l), Some(s)) if s > 0.0 => format!("{:.1} ×", l / s),
                    _ => "–".to_owned(),
                },
                fmt_num(p.work("records_per_blob")),
                fmt_num(p.work("peak_rss_mb")),
                ratio(
                    p.work("records_per_s"),
                    kcat.and_then(|k| num(k, "records_per_s")),
                ),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "BATCH_SIZE",
            "records",
            "baseline records/s",
            "worker records/s",
            "worker / baseline",
            "baseline sustained, before / after the worker",
            "baseline records/s, sustained (10–90 %)",
            "worker records/s, sustained (10–90 %)",
            "worker / baseline, sustained",
            "baseline MB/s (values)",
            "worker MB/s (JSON lines landed)",
            "gzip ratio",
            "records per blob (mean)",
            "worker peak RSS (MB)",
            "worker / kcat",
        ],
        &rows,
    );
    if let Some(k) = kcat {
        let _ = writeln!(
            out,
            "\nkcat reference ({}): {} records in {} s = **{} records/s** ({} MB/s of values), same topics.",
            text(k, "kcat").unwrap_or("kcat"),
            fmt_num(num(k, "records")),
            fmt_num(num(k, "seconds")),
            fmt_num(num(k, "records_per_s")),
            fmt_num(num(k, "mb_per_s")),
        );
    }
    out + &provenance(lines, &run.runs)
}

/// Where the CPU went over the sustained window of each worker run and of its baselines: CPU
/// microseconds per record of the worker, the broker and the emulator (`bench-backlog`), of the
/// baseline consumer and the broker (`bench-baseline`, mean of before and after), how busy the
/// machine was, and the ceiling: the rate a worker costing no CPU at all could reach on these
/// cores with the broker and the emulator costing what they did ([`crate::cpu`]).
fn worker_cpu(lines: &[Line]) -> String {
    let run = WorkerRun::latest(lines);
    if !run
        .work
        .iter()
        .any(|l| num(l, "worker_cpu_us_per_record").is_some())
    {
        return not_run(
            "worker_lag` with `worker_cpu_us_per_record",
            "bench/run worker",
        );
    }
    let batches = batch_sizes(&run.work);
    let us = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
    let pct = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0} %"));
    let rows: Vec<Vec<String>> = batches
        .iter()
        .map(|&b| {
            let p = run.pair(b);
            let others = p
                .work("broker_cpu_us_per_record")
                .zip(p.work("storage_cpu_us_per_record"))
                .map(|(broker, storage)| broker + storage);
            let cores = p.work("cores").map(|c| c as usize);
            let ceiling = cores
                .zip(others)
                .and_then(|(c, o)| crate::cpu::ceiling_records_per_s(c, o));
            vec![
                fmt_num(Some(b)),
                us(p.work("worker_cpu_us_per_record")),
                us(p.work("broker_cpu_us_per_record")),
                us(p.work("storage_cpu_us_per_record")),
                pct(p.work("machine_busy_pct")),
                us(p.base("consumer_cpu_us_per_record")),
                us(p.base("broker_cpu_us_per_record")),
                pct(p.base("machine_busy_pct")),
                fmt_num(ceiling),
                ratio(ceiling, p.base("sustained_records_per_s")),
            ]
        })
        .collect();
    table(
        &[
            "BATCH_SIZE",
            "worker µs/record",
            "broker µs/record (worker run)",
            "emulator µs/record",
            "machine busy (worker run)",
            "baseline consumer µs/record",
            "broker µs/record (baseline)",
            "machine busy (baseline)",
            "ceiling: records/s of a worker costing 0 CPU",
            "ceiling / baseline",
        ],
        &rows,
    ) + &provenance(lines, &run.runs)
}

/// The distinct `batch_size`s of `lines`, ascending.
fn batch_sizes<'l>(lines: impl IntoIterator<Item = &'l &'l Line>) -> Vec<f64> {
    let mut batches: Vec<f64> = lines
        .into_iter()
        .filter_map(|l| num(l, "batch_size"))
        .collect();
    batches.sort_by(f64::total_cmp);
    batches.dedup();
    batches
}

fn find<'a>(ls: &[&'a Line], batch: f64) -> Option<&'a Line> {
    ls.iter()
        .find(|l| num(l, "batch_size") == Some(batch))
        .copied()
}

fn worker_lag(lines: &[Line]) -> String {
    let runs = latest(lines, &["worker_lag"]);
    if runs.is_empty() {
        return not_run("worker_lag", "bench/run worker");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|l| {
            vec![
                fmt_num(num(l, "lag_records")),
                fmt_num(num(l, "batch_size")),
                fmt_num(num(l, "peak_rss_mb")),
                ratio(num(l, "peak_rss_mb"), Some(150.0)),
                fmt_num(num(l, "total_seconds")),
            ]
        })
        .collect();
    table(
        &[
            "records of lag",
            "BATCH_SIZE",
            "worker peak RSS (MB)",
            "of the 150 MB budget",
            "seconds to land all (group join included)",
        ],
        &rows,
    ) + &provenance(lines, &runs)
}

fn worker_gzip(lines: &[Line]) -> String {
    let runs = latest(lines, &["worker_gzip"]);
    if runs.is_empty() {
        return not_run("worker_gzip", "bench/run worker");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|l| {
            vec![
                fmt_num(num(l, "gzip_level")),
                fmt_num(num(l, "batch_size")),
                fmt_num(num(l, "records_per_s")),
                fmt_num(num(l, "sustained_records_per_s")),
                fmt_num(num(l, "landed_mb")),
                fmt_num(num(l, "stored_mb")),
                match (num(l, "landed_mb"), num(l, "stored_mb")) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.1} ×", a / b),
                    _ => "–".to_owned(),
                },
                fmt_num(num(l, "peak_rss_mb")),
                num(l, "worker_cpu_us_per_record").map_or("–".to_owned(), |v| format!("{v:.2}")),
            ]
        })
        .collect();
    table(
        &[
            "GZIP_LEVEL",
            "BATCH_SIZE",
            "worker records/s",
            "worker records/s, sustained (10–90 %)",
            "JSON lines (MB)",
            "stored gzip (MB)",
            "ratio",
            "peak RSS (MB)",
            "worker CPU µs/record (sustained)",
        ],
        &rows,
    ) + &provenance(lines, &runs)
}

/// Links to the crates' own benchmark notes (`docs/bench/*.md`, next to the report).
fn notes(markdown: &std::path::Path) -> String {
    let dir = markdown
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("bench");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".md"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        return "_None yet._\n".to_owned();
    }
    files
        .iter()
        .map(|f| format!("- [`docs/bench/{f}`](bench/{f})\n"))
        .collect()
}

/// The worker crate's own bench (`worker/benches/landing.rs`): its own topic and records, one
/// baseline, the worker binary per batch size (default `BATCH_MAX_WAIT_MS`), and an in-memory
/// gzip level table. Shown as a second, independent measurement.
fn worker_crate(lines: &[Line]) -> String {
    let runs = latest(lines, &["produce", "baseline", "worker", "gzip"]);
    let of_bench = |b: &str| -> Vec<&Line> {
        runs.iter()
            .copied()
            .filter(|l| text(l, "bench") == Some(b))
            .collect()
    };
    let (base, work, gzip) = (of_bench("baseline"), of_bench("worker"), of_bench("gzip"));
    if base.is_empty() && work.is_empty() {
        return not_run("baseline` and `worker", "bench/run worker");
    }
    let mut rows: Vec<Vec<String>> = base
        .iter()
        .map(|l| {
            vec![
                "baseline (consume + discard)".to_owned(),
                fmt_num(num(l, "records")),
                fmt_num(num(l, "records_per_s")),
                fmt_num(num(l, "mb_per_s")),
                "100 %".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
            ]
        })
        .collect();
    rows.extend(work.iter().map(|l| {
        vec![
            format!("worker BATCH_SIZE={}", fmt_num(num(l, "batch_size"))),
            fmt_num(num(l, "records")),
            fmt_num(num(l, "records_per_s")),
            fmt_num(num(l, "mb_per_s")),
            num(l, "vs_baseline").map_or("–".to_owned(), |r| format!("{:.0} %", 100.0 * r)),
            fmt_num(num(l, "peak_rss_mib")),
            fmt_num(num(l, "mean_head_ms")),
            fmt_num(num(l, "mean_upload_ms")),
            num(l, "gzip_ratio").map_or("–".to_owned(), |r| format!("{r:.1} ×")),
        ]
    }));
    let mut out = table(
        &[
            "run",
            "records",
            "records/s",
            "MB/s (values)",
            "vs baseline",
            "peak RSS (MiB)",
            "mean HEAD ms",
            "mean upload ms",
            "gzip ratio",
        ],
        &rows,
    );
    if !gzip.is_empty() {
        let gz_rows: Vec<Vec<String>> = gzip
            .iter()
            .map(|l| {
                vec![
                    fmt_num(num(l, "level")),
                    fmt_num(num(l, "mb_per_s")),
                    num(l, "ratio").map_or("–".to_owned(), |r| format!("{r:.2} ×")),
                ]
            })
            .collect();
        out.push_str("\nIn-memory gzip of a 10 000-record sample, one core:\n\n");
        out.push_str(&table(
            &["GZIP_LEVEL", "MB/s (JSON lines in)", "ratio"],
            &gz_rows,
        ));
    }
    out + &provenance(lines, &runs)
}

/// `transformer-bench` prints a Markdown table (collected row by row): `topic` is the blob's
/// topic for the in-memory transform, or `azurite end-to-end` for the upload + process run.
fn transformer(lines: &[Line]) -> String {
    let runs = latest(lines, &["transformer"]);
    if runs.is_empty() {
        return not_run("transformer", "bench/run transformer");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|l| {
            let budget = num(l, "gz_mb").map(|gz| 2.0 * gz + 100.0);
            vec![
                text(l, "topic").unwrap_or("?").to_owned(),
                fmt_num(num(l, "records")),
                text(l, "compression").unwrap_or("?").to_owned(),
                fmt_num(num(l, "raw_json_mb")),
                fmt_num(num(l, "gz_mb")),
                fmt_num(num(l, "mb_s_core")),
                ratio(num(l, "mb_s_core"), Some(100.0)),
                fmt_num(num(l, "records_s")),
                fmt_num(num(l, "rows_s_model_rows")),
                fmt_num(num(l, "peak_rss_mb")),
                ratio(num(l, "peak_rss_mb"), budget),
            ]
        })
        .collect();
    table(
        &[
            "blob topic / mode",
            "records per blob",
            "Parquet compression",
            "raw JSON (MB)",
            "gzipped blob (MB)",
            "MB/s per core",
            "of the 100 MB/s target",
            "records/s",
            "model rows/s",
            "peak RSS (MB)",
            "of the RSS budget (2 × blob + 100 MB)",
        ],
        &rows,
    ) + &provenance(lines, &runs)
}

fn latency(lines: &[Line]) -> String {
    // Latency depends on the state of the shared stack (Azurite slows down as it fills), so every
    // release run is shown, each row with its run id, instead of only the latest.
    let runs: Vec<&Line> = of(lines, "latency")
        .filter(|l| text(l, "binaries") != Some("debug"))
        .collect();
    let runs = if runs.is_empty() {
        latest(lines, &["latency"])
    } else {
        runs
    };
    if runs.is_empty() {
        return not_run("latency", "bench/run latency");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|l| {
            let lat = |k: &str| {
                l.get("latency")
                    .and_then(|s| s.get(k))
                    .and_then(Value::as_f64)
            };
            vec![
                text(l, "run").unwrap_or("?").to_owned(),
                fmt_num(num(l, "rate_per_s")),
                fmt_num(num(l, "duration_s")),
                text(l, "partitions").unwrap_or("?").to_owned(),
                format!(
                    "{} / {} / {}",
                    fmt_num(num(l, "batch_max_wait_ms")),
                    fmt_num(num(l, "watch_poll_ms")),
                    fmt_num(num(l, "poll_ms"))
                ),
                fmt_num(num(l, "records_sent")),
                fmt_num(lat("p50_ms")),
                fmt_num(lat("p90_ms")),
                fmt_num(lat("p99_ms")),
                fmt_num(lat("max_ms")),
                format!(
                    "{} / {}",
                    fmt_num(num(l, "records_missing")),
                    fmt_num(num(l, "duplicate_rows"))
                ),
                l.get("p50_by_tenth_ms")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| fmt_num(v.as_f64()))
                            .collect::<Vec<_>>()
                            .join(" → ")
                    })
                    .unwrap_or_else(|| "–".to_owned()),
            ]
        })
        .collect();
    table(
        &[
            "run",
            "records/s",
            "seconds",
            "partitions",
            "max wait / watch poll / bench poll (ms)",
            "records",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "missing / duplicates",
            "p50 per tenth of the run (ms)",
        ],
        &rows,
    ) + &runs_provenance(lines, &runs)
}

/// One provenance line per distinct run among `rows`, in order.
fn runs_provenance(all: &[Line], rows: &[&Line]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = String::new();
    for l in rows {
        let run = text(l, "run").unwrap_or("?");
        if !seen.contains(&run) {
            seen.push(run);
            out.push_str(&provenance(all, &[*l]));
        }
    }
    out
}

const KNOWN: [&str; 13] = [
    "machine",
    "produce",
    "baseline",
    "worker",
    "gzip",
    "simulator_flood",
    "worker_baseline",
    "worker_baseline_after",
    "kcat",
    "worker_lag",
    "worker_gzip",
    "transformer",
    "latency",
];

fn other(lines: &[Line]) -> String {
    let rest: Vec<&Line> = lines
        .iter()
        .filter(|l| !text(l, "bench").is_some_and(|b| KNOWN.contains(&b)))
        .collect();
    if rest.is_empty() {
        return "_None._\n".to_owned();
    }
    let mut keys: Vec<&str> = Vec::new();
    for l in &rest {
        for k in l.keys() {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    let rows: Vec<Vec<String>> = rest
        .iter()
        .map(|l| {
            keys.iter()
                .map(|k| match l.get(*k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => fmt_num(n.as_f64()),
                    Some(v) => v.to_string(),
                    None => "–".to_owned(),
                })
                .collect()
        })
        .collect();
    table(&keys, &rows)
}

/// The plot's series: baseline (mean of before and after) and worker records/s per batch size
/// from the latest worker run, plus kcat's rate as a flat reference line.
pub fn throughput_series(lines: &[Line]) -> Vec<Series> {
    let run = WorkerRun::latest(lines);
    // One point per batch size; the baseline's is the mean of the runs before and after the
    // worker's, as in the tables.
    let series_of = |of: &[&Line], name: &str, rate: &dyn Fn(f64) -> Option<f64>| {
        let mut points: Vec<(f64, f64)> = of
            .iter()
            .filter_map(|l| {
                let batch = num(l, "batch_size")?;
                Some((batch, rate(batch)?))
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Series {
            name: name.to_owned(),
            points,
        }
    };
    let mut out = vec![
        series_of(
            &run.before,
            "consume-and-discard baseline (rdkafka)",
            &|b| run.pair(b).base("records_per_s"),
        ),
        series_of(&run.work, "worker landing into Azurite", &|b| {
            run.pair(b).work("records_per_s")
        }),
    ];
    let xs: Vec<f64> = out
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let kcat = run.kcat().and_then(|k| num(k, "records_per_s"));
    if let (Some(k), Some(lo), Some(hi)) = (
        kcat,
        xs.iter().copied().reduce(f64::min),
        xs.iter().copied().reduce(f64::max),
    ) {
        out.push(Series {
            name: "kcat (reference, no batching)".into(),
            points: vec![(lo, k), (hi, k)],
        });
    }
    out.retain(|s| !s.points.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::results::parse;

    fn config() -> ReportConfig {
        ReportConfig {
            bench_results: PathBuf::from("r.jsonl"),
            bench_svg: PathBuf::from("docs/bench/t.svg"),
            bench_markdown: PathBuf::from("docs/BENCHMARKS.md"),
            bench_template: PathBuf::from("bench/BENCHMARKS.template.md"),
        }
    }

    #[test]
    fn the_shipped_template_renders_every_section_and_leaves_no_placeholder() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.template.md");
        let template = std::fs::read_to_string(&path).expect("bench/BENCHMARKS.template.md");
        for key in [
            "{{machine}}",
            "{{worker}}",
            "{{latency}}",
            "{{transformer}}",
            "{{other}}",
        ] {
            assert!(template.contains(key), "the template lost {key}");
        }
        let doc = render(&template, &parse(RESULTS), &config());
        assert!(!doc.contains("{{"), "a placeholder was left unrendered");
    }

    const RESULTS: &str = r#"
{"run":"r1","bench":"machine","date":"2026-11-21T19:00:00Z","cores":2,"memory_gib":24,"cpu":"Test CPU","broker":"Tansu","binaries":"release","command":"bench/run all"}
{"run":"r1","bench":"worker_baseline","batch_size":1000,"records":1000000,"records_per_s":200000,"sustained_records_per_s":210000,"mb_per_s":100}
{"run":"r1","bench":"worker_lag","batch_size":1000,"landed":1000000,"records_per_s":150000,"sustained_records_per_s":168000,"landed_mb_per_s":75.5,"landed_mb":700,"stored_mb":100,"peak_rss_mb":90,"worker_cpu_us_per_record":5.2,"broker_cpu_us_per_record":2.5,"storage_cpu_us_per_record":2.5,"machine_busy_pct":91,"cores":2}
{"run":"r1","bench":"worker_baseline_after","batch_size":1000,"records":1000000,"records_per_s":220000,"sustained_records_per_s":230000,"mb_per_s":110,"consumer_cpu_us_per_record":1.5,"broker_cpu_us_per_record":2.0,"machine_busy_pct":60}
{"run":"r1","bench":"kcat","kcat":"kcat 1.7.1","records":1000000,"seconds":4,"records_per_s":250000,"mb_per_s":125}
{"run":"r0","bench":"worker_lag","batch_size":1000,"records_per_s":1}
"#;

    #[test]
    fn the_worker_table_shows_ratios_next_to_absolute_numbers_from_the_latest_run() {
        let lines = parse(RESULTS);
        let doc = render("{{worker}}", &lines, &config());
        assert!(
            doc.contains(
                // Baseline = mean of before (200 000, 210 000 sustained) and after (220 000, 230 000).
                "| 1 000 | 1 000 000 | 210 000 | 150 000 | 71 % | 210 000 / 230 000 | 220 000 | 168 000 | 76 % | 105 | 75.5 | 7.0 × | – | 90 | 60 % |"
            ),
            "{doc}"
        );
        assert!(doc.contains("**250 000 records/s**"), "{doc}");
        assert!(
            doc.contains("Run `r1`: 2026-11-21T19:00:00Z, release binaries, 2 cores, 24 GiB"),
            "{doc}"
        );
    }

    #[test]
    fn the_cpu_table_bounds_the_ratio_by_what_broker_and_emulator_cost() {
        let doc = render("{{worker_cpu}}", &parse(RESULTS), &config());
        // Broker 2.5 + emulator 2.5 µs a record on 2 cores: a free worker reaches 400 000/s, 182 %
        // of the 220 000 sustained baseline; the baseline's own CPU comes from the after line only.
        assert!(
            doc.contains(
                "| 1 000 | 5.20 | 2.50 | 2.50 | 91 % | 1.50 | 2.00 | 60 % | 400 000 | 182 % |"
            ),
            "{doc}"
        );
        let old = parse(
            RESULTS
                .replace("\"worker_cpu_us_per_record\":5.2,", "")
                .as_str(),
        );
        let doc = render("{{worker_cpu}}", &old, &config());
        assert!(doc.contains("Not measured yet"), "{doc}");
    }

    #[test]
    fn a_section_without_results_says_how_to_measure_it_instead_of_inventing_numbers() {
        let doc = render("{{latency}}\n{{transformer}}", &[], &config());
        assert!(
            doc.contains("Not measured yet: no `latency` lines"),
            "{doc}"
        );
        assert!(doc.contains("bench/run transformer"), "{doc}");
    }

    #[test]
    fn unknown_result_lines_still_appear_in_the_other_table() {
        let lines = parse(&format!("{RESULTS}\n{{\"bench\":\"mystery\",\"value\":3}}"));
        let doc = render("{{other}}", &lines, &config());
        assert!(
            doc.ends_with("| --- | --- |\n| mystery | 3 |\n"),
            "only the unknown line: {doc}"
        );
    }

    #[test]
    fn the_plot_takes_baseline_and_worker_series_of_the_latest_run() {
        let series = throughput_series(&parse(RESULTS));
        assert_eq!(series.len(), 3, "baseline, worker, kcat");
        // Mean of the baseline before (200 000) and after (220 000) the worker.
        assert_eq!(series[0].points, vec![(1000.0, 210_000.0)]);
        assert_eq!(series[1].points, vec![(1000.0, 150_000.0)]);
        assert_eq!(
            series[2].points,
            vec![(1000.0, 250_000.0), (1000.0, 250_000.0)]
        );
        let doc = render("{{plot}}", &[], &config());
        assert_eq!(doc, "![records/s against batch size](bench/t.svg)");
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(fmt_num(Some(1_234_567.0)), "1 234 567");
        assert_eq!(fmt_num(Some(12.34)), "12.3");
        assert_eq!(fmt_num(Some(0.5)), "0.50");
        assert_eq!(fmt_num(None), "–");
    }
}

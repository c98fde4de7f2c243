//! `docs/BENCHMARKS.md` from its template (`bench/BENCHMARKS.template.md`) and the results file.
//!
//! The template holds the prose; each `{{section}}` placeholder becomes a table built only from
//! result lines, so every figure in the report comes from a run of `bench/run`, and each table
//! says which run (date, machine, binaries, command) produced it. `bench/run` tags every line it
//! collects with `run` (the run id); a section shows the latest run that has lines for it, so a
//! partial rerun (`bench/run latency`) replaces only its own section. Each section reads the
//! typed lines of its kinds ([`Results`]).

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::backlog::BacklogResult;
use crate::baseline::BaselineResult;
use crate::config::ReportConfig;
use crate::latency::LatencyResult;
use crate::plot::Series;
use crate::results::{Kcat, Results, Tagged};
use crate::stats::Summary;

/// `bench report`: regenerates `BENCH_MARKDOWN` from `BENCH_TEMPLATE` and `BENCH_RESULTS`.
pub fn command(config: ReportConfig) -> anyhow::Result<()> {
    let results = crate::results::read(&config.results.bench_results)?;
    // Read now, not built in: an edited template must show without rebuilding `bench`.
    let template = std::fs::read_to_string(&config.bench_template).with_context(|| {
        format!(
            "reading the report template {} (BENCH_TEMPLATE)",
            config.bench_template.display()
        )
    })?;
    let markdown = render(&template, &results, &config);
    std::fs::write(&config.bench_markdown, markdown)
        .with_context(|| format!("writing {}", config.bench_markdown.display()))?;
    eprintln!("bench report: wrote {}", config.bench_markdown.display());
    Ok(())
}

/// The template with every placeholder replaced.
pub fn render(template: &str, results: &Results, config: &ReportConfig) -> String {
    let svg = config
        .bench_svg
        .strip_prefix("docs")
        .map(|p| p.display().to_string().trim_start_matches('/').to_owned())
        .unwrap_or_else(|_| config.bench_svg.display().to_string());
    let r = results;
    let sections: [(&str, String); 12] = [
        ("{{machine}}", machine(r)),
        ("{{simulator}}", simulator(r)),
        ("{{worker_cpu}}", worker_cpu(r)),
        ("{{worker}}", worker(r)),
        ("{{worker_lag}}", worker_lag(r)),
        ("{{worker_gzip}}", worker_gzip(r)),
        ("{{landing}}", landing(r)),
        ("{{notes}}", notes(&config.bench_markdown)),
        ("{{transformer}}", transformer(r)),
        ("{{latency}}", latency(r)),
        (
            "{{plot}}",
            format!("![records/s against batch size]({svg})"),
        ),
        ("{{other}}", other(&r.other)),
    ];
    sections
        .iter()
        .fold(template.to_owned(), |doc, (key, value)| {
            doc.replace(key, value)
        })
}

/// The run ids of `lines`.
fn runs<T>(lines: &[Tagged<T>]) -> impl Iterator<Item = Option<&str>> {
    lines.iter().map(|l| l.run.as_deref())
}

/// The latest of `runs`; `None` when no line names a run (every line is then of that "run").
fn latest<'a>(runs: impl Iterator<Item = Option<&'a str>>) -> Option<&'a str> {
    runs.max().flatten()
}

/// The results of `lines` from `run`, in file order.
fn of_run<'a, T>(lines: &'a [Tagged<T>], run: Option<&str>) -> Vec<&'a T> {
    lines
        .iter()
        .filter(|l| l.run.as_deref() == run)
        .map(|l| &l.result)
        .collect()
}

/// The latest run of `lines` and its results.
fn latest_of<T>(lines: &[Tagged<T>]) -> (Option<&str>, Vec<&T>) {
    let run = latest(runs(lines));
    (run, of_run(lines, run))
}

/// "Run …: date, machine, binaries, command" for `run`, from its last `machine` line.
fn provenance(all: &Results, run: Option<&str>) -> String {
    let name = run.unwrap_or("?");
    match all.machine.iter().rfind(|m| m.run.as_deref() == run) {
        Some(Tagged { result: m, .. }) => format!(
            "\n_Run `{name}`: {}, {} binaries, {} cores, {} GiB, broker {}; command `{}`._\n",
            text(&m.date, "?"),
            text(&m.binaries, "?"),
            fmt_num(m.cores),
            fmt_num(m.memory_gib),
            text(&m.broker, "?"),
            text(&m.command, "?"),
        ),
        None => format!("\n_Run `{name}` (no machine line recorded)._\n"),
    }
}

fn not_run(what: &str, how: &str) -> String {
    format!("_Not measured yet: no `{what}` lines in the results. Run `{how}`._\n")
}

/// A text field, or `none` when the line lacks it.
fn text<'a>(field: &'a Option<String>, none: &'a str) -> &'a str {
    field.as_deref().unwrap_or(none)
}

fn fmt_num(v: impl Into<Option<f64>>) -> String {
    match v.into() {
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

/// `a` as a percentage of `b`.
fn ratio(a: impl Into<Option<f64>>, b: impl Into<Option<f64>>) -> String {
    match (a.into(), b.into()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.0} %", 100.0 * a / b),
        _ => "–".to_owned(),
    }
}

/// `v` with `decimals` decimals and `unit`, or "–".
fn fixed(v: Option<f64>, decimals: usize, unit: &str) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.decimals$}{unit}"))
}

/// CPU µs per record.
fn us(v: Option<f64>) -> String {
    fixed(v, 2, "")
}

/// A share in percent.
fn pct(v: Option<f64>) -> String {
    fixed(v, 0, " %")
}

/// JSON lines landed over gzip stored.
fn shrink(w: &BacklogResult) -> String {
    fixed(
        (w.stored_mb > 0.0).then(|| w.landed_mb / w.stored_mb),
        1,
        " ×",
    )
}

/// A Markdown table: `header` is its first row without the outer bars (`a | b | c`), and `row`
/// makes the cells of each item.
fn table<T>(
    header: &str,
    items: impl IntoIterator<Item = T>,
    row: impl Fn(T) -> Vec<String>,
) -> String {
    let columns = header.split(" | ").count();
    let mut out = format!("| {header} |\n|{}\n", " --- |".repeat(columns));
    for cells in items.into_iter().map(row) {
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn machine(r: &Results) -> String {
    if r.machine.is_empty() {
        return not_run("machine", "bench/run all");
    }
    let header = "run | date (UTC) | CPU | cores | memory (GiB) | load average at start | broker \
        | binaries | command";
    let dash = |field: &Option<String>| text(field, "–").to_owned();
    table(header, &r.machine, |Tagged { run, result: m }| {
        vec![
            dash(run),
            dash(&m.date),
            dash(&m.cpu),
            fmt_num(m.cores),
            fmt_num(m.memory_gib),
            fmt_num(m.load_1m),
            dash(&m.broker),
            dash(&m.binaries),
            dash(&m.command),
        ]
    })
}

fn simulator(r: &Results) -> String {
    let (run, floods) = latest_of(&r.simulator_flood);
    if floods.is_empty() {
        return not_run("simulator_flood", "bench/run simulator");
    }
    let header = "records | MB | seconds | records/s | MB/s | of the 100 k/s target";
    table(header, floods, |f| {
        vec![
            fmt_num(f.records),
            fmt_num(f.mb),
            fmt_num(f.seconds),
            fmt_num(f.records_per_s),
            fmt_num(f.mb_per_s),
            ratio(f.records_per_s, 100_000.0),
        ]
    }) + &provenance(r, run)
}

/// The mean of the values present (the baseline before and after a worker run; older runs have
/// only the one before).
fn mean(values: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// The latest worker run: the latest run among the `worker_lag`, `worker_baseline`,
/// `worker_baseline_after` and `kcat` lines, and its lines of each.
struct WorkerRun<'a> {
    run: Option<&'a str>,
    work: Vec<&'a BacklogResult>,
    before: Vec<&'a BaselineResult>,
    after: Vec<&'a BaselineResult>,
    kcat: Option<&'a Kcat>,
}

impl<'a> WorkerRun<'a> {
    fn latest(r: &'a Results) -> Self {
        let run = latest(
            runs(&r.worker_lag)
                .chain(runs(&r.worker_baseline))
                .chain(runs(&r.worker_baseline_after))
                .chain(runs(&r.kcat)),
        );
        WorkerRun {
            run,
            work: of_run(&r.worker_lag, run),
            before: of_run(&r.worker_baseline, run),
            after: of_run(&r.worker_baseline_after, run),
            kcat: of_run(&r.kcat, run).first().copied(),
        }
    }

    /// Each distinct batch size of `sizes`, ascending, with its lines.
    fn pairs(&self, sizes: impl Iterator<Item = usize>) -> Vec<Pair<'a>> {
        let mut sizes: Vec<usize> = sizes.collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes.into_iter().map(|size| self.pair(size)).collect()
    }

    /// The first line of each kind with batch size `size`.
    fn pair(&self, size: usize) -> Pair<'a> {
        let find =
            |lines: &[&'a BaselineResult]| lines.iter().copied().find(|b| b.batch_size == size);
        Pair {
            size,
            work: self.work.iter().copied().find(|w| w.batch_size == size),
            before: find(&self.before),
            after: find(&self.after),
        }
    }
}

/// One `BATCH_SIZE` of a worker run: the worker line and the baselines around it.
struct Pair<'a> {
    size: usize,
    work: Option<&'a BacklogResult>,
    before: Option<&'a BaselineResult>,
    after: Option<&'a BaselineResult>,
}

impl Pair<'_> {
    /// A figure of the worker line.
    fn work(&self, figure: impl Fn(&BacklogResult) -> Option<f64>) -> Option<f64> {
        self.work.and_then(figure)
    }

    /// The baseline's figure: the mean of before and after.
    fn base(&self, figure: impl Fn(&BaselineResult) -> Option<f64>) -> Option<f64> {
        mean(&[self.before.and_then(&figure), self.after.and_then(&figure)])
    }

    /// Worker and baseline records/s over the whole run.
    fn rates(&self) -> (Option<f64>, Option<f64>) {
        let rate = self.work(|w| Some(w.records_per_s));
        (rate, self.base(|b| Some(b.records_per_s)))
    }

    /// Worker and baseline records/s between 10 % and 90 % of the records.
    fn sustained(&self) -> (Option<f64>, Option<f64>) {
        let rate = self.work(|w| w.sustained_records_per_s);
        (rate, self.base(|b| b.sustained_records_per_s))
    }
}

/// The worker section pairs, per `BATCH_SIZE`, a `worker_lag` line (the worker binary landing
/// the backlog, `bench backlog`) with the `worker_baseline` and `worker_baseline_after` lines
/// (consume-and-discard, `bench baseline`, just before and just after it), all read from the same
/// flood topics in the same run; the baseline figures are the mean of the two. `kcat` is the
/// outside reference on those topics.
fn worker(r: &Results) -> String {
    let run = WorkerRun::latest(r);
    if run.work.is_empty() && run.before.is_empty() {
        return not_run("worker_lag` or `worker_baseline", "bench/run worker");
    }
    let header = "BATCH_SIZE | records | baseline records/s | worker records/s | worker / baseline \
        | baseline sustained, before / after the worker | baseline records/s, sustained (10–90 %) \
        | worker records/s, sustained (10–90 %) | worker / baseline, sustained \
        | baseline MB/s (values) | worker MB/s (JSON lines landed) | gzip ratio \
        | records per blob (mean) | worker peak RSS (MB) | worker / kcat";
    // A size whose worker run failed still shows its baseline.
    let sizes = run.work.iter().map(|w| w.batch_size);
    let pairs = run.pairs(sizes.chain(run.before.iter().map(|b| b.batch_size)));
    let kcat = run.kcat.map(|k| k.records_per_s);
    let sustained = |b: Option<&BaselineResult>| fmt_num(b.and_then(|b| b.sustained_records_per_s));
    let mut out = table(header, &pairs, |p| {
        let (rate, base_rate) = p.rates();
        let (sustained_rate, base_sustained) = p.sustained();
        let landed = p.work.map(|w| w.landed as f64);
        vec![
            fmt_num(p.size as f64),
            fmt_num(landed.or(p.before.map(|b| b.records as f64))),
            fmt_num(base_rate),
            fmt_num(rate),
            ratio(rate, base_rate),
            format!("{} / {}", sustained(p.before), sustained(p.after)),
            fmt_num(base_sustained),
            fmt_num(sustained_rate),
            ratio(sustained_rate, base_sustained),
            fmt_num(p.base(|b| Some(b.mb_per_s))),
            fmt_num(p.work(|w| Some(w.landed_mb_per_s))),
            p.work.map_or("–".to_owned(), shrink),
            fmt_num(p.work(|w| Some(w.records_per_blob))),
            fmt_num(p.work(|w| Some(w.peak_rss_mb))),
            ratio(rate, kcat),
        ]
    });
    if let Some(k) = run.kcat {
        let _ = writeln!(
            out,
            "\nkcat reference ({}): {} records in {} s = **{} records/s** ({} MB/s of values), same topics.",
            text(&k.kcat, "kcat"),
            fmt_num(k.records),
            fmt_num(k.seconds),
            fmt_num(k.records_per_s),
            fmt_num(k.mb_per_s),
        );
    }
    out + &provenance(r, run.run)
}

/// Where the CPU went over the sustained window of each worker run and of its baselines: CPU
/// microseconds per record of the worker, the broker and the emulator (`bench backlog`), of the
/// baseline consumer and the broker (`bench baseline`, mean of before and after), how busy the
/// machine was, and the ceiling: the rate a worker costing no CPU at all could reach on these
/// cores with the broker and the emulator costing what they did ([`crate::cpu`]).
fn worker_cpu(r: &Results) -> String {
    let run = WorkerRun::latest(r);
    if !run
        .work
        .iter()
        .any(|w| w.worker_cpu_us_per_record.is_some())
    {
        return not_run(
            "worker_lag` with `worker_cpu_us_per_record",
            "bench/run worker",
        );
    }
    let header = "BATCH_SIZE | worker µs/record | broker µs/record (worker run) | emulator µs/record \
        | machine busy (worker run) | baseline consumer µs/record | broker µs/record (baseline) \
        | machine busy (baseline) | ceiling: records/s of a worker costing 0 CPU \
        | ceiling / baseline";
    let pairs = run.pairs(run.work.iter().map(|w| w.batch_size));
    table(header, &pairs, |p| {
        let others = p.work(|w| {
            let (broker, storage) = (w.broker_cpu_us_per_record, w.storage_cpu_us_per_record);
            broker.zip(storage).map(|(b, s)| b + s)
        });
        let cores = p.work.and_then(|w| w.cores);
        let ceiling = cores
            .zip(others)
            .and_then(|(c, o)| crate::cpu::ceiling_records_per_s(c, o));
        vec![
            fmt_num(p.size as f64),
            us(p.work(|w| w.worker_cpu_us_per_record)),
            us(p.work(|w| w.broker_cpu_us_per_record)),
            us(p.work(|w| w.storage_cpu_us_per_record)),
            pct(p.work(|w| w.machine_busy_pct)),
            us(p.base(|b| b.consumer_cpu_us_per_record)),
            us(p.base(|b| b.broker_cpu_us_per_record)),
            pct(p.base(|b| b.machine_busy_pct)),
            fmt_num(ceiling),
            ratio(ceiling, p.sustained().1),
        ]
    }) + &provenance(r, run.run)
}

fn worker_lag(r: &Results) -> String {
    let (run, lags) = latest_of(&r.worker_lag);
    if lags.is_empty() {
        return not_run("worker_lag", "bench/run worker");
    }
    let header = "records of lag | BATCH_SIZE | worker peak RSS (MB) | of the 150 MB budget \
        | seconds to land all (group join included)";
    table(header, lags, |w| {
        vec![
            fmt_num(w.lag_records as f64),
            fmt_num(w.batch_size as f64),
            fmt_num(w.peak_rss_mb),
            ratio(w.peak_rss_mb, 150.0),
            fmt_num(w.total_seconds),
        ]
    }) + &provenance(r, run)
}

fn worker_gzip(r: &Results) -> String {
    let (run, levels) = latest_of(&r.worker_gzip);
    if levels.is_empty() {
        return not_run("worker_gzip", "bench/run worker");
    }
    let header = "GZIP_LEVEL | BATCH_SIZE | worker records/s | worker records/s, sustained (10–90 %) \
        | JSON lines (MB) | stored gzip (MB) | ratio | peak RSS (MB) \
        | worker CPU µs/record (sustained)";
    table(header, levels, |w| {
        vec![
            fmt_num(w.gzip_level.map(f64::from)),
            fmt_num(w.batch_size as f64),
            fmt_num(w.records_per_s),
            fmt_num(w.sustained_records_per_s),
            fmt_num(w.landed_mb),
            fmt_num(w.stored_mb),
            shrink(w),
            fmt_num(w.peak_rss_mb),
            us(w.worker_cpu_us_per_record),
        ]
    }) + &provenance(r, run)
}

/// Links to the crates' own benchmark notes (`docs/bench/*.md`, next to the report).
fn notes(markdown: &Path) -> String {
    let dir = markdown.parent().unwrap_or(Path::new(".")).join("bench");
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

/// `bench landing`: its own topic and records, one baseline, the worker binary per batch size
/// (default `BATCH_MAX_WAIT_MS`), and an in-memory gzip level table. Shown as a second,
/// independent measurement.
fn landing(r: &Results) -> String {
    let run = latest(
        runs(&r.produce)
            .chain(runs(&r.baseline))
            .chain(runs(&r.worker))
            .chain(runs(&r.gzip)),
    );
    let (base, work) = (of_run(&r.baseline, run), of_run(&r.worker, run));
    if base.is_empty() && work.is_empty() {
        return not_run("baseline` and `worker", "bench/run worker");
    }
    let base_rows = base.iter().map(|b| {
        let mut row = vec![
            "baseline (consume + discard)".to_owned(),
            fmt_num(b.records as f64),
            fmt_num(b.records_per_s),
            fmt_num(b.mb_per_s),
            "100 %".to_owned(),
        ];
        row.resize(9, "–".to_owned());
        row
    });
    let work_rows = work.iter().map(|w| {
        vec![
            format!("worker BATCH_SIZE={}", fmt_num(w.batch_size as f64)),
            fmt_num(w.records as f64),
            fmt_num(w.records_per_s),
            fmt_num(w.mb_per_s),
            fixed(w.vs_baseline.map(|r| 100.0 * r), 0, " %"),
            fmt_num(w.peak_rss_mib),
            fmt_num(w.mean_head_ms),
            fmt_num(w.mean_upload_ms),
            fixed(w.gzip_ratio, 1, " ×"),
        ]
    });
    let header = "run | records | records/s | MB/s (values) | vs baseline | peak RSS (MiB) \
        | mean HEAD ms | mean upload ms | gzip ratio";
    let mut out = table(header, base_rows.chain(work_rows), |row| row);
    let gzip = of_run(&r.gzip, run);
    if !gzip.is_empty() {
        out.push_str("\nIn-memory gzip of a 10 000-record sample, one core:\n\n");
        out.push_str(&table(
            "GZIP_LEVEL | MB/s (JSON lines in) | ratio",
            gzip,
            |g| {
                vec![
                    fmt_num(f64::from(g.level)),
                    fmt_num(g.mb_per_s),
                    fixed(g.ratio, 2, " ×"),
                ]
            },
        ));
    }
    out + &provenance(r, run)
}

/// `bench transformer` prints a Markdown table (collected row by row): `topic` is the blob's
/// topic for the in-memory transform, or `azurite end-to-end` for the upload + process run.
fn transformer(r: &Results) -> String {
    let (run, rows) = latest_of(&r.transformer);
    if rows.is_empty() {
        return not_run("transformer", "bench/run transformer");
    }
    let header = "blob topic / mode | records per blob | Parquet compression | raw JSON (MB) \
        | gzipped blob (MB) | MB/s per core | of the 100 MB/s target | records/s | model rows/s \
        | peak RSS (MB) | of the RSS budget (2 × blob + 100 MB)";
    table(header, rows, |t| {
        let budget = t.gz_mb.map(|gz| 2.0 * gz + 100.0);
        vec![
            text(&t.topic, "?").to_owned(),
            fmt_num(t.records),
            text(&t.compression, "?").to_owned(),
            fmt_num(t.raw_json_mb),
            fmt_num(t.gz_mb),
            fmt_num(t.mb_s_core),
            ratio(t.mb_s_core, 100.0),
            fmt_num(t.records_s),
            fmt_num(t.rows_s_model_rows),
            fmt_num(t.peak_rss_mb),
            ratio(t.peak_rss_mb, budget),
        ]
    }) + &provenance(r, run)
}

fn latency(r: &Results) -> String {
    // Latency depends on the state of the shared stack (Azurite slows down as it fills), so every
    // release run is shown, each row with its run id, instead of only the latest.
    let release = |l: &&Tagged<LatencyResult>| l.result.binaries != "debug";
    let mut shown: Vec<&Tagged<LatencyResult>> = r.latency.iter().filter(release).collect();
    if shown.is_empty() {
        let run = latest(runs(&r.latency));
        shown = r
            .latency
            .iter()
            .filter(|l| l.run.as_deref() == run)
            .collect();
    }
    if shown.is_empty() {
        return not_run("latency", "bench/run latency");
    }
    let header = "run | records/s | seconds | partitions | max wait / watch poll / bench poll (ms) \
        | records | p50 ms | p90 ms | p99 ms | max ms | missing / duplicates \
        | p50 per tenth of the run (ms)";
    let mut out = table(header, &shown, |Tagged { run, result: l }| {
        let ms = |p: fn(&Summary) -> f64| fmt_num(l.latency.as_ref().map(p));
        let waits = [l.batch_max_wait_ms, l.watch_poll_ms, l.poll_ms];
        let tenths: Vec<String> = l.p50_by_tenth_ms.iter().map(|&v| fmt_num(v)).collect();
        vec![
            text(run, "?").to_owned(),
            fmt_num(f64::from(l.rate_per_s)),
            fmt_num(l.duration_s as f64),
            l.partitions.clone(),
            waits.map(|v| fmt_num(v as f64)).join(" / "),
            fmt_num(l.records_sent as f64),
            ms(|s| s.p50_ms),
            ms(|s| s.p90_ms),
            ms(|s| s.p99_ms),
            ms(|s| s.max_ms),
            format!(
                "{} / {}",
                fmt_num(l.records_missing as f64),
                fmt_num(l.duplicate_rows as f64)
            ),
            tenths.join(" → "),
        ]
    });
    // One provenance line per distinct run among the rows, in order.
    let mut seen = Vec::new();
    for run in shown.iter().map(|l| l.run.as_deref()) {
        if !seen.contains(&run) {
            seen.push(run);
            out.push_str(&provenance(r, run));
        }
    }
    out
}

/// Lines of kinds this report does not know (or whose fields did not parse), as recorded.
fn other(lines: &[Map<String, Value>]) -> String {
    if lines.is_empty() {
        return "_None._\n".to_owned();
    }
    let mut keys: Vec<&str> = Vec::new();
    for key in lines.iter().flat_map(Map::keys) {
        if !keys.contains(&key.as_str()) {
            keys.push(key);
        }
    }
    let cell = |l: &Map<String, Value>, k: &str| match l.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => fmt_num(n.as_f64()),
        Some(v) => v.to_string(),
        None => "–".to_owned(),
    };
    table(&keys.join(" | "), lines, |l| {
        keys.iter().map(|k| cell(l, k)).collect()
    })
}

/// The plot's series: baseline (mean of before and after) and worker records/s per batch size
/// from the latest worker run, plus kcat's rate as a flat reference line.
pub fn throughput_series(r: &Results) -> Vec<Series> {
    let run = WorkerRun::latest(r);
    // A point per line; the baseline's is the mean of the runs before and after the worker's, as
    // in the tables.
    let series = |name: &str, sizes: Vec<usize>, rate: fn(&Pair) -> Option<f64>| {
        let points = sizes
            .into_iter()
            .filter_map(|s| Some((s as f64, rate(&run.pair(s))?)));
        let mut points: Vec<(f64, f64)> = points.collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Series {
            name: name.to_owned(),
            points,
        }
    };
    let base_sizes = run.before.iter().map(|b| b.batch_size).collect();
    let work_sizes = run.work.iter().map(|w| w.batch_size).collect();
    let mut out = vec![
        series("consume-and-discard baseline (rdkafka)", base_sizes, |p| {
            p.rates().1
        }),
        series("worker landing into Azurite", work_sizes, |p| p.rates().0),
    ];
    let xs: Vec<f64> = out
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    if let (Some(k), Some(lo), Some(hi)) = (
        run.kcat.map(|k| k.records_per_s),
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
    use crate::config::{
        DEFAULT_MARKDOWN, DEFAULT_RESULTS, DEFAULT_SVG, DEFAULT_TEMPLATE, ResultsFile,
    };

    fn config() -> ReportConfig {
        ReportConfig {
            results: ResultsFile {
                bench_results: PathBuf::from("r.jsonl"),
            },
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
        let doc = render(&template, &Results::parse(RESULTS), &config());
        assert!(!doc.contains("{{"), "a placeholder was left unrendered");
    }

    #[test]
    fn the_tracked_report_is_the_template_rendered_with_the_tracked_results() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |path: &str| std::fs::read_to_string(root.join(path)).expect(path);
        let config = ReportConfig {
            results: ResultsFile {
                bench_results: root.join(DEFAULT_RESULTS),
            },
            bench_svg: PathBuf::from(DEFAULT_SVG),
            bench_markdown: root.join(DEFAULT_MARKDOWN),
            bench_template: root.join(DEFAULT_TEMPLATE),
        };
        let results = Results::parse(&read(DEFAULT_RESULTS));
        let doc = render(&read(DEFAULT_TEMPLATE), &results, &config);
        let tracked = read(DEFAULT_MARKDOWN);
        let first = doc.lines().zip(tracked.lines()).position(|(a, b)| a != b);
        assert!(
            doc == tracked,
            "docs/BENCHMARKS.md is not what `bench report` makes of the template and the results \
             (first difference at line {first:?}): run `bench/run report`"
        );
    }

    const RESULTS: &str = r#"
{"run":"r1","bench":"machine","date":"2026-11-21T19:00:00Z","cores":2,"memory_gib":24,"cpu":"Test CPU","broker":"Tansu","binaries":"release","command":"bench/run all"}
{"run":"r1","bench":"worker_baseline","batch_size":1000,"records":1000000,"bytes":100000000,"seconds":5,"records_per_s":200000,"sustained_records_per_s":210000,"mb_per_s":100}
{"run":"r1","bench":"worker_lag","lag_records":1000000,"batch_size":1000,"batch_max_wait_ms":1000,"gzip_level":null,"landed":1000000,"total_seconds":12.5,"landing_seconds":6.7,"records_per_s":150000,"sustained_records_per_s":168000,"landed_mb_per_s":75.5,"landed_mb":700,"stored_mb":100,"batches":1000,"records_per_blob":1000,"peak_rss_mb":90,"worker_cpu_us_per_record":5.2,"broker_cpu_us_per_record":2.5,"storage_cpu_us_per_record":2.5,"machine_busy_pct":91,"cores":2,"binaries":"release"}
{"run":"r1","bench":"worker_baseline_after","batch_size":1000,"records":1000000,"bytes":110000000,"seconds":4.5,"records_per_s":220000,"sustained_records_per_s":230000,"mb_per_s":110,"consumer_cpu_us_per_record":1.5,"broker_cpu_us_per_record":2.0,"machine_busy_pct":60}
{"run":"r1","bench":"kcat","kcat":"kcat 1.7.1","records":1000000,"seconds":4,"records_per_s":250000,"mb_per_s":125}
{"run":"r0","bench":"worker_lag","lag_records":1,"batch_size":1000,"batch_max_wait_ms":1000,"landed":1,"total_seconds":1,"landing_seconds":1,"records_per_s":1,"landed_mb_per_s":1,"landed_mb":1,"stored_mb":1,"batches":1,"records_per_blob":1,"peak_rss_mb":1,"binaries":"release"}
"#;

    #[test]
    fn the_worker_table_shows_ratios_next_to_absolute_numbers_from_the_latest_run() {
        let doc = render("{{worker}}", &Results::parse(RESULTS), &config());
        assert!(
            doc.contains(
                // Baseline = mean of before (200 000, 210 000 sustained) and after (220 000, 230 000).
                "| 1 000 | 1 000 000 | 210 000 | 150 000 | 71 % | 210 000 / 230 000 | 220 000 | 168 000 | 76 % | 105 | 75.5 | 7.0 × | 1 000 | 90 | 60 % |"
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
        let doc = render("{{worker_cpu}}", &Results::parse(RESULTS), &config());
        // Broker 2.5 + emulator 2.5 µs a record on 2 cores: a free worker reaches 400 000/s, 182 %
        // of the 220 000 sustained baseline; the baseline's own CPU comes from the after line only.
        assert!(
            doc.contains(
                "| 1 000 | 5.20 | 2.50 | 2.50 | 91 % | 1.50 | 2.00 | 60 % | 400 000 | 182 % |"
            ),
            "{doc}"
        );
        let old = RESULTS.replace("\"worker_cpu_us_per_record\":5.2,", "");
        let doc = render("{{worker_cpu}}", &Results::parse(&old), &config());
        assert!(doc.contains("Not measured yet"), "{doc}");
    }

    #[test]
    fn a_section_without_results_says_how_to_measure_it_instead_of_inventing_numbers() {
        let doc = render(
            "{{latency}}\n{{transformer}}",
            &Results::default(),
            &config(),
        );
        assert!(
            doc.contains("Not measured yet: no `latency` lines"),
            "{doc}"
        );
        assert!(doc.contains("bench/run transformer"), "{doc}");
    }

    #[test]
    fn unknown_result_lines_still_appear_in_the_other_table() {
        let lines = format!("{RESULTS}\n{{\"bench\":\"mystery\",\"value\":3}}");
        let doc = render("{{other}}", &Results::parse(&lines), &config());
        assert!(
            doc.ends_with("| --- | --- |\n| mystery | 3 |\n"),
            "only the unknown line: {doc}"
        );
    }

    #[test]
    fn the_plot_takes_baseline_and_worker_series_of_the_latest_run() {
        let series = throughput_series(&Results::parse(RESULTS));
        assert_eq!(series.len(), 3, "baseline, worker, kcat");
        // Mean of the baseline before (200 000) and after (220 000) the worker.
        assert_eq!(series[0].points, vec![(1000.0, 210_000.0)]);
        assert_eq!(series[1].points, vec![(1000.0, 150_000.0)]);
        assert_eq!(
            series[2].points,
            vec![(1000.0, 250_000.0), (1000.0, 250_000.0)]
        );
        let doc = render("{{plot}}", &Results::default(), &config());
        assert_eq!(doc, "![records/s against batch size](bench/t.svg)");
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(fmt_num(1_234_567.0), "1 234 567");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(0.5), "0.50");
        assert_eq!(fmt_num(None::<f64>), "–");
    }
}

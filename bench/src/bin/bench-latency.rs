//! `bench-latency`: end-to-end produce → Parquet-visible latency at a fixed rate in watch mode.
//! Prints the result as one JSON line on stdout and appends it to `BENCH_RESULTS`.

use anyhow::Context;
use bench::config::{LatencyConfig, load};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let plan = load::<LatencyConfig>()?.validate()?;
    let shutdown = service::shutdown::on_signals();
    let result = bench::latency::run(&plan, shutdown).await?;
    let line = serde_json::to_string(&result).context("encoding the result")?;
    println!("{line}");
    bench::results::append(&plan.results, &result)?;
    match &result.latency {
        Some(s) => eprintln!(
            "bench-latency: {} records at {}/s: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} missing, {} duplicate rows",
            result.records_sent,
            result.rate_per_s,
            s.p50_ms,
            s.p90_ms,
            s.p99_ms,
            s.max_ms,
            result.records_missing,
            result.duplicate_rows
        ),
        None => eprintln!("bench-latency: no record became visible"),
    }
    if result.records_missing > 0 || result.duplicate_rows > 0 || result.records_failed > 0 {
        anyhow::bail!(
            "{} records missing, {} duplicate rows, {} failed deliveries (result recorded in {})",
            result.records_missing,
            result.duplicate_rows,
            result.records_failed,
            plan.results.display()
        );
    }
    Ok(())
}

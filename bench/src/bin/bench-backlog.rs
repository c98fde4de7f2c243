//! `bench-backlog`: the worker binary behind a backlog; prints its peak RSS and landing rate as
//! one JSON line on stdout and appends it to `BENCH_RESULTS`.

use anyhow::Context;
use bench::config::{BacklogConfig, load};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = load::<BacklogConfig>()?;
    let results = config.bench_results.clone();
    let plan = config.validate()?;
    let result = bench::backlog::run(&plan, service::shutdown::on_signals()).await?;
    println!(
        "{}",
        serde_json::to_string(&result).context("encoding the result")?
    );
    bench::results::append(&results, &result)?;
    eprintln!(
        "bench-backlog: {} records of lag landed in {:.1} s ({:.0} records/s after the group join); worker peak RSS {:.0} MB",
        result.landed, result.total_seconds, result.records_per_s, result.peak_rss_mb
    );
    Ok(())
}

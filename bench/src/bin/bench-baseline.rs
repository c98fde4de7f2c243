//! `bench-baseline`: consume-and-discard with the worker's consumer settings; prints the rate as
//! one JSON line on stdout and appends it to `BENCH_RESULTS`.

use std::time::Duration;

use anyhow::Context;
use bench::baseline::BaselinePlan;
use bench::config::{BaselineConfig, load};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let c = load::<BaselineConfig>()?;
    let topics = service::config::comma_list(&c.bench_topics);
    if topics.is_empty() || c.bench_records == 0 {
        anyhow::bail!(
            "BENCH_TOPICS and BENCH_RECORDS are required: name the topics and how many records they hold"
        );
    }
    let shutdown = service::shutdown::on_signals();
    let plan = BaselinePlan {
        brokers: c.kafka_brokers,
        topics,
        records: c.bench_records,
        batch_size: c.batch_size,
        timeout: Duration::from_secs(c.bench_timeout_s),
        label: c.bench_label,
        broker_pid: c.bench_broker_pid,
    };
    let result = bench::baseline::run(&plan, &shutdown).await?;
    println!(
        "{}",
        serde_json::to_string(&result).context("encoding the result")?
    );
    bench::results::append(&c.bench_results, &result)?;
    eprintln!(
        "bench-baseline: {} records in {:.2} s: {:.0} records/s, {:.1} MB/s",
        result.records, result.seconds, result.records_per_s, result.mb_per_s
    );
    Ok(())
}

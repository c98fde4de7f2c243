//! `bench-topic`: creates a topic with a given partition count (idempotent) for `bench/run`.

use bench::config::{TopicConfig, load};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = load::<TopicConfig>()?.validate()?;
    bench::topics::create(
        &config.kafka_brokers,
        &config.bench_topic,
        config.bench_partitions,
    )
    .await?;
    eprintln!(
        "bench-topic: {} ready with {} partitions",
        config.bench_topic, config.bench_partitions
    );
    Ok(())
}

//! `bench`: the benchmark harness's one binary. It reads the subcommand and its knobs
//! ([`bench::config`]) and runs the subcommand's module on the runtime it needs.

use std::future::Future;

use bench::config::Command;

fn main() -> anyhow::Result<()> {
    match bench::config::load()? {
        Command::Latency(c) => multi_thread(bench::latency::command(c)),
        Command::Backlog(c) => multi_thread(bench::backlog::command(c)),
        Command::Baseline(c) => multi_thread(bench::baseline::command(c)),
        Command::Topic(c) => multi_thread(bench::topics::command(c)),
        Command::Watch(c) => multi_thread(bench::watch::command(c)),
        Command::Landing(c) => multi_thread(bench::landing::command(c)),
        // One thread, as the single-threaded transform it times.
        Command::Transformer(c) => current_thread(bench::transform::command(c)),
        // One thread: it generates, gzips and uploads one stream.
        Command::LargeBlob(c) => current_thread(bench::large_blob::command(c)),
        Command::Collect(c) => bench::collect::command(c),
        Command::Plot(c) => bench::plot::command(c),
        Command::Report(c) => bench::report::command(c),
    }
}

/// Runs `work` on a single-threaded Tokio runtime.
fn current_thread(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

/// Runs `work` on a multi-threaded Tokio runtime, as `#[tokio::main]` does.
fn multi_thread(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

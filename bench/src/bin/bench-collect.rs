//! `bench-collect`: reads a bench tool's stdout on stdin and appends its results (JSON lines, or
//! Markdown table rows when it prints no JSON) to `BENCH_RESULTS`, tagged with the run id.

use std::io::Read;

use anyhow::Context;
use bench::config::{CollectConfig, load};

fn main() -> anyhow::Result<()> {
    let config = load::<CollectConfig>()?;
    let mut output = String::new();
    std::io::stdin()
        .read_to_string(&mut output)
        .context("reading the tool's output on stdin")?;
    let lines = bench::collect::collect(&output, &config.bench_name, &config.bench_run);
    for line in &lines {
        bench::results::append(&config.bench_results, line)?;
    }
    eprintln!(
        "bench-collect: {} {} result lines → {}",
        lines.len(),
        config.bench_name,
        config.bench_results.display()
    );
    if lines.is_empty() {
        anyhow::bail!(
            "no result lines (JSON objects or Markdown table rows) in the {} output",
            config.bench_name
        );
    }
    Ok(())
}

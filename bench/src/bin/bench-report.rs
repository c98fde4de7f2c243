//! `bench-report`: regenerates docs/BENCHMARKS.md from its template and the results file.

use bench::config::{ReportCli, ReportConfig, load};

fn main() -> anyhow::Result<()> {
    let config = load::<ReportCli, ReportConfig>()?;
    let lines = bench::results::read(&config.bench_results)?;
    let markdown = bench::report::render(bench::report::TEMPLATE, &lines, &config);
    std::fs::write(&config.bench_markdown, markdown)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", config.bench_markdown.display()))?;
    eprintln!("bench-report: wrote {}", config.bench_markdown.display());
    Ok(())
}

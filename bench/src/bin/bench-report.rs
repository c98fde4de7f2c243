//! `bench-report`: regenerates docs/BENCHMARKS.md from its template and the results file.

use bench::config::{ReportCli, load};

fn main() -> anyhow::Result<()> {
    let config = load::<ReportCli>()?.files;
    let lines = bench::results::read(&config.bench_results)?;
    // Read now, not built in: an edited template must show without rebuilding this binary.
    let template = std::fs::read_to_string(&config.bench_template).map_err(|e| {
        anyhow::anyhow!(
            "reading the report template {} (BENCH_TEMPLATE): {e}",
            config.bench_template.display()
        )
    })?;
    let markdown = bench::report::render(&template, &lines, &config);
    std::fs::write(&config.bench_markdown, markdown)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", config.bench_markdown.display()))?;
    eprintln!("bench-report: wrote {}", config.bench_markdown.display());
    Ok(())
}

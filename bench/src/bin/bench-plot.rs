//! `bench-plot`: draws records/s against batch size from the results file as SVG.

use bench::config::{PlotCli, load};

fn main() -> anyhow::Result<()> {
    let config = load::<PlotCli>()?.files;
    let lines = bench::results::read(&config.bench_results)?;
    let series = bench::report::throughput_series(&lines);
    bench::plot::write(
        "Worker throughput vs batch size",
        &series,
        &config.bench_svg,
    )?;
    eprintln!("bench-plot: wrote {}", config.bench_svg.display());
    Ok(())
}

//! The worker binary: parse config, set up telemetry, run until SIGTERM/SIGINT.
use anyhow::Context as _;
use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service::alloc::return_large_buffers_to_os();
    let cli = worker::config::Cli::parse();
    let config: worker::config::Config = service::config::from_env()?;
    let settings = config.merge(cli).validate()?;
    service::telemetry::init_logs(settings.log_format);
    let metrics = service::telemetry::init_metrics();
    let shutdown = service::shutdown::on_signals();
    let report = worker::run(settings, metrics, shutdown)
        .await
        .context("worker failed")?;
    tracing::info!(
        event = "worker_stopped",
        consumed = report.consumed,
        landed = report.landed,
        blobs = report.blobs
    );
    Ok(())
}

//! The worker binary: parse config, set up telemetry, run until SIGTERM/SIGINT, or (single pass,
//! `--once` / `BATCH_CONTINUOUS=false`) until the pass is landed: then print its JSON summary on
//! stdout and exit with its code (see `worker::pass`).
use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service::alloc::return_large_buffers_to_os();
    let settings = worker::Settings::from_args()?;
    service::telemetry::init_logs(settings.log_format);
    let metrics = service::telemetry::init_metrics();
    let shutdown = service::shutdown::on_signals();
    let once = settings.pass.is_some();
    let export =
        service::appinsights::Export::start(settings.metrics_export.clone(), &metrics, &shutdown);
    let running = worker::start(settings, metrics, shutdown)
        .await
        .context("worker failed")?;
    if once {
        let report = running.report().await.context("worker failed")?;
        export.finish().await;
        let summary = report.pass.context("a pass always ends with a summary")?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        if let Some(error) = &summary.error {
            tracing::error!(event = "pass_failed", error);
        }
        std::process::exit(summary.exit_code());
    }
    let report = running.wait().await;
    export.finish().await;
    let report = report.context("worker failed")?;
    tracing::info!(
        event = "worker_stopped",
        consumed = report.consumed,
        landed = report.landed,
        blobs = report.blobs
    );
    Ok(())
}

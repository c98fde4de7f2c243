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
    let export = settings.metrics_export.clone().map(|e| {
        tokio::spawn(service::appinsights::run(
            e,
            metrics.clone(),
            shutdown.clone(),
        ))
    });
    let running = worker::start(settings, metrics, shutdown.clone())
        .await
        .context("worker failed")?;
    // The exporter's last flush, once the work is over.
    let flush = async move {
        shutdown.cancel();
        if let Some(export) = export {
            let _ = export.await;
        }
    };
    if once {
        let report = running.report().await.context("worker failed")?;
        flush.await;
        let summary = report.pass.context("a pass always ends with a summary")?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        if let Some(error) = &summary.error {
            tracing::error!(event = "pass_failed", error);
        }
        std::process::exit(summary.exit_code());
    }
    let report = running.wait().await;
    flush.await;
    let report = report.context("worker failed")?;
    tracing::info!(
        event = "worker_stopped",
        consumed = report.consumed,
        landed = report.landed,
        blobs = report.blobs
    );
    Ok(())
}

//! `simulator`: parse the knobs, start telemetry, connect, run the mode, exit non-zero when a
//! record was not confirmed.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use service::ops::Probe;
use simulator::config::{Config, Mode, Settings};
use simulator::{Manifest, Simulator};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let config: Config = service::config::parse()?;
    let mode = config.mode.unwrap_or(Mode::Play);
    let settings = Settings::try_from(config)?;
    service::telemetry::init_logs(settings.log_format);
    let shutdown = service::shutdown::on_signals();
    let manifest_path = settings.manifest_path.clone();
    let metrics_addr = settings.metrics_addr;
    let redis_url = settings.redis_url.clone();

    let sim = Simulator::connect(settings).await?;
    if let Some(addr) = metrics_addr {
        let handle = service::telemetry::init_metrics();
        let publisher = sim.publisher();
        let probes = vec![
            Probe::new("kafka", move || {
                let p = publisher.clone();
                async move { p.ping().await }
            }),
            Probe::new("redis", move || {
                let url = redis_url.clone();
                async move {
                    let store = simulator::store::GameStore::connect(url.expose())
                        .await
                        .map_err(|e| e.to_string())?;
                    store.ping().await.map_err(|e| e.to_string())
                }
            }),
        ];
        let (bound, serve) =
            service::ops::bind(addr, service::ops::router(handle, probes), shutdown.clone())
                .await?;
        tracing::info!(event = "ops_listening", addr = %bound);
        tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::error!(event = "ops_failed", error = %e);
            }
        });
    }

    let manifest: Manifest = match mode {
        Mode::Play => sim.play(shutdown.clone()).await?.manifest,
        Mode::Flood => {
            let report = sim
                .flood(shutdown.clone(), std::io::stderr().is_terminal())
                .await?;
            println!("{}", report.rate_line());
            report.manifest
        }
    };
    shutdown.cancel();
    if manifest.failed_deliveries > 0 {
        let errors = manifest.delivery_errors.join("; ");
        Err(anyhow::anyhow!(
            "{} records were not delivered: {errors}",
            manifest.failed_deliveries
        ))
        .with_context(|| format!("see {}", manifest_path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

//! Logs (tracing) and metrics (Prometheus) set-up.
//!
//! Services log named events with structured fields, e.g.
//! `info!(event = "batch_landed", topic, partition, first_offset, last_offset, records, bytes, blob)`,
//! and bump a low-cardinality metric next to each. Logs go to stderr, JSON by default
//! (`LOG_FORMAT=json|text`), filtered by `RUST_LOG` (default `info`).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (default; what log shippers want).
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            other => Err(format!("`{other}` is not a log format (json or text)")),
        }
    }
}

/// Installs the global tracing subscriber. Safe to call more than once (later calls are no-ops).
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Histogram buckets, in seconds: latencies from a millisecond (a local put) to a minute
/// (end-to-end watch lag). Buckets, not summaries, so dashboards can aggregate replicas with
/// `histogram_quantile(q, sum by (le) (rate(x_bucket[..])))`.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .expect("the bucket list is not empty")
}

/// Installs the global Prometheus recorder and returns the handle `/metrics` renders.
///
/// When a recorder is already installed (a second service in one test process), a detached
/// recorder's handle is returned instead, so tests never panic on it.
pub fn init_metrics() -> PrometheusHandle {
    match builder().install_recorder() {
        Ok(handle) => {
            spawn_upkeep(handle.clone());
            handle
        }
        Err(_) => builder().build_recorder().handle(),
    }
}

/// How often histogram samples are folded into their buckets.
pub const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every [`METRICS_UPKEEP`].
///
/// The installed recorder keeps every histogram sample in a queue until `/metrics` is rendered
/// or upkeep runs (the exporter leaves upkeep to the caller of `install_recorder`): a process
/// nobody scrapes would grow by every sample it ever recorded. A plain thread, so it runs
/// whatever the runtime.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(METRICS_UPKEEP);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(event = "metrics_upkeep_not_started", error = %e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_as_buckets() {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("demo_seconds").record(0.2);
        });
        let text = handle.render();
        assert!(
            text.contains("demo_seconds_bucket{le=\"0.25\"} 1"),
            "{text}"
        );
    }
}

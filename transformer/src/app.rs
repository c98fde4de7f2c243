//! Wiring shared by the subcommands: stores from settings, readiness probes, the ops router.

use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use object_store::ObjectStore;
use service::ops::Probe;
use service::storage::StorageError;

use std::time::Duration;

use crate::config::Settings;
use crate::delta::{Lakehouse, StandardFormat};
use crate::process::Stores;

/// Delta mode: the tables in `standard` and the commit interval; `None` in parquet mode.
pub fn lakehouse(settings: &Settings, stores: &Stores) -> Option<(Arc<Lakehouse>, Duration)> {
    (settings.transform.format == StandardFormat::Delta).then(|| {
        (
            Arc::new(
                Lakehouse::new(stores.standard.clone(), &settings.standard_url)
                    .with_compression(settings.transform.compression)
                    .with_checkpoint_interval(settings.maintenance.checkpoint_interval),
            ),
            settings.delta_commit_interval,
        )
    })
}

/// Opens `RAW_URL` and `STANDARD_URL`.
pub fn stores(settings: &Settings) -> Result<Stores, StorageError> {
    Ok(Stores {
        raw: service::storage::open("RAW_URL", &settings.raw_url)?,
        standard: service::storage::open("STANDARD_URL", &settings.standard_url)?,
    })
}

fn probe(name: &'static str, store: Arc<dyn ObjectStore>) -> Probe {
    Probe::new(name, move || {
        let store = store.clone();
        async move { service::storage::probe(store.as_ref(), name).await }
    })
}

/// `/metrics`, `/healthz` and `/readyz` (which lists both containers).
pub fn ops_router(metrics: PrometheusHandle, stores: &Stores) -> Router {
    let probes = vec![
        probe("raw", stores.raw.clone()),
        probe("standard", stores.standard.clone()),
    ];
    service::ops::router(metrics, probes)
}

/// Waits for `task` up to `grace` (the drain after a signal), then aborts it.
pub async fn drain(task: tokio::task::JoinHandle<()>, grace: Duration) {
    let abort = task.abort_handle();
    if tokio::time::timeout(grace, task).await.is_err() {
        tracing::warn!(
            event = "shutdown_grace_exceeded",
            grace_ms = grace.as_millis() as u64
        );
        abort.abort();
    }
}

/// This process's id in leases and receipts: `{hostname}-{pid}`.
pub fn owner_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "transformer".to_owned());
    format!("{host}-{}", std::process::id())
}

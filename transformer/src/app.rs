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

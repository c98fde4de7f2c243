//! The ops endpoints every service exposes: `/metrics`, `/healthz`, `/readyz`.
//!
//! `/readyz` runs every [`Probe`] with a timeout and answers 503 naming the dependency that failed,
//! e.g. `storage: unreachable (http://127.0.0.1:10000): connection refused`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

/// The future a probe returns: `Err` carries a one-line reason.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One dependency check behind `/readyz`.
#[derive(Clone)]
pub struct Probe {
    /// Dependency name shown in the answer (`kafka`, `storage`, `redis`).
    pub name: &'static str,
    /// The check; called once per request.
    pub check: Arc<dyn Fn() -> ProbeFuture + Send + Sync>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish()
    }
}

impl Probe {
    /// A probe from a closure returning a future.
    pub fn new<F, Fut>(name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Probe {
            name,
            check: Arc::new(move || Box::pin(check())),
        }
    }
}

#[derive(Clone)]
struct OpsState {
    metrics: PrometheusHandle,
    probes: Arc<Vec<Probe>>,
}

/// The ops router; merge it with a service's own routes if it has any.
pub fn router(metrics: PrometheusHandle, probes: Vec<Probe>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(OpsState {
            metrics,
            probes: Arc::new(probes),
        })
}

async fn render_metrics(State(s): State<OpsState>) -> String {
    s.metrics.render()
}

async fn ready(State(s): State<OpsState>) -> (StatusCode, String) {
    let mut failures = Vec::new();
    for probe in s.probes.iter() {
        match tokio::time::timeout(Duration::from_secs(5), (probe.check)()).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{}: {why}", probe.name)),
            Err(_) => failures.push(format!("{}: no answer within 5s", probe.name)),
        }
    }
    if failures.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, failures.join("\n") + "\n")
    }
}

/// Errors of the ops HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The listen address is taken or invalid.
    #[error("cannot listen on {addr} (METRICS_ADDR / port setting): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("HTTP server on {addr} failed: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` and returns the bound address (port 0 picks a free one) and the serving future,
/// which ends when `shutdown` is cancelled.
pub async fn bind(
    addr: SocketAddr,
    app: Router,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, impl Future<Output = Result<(), OpsError>>), OpsError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| OpsError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| OpsError::Bind { addr, source })?;
    let fut = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|source| OpsError::Serve {
                addr: local,
                source,
            })
    };
    Ok((local, fut))
}

//! What every service of the superhero dataflow shares, so it is written once.
//!
//! # Layout
//! - [`alloc`]: keep glibc from holding freed multi-MiB buffers resident.
//! - [`appinsights`]: push the Prometheus metrics to Application Insights (Azure Monitor), with
//!   an Entra ID token from the managed identity, where nothing scrapes `/metrics`.
//! - [`config`]: typed configuration, one clap struct per service (flags over environment
//!   variables over defaults), with errors that name the variable and the fix, and the variable
//!   names a config accepts.
//! - [`retry`]: the doubling, capped backoff of every retry loop.
//! - [`secret`]: a string that never prints, URL redaction, the credential a URL carries (so
//!   flags can refuse it) and constant-time comparison of tokens.
//! - [`telemetry`]: JSON or text logs (tracing) and the Prometheus recorder.
//! - [`ops`]: `/metrics`, `/healthz` and `/readyz` over HTTP.
//! - [`shutdown`]: SIGTERM/SIGINT → a cancellation token passed to every task.
//! - [`storage`]: an `ObjectStore` from a URL (`az://`, `file://`, `memory://`).

pub mod alloc;
pub mod appinsights;
pub mod config;
pub mod ops;
pub mod retry;
pub mod secret;
pub mod shutdown;
pub mod storage;
pub mod telemetry;

pub use tokio_util::sync::CancellationToken;

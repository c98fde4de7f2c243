//! The transformer: raw gzipped JSON Lines batches (written by the worker to `raw`) → one Parquet
//! file per log model in `standard`, plus dead letters for records that do not fit.
//!
//! Three triggers share one code path ([`process::process_blob`]): the Azure Functions custom
//! handler (`transformer serve`), a standalone poller (`transformer watch`) and replay
//! (`transformer backfill`, or `POST /runs`). Outputs are overwrites at deterministic names with
//! deterministic bytes, so redelivery, concurrent watchers and replays never duplicate rows.
//!
//! # Layout
//! - [`config`]: the knobs (flags over environment variables over defaults, one clap struct),
//!   validated once into [`config::Settings`].
//! - [`decode`]: streaming gunzip of a blob into lines.
//! - [`classify`]: pure GOOD/DEAD classification of one record (fuzzable).
//! - [`models`]: Arrow builders of the five log models.
//! - [`writer`]: deterministic Parquet encoding (zstd / snappy / none).
//! - [`deadletter`]: reason codes and the dead-letter JSON Lines file.
//! - [`transform`]: the pure blob → files transform and its counts.
//! - [`process`]: one blob end to end against object stores.
//! - [`body`]: the raw blob's GET body as a blocking reader.
//! - [`upload`]: outputs uploaded as they are written, visible only when finished.
//! - [`ledger`]: receipts, leases and poison entries in `standard`.
//! - [`serve`]: the Functions custom handler (`POST /{function}`).
//! - [`watch`]: the polling watcher.
//! - [`runs`]: backfill and the `/runs` HTTP API.
//! - [`telemetry`]: named events and metric names.
//! - [`app`]: stores, probes and the ops router for the binary.

pub mod app;
pub mod backfill;
pub mod body;
pub mod classify;
pub mod config;
pub mod deadletter;
pub mod decode;
pub mod delta;
pub mod ledger;
pub mod maintenance;
pub mod models;
pub mod process;
pub mod runs;
pub mod serve;
pub mod telemetry;
pub mod transform;
pub mod upload;
pub mod watch;
pub mod writer;

//! End-to-end test crate: the run summary shared by `dataflow-summary` and the e2e suites, and
//! helpers to run the binaries as child processes.
//!
//! # Layout
//! - [`summary`]: manifest vs raw vs standard, record for record (waiting, counting, verdict).
//! - [`summary_config`]: `dataflow-summary`'s knobs (one clap struct, flags over env).
//! - [`pipeline`]: the binaries as child processes (worker, transformer watch, simulator) with
//!   per-test topics, containers and logs.
//! - `src/bin/dataflow-summary.rs`: the summary as a command (`scripts/run` uses it).
//! - `tests/e2e_*.rs`: happy path, bad input, chaos, security, properties.

pub mod pipeline;
pub mod summary;
pub mod summary_config;

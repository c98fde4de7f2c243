//! The benchmark harness of the superhero dataflow: the end-to-end latency bench, the throughput
//! plot and the generator of `docs/BENCHMARKS.md`. `bench/run` drives these binaries together
//! with the crates' own benches (`worker-bench`, `transformer-bench`, `simulator flood`) and
//! `kcat`, collecting every result as a JSON line in `bench/results.jsonl`.
//!
//! # Layout
//! - [`config`]: the knobs of each binary (flags over env over env/local.env), validated once.
//! - [`load`]: simulator-shaped records at a fixed rate, booked by their delivery reports.
//! - [`children`]: `worker` and `transformer watch` as child processes.
//! - [`visibility`]: when each record became visible in `standard/buffer_meta/` Parquet.
//! - [`latency`]: the end-to-end run (`bench-latency`).
//! - [`backlog`]: the worker binary behind a backlog: peak RSS and landing rate (`bench-backlog`).
//! - [`baseline`]: consume-and-discard with the worker's consumer settings (`bench-baseline`).
//! - [`stats`]: nearest-rank percentiles.
//! - [`cpu`]: CPU per record of the worker, the broker and the emulator, from `/proc`.
//! - [`topics`]: topic creation on the configured broker (`bench-topic`).
//! - [`collect`]: a tool's stdout (JSON lines or Markdown tables) → tagged result lines (`bench-collect`).
//! - [`results`]: the JSON-lines results file.
//! - [`plot`]: throughput against batch size as SVG (`bench-plot`).
//! - [`report`]: `docs/BENCHMARKS.md` from the template and the results (`bench-report`).

pub mod backlog;
pub mod baseline;
pub mod children;
pub mod collect;
pub mod config;
pub mod cpu;
pub mod latency;
pub mod load;
pub mod plot;
pub mod report;
pub mod results;
pub mod stats;
pub mod topics;
pub mod visibility;

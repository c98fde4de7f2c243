//! The benchmark harness of the superhero dataflow: one binary, `bench`, whose subcommands take
//! the measurements (end-to-end latency, the worker behind a backlog, the consume-and-discard
//! baseline, the worker on records of its own, the transform, the watch), make test data (a large
//! raw blob), collect every result as a JSON line in `bench/results.jsonl`, draw the throughput
//! plot and generate `docs/BENCHMARKS.md`. `bench/run` drives it together with `simulator flood`
//! and `kcat`; the production crates hold no bench binary, bench target or example.
//!
//! # Layout
//! - `main.rs`: picks the subcommand ([`config::load`]) and the runtime it runs on.
//! - [`config`]: the subcommands and their knobs (flags over env over env/local.env), the knobs
//!   several share declared once, validated once into plans.
//! - Measurements, each with its subcommand's entry point (`command`):
//!   - [`latency`]: end to end at a fixed rate (`bench latency`), with [`load`] (the simulator's
//!     flood mix at a fixed rate, booked by delivery report), [`children`] (`worker` and
//!     `transformer watch` as child processes) and [`visibility`] (when each record became
//!     visible in `standard/buffer_meta/` Parquet).
//!   - [`backlog`]: the worker binary behind a backlog: peak RSS, landing rate, CPU
//!     (`bench backlog`).
//!   - [`baseline`]: consume-and-discard with the worker's consumer settings (`bench baseline`).
//!   - [`landing`]: the worker binary per batch size against that baseline, on records it
//!     produces into a topic of its own, and the worker's gzip per level (`bench landing`).
//!   - [`transform`]: the transform on generated raw blobs, in memory and against Azurite
//!     (`bench transformer`); [`large_blob`] streams its records into one large blob in Azurite
//!     (`bench large-blob`), for the transformer's memory on big blobs.
//!   - [`watch`]: by hand, does `transformer watch` keep up, and how long do its starts take
//!     (`bench watch`).
//!   - [`topics`]: topic creation on the configured broker (`bench topic`).
//! - Measuring helpers: [`stats`] (nearest-rank percentiles, windowed rates) and [`cpu`] (CPU per
//!   record of the worker, the broker and the emulator, from `/proc`).
//! - Results and their outputs:
//!   - [`collect`]: a tool's stdout (JSON lines or Markdown tables) → tagged result lines
//!     (`bench collect`).
//!   - [`results`]: the JSON-lines results file, read back as typed records per kind.
//!   - [`plot`]: throughput against batch size as SVG (`bench plot`).
//!   - [`report`]: `docs/BENCHMARKS.md` from the template and the results (`bench report`).

pub mod backlog;
pub mod baseline;
pub mod children;
pub mod collect;
pub mod config;
pub mod cpu;
pub mod landing;
pub mod large_blob;
pub mod latency;
pub mod load;
pub mod plot;
pub mod report;
pub mod results;
pub mod stats;
pub mod topics;
pub mod transform;
pub mod visibility;
pub mod watch;

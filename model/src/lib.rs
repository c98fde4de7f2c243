//! The data contract shared by every service of the superhero dataflow.
//!
//! # Layout
//! - [`raw`]: one line of a raw blob ([`raw::RawRecord`]), lossless encoding of a Kafka record.
//! - [`naming`]: deterministic blob names in the `raw` and `standard` containers.
//! - [`envelope`]: the simulator's log envelope and task payloads (the input contract).
//! - [`schema`]: the Arrow schemas of the five log models (the output contract).
//!
//! `docs/DESIGN.md` describes the same contract in prose; keep both in step.

pub mod envelope;
pub mod naming;
pub mod raw;
pub mod schema;

/// The Kafka topics the simulator writes, with the partition counts of the reference setup.
pub const TOPICS: [(&str, i32); 3] = [(TOPIC_LOBBY, 2), (TOPIC_GAME, 4), (TOPIC_CLIENT, 1)];
/// Lobby events: `Starting Match`, `Game Timed Out`, `Cleaning Game Records`.
pub const TOPIC_LOBBY: &str = "lib.server.lobby";
/// Game events: `Attack Completed`, `Attacked Dead Enemy`.
pub const TOPIC_GAME: &str = "lib.server.game";
/// Server start-up events.
pub const TOPIC_CLIENT: &str = "client.__main__";
/// Container the worker lands raw batches in.
pub const RAW_CONTAINER: &str = "raw";
/// Container the transformer writes Parquet (and dead letters, receipts) to.
pub const STANDARD_CONTAINER: &str = "standard";

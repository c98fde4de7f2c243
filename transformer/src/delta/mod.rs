//! `standard` as a lakehouse: one Delta Lake table per log model plus `_deadletter`
//! (`STANDARD_FORMAT=delta`).
//!
//! A transform writes each table's Parquet data file under a fresh name ([`staged`]) with the
//! statistics of its `add` action ([`stats`]), in the Delta schema of its table ([`schema`]),
//! then a manifest naming them; the committer ([`commit`]) puts manifests into the tables' logs,
//! exactly once per blob and table, many blobs per commit. docs/DESIGN.md states the argument.

pub mod commit;
pub mod compact;
pub mod schema;
pub mod staged;
pub mod stats;
pub mod vacuum;

use serde::Deserialize;

pub use commit::{CommitError, Lakehouse, LiveFile, RoundSummary, TableFiles};
pub use compact::{CompactError, CompactOptions, Compacted};
pub use staged::{StagedBlob, StagedFile, WriteId};

/// What `standard` holds (`STANDARD_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StandardFormat {
    /// One Delta table per model (the default).
    #[default]
    Delta,
    /// One Parquet file per model per raw blob at deterministic names, plus JSON Lines dead
    /// letters: the layout before Delta, for readers who want plain files.
    Parquet,
}

impl std::str::FromStr for StandardFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "delta" => Ok(StandardFormat::Delta),
            "parquet" => Ok(StandardFormat::Parquet),
            other => Err(format!("`{other}` is not a format (delta or parquet)")),
        }
    }
}

impl StandardFormat {
    /// The name used in config and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            StandardFormat::Delta => "delta",
            StandardFormat::Parquet => "parquet",
        }
    }
}

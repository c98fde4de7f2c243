//! Ground truth of a run: what the broker confirmed, written as JSON on exit.
//!
//! Every number here comes from a delivery report (topic, partition and offset the broker
//! assigned), never from what was merely handed to the producer, so end-to-end tests can compare
//! the pipeline's output against it record for record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Counts and offset range of one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStats {
    /// Records delivered (good and bad).
    pub count: u64,
    /// Lowest delivered offset.
    pub min_offset: i64,
    /// Highest delivered offset.
    pub max_offset: i64,
}

impl PartitionStats {
    fn add(&mut self, offset: i64) {
        if self.count == 0 {
            self.min_offset = offset;
            self.max_offset = offset;
        } else {
            self.min_offset = self.min_offset.min(offset);
            self.max_offset = self.max_offset.max(offset);
        }
        self.count += 1;
    }
}

/// An injected malformed record and where the broker put it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset from the delivery report.
    pub offset: i64,
    /// What is wrong with it (see [`crate::bad::BadKind`]).
    pub kind: String,
}

/// Outcomes of the games this instance hosted (created).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GamesSummary {
    /// Games that reached `Completed`.
    pub completed: u64,
    /// Games whose lobby timed out.
    pub timed_out: u64,
}

/// What one simulator run produced (the file at `MANIFEST_PATH`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `play` or `flood`.
    pub mode: String,
    /// The instance namespace (user names, token stream).
    pub instance_id: String,
    /// The seed the decisions were drawn from.
    pub seed: u64,
    /// False when the run was interrupted (SIGINT/SIGTERM) before finishing its games.
    pub complete: bool,
    /// Topic → partition → delivered records.
    pub topics: BTreeMap<String, BTreeMap<i32, PartitionStats>>,
    /// Good records per `log_message`.
    pub log_messages: BTreeMap<String, u64>,
    /// Sum of `PARTICIPANTS_HEROS` entries over `Starting Match` records (the transformer's
    /// `lib_server_lobby` rows).
    pub participant_rows: u64,
    /// `Attack Completed` records (the transformer's `lib_server_game` rows).
    pub attack_rows: u64,
    /// Well-formed records delivered.
    pub good_records: u64,
    /// Malformed records delivered (each listed in `bad`).
    pub bad_records: u64,
    /// Every injected malformed record.
    pub bad: Vec<BadRecord>,
    /// Game outcomes (play mode: games hosted by this instance; flood: games simulated).
    pub games: GamesSummary,
    /// Tokens of the games this instance took part in (play mode).
    pub game_tokens: Vec<String>,
    /// Records the broker did not confirm; non-zero makes the run fail.
    pub failed_deliveries: u64,
    /// The first delivery errors, with topic and partition.
    pub delivery_errors: Vec<String>,
}

/// Keeps at most this many delivery error texts.
const MAX_ERRORS: usize = 20;

/// Errors of writing or reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Writing the file failed.
    #[error("cannot write manifest {path} (MANIFEST_PATH): {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the file failed.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a manifest.
    #[error("manifest {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl Manifest {
    /// Records one delivered good record.
    pub fn good(&mut self, topic: &str, partition: i32, offset: i64, log_message: &str, rows: u64) {
        self.partition(topic, partition).add(offset);
        self.good_records += 1;
        match self.log_messages.get_mut(log_message) {
            Some(n) => *n += 1,
            None => {
                self.log_messages.insert(log_message.to_owned(), 1);
            }
        }
        if log_message == model::envelope::STARTING_MATCH {
            self.participant_rows += rows;
        } else if log_message == model::envelope::ATTACK_COMPLETED {
            self.attack_rows += 1;
        }
    }

    /// Records one delivered malformed record.
    pub fn bad(&mut self, topic: &str, partition: i32, offset: i64, kind: &str) {
        self.partition(topic, partition).add(offset);
        self.bad_records += 1;
        self.bad.push(BadRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            kind: kind.to_owned(),
        });
    }

    /// Records a failed delivery.
    pub fn failed(&mut self, topic: &str, partition: i32, error: &str) {
        self.failed_deliveries += 1;
        if self.delivery_errors.len() < MAX_ERRORS {
            self.delivery_errors
                .push(format!("{topic}/{partition}: {error}"));
        }
    }

    fn partition(&mut self, topic: &str, partition: i32) -> &mut PartitionStats {
        if !self.topics.contains_key(topic) {
            self.topics.insert(topic.to_owned(), BTreeMap::new());
        }
        self.topics
            .get_mut(topic)
            .expect("inserted above")
            .entry(partition)
            .or_default()
    }

    /// Total records delivered.
    pub fn delivered(&self) -> u64 {
        self.good_records + self.bad_records
    }

    /// Writes the manifest as pretty JSON (through a temporary file, so readers never see half).
    /// A path that exists and is not a regular file (`/dev/null`, a FIFO) is written to directly:
    /// renaming over it would replace the device node with a file.
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        let err = |source| ManifestError::Write {
            path: path.to_owned(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return std::fs::write(path, json).map_err(err);
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Reads a manifest written by [`Manifest::write`].
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let bytes = std::fs::read(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| ManifestError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rows_offsets_and_bad_records() {
        let mut m = Manifest::default();
        m.good("lobby", 1, 7, "Starting Match", 3);
        m.good("lobby", 1, 3, "Starting Match", 3);
        m.good("game", 0, 0, "Attack Completed", 1);
        m.bad("game", 0, 1, "binary");
        m.failed("game", 2, "timed out");
        assert_eq!(
            m.topics["lobby"][&1],
            PartitionStats {
                count: 2,
                min_offset: 3,
                max_offset: 7
            }
        );
        assert_eq!(m.topics["game"][&0].count, 2);
        assert_eq!(
            (
                m.participant_rows,
                m.attack_rows,
                m.good_records,
                m.bad_records
            ),
            (6, 1, 3, 1)
        );
        assert_eq!(m.log_messages["Starting Match"], 2);
        assert_eq!(m.failed_deliveries, 1);
    }

    #[test]
    fn writing_to_dev_null_keeps_the_device() {
        use std::os::unix::fs::FileTypeExt as _;
        let null = Path::new("/dev/null");
        let is_device = || std::fs::metadata(null).is_ok_and(|m| m.file_type().is_char_device());
        if !is_device() {
            return; // not a Unix machine with a /dev/null device: nothing to protect
        }
        Manifest::default().write(null).expect("written");
        assert!(is_device(), "/dev/null was replaced by a regular file");
        assert!(!Path::new("/dev/null.json.tmp").exists());
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = std::env::temp_dir().join(format!("manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("m.json");
        let mut m = Manifest {
            mode: "play".into(),
            ..Default::default()
        };
        m.good("t", 3, 10, "Attack Completed", 1);
        m.write(&path).expect("write");
        assert_eq!(Manifest::read(&path).expect("read"), m);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}

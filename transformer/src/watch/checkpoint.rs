//! The watcher's checkpoint: which hours of each topic are settled, so that listings (a
//! start-up's first among them) cover only the hours after them.
//!
//! `_watch/checkpoint.json` in `standard` (`_watch/{WATCH_PREFIX}/checkpoint.json` for a watcher
//! with a prefix), `{listed_before, settled: {topic: hour}, owner, written_at}`, states:
//!
//! > every raw blob version of `topic` dated (by its name) before `settled[topic]` and last
//! > modified before `listed_before` had a receipt or a poison entry for that version.
//!
//! Why it stays true (the argument DESIGN's Watch section gives in full):
//! - `listed_before` is the start of a full listing less [`CLOCK_MARGIN`]: every version modified
//!   before it was in that listing, so it was done or still pending when the candidate was made,
//!   and a pending blob holds its topic's hour back.
//! - `settled[topic]` moves forward only after a listing of every hour from the current
//!   `settled[topic]` on: the versions of those hours were in it, done or pending likewise.
//! - Done means durable: a receipt read, a receipt or poison entry written, or (delta mode with
//!   the watcher's own committer) handed over and then committed by a round that succeeded before
//!   the checkpoint is written.
//! - Several watchers each write what they know; each such claim is true, so the last write wins.
//!
//! A version the claim covers is neither listed again by the hour listings nor read for its
//! receipt; one it does not cover (rewritten, or dated into a settled hour later, e.g. after an
//! offset gap) is found by the probes or, at the latest, by the next full listing.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};

/// Folder of the checkpoints in `standard`.
pub const CHECKPOINT_PREFIX: &str = "_watch";

/// How far `listed_before` stays behind the listing's start by this host's clock: blob times
/// are the storage service's, in whole seconds (`Last-Modified`), so a host clock ahead by less
/// than this cannot make a version written just after the listing began look covered.
pub const CLOCK_MARGIN: TimeDelta = TimeDelta::minutes(5);

/// What a watcher knows is settled (see the module docs for the claim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Versions modified before this are the ones the claim is about.
    pub listed_before: DateTime<Utc>,
    /// Per topic, the first hour not settled.
    pub settled: BTreeMap<String, DateTime<Utc>>,
    /// The watcher that wrote it.
    pub owner: String,
    /// When it was written (by that watcher's clock).
    pub written_at: DateTime<Utc>,
}

impl Checkpoint {
    /// Whether the version of a `topic` blob dated `hour`, last modified at `modified`, is
    /// known to be done.
    pub fn covers(&self, topic: &str, hour: DateTime<Utc>, modified: DateTime<Utc>) -> bool {
        modified < self.listed_before && self.settled.get(topic).is_some_and(|s| hour < *s)
    }

    /// Whether `other` claims the same (owner and time aside).
    pub fn same_claim(&self, other: &Checkpoint) -> bool {
        self.listed_before == other.listed_before && self.settled == other.settled
    }
}

/// A checkpoint that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// object_store failed.
    #[error("{op} {path} in standard: {source}")]
    Store {
        /// What we were doing.
        op: &'static str,
        /// The checkpoint's path.
        path: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
    /// The blob is not a checkpoint (written by hand, or by an incompatible version).
    #[error("{path} in standard is not a watch checkpoint: {source}")]
    Parse {
        /// The checkpoint's path.
        path: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A delta round before the write failed, so the handed-over blobs are not durable yet.
    #[error("the commit round before writing the watch checkpoint failed: {0}")]
    Commit(#[source] crate::delta::commit::CommitError),
}

/// `_watch/checkpoint.json`, or `_watch/{prefix}/checkpoint.json`.
pub fn path(prefix: Option<&str>) -> Path {
    match prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(p) => Path::from(format!("{CHECKPOINT_PREFIX}/{p}/checkpoint.json")),
        None => Path::from(format!("{CHECKPOINT_PREFIX}/checkpoint.json")),
    }
}

/// The checkpoint at `path`, `None` when there is none yet.
pub async fn read(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let bytes = match store.get(path).await {
        Ok(got) => got.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|source| CheckpointError::Store {
        op: "reading",
        path: path.to_string(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| CheckpointError::Parse {
            path: path.to_string(),
            source,
        })
}

/// Writes `checkpoint` to `path` (an overwrite: every claim is true, so the last one wins).
pub async fn write(
    store: &dyn ObjectStore,
    path: &Path,
    checkpoint: &Checkpoint,
) -> Result<(), CheckpointError> {
    let body = serde_json::to_vec(checkpoint).expect("a checkpoint serializes");
    store
        .put(path, PutPayload::from(body))
        .await
        .map(|_| ())
        .map_err(|source| CheckpointError::Store {
            op: "writing",
            path: path.to_string(),
            source,
        })
}

/// A blob version found and not done yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its topic.
    pub topic: String,
    /// The hour its name is dated by.
    pub hour: DateTime<Utc>,
    /// When it was written.
    pub modified: DateTime<Utc>,
}

/// The next claim, from what the watcher knows now.
#[derive(Debug)]
pub struct Candidate<'a> {
    /// The checkpoint in force (read at start, or the last one written).
    pub current: Option<&'a Checkpoint>,
    /// Start of this watcher's last full listing, less [`CLOCK_MARGIN`].
    pub swept_before: Option<DateTime<Utc>>,
    /// Per topic, the hour in which the last listing that covered all its unsettled hours began.
    pub listed: &'a BTreeMap<String, DateTime<Utc>>,
    /// Versions found and not done.
    pub pending: &'a [Pending],
}

impl Candidate<'_> {
    /// The checkpoint these facts support, `None` before a full listing or a checkpoint read.
    ///
    /// A pending version holds its topic back only if the claim is about it (modified before
    /// `listed_before`). When the last full listing's bound would move a topic back (it found
    /// a version dated into a settled hour), the current bound is kept until that version is
    /// done: the claim then stays where it was instead of sending the listings back over
    /// settled hours.
    pub fn checkpoint(&self, owner: &str, now: DateTime<Utc>) -> Option<Checkpoint> {
        let kept = self.current.map(|c| c.listed_before);
        let newest = self.swept_before.or(kept)?;
        let mut settled = self.settled(newest);
        let mut listed_before = newest;
        if let (Some(current), Some(kept)) = (self.current, kept)
            && settled
                .iter()
                .any(|(t, h)| current.settled.get(t).is_some_and(|c| h < c))
        {
            settled = self.settled(kept);
            listed_before = kept;
        }
        Some(Checkpoint {
            listed_before,
            settled,
            owner: owner.to_owned(),
            written_at: now,
        })
    }

    /// Per topic, the first hour not settled under a claim about versions modified before
    /// `before`.
    fn settled(&self, before: DateTime<Utc>) -> BTreeMap<String, DateTime<Utc>> {
        let mut settled = BTreeMap::new();
        let current = self.current.map(|c| &c.settled);
        let topics = self
            .listed
            .keys()
            .chain(current.into_iter().flat_map(|s| s.keys()));
        for topic in topics {
            let base = self
                .listed
                .get(topic)
                .or_else(|| current.and_then(|s| s.get(topic)));
            let Some(mut hour) = base.copied() else {
                continue;
            };
            for p in self.pending {
                if p.topic == *topic && p.modified < before {
                    hour = hour.min(p.hour);
                }
            }
            settled.insert(topic.clone(), hour);
        }
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn checkpoint(listed_before: &str, settled: &[(&str, &str)]) -> Checkpoint {
        Checkpoint {
            listed_before: at(listed_before),
            settled: settled
                .iter()
                .map(|(t, h)| ((*t).to_owned(), at(h)))
                .collect(),
            owner: "w".into(),
            written_at: at(listed_before),
        }
    }

    #[test]
    fn a_checkpoint_covers_only_versions_older_than_its_listing_in_settled_hours() {
        let c = checkpoint("2024-01-14T18:30:00Z", &[("game", "2024-01-14T18:00:00Z")]);
        let (hour, old) = (at("2024-01-14T17:00:00Z"), at("2024-01-14T17:59:00Z"));
        assert!(c.covers("game", hour, old));
        // Rewritten (or dated into that hour) after the listing: not covered.
        assert!(!c.covers("game", hour, at("2024-01-14T18:30:00Z")));
        // The first unsettled hour and later ones are listed again.
        assert!(!c.covers("game", at("2024-01-14T18:00:00Z"), old));
        // A topic the checkpoint does not name.
        assert!(!c.covers("lobby", hour, old));
    }

    #[test]
    fn a_candidate_settles_up_to_the_listing_hour_held_back_by_pending_blobs() {
        let current = checkpoint(
            "2024-01-14T17:00:00Z",
            &[
                ("game", "2024-01-14T16:00:00Z"),
                ("gone", "2024-01-14T12:00:00Z"),
            ],
        );
        let listed: BTreeMap<String, DateTime<Utc>> = [
            ("game".to_owned(), at("2024-01-14T19:00:00Z")),
            ("lobby".to_owned(), at("2024-01-14T19:00:00Z")),
        ]
        .into();
        let pending = [
            Pending {
                topic: "lobby".into(),
                hour: at("2024-01-14T15:00:00Z"),
                modified: at("2024-01-14T16:00:00Z"),
            },
            // Written after the claim's listing: not part of the claim, holds nothing back.
            Pending {
                topic: "game".into(),
                hour: at("2024-01-14T14:00:00Z"),
                modified: at("2024-01-14T18:00:00Z"),
            },
        ];
        let c = Candidate {
            current: Some(&current),
            swept_before: None,
            listed: &listed,
            pending: &pending,
        }
        .checkpoint("me", at("2024-01-14T19:10:00Z"))
        .expect("a checkpoint is in force");
        // Without a new full listing the old bound on modification times stays.
        assert_eq!(c.listed_before, at("2024-01-14T17:00:00Z"));
        assert_eq!(c.settled["game"], at("2024-01-14T19:00:00Z"));
        assert_eq!(c.settled["lobby"], at("2024-01-14T15:00:00Z"));
        // A topic no listing covered keeps its hour.
        assert_eq!(c.settled["gone"], at("2024-01-14T12:00:00Z"));
        assert_eq!(c.owner, "me");
    }

    #[test]
    fn no_candidate_before_a_full_listing_or_a_checkpoint() {
        let listed = BTreeMap::new();
        let pending = [];
        let none = Candidate {
            current: None,
            swept_before: None,
            listed: &listed,
            pending: &pending,
        };
        assert_eq!(none.checkpoint("me", at("2024-01-14T19:10:00Z")), None);
        let swept = Candidate {
            swept_before: Some(at("2024-01-14T19:00:00Z")),
            ..none
        };
        let c = swept
            .checkpoint("me", at("2024-01-14T19:10:00Z"))
            .expect("after a full listing");
        assert_eq!(c.listed_before, at("2024-01-14T19:00:00Z"));
        assert!(c.settled.is_empty());
    }

    #[test]
    fn a_version_found_in_a_settled_hour_keeps_the_old_bound_until_it_is_done() {
        let current = checkpoint("2024-01-14T17:00:00Z", &[("game", "2024-01-14T19:00:00Z")]);
        let listed: BTreeMap<String, DateTime<Utc>> =
            [("game".to_owned(), at("2024-01-14T20:00:00Z"))].into();
        // Dated into a settled hour, written after the current claim's listing.
        let late = Pending {
            topic: "game".into(),
            hour: at("2024-01-14T12:00:00Z"),
            modified: at("2024-01-14T18:00:00Z"),
        };
        let pending = [late];
        let candidate = Candidate {
            current: Some(&current),
            swept_before: Some(at("2024-01-14T20:00:00Z")),
            listed: &listed,
            pending: &pending,
        };
        let c = candidate
            .checkpoint("me", at("2024-01-14T20:10:00Z"))
            .expect("a claim");
        assert_eq!(c.listed_before, at("2024-01-14T17:00:00Z"), "the old bound");
        assert_eq!(
            c.settled["game"],
            at("2024-01-14T20:00:00Z"),
            "no step back"
        );
        // Once it is done, the new full listing's bound is taken.
        let c = Candidate {
            pending: &[],
            ..candidate
        }
        .checkpoint("me", at("2024-01-14T20:20:00Z"))
        .expect("a claim");
        assert_eq!(c.listed_before, at("2024-01-14T20:00:00Z"));
        assert_eq!(c.settled["game"], at("2024-01-14T20:00:00Z"));
    }

    #[test]
    fn paths_follow_the_prefix() {
        assert_eq!(path(None).as_ref(), "_watch/checkpoint.json");
        assert_eq!(path(Some("")).as_ref(), "_watch/checkpoint.json");
        assert_eq!(
            path(Some("lib.server.game/2024/")).as_ref(),
            "_watch/lib.server.game/2024/checkpoint.json"
        );
    }
}

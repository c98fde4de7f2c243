//! Which records a summary is about.

use std::collections::{BTreeMap, BTreeSet};

use simulator::Manifest;

/// Which records a summary is about: per (topic, partition) an inclusive offset range.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `None`: every record of every raw blob.
    ranges: Option<BTreeMap<(String, i32), (i64, i64)>>,
}

impl Scope {
    /// Every record in the containers.
    pub fn everything() -> Self {
        Scope { ranges: None }
    }

    /// Each manifest partition's whole offset range `[min_offset, max_offset]`: every record the
    /// broker holds there, including those whose delivery the producer did not see confirmed.
    pub fn of(manifest: &Manifest) -> Self {
        let ranges = manifest
            .topics
            .iter()
            .flat_map(|(t, parts)| {
                parts
                    .iter()
                    .map(move |(p, s)| ((t.clone(), *p), (s.min_offset, s.max_offset)))
            })
            .collect();
        Scope {
            ranges: Some(ranges),
        }
    }

    /// Whether a record is in scope.
    pub fn contains(&self, topic: &str, partition: i32, offset: i64) -> bool {
        match &self.ranges {
            None => true,
            Some(r) => r
                .get(&(topic.to_owned(), partition))
                .is_some_and(|(lo, hi)| (*lo..=*hi).contains(&offset)),
        }
    }

    pub(super) fn range(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        match &self.ranges {
            None => Some((i64::MIN, i64::MAX)),
            Some(r) => r.get(&(topic.to_owned(), partition)).copied(),
        }
    }

    pub(super) fn topics(&self) -> Option<BTreeSet<String>> {
        self.ranges
            .as_ref()
            .map(|r| r.keys().map(|(t, _)| t.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_inclusive_and_per_partition() {
        let mut m = Manifest::default();
        m.good("t", 1, 5, "x", 0);
        m.good("t", 1, 9, "x", 0);
        let s = Scope::of(&m);
        assert!(s.contains("t", 1, 5) && s.contains("t", 1, 9) && s.contains("t", 1, 7));
        assert!(!s.contains("t", 1, 10) && !s.contains("t", 0, 5) && !s.contains("u", 1, 5));
        assert!(Scope::everything().contains("u", 0, 0));
    }
}

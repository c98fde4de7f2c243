//! [`PartitionId`]: which Kafka partition a piece of per-partition state belongs to.

use std::fmt;
use std::sync::Arc;

/// A Kafka partition: its topic and its number. The key of per-partition state (ownership,
/// commits sent and confirmed, a pass's targets, the pipeline's ready queue); shown as
/// `topic/partition`.
///
/// The topic is an `Arc<str>`: the pipeline's batches, upload results and clean-up jobs carry
/// the same shared name, so building an id from them clones a pointer, not the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number within the topic.
    pub partition: i32,
}

impl PartitionId {
    /// The id of `partition` of `topic` (a `&str` is copied once; an `Arc<str>` is shared).
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        PartitionId {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_as_topic_slash_partition_and_orders_by_topic_then_partition() {
        assert_eq!(PartitionId::new("t", 3).to_string(), "t/3");
        let mut ids = [
            PartitionId::new("b", 0),
            PartitionId::new("a", 10),
            PartitionId::new("a", 2),
        ];
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a/2", "a/10", "b/0"]);
    }
}

//! Why the supervisor cannot go on.

use crate::error::{Classified, Disposition};

/// Why the supervisor cannot go on. Every variant is fatal: a bug, a
/// configuration that does not match the topics, or a broker refusing what
/// the consumer protocol needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// The group assigned a topic Reactor does not read.
    #[error("assigned {topic}/{partition}, which is not an input topic")]
    NotAnInput {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// librdkafka would not split the partition's queue.
    #[error("cannot split the queue of {topic}/{partition}")]
    SplitQueue {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// An embedded reader schema does not parse (a build defect).
    #[error("embedded Avro schema for {kind} events")]
    Schema {
        /// The topic kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: apache_avro::Error,
    },
    /// The previous generation of a partition still held its queue long
    /// after it was told to stop (a bug): starting another could lose or
    /// double-read records.
    #[error("the previous reader of {topic}/{partition} did not let go of its queue")]
    NotReleased {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A message arrived on the consumer's main queue.
    #[error("a message of {topic}/{partition} (offset {offset}) arrived on the consumer's main queue; partition ordering can no longer be guaranteed")]
    UnexpectedMessage {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
}

impl Classified for SupervisorError {
    fn disposition(&self) -> Disposition {
        Disposition::Fatal
    }
}

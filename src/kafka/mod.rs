//! Everything that talks to Kafka: the group consumer and its rebalance
//! protocol, producers, topic administration, and offset bookkeeping (pure).
//!
//! Nothing here knows about actors: rebalances are reported as
//! [`RebalanceEvent`]s on a channel.

pub mod admin;
pub mod consumer;
pub mod offsets;
pub mod producer;

pub use consumer::{ReactorConsumer, RebalanceEvent};
pub use offsets::{Checkpoint, OffsetTracker};

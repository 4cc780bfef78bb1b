//! Everything that talks to Kafka: the group consumer and its rebalance
//! protocol, producers and topic administration.
//!
//! Nothing here knows about actors: rebalances are reported as
//! [`RebalanceEvent`]s on a channel.

pub mod admin;
pub mod consumer;
pub mod producer;

pub use consumer::{ReactorConsumer, RebalanceEvent};

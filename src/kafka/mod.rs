//! Kafka.
pub mod offsets;
pub use offsets::{Checkpoint, OffsetTracker};

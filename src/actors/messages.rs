//! Every message exchanged between actors.

use std::time::Instant;

use actix::Message;
use tokio::sync::oneshot;

use crate::error::ExitReason;
use crate::event::Record;
use crate::kafka::RebalanceEvent;
use crate::pipeline::Checkpoint;
use crate::pipeline::PipelineState;

/// Records read from a partition, for its actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordBatch {
    /// The records, in offset order.
    pub records: Vec<Record>,
    /// When they were read (wall clock, for idle detection only).
    pub received_at: Instant,
}

/// Stop reading, finish in-flight writes, write the final checkpoint, stop.
/// The reply carries the last checkpoint written (the offset to commit).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Drain {
    /// Where the final checkpoint is sent.
    pub reply: oneshot::Sender<Option<Checkpoint>>,
}

/// A partition actor has stopped (sent from its `stopped` hook).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PartitionExited {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Identifies the actor instance, so a stale report is ignored.
    pub generation: u64,
    /// Why it stopped.
    pub reason: ExitReason,
    /// The last checkpoint it wrote, to restart from.
    pub checkpoint: Option<Checkpoint>,
}

/// A rebalance callback waiting for the supervisor's answer.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Rebalance(pub RebalanceEvent);

/// Drain every partition and commit; the reply fires when done.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// Fired once all partitions are drained and committed.
    pub done: oneshot::Sender<()>,
}

/// The state of a partition, for `/state`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PartitionState")]
pub struct GetState;

/// Answer to [`GetState`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionState {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The pipeline's state.
    pub pipeline: PipelineState,
}

/// The state of every partition of the process, for `/state`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<PartitionState>")]
pub struct GetAllStates;

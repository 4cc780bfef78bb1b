//! Every message exchanged between actors.

use actix::Message;
use tokio::sync::oneshot;

use super::partition::Credit;
use crate::error::ExitReason;
use crate::event::Record;
use crate::kafka::RebalanceEvent;
use crate::pipeline::PipelineState;
use crate::sink::clickhouse::state::Saved;

/// Records read from a partition, for its actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordBatch {
    /// The records, in offset order.
    pub records: Vec<Record>,
    /// The reader credit the batch holds until its outputs are handed over.
    pub credit: Credit,
}

/// Stop reading, finish in-flight writes, write the final checkpoint, stop.
/// The reply carries the last state written (the offset to commit).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Drain {
    /// Where the drained partition reports.
    pub reply: oneshot::Sender<Drained>,
    /// The assignment was lost (the group moved the partition without
    /// waiting for this process): another start may own it already, so
    /// this one's state writes are not inserted from now on.
    pub lost: bool,
}

/// What a drained partition reports.
#[derive(Debug)]
pub struct Drained {
    /// The last state it wrote (the offset to commit).
    pub written: Option<Saved>,
    /// It stopped at its deadline with writes still in flight: nothing is
    /// lost (the next owner re-reads what was not checkpointed), but the
    /// drain was not the clean one asked for.
    pub cut_short: bool,
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
    /// The last state it wrote, to restart from.
    pub saved: Option<Saved>,
}

/// A rebalance callback waiting for the supervisor's answer.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Rebalance(pub RebalanceEvent);

/// Drain every partition and commit; the reply fires when done.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// Fired once all partitions are drained and committed, with how many
    /// of them were cut short by the drain deadline.
    pub done: oneshot::Sender<usize>,
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
    /// Which start of the partition in this process (increasing).
    pub generation: u64,
    /// `loading`, `running` or `draining`.
    pub phase: &'static str,
    /// The pipeline's state, once loaded.
    pub pipeline: Option<PipelineState>,
}

/// The state of every partition of the process, for `/state`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<PartitionState>")]
pub struct GetAllStates;

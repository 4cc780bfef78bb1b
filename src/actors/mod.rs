//! The actor shell around the pure pipeline.
//!
//! ```text
//! System
//! ├─ Supervisor            owns the group membership; answers rebalances;
//! │                        restarts failed partitions (RestartPolicy)
//! └─ worker arbiters (one per core)
//!    ├─ PartitionActor (topic, partition) ── reader task: partition queue → RecordBatch
//!    └─ ...
//! ```
//!
//! Actors only route and supervise; the work happens in
//! [`crate::pipeline::PartitionPipeline`].

pub mod messages;
pub mod partition;
pub mod restart;
pub mod supervisor;

pub use partition::{PartitionActor, PartitionDeps, PartitionSettings};
pub use restart::RestartPolicy;
pub use supervisor::{Supervisor, SupervisorSettings};

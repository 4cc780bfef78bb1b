//! The actor shell around the pure pipeline.
//!
//! ```text
//! System
//! ├─ Supervisor            owns the group membership; answers rebalances;
//! │                        restarts failed partitions (RestartPolicy)
//! ├─ worker arbiters (one per core)
//! │  ├─ PartitionActor (topic, partition): decode, admit, aggregate, close
//! │  └─ ...
//! └─ I/O runtime (one thread per core, work-stealing; see [`io`])
//!    ├─ reader task per partition: partition queue → RecordBatch
//!    └─ shipments: rows, derived events, side records, checkpoints → sinks
//! ```
//!
//! Actors only route and supervise; the work happens in
//! [`crate::pipeline::PartitionPipeline`].

pub mod io;
pub mod messages;
pub mod partition;
pub mod restart;
pub mod supervisor;

pub use io::{IoHandle, IoRuntime};
pub use partition::{PartitionActor, PartitionDeps, PartitionSettings};
pub use restart::RestartPolicy;
pub use supervisor::{Supervisor, SupervisorSettings};

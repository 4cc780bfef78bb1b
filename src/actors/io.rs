//! The I/O runtime: a small work-stealing thread pool that partition actors
//! hand their reading and shipping to.
//!
//! A partition actor lives on one worker arbiter and handles its batches in
//! order there: decoding, admission, aggregation and window close. Moving
//! records out of librdkafka into batches (the reader task) and handing a
//! batch's outputs to the sinks (building derived events, producing,
//! queueing rows, writing checkpoints) need no actor state, so they run
//! here instead, on whichever thread is free. A partition then uses more
//! than one core, and a busy partition does not hold up the reading and
//! shipping of the partitions that share its arbiter: keyed input is rarely
//! spread evenly (in the benchmark's dense backlog two of four partitions
//! hold 91 % of the events, and both landed on the same arbiter).
//!
//! Order is unchanged: a reader sends its partition's batches in order to
//! one mailbox, and each shipment reports back to its actor.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

/// The I/O runtime; shut down (without waiting for its tasks) when dropped,
/// which is safe from async code too.
#[derive(Debug)]
pub struct IoRuntime {
    /// `None` only while dropping.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl IoRuntime {
    /// A runtime with `threads` worker threads (at least one), named
    /// `reactor-io`.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("reactor-io")
            .enable_all()
            .build()?;
        Ok(IoRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Where to spawn tasks.
    pub fn handle(&self) -> IoHandle {
        IoHandle(self.handle.clone())
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A handle to the [`IoRuntime`], cheap to clone.
#[derive(Debug, Clone)]
pub struct IoHandle(Handle);

impl IoHandle {
    /// Runs `task` on the I/O runtime.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn(task)
    }

    /// Runs the blocking `work` on the I/O runtime's blocking threads.
    pub fn spawn_blocking<F>(&self, work: F) -> tokio::task::JoinHandle<()>
    where
        F: FnOnce() + Send + 'static,
    {
        self.0.spawn_blocking(work)
    }
}

//! The batching writer: one task per process inserts the rollups and
//! partition state (checkpoints) that all partitions submit.
//!
//! Partitions submit through a bounded channel, so when ClickHouse is slow or
//! down the channel fills, submitting waits, and consumption slows down
//! instead of memory growing. Requests are gathered until `batch_max_rows`
//! rows are waiting or `flush_interval` has passed since the first, then
//! inserted (rollups first, then partition state) and acknowledged. Transient
//! failures are retried with back-off, indefinitely; a failure retrying
//! cannot fix is reported to every request of the batch.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clickhouse::{RowOwned, RowWrite};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use super::rows::{RollupRow, StateRow};
use crate::error::{Classified, Disposition};
use crate::pipeline::Checkpoint;
use crate::retry::Backoff;
use crate::rollup::Rollup;
use crate::sink::SinkError;
use crate::telemetry::metrics;

/// How the writer batches and times out.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Most rows per INSERT.
    pub batch_max_rows: usize,
    /// Longest wait before a batch is inserted.
    pub flush_interval: Duration,
    /// Timeout of one INSERT.
    pub request_timeout: Duration,
}

/// The outcome of a write: `Ok` once durable, or the error retrying could
/// not fix (shared by every request of the failed insert).
pub type WriteResult = Result<(), Arc<SinkError>>;

/// Resolves to the [`WriteResult`] of a submitted write; a receive error
/// means the writer task is gone.
pub type Ack = oneshot::Receiver<WriteResult>;

enum Request {
    Rollups(Vec<Rollup>, oneshot::Sender<WriteResult>),
    State(Vec<StateRow>, oneshot::Sender<WriteResult>),
}

/// Submits rows to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RollupWriter {
    requests: mpsc::Sender<Request>,
    group: std::sync::Arc<str>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Rollups(rows, _) => write!(f, "Rollups({} rows)", rows.len()),
            Request::State(rows, _) => write!(f, "State({} rows)", rows.len()),
        }
    }
}

impl RollupWriter {
    /// Starts the writer task on the current runtime. It runs until every
    /// `RollupWriter` is dropped, then inserts what is left and ends.
    pub fn spawn(
        client: clickhouse::Client,
        group: &str,
        settings: WriterSettings,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (requests, receiver) = mpsc::channel(64);
        let task = tokio::spawn(run(client, settings, receiver));
        (
            RollupWriter {
                requests,
                group: group.into(),
            },
            task,
        )
    }

    /// Queues rollup rows; waits while the queue is full. The returned
    /// [`Ack`] resolves once they are written.
    pub async fn write_rollups(&self, rows: Vec<Rollup>) -> Result<Ack, SinkError> {
        let (done, ack) = oneshot::channel();
        self.requests
            .send(Request::Rollups(rows, done))
            .await
            .map_err(|_| SinkError::Stopped("clickhouse"))?;
        Ok(ack)
    }

    /// Queues a partition's checkpoint, written with sequence number `seq`
    /// in one INSERT; the [`Ack`] resolves once written.
    pub async fn write_checkpoint(
        &self,
        topic: &str,
        partition: i32,
        checkpoint: &Checkpoint,
        seq: u64,
    ) -> Result<Ack, SinkError> {
        let row = StateRow::checkpoint(&self.group, topic, partition, checkpoint, seq)
            .map_err(SinkError::Encode)?;
        let (done, ack) = oneshot::channel();
        self.requests
            .send(Request::State(vec![row], done))
            .await
            .map_err(|_| SinkError::Stopped("clickhouse"))?;
        Ok(ack)
    }
}

/// Versions for ReplacingMergeTree: wall-clock milliseconds, but strictly
/// increasing within the process so two writes never tie.
#[derive(Debug, Default)]
struct VersionClock(u64);

impl VersionClock {
    fn next(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.0 = now.max(self.0 + 1);
        self.0
    }
}

async fn run(
    client: clickhouse::Client,
    settings: WriterSettings,
    mut receiver: mpsc::Receiver<Request>,
) {
    let mut clock = VersionClock::default();
    let mut open = true;
    while open {
        let Some(first) = receiver.recv().await else {
            break;
        };
        let mut batch = Batch::default();
        batch.add(first, &mut clock);
        let deadline = tokio::time::Instant::now() + settings.flush_interval;
        while batch.rollups.len() < settings.batch_max_rows {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(request)) => batch.add(request, &mut clock),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_elapsed) => break,
            }
        }
        batch.write(&client, &settings).await;
    }
}

#[derive(Default)]
struct Batch {
    rollups: Vec<RollupRow>,
    state: Vec<StateRow>,
    waiters: Vec<oneshot::Sender<WriteResult>>,
}

impl Batch {
    fn add(&mut self, request: Request, clock: &mut VersionClock) {
        let version = clock.next();
        match request {
            Request::Rollups(rows, done) => {
                self.rollups
                    .extend(rows.into_iter().map(|r| RollupRow::new(r, version)));
                self.waiters.push(done);
            }
            Request::State(rows, done) => {
                let now = u32::try_from(version / 1000).unwrap_or(0);
                self.state.extend(rows.into_iter().map(|row| StateRow {
                    updated_at: now,
                    ..row
                }));
                self.waiters.push(done);
            }
        }
    }

    async fn write(self, client: &clickhouse::Client, settings: &WriterSettings) {
        let mut result = Ok(());
        for chunk in self.rollups.chunks(settings.batch_max_rows.max(1)) {
            result = insert_with_retry(client, "rollups", chunk, settings.request_timeout).await;
            if result.is_err() {
                break;
            }
        }
        // One INSERT, so one block: a partition's checkpoint and its series
        // rows become visible together or not at all.
        if result.is_ok() && !self.state.is_empty() {
            result = insert_with_retry(
                client,
                "partition_state",
                &self.state,
                settings.request_timeout,
            )
            .await;
        }
        let outcome = result.map_err(Arc::new);
        for waiter in self.waiters {
            let _receiver_gone = waiter.send(outcome.clone());
        }
    }
}

async fn insert_with_retry<T: RowOwned + RowWrite>(
    client: &clickhouse::Client,
    table: &'static str,
    rows: &[T],
    timeout: Duration,
) -> Result<(), SinkError> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut attempt = 1u32;
    loop {
        let started = Instant::now();
        match insert(client, table, rows, timeout).await {
            Ok(()) => {
                metrics::insert_succeeded(table, rows.len(), started.elapsed().as_secs_f64());
                return Ok(());
            }
            Err(e) if e.disposition() == Disposition::Retry => {
                metrics::insert_failed(table, "retry");
                let delay = backoff.next_delay();
                warn!(table, attempt, error = %crate::error::Chain(&e), retry_in = ?delay, "ClickHouse insert failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => {
                metrics::insert_failed(table, "fatal");
                error!(table, error = %crate::error::Chain(&e), "ClickHouse insert failed and retrying cannot fix it");
                return Err(e);
            }
        }
    }
}

async fn insert<T: RowOwned + RowWrite>(
    client: &clickhouse::Client,
    table: &str,
    rows: &[T],
    timeout: Duration,
) -> Result<(), SinkError> {
    let mut insert = client
        .insert::<T>(table)
        .await?
        .with_timeouts(Some(timeout), Some(timeout));
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await?;
    Ok(())
}

//! The batching writer: one task per process inserts the rollups and
//! partition state (checkpoints) that all partitions submit.
//!
//! Partitions submit through a bounded channel, so when ClickHouse is slow or
//! down the channel fills, submitting waits, and consumption slows down
//! instead of memory growing. Requests are gathered until the next one would
//! take the batch over `batch_max_rows` rows, or `flush_interval` has passed
//! since the first, then inserted (rollups first, then partition state) and
//! acknowledged. A request someone is waiting on, or that nothing is
//! coming to share an INSERT with ([`When::Now`]: a partition claiming its
//! epoch before it reads, draining while a rebalance waits, or closing its
//! windows because its source went quiet) ends the gathering: the batch
//! takes what is already queued and is inserted at once. A request is never split unless it alone
//! is over the limit. Transient failures are retried with back-off,
//! indefinitely; a failure retrying cannot fix is reported to every request
//! of the batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clickhouse::{RowOwned, RowWrite};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use super::rows::{RollupRow, StateRow};
use super::state::Saved;
use crate::error::{Classified, Disposition};
use crate::pipeline::SeriesSnapshot;
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

/// When the writer inserts a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// With its batch: once the batch is full or `flush_interval` has
    /// passed.
    Batched,
    /// At once, with whatever is already queued: something waits on it.
    Now,
}

/// One partition's write: rollup rows (with their version) or state rows
/// (a checkpoint and the series histories saved with it).
struct Request {
    rollups: Vec<RollupRow>,
    state: Vec<StateRow>,
    when: When,
    done: oneshot::Sender<WriteResult>,
}

/// Submits rows to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RollupWriter {
    requests: mpsc::Sender<Request>,
    group: std::sync::Arc<str>,
    fences: Fences,
}

/// Partitions whose state writes up to an epoch are no longer to be
/// inserted: their start in this process gave up (a drain that timed out,
/// an assignment lost), and another start may already have claimed them,
/// so such a write landing late would be mixed into its successor's state.
#[derive(Debug, Clone, Default)]
struct Fences(Arc<std::sync::Mutex<HashMap<String, HashMap<i32, u32>>>>);

impl Fences {
    fn fence(&self, topic: &str, partition: i32, epoch: u32) {
        let mut fenced = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = fenced
            .entry(topic.to_owned())
            .or_default()
            .entry(partition)
            .or_insert(epoch);
        *entry = (*entry).max(epoch);
    }

    /// Whether `row` may still be inserted.
    fn admits(&self, row: &StateRow) -> bool {
        let fenced = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A write's epoch is its seq's high half (`Saved::claim`).
        fenced
            .get(row.topic.as_str())
            .and_then(|partitions| partitions.get(&row.partition))
            .is_none_or(|&epoch| row.seq >> 32 > u64::from(epoch))
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("rollups", &self.rollups.len())
            .field("state", &self.state.len())
            .finish_non_exhaustive()
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
        let fences = Fences::default();
        let task = tokio::spawn(run(client, settings, receiver, fences.clone()));
        (
            RollupWriter {
                requests,
                group: group.into(),
                fences,
            },
            task,
        )
    }

    /// Drops, from now on, the state writes of `topic`/`partition` from
    /// `epoch` and before: queued ones, and ones being retried (an INSERT
    /// already on its way cannot be recalled). For a start that gave up on
    /// the partition; the acknowledgements of the dropped writes still
    /// resolve.
    pub fn fence(&self, topic: &str, partition: i32, epoch: u32) {
        self.fences.fence(topic, partition, epoch);
    }

    /// Queues rollup rows, stamped with `version`, to be written `when`
    /// says; waits while the queue is full. The returned [`Ack`] resolves
    /// once they are written.
    pub async fn write_rollups(
        &self,
        rows: Vec<Rollup>,
        version: u64,
        when: When,
    ) -> Result<Ack, SinkError> {
        let rollups = rows
            .into_iter()
            .map(|r| RollupRow::new(r, version))
            .collect();
        self.submit(rollups, Vec::new(), when).await
    }

    /// Queues a partition's state: its checkpoint row (`saved`) and the
    /// series histories saved with it, all written with `saved.seq` in one
    /// INSERT (one block: visible together or not at all), `when` says. The
    /// [`Ack`] resolves once written. The checkpoint row goes last: a state
    /// too large for one block is inserted as several, and if only the
    /// first land, their series rows are newer than any checkpoint, which
    /// the loader ignores ([`super::state::load_partition`]).
    pub async fn write_state(
        &self,
        topic: &str,
        partition: i32,
        saved: &Saved,
        series: &[SeriesSnapshot],
        when: When,
    ) -> Result<Ack, SinkError> {
        let mut rows = Vec::with_capacity(series.len() + 1);
        for snapshot in series {
            rows.push(
                StateRow::series(&self.group, topic, partition, snapshot, saved.seq)
                    .map_err(SinkError::Encode)?,
            );
        }
        rows.push(
            StateRow::checkpoint(&self.group, topic, partition, saved)
                .map_err(SinkError::Encode)?,
        );
        self.submit(Vec::new(), rows, when).await
    }

    /// Inserts what is queued now instead of when its batch is due; the
    /// [`Ack`] resolves once it is written.
    pub async fn flush(&self) -> Result<Ack, SinkError> {
        self.submit(Vec::new(), Vec::new(), When::Now).await
    }

    async fn submit(
        &self,
        rollups: Vec<RollupRow>,
        state: Vec<StateRow>,
        when: When,
    ) -> Result<Ack, SinkError> {
        let (done, ack) = oneshot::channel();
        self.requests
            .send(Request {
                rollups,
                state,
                when,
                done,
            })
            .await
            .map_err(|_| SinkError::Stopped("clickhouse"))?;
        Ok(ack)
    }
}

/// Most state rows per INSERT, well under ClickHouse's
/// `max_insert_block_size` (1,048,576), so an INSERT is one block. A
/// request is never split; one larger than this is inserted alone.
const STATE_ROWS_PER_INSERT: usize = 500_000;

/// ClickHouse codes that mean "the body was cut short" as often as "the
/// data is bad": retried a few times, then taken at their word.
const SUSPECT_CODES_RETRIES: u32 = 5;

async fn run(
    client: clickhouse::Client,
    settings: WriterSettings,
    mut receiver: mpsc::Receiver<Request>,
    fences: Fences,
) {
    // A request that would have taken its batch over `batch_max_rows`
    // starts the next one instead: INSERTs stay under the limit without
    // splitting off a small remainder (every INSERT is a part to merge).
    let mut carried: Option<Request> = None;
    let mut open = true;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None if open => match receiver.recv().await {
                Some(request) => request,
                None => break,
            },
            None => break,
        };
        let mut batch = Batch::default();
        let mut now = first.when == When::Now;
        batch.add(first);
        let deadline = tokio::time::Instant::now() + settings.flush_interval;
        while open && batch.rollup_rows < settings.batch_max_rows {
            let next = if now {
                // Only what is queued already.
                match receiver.try_recv() {
                    Ok(request) => Some(request),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            } else {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(next) => next,
                    Err(_elapsed) => break,
                }
            };
            match next {
                Some(request)
                    if batch.rollup_rows + request.rollups.len() > settings.batch_max_rows =>
                {
                    carried = Some(request);
                    break;
                }
                Some(request) => {
                    now |= request.when == When::Now;
                    batch.add(request);
                }
                None => open = false,
            }
        }
        batch.write(&client, &settings, &fences).await;
    }
}

#[derive(Default)]
struct Batch {
    requests: Vec<Request>,
    rollup_rows: usize,
}

impl Batch {
    fn add(&mut self, mut request: Request) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        for row in &mut request.state {
            row.updated_at = now;
        }
        self.rollup_rows += request.rollups.len();
        self.requests.push(request);
    }

    /// Inserts every request; if that fails in a way retrying cannot fix,
    /// inserts each request alone, so one partition's bad rows fail only
    /// that partition.
    async fn write(self, client: &clickhouse::Client, settings: &WriterSettings, fences: &Fences) {
        let result = insert_requests(client, &self.requests, settings, fences).await;
        if result.is_ok() || self.requests.len() == 1 {
            let outcome = result.map_err(Arc::new);
            for request in self.requests {
                let _receiver_gone = request.done.send(outcome.clone());
            }
            return;
        }
        warn!(
            requests = self.requests.len(),
            "a shared ClickHouse insert failed; inserting each partition's rows alone"
        );
        for request in self.requests {
            let alone =
                insert_requests(client, std::slice::from_ref(&request), settings, fences).await;
            let _receiver_gone = request.done.send(alone.map_err(Arc::new));
        }
    }
}

/// Inserts the rollups of `requests`, then their state rows: one INSERT per
/// group of whole requests up to [`STATE_ROWS_PER_INSERT`] rows, so each
/// partition's checkpoint and series rows land in one block.
async fn insert_requests(
    client: &clickhouse::Client,
    requests: &[Request],
    settings: &WriterSettings,
    fences: &Fences,
) -> Result<(), SinkError> {
    let rollups: Vec<&RollupRow> = requests.iter().flat_map(|r| &r.rollups).collect();
    for chunk in rollups.chunks(settings.batch_max_rows.max(1)) {
        insert_with_retry(client, "rollups", chunk, None, settings.request_timeout).await?;
    }
    // Whole requests per INSERT, up to the limit (one alone if larger).
    let mut groups: Vec<Vec<&StateRow>> = vec![Vec::new()];
    for request in requests {
        if groups
            .last()
            .is_some_and(|g| !g.is_empty() && g.len() + request.state.len() > STATE_ROWS_PER_INSERT)
        {
            groups.push(Vec::new());
        }
        if let Some(group) = groups.last_mut() {
            group.extend(&request.state);
        }
    }
    let admitted = |row: &StateRow| fences.admits(row);
    for group in groups.iter().filter(|g| !g.is_empty()) {
        insert_with_retry(
            client,
            "partition_state",
            group,
            Some(&admitted),
            settings.request_timeout,
        )
        .await?;
    }
    Ok(())
}

/// Inserts `rows` (those `keep` keeps, if given, asked again before each
/// attempt), retrying what retrying can fix.
async fn insert_with_retry<T: RowOwned + RowWrite>(
    client: &clickhouse::Client,
    table: &'static str,
    rows: &[&T],
    keep: Option<&(dyn Fn(&T) -> bool + Sync)>,
    timeout: Duration,
) -> Result<(), SinkError> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut attempt = 1u32;
    loop {
        let kept: Vec<&T>;
        let rows = match keep {
            Some(keep) => {
                kept = rows.iter().copied().filter(|row| keep(row)).collect();
                kept.as_slice()
            }
            None => rows,
        };
        if rows.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        match insert(client, table, rows, timeout).await {
            Ok(()) => {
                metrics::insert_succeeded(table, rows.len(), started.elapsed().as_secs_f64());
                return Ok(());
            }
            Err(e)
                if e.disposition() == Disposition::Retry
                    && !(e.is_suspect() && attempt >= SUSPECT_CODES_RETRIES) =>
            {
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
    rows: &[&T],
    timeout: Duration,
) -> Result<(), SinkError> {
    let mut insert = client
        .insert::<T>(table)
        .await?
        .with_timeouts(Some(timeout), Some(timeout));
    for row in rows {
        insert.write(*row).await?;
    }
    // The whole INSERT, including the wait for ClickHouse's answer, is
    // bounded: a server that accepts the body and never answers is retried.
    tokio::time::timeout(timeout, insert.end())
        .await
        .map_err(|_| SinkError::TimedOut("an INSERT"))??;
    Ok(())
}

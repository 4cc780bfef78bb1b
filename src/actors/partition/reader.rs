//! The reader task of a partition: moves records from the partition's split
//! queue into its actor, in batches, one per credit, and tells the actor
//! when input was last seen, so that "idle" means the source had nothing,
//! never that the actor was busy or backpressured.
//!
//! Credits bound what is in flight: the reader takes one before each batch,
//! and the batch gives it back once its outputs are handed over (rows queued
//! for ClickHouse, side records and derived events acknowledged). The
//! actor's mailbox is never paused, so `Drain` is always handled at once.
//! The partition starts with no credits: the actor adds them when its state
//! is loaded.
//!
//! The reader owns the split queue. When it ends (cancelled, or its actor
//! gone), the queue is dropped, and then `released` fires: only after that
//! may the partition's queue be split again for a new generation.
//!
//! The reader runs on the I/O pool ([`crate::actors::io`]), not on its
//! actor's thread, so aborting it takes effect at its next await: a batch
//! it was already building may still reach the actor after a drain began.
//! The actor processes batches only while running; such a batch is
//! dropped unprocessed, and the next owner reads its records again.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::Addr;
use futures::StreamExt as _;
use rdkafka::consumer::stream_consumer::MessageStream;
use rdkafka::error::KafkaError;
use rdkafka::Message as _;
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use super::quiet::{Answer, Quiet};
use super::{AtEnd, PartitionActor, PartitionQueue};
use crate::actors::messages::RecordBatch;
use crate::event::Record;
use crate::kafka::consumer::RebalanceContext;
use crate::telemetry::metrics;

/// What the reader task tells its actor about its input, for idle
/// detection: a partition is idle only when its reader has reached the end
/// of the partition (librdkafka's partition EOF: the last fetch returned
/// nothing new) and nothing arrived since, never when the actor is merely
/// busy or backpressured (then the reader is not reading, so it has not
/// reached the end); and only for as long as the broker has confirmed that
/// the end has not moved ([`Quiet`]), never while it cannot be reached.
#[derive(Debug)]
pub(super) struct ReaderActivity {
    base: Instant,
    /// Milliseconds after `base` when the reader reached the end;
    /// `u64::MAX` when it has read something since.
    caught_up_at_ms: AtomicU64,
    batches_in_flight: AtomicUsize,
    /// Batches read so far: a confirmation holds only while this is
    /// unchanged.
    reads: AtomicU64,
    quiet: Mutex<Quiet>,
}

impl ReaderActivity {
    pub(super) fn new() -> Self {
        ReaderActivity {
            base: Instant::now(),
            caught_up_at_ms: AtomicU64::new(u64::MAX),
            batches_in_flight: AtomicUsize::new(0),
            reads: AtomicU64::new(0),
            quiet: Mutex::new(Quiet::default()),
        }
    }

    /// The reader has records and is about to hand them over.
    fn sending(&self) {
        let _reads = self.reads.fetch_add(1, Ordering::AcqRel);
        self.caught_up_at_ms.store(u64::MAX, Ordering::Release);
        let _previous = self.batches_in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// The reader reached the end of the partition; whether it had read
    /// something since it last did.
    fn caught_up(&self) -> bool {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.caught_up_at_ms
            .compare_exchange(u64::MAX, ms, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The actor has taken a batch.
    pub(super) fn received(&self) {
        let _previous =
            self.batches_in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_sub(1))
                });
    }

    /// Since when the reader has been at the end of the partition with
    /// nothing on its way to the actor; `None` if it is not.
    pub(super) fn caught_up_since(&self) -> Option<Instant> {
        if self.batches_in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.caught_up_at_ms.load(Ordering::Acquire) {
            u64::MAX => None,
            ms => Some(self.base + Duration::from_millis(ms)),
        }
    }

    /// Whether to ask the broker for the end of the partition now (the
    /// reader is at it, and no query is in flight or sent within `every`):
    /// the read count to answer with, through [`Self::answered`].
    pub(super) fn confirmation_due(&self, now: Instant, every: Duration) -> Option<u64> {
        self.caught_up_since()?;
        let reads = self.reads.load(Ordering::Acquire);
        self.quiet().due(now, every).then_some(reads)
    }

    /// The broker's answer to a query [`Self::confirmation_due`] asked for;
    /// an answer slower than `slow` counts as none.
    pub(super) fn answered(&self, answer: Answer, slow: Duration) {
        let reads = self.reads.load(Ordering::Acquire);
        self.quiet().answered(answer, reads, slow);
    }

    /// How long the broker has confirmed, without a gap, that the end of
    /// the partition has not moved while the reader was at it and read
    /// nothing: how long the source is known to have been quiet.
    pub(super) fn quiet_for(&self) -> Option<Duration> {
        self.caught_up_since()?;
        let reads = self.reads.load(Ordering::Acquire);
        self.quiet().quiet_for(reads)
    }

    fn quiet(&self) -> std::sync::MutexGuard<'_, Quiet> {
        // The bookkeeping cannot be left half-done by a panic.
        self.quiet.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A partition's split queue, and the signal that fires once it is gone.
/// Fields drop in order: the queue first.
pub struct OwnedQueue {
    queue: PartitionQueue,
    _released: oneshot::Sender<()>,
}

impl OwnedQueue {
    /// `queue`, whose drop fires the returned receiver.
    pub fn new(queue: PartitionQueue) -> (Self, oneshot::Receiver<()>) {
        let (released, on_release) = oneshot::channel();
        (
            OwnedQueue {
                queue,
                _released: released,
            },
            on_release,
        )
    }
}

impl std::fmt::Debug for OwnedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedQueue").finish_non_exhaustive()
    }
}

/// The reader's inputs.
pub(super) struct Reader {
    pub(super) queue: OwnedQueue,
    pub(super) actor: Addr<PartitionActor>,
    pub(super) max: usize,
    pub(super) credits: Arc<Semaphore>,
    pub(super) activity: Arc<ReaderActivity>,
    /// Set by the supervisor when the partition is revoked or stopping.
    pub(super) cancel: watch::Receiver<bool>,
}

impl Reader {
    /// Moves records into the actor until cancelled or the actor is gone:
    /// takes a credit, waits for one record, takes whatever else is ready
    /// up to `max`, and sends the batch with its credit.
    pub(super) async fn run(self) {
        let Reader {
            queue,
            actor,
            max,
            credits,
            activity,
            mut cancel,
        } = self;
        let cancelled = async move {
            let _ignored = cancel.wait_for(|set| *set).await;
        };
        tokio::pin!(cancelled);
        // One stream for the reader's life: each `recv()` would register
        // and unregister a waker, twice a lock, for every record.
        let mut stream = queue.queue.stream();
        loop {
            let credit = tokio::select! {
                credit = Arc::clone(&credits).acquire_owned() => match credit {
                    Ok(credit) => credit,
                    Err(_closed) => return,
                },
                () = &mut cancelled => return,
            };
            let first = tokio::select! {
                first = stream.next() => match first {
                    Some(first) => first,
                    None => return, // never: the stream has no end
                },
                () = &mut cancelled => return,
            };
            if matches!(first, Err(KafkaError::PartitionEOF(_))) {
                if activity.caught_up() {
                    actor.do_send(AtEnd);
                }
                continue;
            }
            let Some((records, at_end)) = batch(&mut stream, first, max) else {
                continue;
            };
            if !actor.connected() {
                return;
            }
            activity.sending();
            actor.do_send(RecordBatch {
                records,
                credit: Credit(Some(credit)),
            });
            if at_end && activity.caught_up() {
                actor.do_send(AtEnd);
            }
            // Let the other partitions' readers and shipments on this I/O
            // thread run between batches.
            tokio::task::yield_now().await;
        }
    }
}

/// A batch starting with `first`, or `None` if `first` is an error (logged);
/// and whether the end of the partition was reached.
fn batch(
    stream: &mut MessageStream<'_, RebalanceContext>,
    first: Result<rdkafka::message::BorrowedMessage<'_>, KafkaError>,
    max: usize,
) -> Option<(Vec<Record>, bool)> {
    use futures::FutureExt;
    let first = match first {
        Ok(message) => message,
        Err(e) => {
            metrics::consumer_error();
            warn!(error = %e, "error reading a partition; continuing");
            return None;
        }
    };
    let mut records = Vec::with_capacity(max.min(1024));
    records.push(to_record(&first));
    drop(first);
    let mut at_end = false;
    while records.len() < max {
        match stream.next().now_or_never().flatten() {
            Some(Ok(message)) => records.push(to_record(&message)),
            Some(Err(KafkaError::PartitionEOF(_))) => {
                at_end = true;
                break;
            }
            Some(Err(e)) => {
                metrics::consumer_error();
                warn!(error = %e, "error reading a partition; continuing");
                break;
            }
            None => break,
        }
    }
    Some((records, at_end))
}

fn to_record(message: &rdkafka::message::BorrowedMessage<'_>) -> Record {
    Record {
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
    }
}

/// A reader credit, given back when dropped: held by a batch until its
/// outputs are handed over.
#[derive(Debug, Default)]
pub struct Credit(Option<OwnedSemaphorePermit>);

impl Credit {
    /// Gives the credit back now.
    pub fn release(&mut self) {
        self.0 = None;
    }
}

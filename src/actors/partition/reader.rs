//! The reader task of a partition: moves records from the partition's split
//! queue into its actor, in batches, and tells the actor when input was last
//! seen, so that "idle" means the source had nothing, never that the actor
//! was busy or backpressured.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use rdkafka::Message as _;
use tracing::warn;

use super::{PartitionActor, PartitionQueue};
use crate::actors::messages::RecordBatch;
use crate::event::Record;
use crate::telemetry::metrics;

/// What the reader task tells its actor about input, for idle detection: a
/// partition is idle only when its reader has found nothing to read for the
/// idle timeout, not when the actor is merely busy or backpressured.
#[derive(Debug)]
pub(super) struct ReaderActivity {
    base: Instant,
    last_read_ms: AtomicU64,
    batches_in_flight: AtomicUsize,
}

impl ReaderActivity {
    pub(super) fn new() -> Self {
        ReaderActivity {
            base: Instant::now(),
            last_read_ms: AtomicU64::new(0),
            batches_in_flight: AtomicUsize::new(0),
        }
    }

    /// The reader has records and is about to hand them over.
    fn sending(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_read_ms.store(ms, Ordering::Relaxed);
        let _previous = self.batches_in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// The actor has taken a batch.
    pub(super) fn received(&self) {
        let _previous =
            self.batches_in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_sub(1))
                });
    }

    /// When input was last seen: now, if batches are on their way.
    pub(super) fn last_input(&self, now: Instant) -> Instant {
        if self.batches_in_flight.load(Ordering::Acquire) > 0 {
            now
        } else {
            self.base + Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed))
        }
    }
}

/// Moves records from the partition queue into the actor, in batches: waits
/// for one record, then takes whatever else is ready, up to `max`.
pub(super) async fn read_batches(
    queue: PartitionQueue,
    actor: Addr<PartitionActor>,
    max: usize,
    activity: Arc<ReaderActivity>,
) {
    use futures::FutureExt;
    loop {
        let first = match queue.recv().await {
            Ok(message) => message,
            Err(e) => {
                metrics::consumer_error();
                warn!(error = %e, "error reading a partition; continuing");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut records = Vec::with_capacity(max.min(1024));
        records.push(to_record(&first));
        drop(first);
        while records.len() < max {
            match queue.recv().now_or_never() {
                Some(Ok(message)) => records.push(to_record(&message)),
                Some(Err(e)) => {
                    metrics::consumer_error();
                    warn!(error = %e, "error reading a partition; continuing");
                    break;
                }
                None => break,
            }
        }
        let batch = RecordBatch {
            records,
            received_at: Instant::now(),
        };
        activity.sending();
        if actor.send(batch).await.is_err() {
            return; // the actor has stopped
        }
    }
}

fn to_record(message: &rdkafka::message::BorrowedMessage<'_>) -> Record {
    Record {
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
    }
}

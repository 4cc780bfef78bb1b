//! The reader task of a partition: moves records from the partition's split
//! queue into its actor, in batches, and tells the actor when input was last
//! seen, so that "idle" means the source had nothing, never that the actor
//! was busy or backpressured.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use rdkafka::error::KafkaError;
use rdkafka::Message as _;
use tracing::warn;

use super::{PartitionActor, PartitionQueue};
use crate::actors::messages::RecordBatch;
use crate::event::Record;
use crate::telemetry::metrics;

/// What the reader task tells its actor about its input, for idle
/// detection: a partition is idle only when its reader has reached the end
/// of the partition (librdkafka's partition EOF: the last fetch returned
/// nothing new) and nothing arrived since, never when the actor is merely
/// busy or backpressured (then the reader is not reading, so it has not
/// reached the end).
#[derive(Debug)]
pub(super) struct ReaderActivity {
    base: Instant,
    /// Milliseconds after `base` when the reader reached the end;
    /// `u64::MAX` when it has read something since.
    caught_up_at_ms: AtomicU64,
    batches_in_flight: AtomicUsize,
}

impl ReaderActivity {
    pub(super) fn new() -> Self {
        ReaderActivity {
            base: Instant::now(),
            caught_up_at_ms: AtomicU64::new(u64::MAX),
            batches_in_flight: AtomicUsize::new(0),
        }
    }

    /// The reader has records and is about to hand them over.
    fn sending(&self) {
        self.caught_up_at_ms.store(u64::MAX, Ordering::Release);
        let _previous = self.batches_in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// The reader reached the end of the partition.
    fn caught_up(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let _unchanged = self.caught_up_at_ms.compare_exchange(
            u64::MAX,
            ms,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
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
}

/// Moves records from the partition queue into the actor, in batches: waits
/// for one record, then takes whatever else is ready, up to `max`. Notes
/// when the partition's end is reached.
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
            Err(KafkaError::PartitionEOF(_)) => {
                activity.caught_up();
                continue;
            }
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
        let mut at_end = false;
        while records.len() < max {
            match queue.recv().now_or_never() {
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
        activity.sending();
        if actor.send(RecordBatch { records }).await.is_err() {
            return; // the actor has stopped
        }
        if at_end {
            activity.caught_up();
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

//! Loading a partition's state before it reads anything: its checkpoint and
//! series histories from ClickHouse (or, with no checkpoint, the group's
//! committed offset), a new epoch claimed durably, and the partition's
//! fetch position moved to where it resumes.
//!
//! ClickHouse being unreachable is not an error here: the partition waits,
//! not ready, retrying with back-off until ClickHouse answers or the
//! partition is revoked. Only what retrying cannot fix (state that does not
//! parse, a missing table, refused credentials) fails it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{error, info, warn};

use super::PartitionDeps;
use crate::config::StartFrom;
use crate::error::{Chain, Classified, Disposition, Failure};
use crate::pipeline::{Checkpoint, Placement, SeriesSnapshot};
use crate::retry::{pause, Backoff};
use crate::sink::clickhouse::state::{self, Loaded, Saved};
use crate::sink::clickhouse::When;
use crate::sink::SinkError;
use crate::telemetry::metrics;

/// Timeout of each ClickHouse query and Kafka call while loading.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A loaded partition, ready to read.
#[derive(Debug)]
pub(super) struct Ready {
    /// The state as claimed by this start: the loaded checkpoint, this
    /// start's epoch, the claim's sequence number.
    pub(super) claimed: Saved,
    /// What the pipeline resumes from: the checkpoint, or the committed
    /// offset when there is none.
    pub(super) start: Option<Checkpoint>,
    /// The series histories saved with the checkpoint.
    pub(super) series: Vec<SeriesSnapshot>,
    /// How long loading took.
    pub(super) took: Duration,
}

/// Why loading stopped short.
#[derive(Debug)]
pub(super) enum NotLoaded {
    /// The partition was revoked or the process is stopping.
    Cancelled,
    /// Something retrying cannot fix.
    Failed(Failure),
}

/// Where this partition is, for the health report.
pub(super) type Report = Box<dyn Fn(Option<String>) + Send>;

/// Loads the state of `topic`/`partition` (see the module docs); `report`
/// is told what keeps it waiting (`None` once it no longer waits).
pub(super) async fn load(
    deps: PartitionDeps,
    topic: Arc<str>,
    partition: i32,
    report: Report,
    cancelled: impl std::future::Future<Output = ()>,
) -> Result<Ready, NotLoaded> {
    tokio::pin!(cancelled);
    let started = Instant::now();
    let group = deps.settings.group_id.clone();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));

    // What an earlier start of the partition in this process still had
    // queued (a restart after a failure, a drain that gave up) lands
    // before the state is read, never after this start's claim. A write
    // that fails is its start's concern, not this one's.
    let flushed = async {
        if let Ok(ack) = deps.writer.flush().await {
            let _written = ack.await;
        }
    };
    tokio::select! {
        () = flushed => {},
        () = &mut cancelled => return Err(NotLoaded::Cancelled),
    }

    let loaded: Loaded = loop {
        let attempt =
            state::load_partition(&deps.clickhouse, &group, &topic, partition, CALL_TIMEOUT);
        let result = tokio::select! {
            result = attempt => result,
            () = &mut cancelled => return Err(NotLoaded::Cancelled),
        };
        match result {
            Ok(loaded) => break loaded,
            Err(e) if e.disposition() == Disposition::Retry => {
                let delay = backoff.next_delay();
                warn!(error = %Chain(&e), retry_in = ?delay, "cannot read the partition's state from ClickHouse; waiting (not ready)");
                report(Some(format!("reading its state from ClickHouse: {e}")));
                if !pause(delay, cancelled.as_mut()).await {
                    return Err(NotLoaded::Cancelled);
                }
            }
            Err(e) => {
                return Err(NotLoaded::Failed(Failure::new(
                    "reading the partition's state from ClickHouse",
                    e,
                )))
            }
        }
    };

    let start = match loaded.saved.as_ref().and_then(|s| s.checkpoint.clone()) {
        Some(checkpoint) => Some(checkpoint),
        None => loop {
            let consumer = Arc::clone(&deps.consumer);
            let (t, p) = (topic.to_string(), partition);
            let committed = tokio::task::spawn_blocking(move || committed_offset(&consumer, &t, p));
            let result = tokio::select! {
                result = committed => result,
                () = &mut cancelled => return Err(NotLoaded::Cancelled),
            };
            match result {
                Ok(Ok(offset)) => break offset.map(Checkpoint::at),
                Ok(Err(e)) => {
                    let delay = backoff.next_delay();
                    warn!(error = %e, retry_in = ?delay, "cannot read the group's committed offset; waiting (not ready)");
                    report(Some(format!("reading the group's committed offset: {e}")));
                    if !pause(delay, cancelled.as_mut()).await {
                        return Err(NotLoaded::Cancelled);
                    }
                }
                Err(_join) => return Err(NotLoaded::Cancelled),
            }
        },
    };

    // The claim: this start's epoch, written before anything else, so every
    // row this start writes outranks every row of earlier starts; at once,
    // since the partition reads only after it.
    let claimed = Saved::claim(loaded.saved.as_ref());
    let claim = async {
        const ACTION: &str = "claiming the partition in ClickHouse";
        let ack = deps
            .writer
            .write_state(&topic, partition, &claimed, &[], When::Now)
            .await
            .map_err(|e| Failure::new(ACTION, e))?;
        match ack.await {
            Ok(written) => written.map_err(|e| Failure::shared(ACTION, e)),
            Err(_) => Err(Failure::new(ACTION, SinkError::Stopped("clickhouse"))),
        }
    };
    tokio::select! {
        result = claim => if let Err(failure) = result {
            return Err(NotLoaded::Failed(failure));
        },
        () = &mut cancelled => return Err(NotLoaded::Cancelled),
    }

    let start = match start {
        Some(checkpoint) => Some(placed(&deps, &topic, partition, checkpoint).await),
        None => None,
    };
    let offset = match (&start, deps.settings.start_from) {
        (Some(c), _) => Offset::Offset(c.offset),
        (None, StartFrom::Earliest) => Offset::Beginning,
        (None, StartFrom::Latest) => Offset::End,
    };
    loop {
        let consumer = Arc::clone(&deps.consumer);
        let t = topic.to_string();
        let seek =
            tokio::task::spawn_blocking(move || consumer.seek(&t, partition, offset, CALL_TIMEOUT));
        let result = tokio::select! {
            result = seek => result,
            () = &mut cancelled => return Err(NotLoaded::Cancelled),
        };
        match result {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                let delay = backoff.next_delay();
                warn!(error = %e, ?offset, retry_in = ?delay, "cannot move the partition to where it resumes; retrying");
                report(Some(format!("seeking to {offset:?}: {e}")));
                if !pause(delay, cancelled.as_mut()).await {
                    return Err(NotLoaded::Cancelled);
                }
            }
            Err(_join) => return Err(NotLoaded::Cancelled),
        }
    }
    report(None);
    let took = started.elapsed();
    info!(
        epoch = claimed.epoch,
        checkpoint = ?start,
        series = loaded.series.len(),
        took = ?took,
        "partition state loaded"
    );
    Ok(Ready {
        claimed,
        start,
        series: loaded.series,
        took,
    })
}

/// `checkpoint`, placed in what its partition holds now
/// ([`Checkpoint::placed`]): moved, and said loudly (a log error,
/// `reactor_offset_resets_total`), when the partition no longer holds its
/// offset. When the partition's offsets cannot be read, `checkpoint` as it
/// is (librdkafka resets an offset out of range to the earliest, since
/// `auto.offset.reset` is always earliest, and warns).
async fn placed(
    deps: &PartitionDeps,
    topic: &str,
    partition: i32,
    checkpoint: Checkpoint,
) -> Checkpoint {
    let consumer = Arc::clone(&deps.consumer);
    let t = topic.to_owned();
    let bounds =
        tokio::task::spawn_blocking(move || consumer.fetch_watermarks(&t, partition, CALL_TIMEOUT))
            .await;
    let (earliest, end) = match bounds {
        Ok(Ok(bounds)) => bounds,
        Ok(Err(e)) => {
            warn!(error = %e, offset = checkpoint.offset, "cannot read the partition's offsets to check the checkpoint against them; resuming at the checkpoint");
            return checkpoint;
        }
        Err(_join) => return checkpoint,
    };
    let offset = checkpoint.offset;
    let (placed, placement) = checkpoint.placed(earliest, end);
    match placement {
        Placement::Within => {}
        Placement::Deleted { unread } => {
            error!(
                checkpoint = offset,
                earliest,
                unread,
                "records of this partition after its checkpoint were deleted before Reactor read them \
                 (retention, or records deleted by hand): the windows they fell in are incomplete. \
                 Resuming at the earliest offset. Keep the topics' retention longer than Reactor can be \
                 stopped; if the records exist elsewhere, publish them again and run \
                 `reactor replay --include-late` over their time range"
            );
            metrics::offset_reset(
                topic,
                partition,
                "deleted_before_read",
                u64::try_from(unread).unwrap_or(0),
            );
        }
        Placement::PastEnd => {
            error!(
                checkpoint = offset,
                end,
                "the checkpoint lies past the end of this partition: the topic was deleted and created \
                 again, or the broker lost records it had acknowledged. Reading the partition from its \
                 beginning: windows already written stay as they are, later ones are counted, and records \
                 too old for the checkpoint's watermark are late. If the topic was created again on \
                 purpose with other data, give Reactor a new kafka.group_id"
            );
            metrics::offset_reset(topic, partition, "past_end", 0);
        }
    }
    placed
}

/// The group's committed offset of `topic`/`partition`, if any.
fn committed_offset(
    consumer: &crate::kafka::consumer::ReactorConsumer,
    topic: &str,
    partition: i32,
) -> rdkafka::error::KafkaResult<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer.committed_offsets(tpl, CALL_TIMEOUT)?;
    Ok(committed
        .find_partition(topic, partition)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        }))
}

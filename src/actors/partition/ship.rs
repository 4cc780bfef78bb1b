//! Shipping what the pipeline emits, in tasks that report back to the
//! actor as messages: a batch's dead letters and late records to their side
//! topics, its rows to the ClickHouse writer and its derived events to
//! Kafka ([`ship`], reporting [`Forwarded`] and then [`BatchWritten`]); a
//! checkpoint with its series histories to ClickHouse ([`save`], reporting
//! [`CheckpointWritten`]).
//!
//! A shipment holds its batch's reader credit until every output is handed
//! over (rows queued, side records and derived events acknowledged by the
//! broker), so a slow sink slows reading instead of growing memory. Every
//! wait ends when the actor stops; waiting for room in the writer's queue
//! also ends when the partition starts draining (the rows are abandoned:
//! the next owner re-reads their records).

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::watch;

use super::reader::Credit;
use super::PartitionActor;
use crate::error::Failure;
use crate::pipeline::{BatchId, Rejected, RollupBatch, SeriesSnapshot};
use crate::sink::clickhouse::state::Saved;
use crate::sink::clickhouse::{RollupWriter, When};
use crate::sink::derived::{DerivedSink, Turn};
use crate::sink::side_topic::{Forward, SideTopicSink};
use crate::sink::SinkError;

/// Side records of a batch have been acknowledged by the broker.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Forwarded {
    /// The anchors of the records delivered.
    pub anchors: Vec<i64>,
}

/// How a shipment ended.
#[derive(Debug)]
pub enum Shipped {
    /// Everything is durable.
    Written,
    /// The partition is stopping; not everything was handed over.
    Abandoned,
    /// A sink failed in a way its retries could not fix.
    Failed(Failure),
}

/// A shipment ended (sent exactly once per shipment).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct BatchWritten {
    /// The rollup batch, if the shipment had one.
    pub id: Option<BatchId>,
    /// How it ended.
    pub outcome: Shipped,
}

/// A state write ended.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct CheckpointWritten {
    /// The state written.
    pub saved: Saved,
    /// `Ok` once durable.
    pub result: Result<(), Failure>,
}

/// Where a partition's outputs go.
#[derive(Debug, Clone)]
pub(super) struct Sinks {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) writer: RollupWriter,
    pub(super) derived: DerivedSink,
    pub(super) dead_letters: SideTopicSink,
    pub(super) late: SideTopicSink,
    pub(super) actor: Addr<PartitionActor>,
    /// True once the actor has stopped: every wait ends.
    pub(super) stopped: watch::Receiver<bool>,
    /// True once the partition drains: waits for queue room end.
    pub(super) draining: watch::Receiver<bool>,
}

/// One batch's outputs.
#[derive(Debug)]
pub(super) struct Shipment {
    pub(super) rollups: Option<RollupBatch>,
    pub(super) dead_letters: Vec<Rejected>,
    pub(super) late: Vec<Rejected>,
    pub(super) credit: Credit,
    /// When the writer inserts its rows.
    pub(super) when: When,
    /// When its derived events go to the producer.
    pub(super) turn: Turn,
}

fn signal(receiver: watch::Receiver<bool>) -> impl std::future::Future<Output = ()> {
    let mut receiver = receiver;
    async move {
        let _ignored = receiver.wait_for(|set| *set).await;
    }
}

/// Has the writer insert what it holds now: the partition is draining, and
/// its shipments' rows wait in the writer's batch.
pub(super) async fn flush(sinks: Sinks) {
    let flushed = tokio::select! {
        flushed = sinks.writer.flush() => flushed,
        () = signal(sinks.stopped.clone()) => return,
    };
    // The shipments report how their own rows fared; this only hurries them.
    drop(flushed);
}

/// Ships `shipment` (see the module docs).
pub(super) async fn ship(sinks: Sinks, shipment: Shipment) {
    let Shipment {
        rollups,
        dead_letters,
        late,
        mut credit,
        when,
        turn,
    } = shipment;
    let id = rollups.as_ref().map(|b| b.id);
    let outcome = ship_outputs(&sinks, rollups, dead_letters, late, &mut credit, when, turn).await;
    sinks.actor.do_send(BatchWritten { id, outcome });
}

async fn ship_outputs(
    sinks: &Sinks,
    rollups: Option<RollupBatch>,
    dead_letters: Vec<Rejected>,
    late: Vec<Rejected>,
    credit: &mut Credit,
    when: When,
    turn: Turn,
) -> Shipped {
    let forwards = dead_letters
        .iter()
        .map(|r| (&sinks.dead_letters, r))
        .chain(late.iter().map(|r| (&sinks.late, r)));
    let deliveries = forwards.map(|(sink, record)| async move {
        let forward = Forward {
            source_topic: &sinks.topic,
            source_partition: sinks.partition,
            offset: record.offset,
            key: record.key.as_deref(),
            payload: record.payload.as_deref(),
            reason: &record.reason,
            kind: record.kind,
        };
        (
            record.anchor,
            sink.deliver(forward, signal(sinks.stopped.clone())).await,
        )
    });
    let mut delivered = Vec::new();
    for (anchor, result) in futures::future::join_all(deliveries).await {
        match result {
            Ok(true) => delivered.push(anchor),
            Ok(false) => return Shipped::Abandoned,
            Err(e) => {
                return Shipped::Failed(Failure::new("forwarding a record to a side topic", e))
            }
        }
    }
    if !delivered.is_empty() {
        sinks.actor.do_send(Forwarded { anchors: delivered });
    }
    let Some(RollupBatch {
        version,
        rows,
        events,
        ..
    }) = rollups
    else {
        return Shipped::Written;
    };
    let events = match sinks.derived.encode_batch(&rows, &events) {
        Ok(events) => events,
        Err(e) => return Shipped::Failed(Failure::new("encoding derived events", e)),
    };
    let queued = tokio::select! {
        queued = sinks.writer.write_rollups(rows, version, when) => queued,
        () = signal(sinks.draining.clone()) => return Shipped::Abandoned,
        () = signal(sinks.stopped.clone()) => return Shipped::Abandoned,
    };
    let ack = match queued {
        Ok(ack) => ack,
        Err(e) => return Shipped::Failed(Failure::new("queueing rollups for ClickHouse", e)),
    };
    match sinks
        .derived
        .publish(&events, turn, signal(sinks.stopped.clone()))
        .await
    {
        Ok(true) => {}
        Ok(false) => return Shipped::Abandoned,
        Err(e) => return Shipped::Failed(Failure::new("publishing derived events", e)),
    }
    credit.release();
    tokio::select! {
        written = ack => match written {
            Ok(Ok(())) => Shipped::Written,
            Ok(Err(e)) => Shipped::Failed(Failure::shared("writing rollups to ClickHouse", e)),
            Err(_) => Shipped::Failed(Failure::new(
                "writing rollups to ClickHouse",
                SinkError::Stopped("clickhouse"),
            )),
        },
        () = signal(sinks.stopped.clone()) => Shipped::Abandoned,
    }
}

/// Writes `saved` with the series histories taken with it, and reports.
/// A draining partition's checkpoint is written at once: the rebalance
/// waits for it.
pub(super) async fn save(sinks: Sinks, saved: Saved, series: Vec<SeriesSnapshot>) {
    const ACTION: &str = "writing the checkpoint to ClickHouse";
    let when = if *sinks.draining.borrow() {
        When::Now
    } else {
        When::Batched
    };
    let write = async {
        let ack = sinks
            .writer
            .write_state(&sinks.topic, sinks.partition, &saved, &series, when)
            .await
            .map_err(|e| Failure::new(ACTION, e))?;
        match ack.await {
            Ok(written) => written.map_err(|e| Failure::shared(ACTION, e)),
            Err(_) => Err(Failure::new(ACTION, SinkError::Stopped("clickhouse"))),
        }
    };
    let result = tokio::select! {
        result = write => result,
        () = signal(sinks.stopped.clone()) => return,
    };
    sinks.actor.do_send(CheckpointWritten { saved, result });
}

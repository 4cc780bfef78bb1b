//! Shipping what the pipeline emits: dead letters and late records to their
//! side topics, rollups to the ClickHouse writer and derived events to
//! Kafka, checkpoints to ClickHouse and Kafka. Completions come back to the
//! actor, which reports them to the pipeline.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use rdkafka::consumer::CommitMode;
use tracing::debug;

use super::PartitionActor;
use crate::derived::{self, DerivedEvent};
use crate::error::Failure;
use crate::kafka::consumer::commit;
use crate::pipeline::{Checkpoint, Rejected, RollupBatch};
use crate::sink::side_topic::{Forward, SideTopicSink};
use crate::sink::SinkError;
use crate::telemetry::metrics;

impl PartitionActor {
    pub(super) fn deliver_dead_letter(&mut self, letter: Rejected, ctx: &mut Context<Self>) {
        metrics::dead_letter(&self.topic, letter.kind);
        debug!(parent: &self.span, offset = letter.offset, reason = %letter.reason, "dead-lettering a record");
        let sink = self.deps.dead_letters.clone();
        self.forward(letter, sink, ctx);
    }

    pub(super) fn deliver_late(&mut self, late: Rejected, ctx: &mut Context<Self>) {
        let sink = self.deps.late.clone();
        self.forward(late, sink, ctx);
    }

    /// Sends a record to a side topic; its offset is released once the
    /// broker has it.
    fn forward(&mut self, record: Rejected, sink: SideTopicSink, ctx: &mut Context<Self>) {
        let (topic, partition) = (Arc::clone(&self.topic), self.partition);
        let stop = Self::signal(self.stop.subscribe());
        let delivery = async move {
            let forward = Forward {
                source_topic: &topic,
                source_partition: partition,
                offset: record.offset,
                key: record.key.as_deref(),
                payload: record.payload.as_deref(),
                reason: &record.reason,
                kind: record.kind,
            };
            let delivered = sink.deliver(forward, stop).await;
            (record.anchor, delivered)
        };
        let _handle = ctx.spawn(
            delivery
                .into_actor(self)
                .map(|(anchor, delivered), act, ctx| {
                    if delivered {
                        act.pipeline.forwarded(anchor);
                        act.maybe_finish_drain(ctx);
                    }
                }),
        );
    }

    /// Hands the rows to the ClickHouse writer (waiting for room in its
    /// queue: backpressure) and publishes the derived events; the batch is
    /// written once both are acknowledged.
    pub(super) fn write_rollups(&mut self, batch: RollupBatch, ctx: &mut Context<Self>) {
        let RollupBatch {
            id, rows, events, ..
        } = batch;
        let events: Vec<DerivedEvent> = rows
            .iter()
            .map(|row| DerivedEvent::Rollup(derived::rollup_event(row)))
            .chain(events)
            .collect();
        let writer = self.deps.writer.clone();
        let derived = self.deps.derived.clone();
        let stop = Self::signal(self.stop.subscribe());
        let enqueue = async move { writer.write_rollups(rows).await };
        ctx.wait(
            enqueue
                .into_actor(self)
                .map(move |queued, act, ctx| match queued {
                    Ok(ack) => {
                        let both = async move {
                            let publish = derived.publish(&events, stop);
                            futures::join!(ack, publish)
                        };
                        let _handle =
                            ctx.spawn(both.into_actor(act).map(
                                move |(written, published), act, ctx| match (written, published) {
                                    (Ok(Ok(())), Ok(true)) => {
                                        act.pipeline.rollups_written(id);
                                        act.maybe_finish_drain(ctx);
                                    }
                                    (Ok(Err(e)), _) => act.fail(
                                        Failure::shared("writing rollups to ClickHouse", e),
                                        ctx,
                                    ),
                                    (Err(_), _) => act.fail(
                                        Failure::new(
                                            "writing rollups to ClickHouse",
                                            SinkError::Stopped("clickhouse"),
                                        ),
                                        ctx,
                                    ),
                                    (_, Err(e)) => {
                                        act.fail(Failure::new("publishing derived events", e), ctx)
                                    }
                                    (_, Ok(false)) => {} // stopping: the next owner re-reads them
                                },
                            ));
                    }
                    Err(e) => act.fail(Failure::new("queueing rollups for ClickHouse", e), ctx),
                }),
        );
    }

    /// Writes the pipeline's checkpoint if it moved, then commits it to Kafka.
    pub(super) fn write_checkpoint(&mut self, ctx: &mut Context<Self>) {
        let Some(checkpoint) = self.pipeline.checkpoint() else {
            return;
        };
        if self.checkpoint_in_flight || Some(&checkpoint) == self.written_checkpoint.as_ref() {
            return;
        }
        self.checkpoint_in_flight = true;
        self.last_checkpoint_at = Instant::now();
        self.state_seq += 1;
        let seq = self.state_seq;
        let writer = self.deps.writer.clone();
        let (topic, partition) = (Arc::clone(&self.topic), self.partition);
        let written = checkpoint.clone();
        let write = async move {
            const ACTION: &str = "writing the checkpoint to ClickHouse";
            let ack = writer
                .write_checkpoint(&topic, partition, &written, seq)
                .await
                .map_err(|e| Failure::new(ACTION, e))?;
            match ack.await {
                Ok(written) => written.map_err(|e| Failure::shared(ACTION, e)),
                Err(_) => Err(Failure::new(ACTION, SinkError::Stopped("clickhouse"))),
            }
        };
        let _handle = ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.checkpoint_in_flight = false;
            match result {
                Ok(()) => {
                    act.commit(&checkpoint);
                    act.written_checkpoint = Some(checkpoint);
                    act.maybe_finish_drain(ctx);
                }
                Err(failure) => act.fail(failure, ctx),
            }
        }));
    }

    /// Mirrors a written checkpoint into Kafka's committed offsets, for lag
    /// tooling. Best effort: Reactor resumes from its own checkpoints.
    fn commit(&self, checkpoint: &Checkpoint) {
        let offsets = [((self.topic.to_string(), self.partition), checkpoint.offset)];
        if let Err(e) = commit(&*self.deps.consumer, &offsets, CommitMode::Async) {
            debug!(parent: &self.span, error = %e, "offset commit not sent");
        }
    }
}

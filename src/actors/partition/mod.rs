//! The partition actor: a thin shell around [`PartitionPipeline`].
//!
//! It owns one input partition: a reader task moves batches from the
//! partition's queue into its bounded mailbox; the actor runs them through
//! the pipeline and ships what comes out (rollups to the ClickHouse writer,
//! bad records to the dead-letter topic); acknowledgements flow back into
//! the pipeline, which decides the checkpoint; a periodic tick closes idle
//! windows, writes the checkpoint and commits the Kafka offset.
//!
//! Backpressure: while a rollup batch waits for room in the writer's queue,
//! or a schema is being fetched, the actor's mailbox is paused
//! (`ctx.wait`), the mailbox fills, the reader's `send` waits, and the
//! partition stops being read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn, Instrument};

mod outputs;
mod reader;

use reader::{read_batches, ReaderActivity};

use super::messages::{Drain, GetState, PartitionExited, PartitionState, RecordBatch};
use crate::error::{ExitReason, Failure};
use crate::health::Health;
use crate::kafka::consumer::{ReactorConsumer, RebalanceContext};
use crate::pipeline::Checkpoint;
use crate::pipeline::{Output, PartitionPipeline, PipelineSettings, Source};
use crate::registry::SchemaRegistry;
use crate::sink::clickhouse::state::Saved;
use crate::sink::clickhouse::RollupWriter;
use crate::sink::derived::DerivedSink;
use crate::sink::side_topic::SideTopicSink;
use crate::telemetry::loss::{LossReport, LossWatch};
use crate::telemetry::metrics;

/// A partition's split-off message queue.
pub type PartitionQueue = StreamPartitionQueue<RebalanceContext>;

/// Timing and sizing of partition actors.
#[derive(Debug, Clone)]
pub struct PartitionSettings {
    /// Pipeline settings per input topic kind.
    pub pipelines: std::collections::BTreeMap<crate::event::TopicKind, PipelineSettings>,
    /// Most records per batch.
    pub batch_max_messages: usize,
    /// How often to write a checkpoint when there is progress.
    pub checkpoint_interval: Duration,
    /// Longest wait for in-flight writes when draining.
    pub drain_timeout: Duration,
    /// Share of the input lost to the late and dead-letter paths over a
    /// minute above which a partition logs a warning.
    pub warn_rejected_share: f64,
}

/// What every partition actor shares. Cheap to clone.
#[derive(Clone)]
pub struct PartitionDeps {
    /// The group consumer (for commits).
    pub consumer: Arc<ReactorConsumer>,
    /// The ClickHouse writer.
    pub writer: RollupWriter,
    /// The dead-letter topic.
    pub dead_letters: SideTopicSink,
    /// The late-events topic.
    pub late: SideTopicSink,
    /// Derived events.
    pub derived: DerivedSink,
    /// The schema registry, if configured.
    pub registry: Option<SchemaRegistry>,
    /// Readiness reporting.
    pub health: Arc<Health>,
    /// Timing and sizing.
    pub settings: PartitionSettings,
}

impl std::fmt::Debug for PartitionDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionDeps")
            .field("writer", &self.writer)
            .field("dead_letters", &self.dead_letters)
            .field("late", &self.late)
            .field("derived", &self.derived)
            .field("registry", &self.registry)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Owns one input partition. See the module docs.
pub struct PartitionActor {
    topic: Arc<str>,
    partition: i32,
    generation: u64,
    pipeline: PartitionPipeline,
    deps: PartitionDeps,
    queue: Option<PartitionQueue>,
    reader: Option<tokio::task::JoinHandle<()>>,
    activity: Arc<ReaderActivity>,
    supervisor: Recipient<PartitionExited>,
    /// Set by the supervisor when it starts draining: abandons retries that
    /// would otherwise block the mailbox.
    cancel: watch::Receiver<bool>,
    /// Set when the actor stops: abandons in-flight deliveries.
    stop: watch::Sender<bool>,
    written_checkpoint: Option<Checkpoint>,
    /// Sequence number of the last state write (a restart continues it).
    state_seq: u64,
    checkpoint_in_flight: bool,
    last_checkpoint_at: Instant,
    draining: Option<oneshot::Sender<Option<Saved>>>,
    exit: ExitReason,
    loss: LossWatch,
    span: tracing::Span,
}

impl std::fmt::Debug for PartitionActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionActor")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl PartitionActor {
    /// An actor for `pipeline`'s partition, reading `queue`, resuming from
    /// `saved` (the state the pipeline was built from).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pipeline: PartitionPipeline,
        queue: PartitionQueue,
        generation: u64,
        saved: Option<Saved>,
        deps: PartitionDeps,
        supervisor: Recipient<PartitionExited>,
        cancel: watch::Receiver<bool>,
    ) -> Self {
        let topic = Arc::clone(pipeline.topic());
        let partition = pipeline.partition();
        let span = tracing::info_span!("partition", topic = %topic, partition);
        let loss = LossWatch::new(deps.settings.warn_rejected_share);
        PartitionActor {
            topic,
            partition,
            generation,
            pipeline,
            deps,
            queue: Some(queue),
            reader: None,
            activity: Arc::new(ReaderActivity::new()),
            supervisor,
            cancel,
            stop: watch::channel(false).0,
            state_seq: saved.as_ref().map_or(0, |s| s.seq),
            written_checkpoint: saved.map(|s| s.checkpoint),
            checkpoint_in_flight: false,
            last_checkpoint_at: Instant::now(),
            draining: None,
            exit: ExitReason::Drained,
            loss,
            span,
        }
    }

    fn signal(receiver: watch::Receiver<bool>) -> impl std::future::Future<Output = ()> {
        let mut receiver = receiver;
        async move {
            let _ignored = receiver.wait_for(|set| *set).await;
        }
    }

    fn process(&mut self, batch: RecordBatch, ctx: &mut Context<Self>) {
        match self.pipeline.process(batch.records) {
            Ok(out) => self.dispatch(out, ctx),
            Err(e) => self.fail(Failure::new("processing a batch", e), ctx),
        }
    }

    fn dispatch(&mut self, out: Output, ctx: &mut Context<Self>) {
        let stats = &out.stats;
        let counts = metrics::BatchCounts {
            records: stats.records,
            json: stats.json,
            avro: stats.avro,
            late: stats.late,
            windows_closed: stats.windows_closed,
        };
        metrics::batch(&self.topic, self.partition, counts);
        let lost = LossReport {
            records: stats.records,
            late: stats.late,
            dead_letters: out.dead_letters.len() as u64,
            over_key_limit: stats.over_key_limit,
        };
        if let Some(report) = self.loss.count(Instant::now(), lost) {
            warn!(
                parent: &self.span,
                records = report.records,
                late = report.late,
                dead_letters = report.dead_letters,
                over_key_limit = report.over_key_limit,
                share = %format_args!("{:.2}%", 100.0 * report.share()),
                "rejecting a large share of the input over the last minute: late records are not in the rollups (windows.allowed_lateness), dead letters are on the dead-letter topic with their reason{}",
                if report.over_key_limit > 0 { "; the partition is at limits.max_keys_per_partition" } else { "" }
            );
        }
        for letter in out.dead_letters {
            self.deliver_dead_letter(letter, ctx);
        }
        for late in out.late {
            self.deliver_late(late, ctx);
        }
        if let Some(batch) = out.rollups {
            self.write_rollups(batch, ctx);
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let source = Source {
            caught_up_since: self.activity.caught_up_since(),
            draining: self.draining.is_some(),
        };
        let out = match self.pipeline.tick(now, source) {
            Ok(out) => out,
            Err(e) => return self.fail(Failure::new("closing idle windows", e), ctx),
        };
        if out.stats.windows_closed > 0 {
            debug!(parent: &self.span, windows = out.stats.windows_closed, "partition idle: closed its open windows");
        }
        self.dispatch(out, ctx);
        self.deps.health.progress(&self.topic, self.partition, now);
        let state = self.pipeline.state();
        metrics::partition_progress(
            &self.topic,
            self.partition,
            state.open_windows.len(),
            state.watermark,
        );
        if self.draining.is_none()
            && now.saturating_duration_since(self.last_checkpoint_at)
                >= self.deps.settings.checkpoint_interval
        {
            self.write_checkpoint(ctx);
        }
    }

    fn maybe_finish_drain(&mut self, ctx: &mut Context<Self>) {
        if self.draining.is_none()
            || self.pipeline.has_unacknowledged_output()
            || self.checkpoint_in_flight
        {
            return;
        }
        let checkpoint = self.pipeline.checkpoint();
        if checkpoint.is_some() && checkpoint != self.written_checkpoint {
            self.write_checkpoint(ctx); // finishes the drain when acknowledged
            return;
        }
        self.finish_drain(ctx);
    }

    fn finish_drain(&mut self, ctx: &mut Context<Self>) {
        if let Some(reply) = self.draining.take() {
            let _ignored = reply.send(self.saved());
            ctx.stop();
        }
    }

    /// The last state written: where the next owner resumes.
    fn saved(&self) -> Option<Saved> {
        self.written_checkpoint.clone().map(|checkpoint| Saved {
            checkpoint,
            seq: self.state_seq,
        })
    }

    fn fail(&mut self, failure: Failure, ctx: &mut Context<Self>) {
        error!(parent: &self.span, error = %failure, retryable = failure.is_retryable(), "partition failed");
        self.exit = ExitReason::Failed(failure);
        ctx.stop();
    }
}

impl Actor for PartitionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        info!(parent: &self.span, generation = self.generation, checkpoint = ?self.written_checkpoint, "partition started");
        ctx.set_mailbox_capacity(4);
        self.deps
            .health
            .progress(&self.topic, self.partition, Instant::now());
        if let Some(queue) = self.queue.take() {
            let reader = read_batches(
                queue,
                ctx.address(),
                self.deps.settings.batch_max_messages,
                Arc::clone(&self.activity),
            );
            self.reader = Some(actix_rt::spawn(reader.instrument(self.span.clone())));
        }
        let every = self
            .pipeline
            .settings()
            .windows
            .idle_timeout
            .min(self.deps.settings.checkpoint_interval)
            / 4;
        let _handle = ctx.run_interval(
            every.clamp(Duration::from_millis(50), Duration::from_secs(1)),
            |act, ctx| act.tick(ctx),
        );
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        let _ignored = self.stop.send(true);
        self.deps.health.forget(&self.topic, self.partition);
        metrics::partition_released(&self.topic, self.partition);
        info!(parent: &self.span, reason = %self.exit, "partition stopped");
        self.supervisor.do_send(PartitionExited {
            topic: self.topic.to_string(),
            partition: self.partition,
            generation: self.generation,
            reason: self.exit.clone(),
            saved: self.saved(),
        });
    }
}

impl Handler<RecordBatch> for PartitionActor {
    type Result = ();

    fn handle(&mut self, batch: RecordBatch, ctx: &mut Context<Self>) {
        self.activity.received();
        if self.draining.is_some() {
            return; // not committed: the next owner reads it again
        }
        let missing = self.pipeline.missing_schemas(&batch.records);
        let Some(registry) = self.deps.registry.clone().filter(|_| !missing.is_empty()) else {
            self.process(batch, ctx);
            return;
        };
        let cancel = self.cancel.clone();
        let fetch = async move {
            let mut answers = Vec::with_capacity(missing.len());
            for id in missing {
                match registry
                    .schema_retrying(id, Self::signal(cancel.clone()))
                    .await
                {
                    Some(answer) => answers.push((id, answer)),
                    None => return None,
                }
            }
            Some(answers)
        };
        ctx.wait(fetch.into_actor(self).map(move |answers, act, ctx| {
            let Some(answers) = answers else { return };
            for (id, schema) in answers {
                if schema.is_none() {
                    warn!(parent: &act.span, schema_id = id, "schema id unknown to the registry; its records are dead-lettered");
                }
                act.pipeline.add_writer_schema(id, schema.as_deref());
            }
            act.process(batch, ctx);
        }));
    }
}

impl Handler<Drain> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        self.draining = Some(msg.reply);
        self.exit = ExitReason::Drained;
        let _handle = ctx.run_later(self.deps.settings.drain_timeout, |act, ctx| {
            if act.draining.is_some() {
                warn!(parent: &act.span, "drain timed out; stopping with writes in flight (the next owner re-reads them)");
                act.finish_drain(ctx);
            }
        });
        self.maybe_finish_drain(ctx);
    }
}

impl Handler<GetState> for PartitionActor {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(PartitionState {
            topic: self.topic.to_string(),
            partition: self.partition,
            pipeline: self.pipeline.state(),
        })
    }
}

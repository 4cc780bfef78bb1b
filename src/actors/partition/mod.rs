//! The partition actor: a thin shell around [`PartitionPipeline`] that
//! routes messages and supervises the tasks doing its I/O.
//!
//! It owns one input partition for one *generation* (one start). It first
//! loads the partition's state (`loading`: checkpoint, series histories,
//! a new epoch claimed), then hands the reader task its credits; the reader
//! moves batches from the partition's queue into the mailbox; the actor
//! runs them through the pipeline and hands what comes out to shipment
//! tasks (`ship`), whose completions come back as messages
//! ([`BatchWritten`], [`Forwarded`], [`CheckpointWritten`]) and are reported
//! to the pipeline, which decides the checkpoint. A periodic tick closes
//! idle windows and writes the checkpoint; [`Lifecycle`] decides when.
//!
//! Backpressure: a batch holds its reader credit until its outputs are
//! handed over, so a slow ClickHouse or broker stops the reading, never the
//! mailbox: `Drain` is handled at once in every phase, and a drain ends by
//! its deadline whatever is in flight.
//!
//! Fencing: the reader owns the partition's split queue, and the supervisor
//! splits the queue again for a new generation only once the old reader
//! has dropped it. A stopped actor tells the supervisor and touches nothing
//! else: health and metrics of the partition are the supervisor's, per
//! generation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::FutureExt as _;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::CommitMode;
use rdkafka::consumer::Consumer as _;
use tokio::sync::{oneshot, watch, Semaphore};
use tracing::{debug, error, info, warn, Instrument};

mod lifecycle;
mod loading;
mod quiet;
mod reader;
mod ship;

pub use lifecycle::{DrainStep, Lifecycle, Phase};
pub use reader::{Credit, OwnedQueue};
pub use ship::{BatchWritten, CheckpointWritten, Forwarded, Shipped};

use loading::{NotLoaded, Ready};
use quiet::Answer;
use reader::{Reader, ReaderActivity};
use ship::{Shipment, Sinks};

use super::io::IoHandle;
use super::messages::{Drain, Drained, GetState, PartitionExited, PartitionState, RecordBatch};
use crate::config::StartFrom;
use crate::error::{ExitReason, Failure, StoppedUnexpectedly};
use crate::event::decode::Decoder;
use crate::health::Health;
use crate::kafka::consumer::{commit, ReactorConsumer, RebalanceContext};
use crate::pipeline::{Output, PartitionPipeline, PipelineSettings, Source};
use crate::registry::SchemaRegistry;
use crate::sink::clickhouse::state::Saved;
use crate::sink::clickhouse::{RollupWriter, When};
use crate::sink::derived::{DerivedSink, Turn};
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
    /// Consumer group (state is kept per group).
    pub group_id: String,
    /// Where a partition with neither checkpoint nor committed offset
    /// starts.
    pub start_from: StartFrom,
    /// Most records per batch.
    pub batch_max_messages: usize,
    /// Batches between reading and their outputs being handed over.
    pub batches_in_flight: usize,
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
    /// The group consumer (committed offsets, seeks, commits).
    pub consumer: Arc<ReactorConsumer>,
    /// ClickHouse, for reading partition state.
    pub clickhouse: clickhouse::Client,
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
    /// Where reading and shipping run.
    pub io: IoHandle,
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

/// The state loaded (or why not), from the loading task.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Loaded(Result<Ready, NotLoaded>);

/// The registry's answers for the schema ids a waiting batch needs (`None`:
/// the fetch was abandoned, the partition is stopping).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct SchemasFetched(Option<Vec<(u32, Option<String>)>>);

/// The reader reached the end of its partition: the broker is asked to
/// confirm it now rather than at the next tick.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct AtEnd;

/// The broker's answers say the source has been quiet for `idle_timeout`:
/// tick now rather than at the next tick.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct QuietLongEnough;

/// How a partition actor starts.
#[derive(Debug)]
pub struct PartitionStart {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// This start's number in the process, to tell its reports apart.
    pub generation: u64,
    /// The partition's split queue.
    pub queue: OwnedQueue,
    /// Its decoder.
    pub decoder: Decoder,
    /// Its pipeline settings.
    pub settings: PipelineSettings,
    /// Set by the supervisor when the partition is revoked or the process
    /// stops: reading stops at once, waits for queue room are abandoned.
    pub cancel: watch::Receiver<bool>,
}

/// Owns one input partition. See the module docs.
pub struct PartitionActor {
    topic: Arc<str>,
    partition: i32,
    generation: u64,
    deps: PartitionDeps,
    /// Until loaded: what the pipeline is built from.
    parts: Option<(Decoder, PipelineSettings)>,
    pipeline: Option<PartitionPipeline>,
    queue: Option<OwnedQueue>,
    reader: Option<tokio::task::JoinHandle<()>>,
    credits: Arc<Semaphore>,
    activity: Arc<ReaderActivity>,
    /// How often to ask the broker for the end of the partition while the
    /// reader is at it (idle detection).
    confirm_every: Duration,
    idle_timeout: Duration,
    supervisor: Recipient<PartitionExited>,
    cancel: watch::Receiver<bool>,
    /// Set when the actor stops: every task it started ends.
    stop: watch::Sender<bool>,
    life: Lifecycle,
    /// Batches waiting for schemas from the registry, in order.
    waiting: VecDeque<RecordBatch>,
    fetching: bool,
    /// Records were processed since the last tick.
    processed: bool,
    drain_reply: Option<oneshot::Sender<Drained>>,
    /// Resolves once the last shipment with rollups has handed its derived
    /// events to the producer: the next one's turn ([`Turn`]).
    derived_turn: Option<oneshot::Receiver<()>>,
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
            .field("phase", &self.life.phase())
            .finish_non_exhaustive()
    }
}

impl PartitionActor {
    /// An actor for `start`, reporting its exit to `supervisor`.
    pub fn new(
        start: PartitionStart,
        deps: PartitionDeps,
        supervisor: Recipient<PartitionExited>,
    ) -> Self {
        let PartitionStart {
            topic,
            partition,
            generation,
            queue,
            decoder,
            settings,
            cancel,
        } = start;
        let span = tracing::info_span!("partition", topic = %topic, partition, generation);
        let loss = LossWatch::new(deps.settings.warn_rejected_share);
        let life = Lifecycle::new(Instant::now(), deps.settings.checkpoint_interval);
        let idle_timeout = settings.windows.idle_timeout;
        let confirm_every =
            (idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        PartitionActor {
            topic,
            partition,
            generation,
            deps,
            parts: Some((decoder, settings)),
            pipeline: None,
            queue: Some(queue),
            reader: None,
            credits: Arc::new(Semaphore::new(0)),
            activity: Arc::new(ReaderActivity::new()),
            confirm_every,
            idle_timeout,
            supervisor,
            cancel,
            stop: watch::channel(false).0,
            life,
            waiting: VecDeque::new(),
            fetching: false,
            processed: false,
            drain_reply: None,
            derived_turn: None,
            // Until a drain or a failure says otherwise.
            exit: ExitReason::Failed(Failure::new("running", StoppedUnexpectedly)),
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

    fn sinks(&self, ctx: &Context<Self>) -> Sinks {
        Sinks {
            topic: Arc::clone(&self.topic),
            partition: self.partition,
            writer: self.deps.writer.clone(),
            derived: self.deps.derived.clone(),
            dead_letters: self.deps.dead_letters.clone(),
            late: self.deps.late.clone(),
            actor: ctx.address(),
            stopped: self.stop.subscribe(),
            draining: self.cancel.clone(),
        }
    }

    fn spawn<F: std::future::Future<Output = ()> + 'static>(&self, task: F) {
        let _detached = actix_rt::spawn(task.instrument(self.span.clone()));
    }

    /// Runs `task` on the I/O runtime (see [`crate::actors::io`]).
    fn spawn_io<F: std::future::Future<Output = ()> + Send + 'static>(&self, task: F) {
        let _detached = self.deps.io.spawn(task.instrument(self.span.clone()));
    }

    fn start_loading(&self, ctx: &Context<Self>) {
        let health = Arc::clone(&self.deps.health);
        let (topic, partition, generation) =
            (Arc::clone(&self.topic), self.partition, self.generation);
        health.loading(&topic, partition, generation, Instant::now(), None);
        let report: loading::Report = Box::new(move |problem| {
            health.loading(&topic, partition, generation, Instant::now(), problem);
        });
        let me = ctx.address();
        let load = loading::load(
            self.deps.clone(),
            Arc::clone(&self.topic),
            self.partition,
            report,
            futures::future::select(
                Box::pin(Self::signal(self.cancel.clone())),
                Box::pin(Self::signal(self.stop.subscribe())),
            )
            .map(|_| ()),
        );
        self.spawn(async move {
            let result = load.await;
            me.do_send(Loaded(result));
        });
    }

    fn loaded(&mut self, ready: Ready, ctx: &mut Context<Self>) {
        let Some((decoder, settings)) = self.parts.take() else {
            return;
        };
        if self.life.phase() != Phase::Loading {
            return self.maybe_finish_drain(ctx);
        }
        let Ready {
            claimed,
            start,
            series,
            took,
        } = ready;
        let mut pipeline = PartitionPipeline::new(
            Arc::clone(&self.topic),
            self.partition,
            decoder,
            settings,
            start.as_ref(),
            claimed.epoch,
        );
        pipeline.restore(series);
        metrics::partition_loaded(took.as_secs_f64());
        info!(parent: &self.span, epoch = claimed.epoch, resume = ?start.as_ref().map(|c| c.offset), "partition running");
        self.pipeline = Some(pipeline);
        let now = Instant::now();
        self.life.loaded(claimed, now);
        self.deps
            .health
            .progress(&self.topic, self.partition, self.generation, now);
        self.credits
            .add_permits(self.deps.settings.batches_in_flight);
    }

    /// Processes waiting batches in order, fetching schemas first where
    /// they are missing (the batch and those after it wait).
    fn run_waiting(&mut self, ctx: &mut Context<Self>) {
        while !self.fetching {
            let Some(batch) = self.waiting.pop_front() else {
                return;
            };
            let Some(pipeline) = self.pipeline.as_ref() else {
                return;
            };
            let missing = pipeline.missing_schemas(&batch.records);
            match self.deps.registry.clone().filter(|_| !missing.is_empty()) {
                Some(registry) => {
                    self.waiting.push_front(batch);
                    self.fetching = true;
                    let cancel = self.stop.subscribe();
                    let me = ctx.address();
                    self.spawn(async move {
                        let mut answers = Vec::with_capacity(missing.len());
                        for id in missing {
                            match registry
                                .schema_retrying(id, Self::signal(cancel.clone()))
                                .await
                            {
                                Some(answer) => answers.push((id, answer)),
                                None => return me.do_send(SchemasFetched(None)),
                            }
                        }
                        me.do_send(SchemasFetched(Some(answers)));
                    });
                }
                None => self.process(batch, ctx),
            }
        }
    }

    fn process(&mut self, batch: RecordBatch, ctx: &mut Context<Self>) {
        let Some(pipeline) = self.pipeline.as_mut() else {
            return;
        };
        match pipeline.process(batch.records) {
            Ok(out) => {
                self.processed = true;
                self.dispatch(out, batch.credit, When::Batched, ctx);
            }
            Err(e) => self.fail(Failure::new("processing a batch", e), ctx),
        }
    }

    /// Ships `out`; its rows are written `when` says.
    fn dispatch(&mut self, out: Output, credit: Credit, when: When, ctx: &mut Context<Self>) {
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
        for letter in &out.dead_letters {
            metrics::dead_letter(&self.topic, letter.kind);
            debug!(parent: &self.span, offset = letter.offset, reason = %letter.reason, "dead-lettering a record");
        }
        if out.rollups.is_none() && out.dead_letters.is_empty() && out.late.is_empty() {
            return; // the credit goes back now
        }
        self.life.shipped();
        let turn = if out.rollups.is_some() {
            Turn::next(&mut self.derived_turn)
        } else {
            Turn::default()
        };
        let shipment = Shipment {
            rollups: out.rollups,
            dead_letters: out.dead_letters,
            late: out.late,
            credit,
            when,
            turn,
        };
        self.spawn_io(ship::ship(self.sinks(ctx), shipment));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.life.phase() != Phase::Running {
            return;
        }
        let now = Instant::now();
        self.confirm_quiet(now, ctx);
        // A batch waiting for the registry is input not yet counted: while
        // one waits the source is not quiet, however long the broker has
        // had nothing new, or the windows it belongs to would close without
        // it.
        let waiting = self.fetching || !self.waiting.is_empty();
        let caught_up = self.activity.caught_up_since().is_some() && !waiting;
        let source = Source {
            quiet_for: self.activity.quiet_for().filter(|_| !waiting),
            draining: false,
        };
        let Some(pipeline) = self.pipeline.as_mut() else {
            return;
        };
        let out = match pipeline.tick(source) {
            Ok(out) => out,
            Err(e) => return self.fail(Failure::new("closing idle windows", e), ctx),
        };
        // Nothing left to do counts as progress for health, even while the
        // broker cannot confirm that the source is quiet.
        let idle = caught_up && !pipeline.has_unacknowledged_output();
        let state = pipeline.state();
        let checkpoint = pipeline.checkpoint();
        if out.stats.windows_closed > 0 {
            debug!(parent: &self.span, windows = out.stats.windows_closed, "partition idle: closed its open windows");
        }
        // Windows closed because the source went quiet: nothing is coming
        // to share their INSERT, so they are written at once.
        self.dispatch(out, Credit::default(), When::Now, ctx);
        // Progress: records processed, or nothing left to do.
        if std::mem::take(&mut self.processed) || idle {
            self.deps
                .health
                .progress(&self.topic, self.partition, self.generation, now);
        }
        metrics::partition_progress(
            &self.topic,
            self.partition,
            state.open_windows.len(),
            state.watermark,
        );
        if self.life.checkpoint_due(checkpoint.as_ref(), now) {
            self.write_checkpoint(ctx);
        }
    }

    /// Asks the broker for the end of the partition, if due: idle closing
    /// needs it to have confirmed, for `idle_timeout` and without a gap,
    /// that the end has not moved (see [`quiet`]).
    fn confirm_quiet(&self, now: Instant, ctx: &Context<Self>) {
        let Some(reads) = self.activity.confirmation_due(now, self.confirm_every) else {
            return;
        };
        let (me, idle_timeout) = (ctx.address(), self.idle_timeout);
        let consumer = Arc::clone(&self.deps.consumer);
        let activity = Arc::clone(&self.activity);
        let (topic, partition) = (Arc::clone(&self.topic), self.partition);
        // Slower than this, the broker was unreachable for a while.
        let slow = self.confirm_every.max(Duration::from_secs(1));
        let span = self.span.clone();
        let _detached = self.deps.io.spawn_blocking(move || {
            let sent = Instant::now();
            let timeout = slow + Duration::from_secs(1);
            let end = match consumer.fetch_watermarks(&topic, partition, timeout) {
                Ok((_low, high)) => Some(high),
                Err(e) => {
                    debug!(parent: &span, error = %e, "the broker did not confirm the end of the partition: its windows are not closed as idle");
                    None
                }
            };
            let answer = Answer {
                reads,
                sent,
                answered: Instant::now(),
                end,
            };
            activity.answered(answer, slow);
            if activity.quiet_for().is_some_and(|quiet| quiet >= idle_timeout) {
                me.do_send(QuietLongEnough);
            }
        });
    }

    /// Writes the pipeline's checkpoint, with the series histories of
    /// every window written since the last one.
    fn write_checkpoint(&mut self, ctx: &mut Context<Self>) {
        let Some(pipeline) = self.pipeline.as_mut() else {
            return;
        };
        let Some(checkpoint) = pipeline.checkpoint() else {
            return;
        };
        let Some(saved) = self.life.start_write(checkpoint, Instant::now()) else {
            return;
        };
        let series = pipeline.take_snapshots();
        self.spawn_io(ship::save(self.sinks(ctx), saved, series));
    }

    fn maybe_finish_drain(&mut self, ctx: &mut Context<Self>) {
        if self.life.phase() != Phase::Draining {
            return;
        }
        let candidate = self
            .pipeline
            .as_ref()
            .and_then(PartitionPipeline::checkpoint);
        match self.life.drain_step(candidate.as_ref()) {
            DrainStep::Wait => {}
            DrainStep::WriteCheckpoint(_) => self.write_checkpoint(ctx),
            DrainStep::Finish => self.finish_drain(false, ctx),
        }
    }

    /// This start gives the partition up without waiting for its writes:
    /// its state writes still queued must not land after a successor's
    /// claim.
    fn fence_state_writes(&self) {
        if let Some(epoch) = self.life.epoch() {
            self.deps.writer.fence(&self.topic, self.partition, epoch);
        }
    }

    fn finish_drain(&mut self, cut_short: bool, ctx: &mut Context<Self>) {
        if let Some(reply) = self.drain_reply.take() {
            let _ignored = reply.send(Drained {
                written: self.life.written().cloned(),
                cut_short,
            });
        }
        ctx.stop();
    }

    /// Mirrors a written checkpoint into Kafka's committed offsets, for lag
    /// tooling and as the fallback when Reactor's state is lost.
    fn commit(&self, saved: &Saved) {
        let Some(checkpoint) = &saved.checkpoint else {
            return;
        };
        let offsets = [((self.topic.to_string(), self.partition), checkpoint.offset)];
        if let Err(e) = commit(&*self.deps.consumer, &offsets, CommitMode::Async) {
            debug!(parent: &self.span, error = %e, "offset commit not sent");
        }
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
        info!(parent: &self.span, phase = "loading", "partition started");
        if let Some(queue) = self.queue.take() {
            let reader = Reader {
                queue,
                actor: ctx.address(),
                max: self.deps.settings.batch_max_messages,
                credits: Arc::clone(&self.credits),
                activity: Arc::clone(&self.activity),
                cancel: self.cancel.clone(),
            };
            self.reader = Some(
                self.deps
                    .io
                    .spawn(reader.run().instrument(self.span.clone())),
            );
        }
        self.start_loading(ctx);
        let every = self
            .parts
            .as_ref()
            .map_or(Duration::from_secs(1), |(_, s)| s.windows.idle_timeout)
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
        self.credits.close();
        let _ignored = self.stop.send(true);
        info!(parent: &self.span, reason = %self.exit, "partition stopped");
        self.supervisor.do_send(PartitionExited {
            topic: self.topic.to_string(),
            partition: self.partition,
            generation: self.generation,
            reason: self.exit.clone(),
            saved: self.life.written().cloned(),
        });
    }
}

impl Handler<Loaded> for PartitionActor {
    type Result = ();

    fn handle(&mut self, Loaded(result): Loaded, ctx: &mut Context<Self>) {
        match result {
            Ok(ready) => self.loaded(ready, ctx),
            Err(NotLoaded::Cancelled) => self.maybe_finish_drain(ctx),
            Err(NotLoaded::Failed(failure)) => self.fail(failure, ctx),
        }
    }
}

impl Handler<RecordBatch> for PartitionActor {
    type Result = ();

    fn handle(&mut self, batch: RecordBatch, ctx: &mut Context<Self>) {
        self.activity.received();
        if self.life.phase() != Phase::Running {
            return; // not processed: the next owner reads it again
        }
        self.waiting.push_back(batch);
        self.run_waiting(ctx);
    }
}

impl Handler<AtEnd> for PartitionActor {
    type Result = ();

    fn handle(&mut self, _: AtEnd, ctx: &mut Context<Self>) {
        if self.life.phase() == Phase::Running {
            self.confirm_quiet(Instant::now(), ctx);
        }
    }
}

impl Handler<QuietLongEnough> for PartitionActor {
    type Result = ();

    fn handle(&mut self, _: QuietLongEnough, ctx: &mut Context<Self>) {
        self.tick(ctx);
    }
}

impl Handler<SchemasFetched> for PartitionActor {
    type Result = ();

    fn handle(&mut self, SchemasFetched(answers): SchemasFetched, ctx: &mut Context<Self>) {
        self.fetching = false;
        let span = self.span.clone();
        let (Some(answers), Some(pipeline)) = (answers, self.pipeline.as_mut()) else {
            return;
        };
        for (id, _) in answers.iter().filter(|(_, schema)| schema.is_none()) {
            warn!(parent: &span, schema_id = id, "schema id unknown to the registry; its records are dead-lettered");
        }
        pipeline.add_writer_schemas(answers.iter().map(|(id, s)| (*id, s.as_deref())));
        if self.life.phase() == Phase::Running {
            self.run_waiting(ctx);
        }
    }
}

impl Handler<BatchWritten> for PartitionActor {
    type Result = ();

    fn handle(&mut self, written: BatchWritten, ctx: &mut Context<Self>) {
        self.life.shipment_done();
        match written.outcome {
            Shipped::Written => {
                if let (Some(id), Some(pipeline)) = (written.id, self.pipeline.as_mut()) {
                    pipeline.rollups_written(id);
                }
            }
            Shipped::Abandoned => {}
            Shipped::Failed(failure) => return self.fail(failure, ctx),
        }
        self.maybe_finish_drain(ctx);
    }
}

impl Handler<Forwarded> for PartitionActor {
    type Result = ();

    fn handle(&mut self, forwarded: Forwarded, _ctx: &mut Context<Self>) {
        if let Some(pipeline) = self.pipeline.as_mut() {
            for anchor in forwarded.anchors {
                pipeline.forwarded(anchor);
            }
        }
    }
}

impl Handler<CheckpointWritten> for PartitionActor {
    type Result = ();

    fn handle(&mut self, written: CheckpointWritten, ctx: &mut Context<Self>) {
        match written.result {
            Ok(()) => {
                self.life.write_done(written.saved.seq);
                self.commit(&written.saved);
                self.maybe_finish_drain(ctx);
            }
            Err(failure) => self.fail(failure, ctx),
        }
    }
}

impl Handler<Drain> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        self.waiting.clear();
        self.life.drain();
        self.exit = ExitReason::Drained;
        if msg.lost {
            // Another start may own the partition already: nothing more of
            // this one's is written as its state (a final checkpoint would
            // land after the new owner's claim), and nothing is waited for;
            // the new owner re-reads from the last checkpoint written.
            self.fence_state_writes();
            self.drain_reply = Some(msg.reply);
            return self.finish_drain(false, ctx);
        }
        // What waits in the writer's batch (rows, or a checkpoint written
        // before the drain began) is inserted now, not at the flush
        // interval: the drain waits for it.
        if self.life.in_flight() {
            self.spawn_io(ship::flush(self.sinks(ctx)));
        }
        self.drain_reply = Some(msg.reply);
        let _handle = ctx.run_later(self.deps.settings.drain_timeout, |act, ctx| {
            warn!(parent: &act.span, shipments = act.life.shipments(), "drain timed out; stopping with writes in flight (the next owner re-reads them)");
            act.fence_state_writes();
            act.finish_drain(true, ctx);
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
            generation: self.generation,
            phase: match self.life.phase() {
                Phase::Loading => "loading",
                Phase::Running => "running",
                Phase::Draining => "draining",
            },
            pipeline: self.pipeline.as_ref().map(PartitionPipeline::state),
        })
    }
}

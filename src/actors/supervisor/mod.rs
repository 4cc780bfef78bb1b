//! The supervisor: owns the consumer-group membership and the partition actors.
//!
//! It answers the consumer's rebalance events (see `kafka::consumer` for the
//! protocol): on assignment it splits the partitions' queues and starts a
//! [`PartitionActor`] for each, spreading them over the worker arbiters, and
//! answers at once (each actor loads its own state, then moves its
//! partition to where it resumes); on revocation it drains them and returns
//! the offsets to commit. A partition actor that fails with a retryable
//! error is restarted, as a new generation that reloads its state, after a
//! back-off ([`RestartPolicy`]); a failure retrying cannot fix (a missing
//! table, bad credentials), or a spent restart budget, is reported as fatal
//! at once and the process exits with the cause and what to do, for its
//! orchestrator to restart. One failing partition never stops the others
//! before that.
//!
//! Generations are fenced: a partition's queue is split again only once the
//! previous generation's reader has dropped it, and the partition's health
//! entry and gauges are released here, per generation, never by an actor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::{BoxFuture, FutureExt, Shared};
use rdkafka::consumer::CommitMode;
use rdkafka::Offset;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

mod error;

pub use error::SupervisorError;

use super::messages::{
    Drain, Drained, GetAllStates, GetState, PartitionExited, PartitionState, Rebalance, Shutdown,
};
use super::partition::{OwnedQueue, PartitionActor, PartitionDeps, PartitionStart};
use super::restart::{Decision, RestartHistory, RestartPolicy};
use crate::error::{ExitReason, Failure};
use crate::event::decode::Decoder;
use crate::event::TopicKind;
use crate::kafka::consumer::{commit, TopicPartition};
use crate::kafka::RebalanceEvent;
use crate::telemetry::metrics;

/// How long a new generation waits for the previous one's reader to drop
/// the partition's queue (it is cancelled, so this takes milliseconds).
const RELEASE_DEADLINE: Duration = Duration::from_secs(10);

/// Resolves once a generation's reader has dropped its queue.
type Released = Shared<BoxFuture<'static, ()>>;

fn released(receiver: oneshot::Receiver<()>) -> Released {
    receiver.map(|_| ()).boxed().shared()
}

/// A running partition actor.
#[derive(Debug)]
struct Running {
    addr: Addr<PartitionActor>,
    generation: u64,
    cancel: watch::Sender<bool>,
    released: Released,
}

/// Everything the supervisor needs to start partitions.
#[derive(Debug)]
pub struct SupervisorSettings {
    /// Input topic names and what they carry.
    pub topics: HashMap<String, TopicKind>,
    /// Restart policy for failed partitions.
    pub restart: RestartPolicy,
}

/// A previous generation's queue was dropped.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct QueueReleased {
    tp: TopicPartition,
    generation: u64,
}

/// See the module docs.
pub struct Supervisor {
    deps: PartitionDeps,
    settings: SupervisorSettings,
    workers: Vec<ArbiterHandle>,
    next_worker: usize,
    events: Option<mpsc::UnboundedReceiver<RebalanceEvent>>,
    fatal: mpsc::UnboundedSender<Failure>,
    /// Partitions the group has assigned to this process.
    assigned: HashSet<TopicPartition>,
    running: HashMap<TopicPartition, Running>,
    /// Queues of stopped generations not yet dropped, by partition.
    releasing: HashMap<TopicPartition, (u64, Released)>,
    histories: HashMap<TopicPartition, RestartHistory>,
    next_generation: u64,
    stopping: bool,
    /// Since when no partition is assigned, and when that was last said.
    unassigned: Option<(Instant, Option<Instant>)>,
}

/// How long a process may hold no partition before it says so, and how
/// often it says so again.
const UNASSIGNED_WARNING: Duration = Duration::from_secs(120);

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("assigned", &self.assigned)
            .field("stopping", &self.stopping)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor answering `events`, running partitions on `workers`, and
    /// reporting unrecoverable failures on `fatal`.
    pub fn new(
        deps: PartitionDeps,
        settings: SupervisorSettings,
        workers: Vec<ArbiterHandle>,
        events: mpsc::UnboundedReceiver<RebalanceEvent>,
        fatal: mpsc::UnboundedSender<Failure>,
    ) -> Self {
        Supervisor {
            deps,
            settings,
            workers,
            next_worker: 0,
            events: Some(events),
            fatal,
            assigned: HashSet::new(),
            running: HashMap::new(),
            releasing: HashMap::new(),
            histories: HashMap::new(),
            next_generation: 0,
            stopping: false,
            unassigned: Some((Instant::now(), None)),
        }
    }

    /// The assignment changed: the gauge, and since when none is held.
    fn assignment_changed(&mut self) {
        metrics::assigned_partitions(self.assigned.len());
        self.unassigned = match (self.assigned.is_empty(), self.unassigned) {
            (false, _) => None,
            (true, None) => Some((Instant::now(), None)),
            (true, since) => since,
        };
    }

    /// Warns, every [`UNASSIGNED_WARNING`], while the process has held no
    /// partition for that long: it reads nothing, and its readiness cannot
    /// say so (a replica beyond the partition count is rightly idle).
    fn warn_if_unassigned(&mut self) {
        let Some((since, said)) = self.unassigned else {
            return;
        };
        let due = said.map_or(since, |s| s).elapsed() >= UNASSIGNED_WARNING;
        if self.stopping || !due {
            return;
        }
        warn!(
            for_s = since.elapsed().as_secs(),
            group = %self.deps.settings.group_id,
            "no partition is assigned to this process: it reads nothing. Either the group has more members \
             than the input topics have partitions (scale the replicas down, or add partitions), or the \
             group is not forming (see the broker's view of the group, e.g. kafka-consumer-groups \
             --describe --group <kafka.group_id>)"
        );
        self.unassigned = Some((since, Some(Instant::now())));
    }

    fn report_fatal(&self, failure: Failure) {
        error!(error = %failure, remedy = failure.remedy().unwrap_or(""), "fatal");
        let _ignored = self.fatal.send(failure);
    }

    /// Splits the partition's queue and starts a new generation of its
    /// actor. The previous generation's queue must be released.
    fn start_partition(
        &mut self,
        (topic, partition): &TopicPartition,
        ctx: &mut Context<Self>,
    ) -> Result<(), SupervisorError> {
        let not_an_input = || SupervisorError::NotAnInput {
            topic: topic.clone(),
            partition: *partition,
        };
        let kind = *self.settings.topics.get(topic).ok_or_else(not_an_input)?;
        let settings = *self
            .deps
            .settings
            .pipelines
            .get(&kind)
            .ok_or_else(not_an_input)?;
        let decoder = Decoder::new(kind, self.deps.registry.is_some(), settings.limits).map_err(
            |source| SupervisorError::Schema {
                kind: kind.as_str(),
                source,
            },
        )?;
        let queue = self
            .deps
            .consumer
            .split_partition_queue(topic, *partition)
            .ok_or_else(|| SupervisorError::SplitQueue {
                topic: topic.clone(),
                partition: *partition,
            })?;
        let (queue, on_release) = OwnedQueue::new(queue);
        let generation = self.next_generation;
        self.next_generation += 1;
        let (cancel, cancelled) = watch::channel(false);
        let start = PartitionStart {
            topic: Arc::from(topic.as_str()),
            partition: *partition,
            generation,
            queue,
            decoder,
            settings,
            cancel: cancelled,
        };
        let deps = self.deps.clone();
        let supervisor = ctx.address().recipient();
        let make =
            move |_: &mut Context<PartitionActor>| PartitionActor::new(start, deps, supervisor);
        let addr = match self
            .workers
            .get(self.next_worker % self.workers.len().max(1))
        {
            Some(worker) => PartitionActor::start_in_arbiter(worker, make),
            None => PartitionActor::create(make),
        };
        self.next_worker += 1;
        let _previous = self.running.insert(
            (topic.clone(), *partition),
            Running {
                addr,
                generation,
                cancel,
                released: released(on_release),
            },
        );
        Ok(())
    }

    /// Resolves once the queues of `partitions`' previous generations are
    /// all dropped (`false` if one is not by the deadline).
    fn wait_released(
        &self,
        partitions: &[TopicPartition],
    ) -> impl std::future::Future<Output = bool> + use<> {
        let waits: Vec<Released> = partitions
            .iter()
            .filter_map(|tp| self.releasing.get(tp).map(|(_, r)| r.clone()))
            .collect();
        async move {
            tokio::time::timeout(RELEASE_DEADLINE, futures::future::join_all(waits))
                .await
                .is_ok()
        }
    }

    /// Starts `partitions` once their previous generations let go of their
    /// queues; `done` gets those started.
    fn start_when_released(
        &mut self,
        partitions: Vec<TopicPartition>,
        ctx: &mut Context<Self>,
        done: impl FnOnce(&mut Self, Vec<TopicPartition>) + 'static,
    ) {
        let released = self.wait_released(&partitions);
        ctx.wait(released.into_actor(self).map(move |in_time, act, ctx| {
            let mut started = Vec::with_capacity(partitions.len());
            for tp in partitions {
                if !in_time && act.releasing.contains_key(&tp) {
                    act.report_fatal(Failure::new(
                        "starting a partition",
                        SupervisorError::NotReleased {
                            topic: tp.0.clone(),
                            partition: tp.1,
                        },
                    ));
                    continue;
                }
                match act.start_partition(&tp, ctx) {
                    Ok(()) => started.push(tp),
                    Err(e) => act.report_fatal(Failure::new("starting a partition", e)),
                }
            }
            done(act, started);
        }));
    }

    fn on_assigned(
        &mut self,
        partitions: Vec<TopicPartition>,
        reply: std::sync::mpsc::SyncSender<Vec<(TopicPartition, Offset)>>,
        ctx: &mut Context<Self>,
    ) {
        if self.stopping {
            let _ignored = reply.send(Vec::new());
            return;
        }
        self.start_when_released(partitions, ctx, move |act, started| {
            // Fetching starts from the committed offset; each actor moves
            // its partition to where its own state says, once loaded.
            let starts = started
                .iter()
                .map(|tp| (tp.clone(), Offset::Stored))
                .collect();
            for tp in started {
                info!(topic = %tp.0, partition = tp.1, "partition assigned; loading its state");
                let _new = act.assigned.insert(tp);
            }
            act.assignment_changed();
            let _ignored = reply.send(starts);
        });
    }

    /// A generation of `tp` is gone from the process: its queue is waited
    /// for, and its health entry and gauges released.
    fn release(
        &mut self,
        tp: &TopicPartition,
        generation: u64,
        released: Released,
        ctx: &mut Context<Self>,
    ) {
        let topic: Arc<str> = Arc::from(tp.0.as_str());
        self.deps.health.forget(&topic, tp.1, generation);
        metrics::partition_released(&tp.0, tp.1);
        let _older = self
            .releasing
            .insert(tp.clone(), (generation, released.clone()));
        let me = ctx.address();
        let tp = tp.clone();
        let _detached = actix_rt::spawn(async move {
            released.await;
            me.do_send(QueueReleased { tp, generation });
        });
    }

    /// Drains the given partitions; resolves to the state each wrote last.
    fn drain(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
        ctx: &mut Context<Self>,
    ) -> impl std::future::Future<Output = Vec<(TopicPartition, Drained)>> + use<> {
        let mut drains = Vec::new();
        for tp in partitions {
            let _ignored = self.assigned.remove(&tp);
            if let Some(running) = self.running.remove(&tp) {
                let _ignored = running.cancel.send(true);
                let (reply, answer) = oneshot::channel();
                running.addr.do_send(Drain { reply, lost });
                self.release(&tp, running.generation, running.released.clone(), ctx);
                drains.push((tp, answer, running.released));
            }
        }
        self.assignment_changed();
        let timeout = self.deps.settings.drain_timeout + Duration::from_secs(5);
        let (began, count) = (Instant::now(), drains.len());
        let all = futures::future::join_all(drains.into_iter().map(
            move |(tp, answer, released)| async move {
                let drained = async {
                    let saved = answer.await;
                    released.await;
                    saved
                };
                match tokio::time::timeout(timeout, drained).await {
                    Ok(Ok(drained)) => (tp, drained),
                    _ => {
                        warn!(topic = %tp.0, partition = tp.1, "partition did not drain in time");
                        let cut_short = Drained {
                            written: None,
                            cut_short: true,
                        };
                        (tp, cut_short)
                    }
                }
            },
        ));
        async move {
            let drained = all.await;
            if count > 0 {
                // How long the rebalance (or the shutdown) waited here.
                info!(partitions = count, took = ?began.elapsed(), "partitions drained");
            }
            drained
        }
    }

    fn on_revoked(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
        reply: std::sync::mpsc::SyncSender<Vec<(TopicPartition, i64)>>,
        ctx: &mut Context<Self>,
    ) {
        let drained = self.drain(partitions, lost, ctx);
        ctx.wait(drained.into_actor(self).map(move |drained, _act, _ctx| {
            let commits = if lost { Vec::new() } else { to_commit(drained) };
            let _ignored = reply.send(commits);
        }));
    }

    fn restart(&mut self, tp: TopicPartition, ctx: &mut Context<Self>) {
        if self.stopping || !self.assigned.contains(&tp) || self.running.contains_key(&tp) {
            return; // revoked, or reassigned and already running, meanwhile
        }
        self.start_when_released(vec![tp], ctx, |_act, started| {
            for tp in started {
                info!(topic = %tp.0, partition = tp.1, "partition restarted; reloading its state");
            }
        });
    }
}

/// The offsets to commit for drained partitions: where each resumes.
fn to_commit(drained: Vec<(TopicPartition, Drained)>) -> Vec<(TopicPartition, i64)> {
    drained
        .into_iter()
        .filter_map(|(tp, drained)| {
            let checkpoint = drained.written.and_then(|s| s.checkpoint)?;
            Some((tp, checkpoint.offset))
        })
        .collect()
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        metrics::assigned_partitions(0);
        let _handle = ctx.run_interval(Duration::from_secs(10), |act, _| {
            act.warn_if_unassigned();
        });
        if let Some(events) = self.events.take() {
            let stream = futures::stream::unfold(events, |mut events| async move {
                events.recv().await.map(|event| (Rebalance(event), events))
            });
            ctx.add_message_stream(stream);
        }
    }
}

impl Handler<Rebalance> for Supervisor {
    type Result = ();

    fn handle(&mut self, Rebalance(event): Rebalance, ctx: &mut Context<Self>) {
        match event {
            RebalanceEvent::Assigned { partitions, reply } => {
                self.on_assigned(partitions, reply, ctx)
            }
            RebalanceEvent::Revoked {
                partitions,
                lost,
                reply,
            } => self.on_revoked(partitions, lost, reply, ctx),
            RebalanceEvent::UnexpectedMessage { partition, offset } => {
                let error = SupervisorError::UnexpectedMessage {
                    topic: partition.0,
                    partition: partition.1,
                    offset,
                };
                self.report_fatal(Failure::new("consuming", error));
            }
        }
    }
}

impl Handler<PartitionExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, exit: PartitionExited, ctx: &mut Context<Self>) {
        let tp = (exit.topic, exit.partition);
        let current = self
            .running
            .get(&tp)
            .is_some_and(|r| r.generation == exit.generation);
        if !current {
            return; // drained on purpose (released then), or a stale report
        }
        let Some(running) = self.running.remove(&tp) else {
            return;
        };
        self.release(&tp, running.generation, running.released, ctx);
        if self.stopping {
            return;
        }
        let ExitReason::Failed(failure) = exit.reason else {
            return;
        };
        let history = self.histories.entry(tp.clone()).or_default();
        let name = format!("{}/{}", tp.0, tp.1);
        match self
            .settings
            .restart
            .decide(&name, failure.clone(), history, Instant::now())
        {
            Decision::Restart(delay) => {
                metrics::partition_restart(&tp.0, tp.1);
                warn!(topic = %tp.0, partition = tp.1, error = %failure, restart_in = ?delay, "partition failed; restarting from its checkpoint");
                let _handle = ctx.run_later(delay, move |act, ctx| act.restart(tp, ctx));
            }
            Decision::Stop(failure) => self.report_fatal(failure),
        }
    }
}

impl Handler<QueueReleased> for Supervisor {
    type Result = ();

    fn handle(&mut self, released: QueueReleased, _ctx: &mut Context<Self>) {
        if self
            .releasing
            .get(&released.tp)
            .is_some_and(|(g, _)| *g == released.generation)
        {
            let _done = self.releasing.remove(&released.tp);
        }
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) {
        self.stopping = true;
        let everything: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        let drained = self.drain(everything, false, ctx);
        let consumer = Arc::clone(&self.deps.consumer);
        let finish = async move {
            let drained = drained.await;
            let cut_short = drained.iter().filter(|(_, d)| d.cut_short).count();
            let commits = to_commit(drained);
            if !commits.is_empty() {
                let committed = tokio::task::spawn_blocking(move || {
                    commit(&*consumer, &commits, CommitMode::Sync)
                })
                .await;
                if let Ok(Err(e)) = committed {
                    warn!(error = %e, "committing offsets at shutdown failed; Reactor's checkpoints hold the position");
                }
            }
            cut_short
        };
        ctx.wait(finish.into_actor(self).map(move |cut_short, _act, ctx| {
            let _ignored = msg.done.send(cut_short);
            ctx.stop();
        }));
    }
}

impl Handler<GetAllStates> for Supervisor {
    type Result = ResponseFuture<Vec<PartitionState>>;

    fn handle(&mut self, _: GetAllStates, _ctx: &mut Context<Self>) -> Self::Result {
        let asks: Vec<_> = self
            .running
            .values()
            .map(|r| r.addr.send(GetState))
            .collect();
        Box::pin(async move {
            let mut states: Vec<PartitionState> = futures::future::join_all(asks)
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            states.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            states
        })
    }
}

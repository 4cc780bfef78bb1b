//! The supervisor: owns the consumer-group membership and the partition actors.
//!
//! It answers the consumer's rebalance events (see `kafka::consumer` for the
//! protocol): on assignment it loads the partitions' checkpoints from
//! ClickHouse, splits their queues and starts a [`PartitionActor`] for each,
//! spreading them over the worker arbiters; on revocation it drains them and
//! returns the offsets to commit. A partition actor that fails with a
//! retryable error is restarted from its last checkpoint after a back-off
//! ([`RestartPolicy`]); a failure retrying cannot fix (a missing table, bad
//! credentials), or a spent restart budget, is reported as fatal at once and
//! the process exits with the cause and what to do, for its orchestrator to
//! restart. One failing partition never stops the others before that.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::Offset;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

mod error;

pub use error::SupervisorError;

use super::messages::{
    Drain, GetAllStates, GetState, PartitionExited, PartitionState, Rebalance, Shutdown,
};
use super::partition::{PartitionActor, PartitionDeps};
use super::restart::{Decision, RestartHistory, RestartPolicy};
use crate::config::StartFrom;
use crate::error::{ExitReason, Failure};
use crate::event::decode::Decoder;
use crate::event::TopicKind;
use crate::kafka::consumer::{commit, TopicPartition};
use crate::kafka::RebalanceEvent;
use crate::pipeline::PartitionPipeline;
use crate::sink::clickhouse::state::{self, Saved};
use crate::telemetry::metrics;

/// How long assignment waits for ClickHouse to hand out checkpoints.
const CHECKPOINT_LOAD_DEADLINE: Duration = Duration::from_secs(60);

/// A running partition actor.
#[derive(Debug)]
struct Running {
    addr: Addr<PartitionActor>,
    generation: u64,
    cancel: watch::Sender<bool>,
}

/// Everything the supervisor needs to start partitions.
#[derive(Debug)]
pub struct SupervisorSettings {
    /// Consumer group (checkpoints are per group).
    pub group_id: String,
    /// Input topic names and what they carry.
    pub topics: HashMap<String, TopicKind>,
    /// Where partitions without a checkpoint start.
    pub start_from: StartFrom,
    /// Restart policy for failed partitions.
    pub restart: RestartPolicy,
}

/// See the module docs.
pub struct Supervisor {
    deps: PartitionDeps,
    clickhouse: clickhouse::Client,
    settings: SupervisorSettings,
    workers: Vec<ArbiterHandle>,
    next_worker: usize,
    events: Option<mpsc::UnboundedReceiver<RebalanceEvent>>,
    fatal: mpsc::UnboundedSender<Failure>,
    /// Partitions the group has assigned to this process.
    assigned: HashSet<TopicPartition>,
    running: HashMap<TopicPartition, Running>,
    histories: HashMap<TopicPartition, RestartHistory>,
    next_generation: u64,
    stopping: bool,
}

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
        clickhouse: clickhouse::Client,
        settings: SupervisorSettings,
        workers: Vec<ArbiterHandle>,
        events: mpsc::UnboundedReceiver<RebalanceEvent>,
        fatal: mpsc::UnboundedSender<Failure>,
    ) -> Self {
        Supervisor {
            deps,
            clickhouse,
            settings,
            workers,
            next_worker: 0,
            events: Some(events),
            fatal,
            assigned: HashSet::new(),
            running: HashMap::new(),
            histories: HashMap::new(),
            next_generation: 0,
            stopping: false,
        }
    }

    fn report_fatal(&self, failure: Failure) {
        error!(error = %failure, remedy = failure.remedy().unwrap_or(""), "fatal");
        let _ignored = self.fatal.send(failure);
    }

    fn start_offset(&self, saved: Option<&Saved>) -> Offset {
        match (saved, self.settings.start_from) {
            (Some(s), _) => Offset::Offset(s.checkpoint.offset),
            (None, StartFrom::Earliest) => Offset::Beginning,
            (None, StartFrom::Latest) => Offset::End,
        }
    }

    /// Splits the partition's queue and starts its actor.
    fn start_partition(
        &mut self,
        (topic, partition): &TopicPartition,
        saved: Option<Saved>,
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
        let pipeline = PartitionPipeline::new(
            Arc::from(topic.as_str()),
            *partition,
            decoder,
            settings,
            saved.as_ref().map(|s| &s.checkpoint),
        );
        let generation = self.next_generation;
        self.next_generation += 1;
        let (cancel, cancelled) = watch::channel(false);
        let deps = self.deps.clone();
        let supervisor = ctx.address().recipient();
        let make = move |_: &mut Context<PartitionActor>| {
            PartitionActor::new(
                pipeline, queue, generation, saved, deps, supervisor, cancelled,
            )
        };
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
            },
        );
        Ok(())
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
        let client = self.clickhouse.clone();
        let group = self.settings.group_id.clone();
        let load =
            async move { state::load_retrying(&client, &group, CHECKPOINT_LOAD_DEADLINE).await };
        ctx.wait(load.into_actor(self).map(move |loaded, act, ctx| {
            let saved = match loaded {
                Ok(saved) => saved,
                Err(e) => {
                    act.report_fatal(
                        Failure::new("reading checkpoints from ClickHouse", e).fatal(),
                    );
                    let _ignored = reply.send(Vec::new());
                    return;
                }
            };
            let mut starts = Vec::with_capacity(partitions.len());
            for tp in partitions {
                let saved = saved.get(&tp).cloned();
                let start = act.start_offset(saved.as_ref());
                let checkpoint = saved.as_ref().map(|s| s.checkpoint.clone());
                if let Err(e) = act.start_partition(&tp, saved, ctx) {
                    act.report_fatal(Failure::new("starting a partition", e));
                    continue;
                }
                info!(topic = %tp.0, partition = tp.1, ?checkpoint, "resuming partition");
                starts.push((tp.clone(), start));
                let _new = act.assigned.insert(tp);
            }
            metrics::assigned_partitions(act.assigned.len());
            let _ignored = reply.send(starts);
        }));
    }

    /// Drains the given partitions; resolves to the checkpoint each wrote last.
    fn drain(
        &mut self,
        partitions: Vec<TopicPartition>,
    ) -> impl std::future::Future<Output = Vec<(TopicPartition, Option<Saved>)>> + use<> {
        let mut drains = Vec::new();
        for tp in partitions {
            let _ignored = self.assigned.remove(&tp);
            if let Some(running) = self.running.remove(&tp) {
                let _ignored = running.cancel.send(true);
                let (reply, answer) = oneshot::channel();
                running.addr.do_send(Drain { reply });
                drains.push((tp, answer));
            }
        }
        metrics::assigned_partitions(self.assigned.len());
        let timeout = self.deps.settings.drain_timeout + Duration::from_secs(5);
        futures::future::join_all(drains.into_iter().map(move |(tp, answer)| async move {
            match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(saved)) => (tp, saved),
                _ => {
                    warn!(topic = %tp.0, partition = tp.1, "partition did not drain in time");
                    (tp, None)
                }
            }
        }))
    }

    fn on_revoked(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
        reply: std::sync::mpsc::SyncSender<Vec<(TopicPartition, i64)>>,
        ctx: &mut Context<Self>,
    ) {
        let drained = self.drain(partitions);
        ctx.wait(drained.into_actor(self).map(move |drained, _act, _ctx| {
            let commits = if lost {
                Vec::new()
            } else {
                drained
                    .into_iter()
                    .filter_map(|(tp, saved)| saved.map(|s| (tp, s.checkpoint.offset)))
                    .collect()
            };
            let _ignored = reply.send(commits);
        }));
    }

    fn restart(&mut self, tp: TopicPartition, saved: Option<Saved>, ctx: &mut Context<Self>) {
        if self.stopping || !self.assigned.contains(&tp) || self.running.contains_key(&tp) {
            return; // revoked, or reassigned and already running, meanwhile
        }
        // Seek first: this bumps the partition's fetch version, so records
        // fetched for the failed actor are discarded before the new one reads.
        let offset = self.start_offset(saved.as_ref());
        let checkpoint = saved.as_ref().map(|s| s.checkpoint.clone());
        if let Err(source) = self.deps.consumer.seek(&tp.0, tp.1, offset, Duration::ZERO) {
            let error = SupervisorError::Seek {
                topic: tp.0.clone(),
                partition: tp.1,
                offset: format!("{offset:?}"),
                source: Box::new(source),
            };
            self.report_fatal(Failure::new("restarting a partition", error));
            return;
        }
        match self.start_partition(&tp, saved, ctx) {
            Ok(()) => info!(topic = %tp.0, partition = tp.1, ?checkpoint, "partition restarted"),
            Err(e) => self.report_fatal(Failure::new("restarting a partition", e)),
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
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
        if self.stopping || !current {
            return; // drained on purpose, or a report from an older generation
        }
        let _ignored = self.running.remove(&tp);
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
                let saved = exit.saved;
                let _handle = ctx.run_later(delay, move |act, ctx| act.restart(tp, saved, ctx));
            }
            Decision::Stop(failure) => self.report_fatal(failure),
        }
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) {
        self.stopping = true;
        let everything: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        let drained = self.drain(everything);
        let consumer = Arc::clone(&self.deps.consumer);
        let finish = async move {
            let commits: Vec<(TopicPartition, i64)> = drained
                .await
                .into_iter()
                .filter_map(|(tp, saved)| saved.map(|s| (tp, s.checkpoint.offset)))
                .collect();
            if !commits.is_empty() {
                let committed = tokio::task::spawn_blocking(move || {
                    commit(&*consumer, &commits, CommitMode::Sync)
                })
                .await;
                if let Ok(Err(e)) = committed {
                    warn!(error = %e, "committing offsets at shutdown failed; Reactor's checkpoints hold the position");
                }
            }
        };
        ctx.wait(finish.into_actor(self).map(move |(), _act, ctx| {
            let _ignored = msg.done.send(());
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

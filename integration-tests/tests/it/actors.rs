//! The actor shell, driven directly (`#[actix::test]`) against the real
//! services: a partition actor draining while its sink is stalled, and the
//! supervisor's handling of stale and fatal reports and of its restart
//! budget. The consumer
//! is real but never joins its group: the tests assign by message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::{Context as _, Result};
use integration_tests::proxy::{Fault, FaultProxy, Scope};
use integration_tests::shell::partition_deps;
use integration_tests::{Scenario, TestEnv};
use rdkafka::Offset;
use reactor::actors::messages::{Drain, GetAllStates, GetState, PartitionExited, RecordBatch};
use reactor::actors::partition::{Credit, OwnedQueue, PartitionStart};
use reactor::actors::{
    PartitionActor, PartitionDeps, RestartPolicy, Supervisor, SupervisorSettings,
};
use reactor::error::{ExitReason, Failure};
use reactor::event::decode::Decoder;
use reactor::event::{EngagementEvent, EngagementKind, Event, EventTime, Record, TopicKind};
use reactor::kafka::RebalanceEvent;
use reactor::sink::SinkError;
use tokio::sync::{mpsc, oneshot, watch};

async fn deps(env: &TestEnv, clickhouse_url: &str) -> Result<PartitionDeps> {
    partition_deps(env, clickhouse_url, Duration::from_secs(3)).await
}

fn assign(deps: &PartitionDeps, topic: &str) -> Result<()> {
    integration_tests::shell::assign(deps, topic, 0)
}

/// Collects the exits partition actors report.
struct Exits(mpsc::UnboundedSender<PartitionExited>);

impl Actor for Exits {
    type Context = Context<Self>;
}

impl Handler<PartitionExited> for Exits {
    type Result = ();

    fn handle(&mut self, exit: PartitionExited, _ctx: &mut Context<Self>) {
        let _ignored = self.0.send(exit);
    }
}

/// A view at `seconds` into the scenario's event time.
fn view(offset: i64, seconds: i64) -> Result<Record> {
    let event = Event::Engagement(EngagementEvent {
        event_id: format!("e{offset}"),
        occurred_at: EventTime::from_millis(crate::START_MS + seconds * 1000),
        content_id: "content-1".into(),
        campaign_id: "campaign-1".into(),
        channel: "web".into(),
        user_id: "u".into(),
        kind: EngagementKind::View,
        dwell_ms: None,
    });
    Ok(Record {
        offset,
        key: None,
        payload: Some(reactor::event::encode::to_json(&event)?),
    })
}

#[actix::test]
async fn a_drain_under_a_stalled_sink_ends_by_its_deadline() -> Result<()> {
    drain_under_a_stalled_sink(false).await
}

/// A lost assignment (another member may own the partition already) is
/// given up at once: nothing is waited for, no final checkpoint written.
#[actix::test]
async fn a_lost_partition_under_a_stalled_sink_is_given_up_at_once() -> Result<()> {
    drain_under_a_stalled_sink(true).await
}

async fn drain_under_a_stalled_sink(lost: bool) -> Result<()> {
    let env = TestEnv::new("actor-drain", &Scenario::default()).await?;
    let proxy = FaultProxy::start(&env.services.clickhouse).await?;
    let deps = deps(&env, &proxy.url()).await?;
    let topic = env.config.topics.engagement.clone();
    let queue = deps
        .consumer
        .split_partition_queue(&topic, 0)
        .context("split")?;
    let (queue, released) = OwnedQueue::new(queue);
    assign(&deps, &topic)?;
    let (cancel, cancelled) = watch::channel(false);
    let (exits_tx, mut exits) = mpsc::unbounded_channel();
    let exits_addr = Exits(exits_tx).start();
    let settings = deps.settings.pipelines[&TopicKind::Engagement];
    let start = PartitionStart {
        topic: Arc::from(topic.as_str()),
        partition: 0,
        generation: 7,
        queue,
        decoder: Decoder::new(TopicKind::Engagement, false, settings.limits)?,
        settings,
        cancel: cancelled,
    };
    let actor = PartitionActor::new(start, deps, exits_addr.recipient()).start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while actor.send(GetState).await?.phase != "running" {
        anyhow::ensure!(Instant::now() < deadline, "the partition never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // ClickHouse stops taking inserts; a batch closes a window, so its rows
    // wait on the stalled writer.
    proxy.set(Fault::Pause, Scope::Inserts);
    let records = (0..20)
        .map(|i| view(i, i * 10))
        .collect::<Result<Vec<_>>>()?;
    actor.do_send(RecordBatch {
        records,
        credit: Credit::default(),
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = actor.send(GetState).await?;
    anyhow::ensure!(
        state
            .pipeline
            .as_ref()
            .is_some_and(|p| p.batches_in_flight > 0),
        "no rollups in flight: {state:?}"
    );

    let began = Instant::now();
    let _ignored = cancel.send(true);
    let (reply, answer) = oneshot::channel();
    actor.do_send(Drain { reply, lost });
    let drained = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .context("the drain never answered")??;
    // A lost partition waits for nothing by design; a drain that reached
    // its deadline with the write in flight says it was cut short.
    assert_eq!(drained.cut_short, !lost);
    let saved = drained.written;
    let took = began.elapsed();
    if lost {
        assert!(
            took < Duration::from_secs(1),
            "the drain took {took:?}; a lost partition waits for nothing"
        );
    } else {
        assert!(
            took >= Duration::from_millis(2_500) && took < Duration::from_secs(6),
            "the drain took {took:?}; it waits for the stalled write until its 3 s deadline"
        );
    }
    // Nothing was checkpointed past the claim: the next owner re-reads all.
    let saved = saved.context("the claim was written, so there is a state")?;
    assert_eq!((saved.epoch, saved.checkpoint), (1, None));
    let exit = tokio::time::timeout(Duration::from_secs(5), exits.recv())
        .await?
        .context("no exit report")?;
    assert_eq!(exit.generation, 7);
    assert!(
        matches!(exit.reason, ExitReason::Drained),
        "{:?}",
        exit.reason
    );
    tokio::time::timeout(Duration::from_secs(2), released)
        .await
        .context("the queue was not released")?
        .ok();
    proxy.heal();
    Ok(())
}

/// A supervisor for `env`'s input topics with an assignment of
/// engagement/0 delivered as the consumer's rebalance callback would.
async fn supervisor_with_one_partition(
    env: &TestEnv,
    restart: RestartPolicy,
) -> Result<(
    Addr<Supervisor>,
    mpsc::UnboundedReceiver<Failure>,
    (String, i32),
)> {
    let deps = deps(env, &env.services.clickhouse).await?;
    let consumer = deps.clone();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (fatal_tx, fatal) = mpsc::unbounded_channel();
    let topics = env.config.topic_kinds();
    let supervisor = Supervisor::new(
        deps,
        SupervisorSettings { topics, restart },
        Vec::new(),
        events,
        fatal_tx,
    )
    .start();
    let tp = (env.config.topics.engagement.clone(), 0);
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    events_tx.send(RebalanceEvent::Assigned {
        partitions: vec![tp.clone()],
        reply,
    })?;
    let starts =
        tokio::task::spawn_blocking(move || answer.recv_timeout(Duration::from_secs(10))).await??;
    assert_eq!(starts, vec![(tp.clone(), Offset::Stored)]);
    assign(&consumer, &tp.0)?;
    // Keep the channel open: a closed one would read as the consumer gone.
    std::mem::forget(events_tx);
    Ok((supervisor, fatal, tp))
}

fn exited(tp: &(String, i32), generation: u64, failure: Failure) -> PartitionExited {
    PartitionExited {
        topic: tp.0.clone(),
        partition: tp.1,
        generation,
        reason: ExitReason::Failed(failure),
        saved: None,
    }
}

#[actix::test]
async fn the_supervisor_ignores_stale_reports_and_stops_at_once_on_a_fatal_one() -> Result<()> {
    let env = TestEnv::new("actor-supervisor", &Scenario::default()).await?;
    let (supervisor, mut fatal, tp) =
        supervisor_with_one_partition(&env, RestartPolicy::default()).await?;
    let generations = |states: Vec<reactor::actors::messages::PartitionState>| {
        states.iter().map(|s| s.generation).collect::<Vec<_>>()
    };
    assert_eq!(generations(supervisor.send(GetAllStates).await?), vec![0]);

    // A report from a generation that is not running changes nothing.
    let retryable = Failure::new("testing", SinkError::TimedOut("a test"));
    supervisor.do_send(exited(&tp, 41, retryable));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(generations(supervisor.send(GetAllStates).await?), vec![0]);
    assert!(fatal.try_recv().is_err(), "a stale report was acted on");

    // A failure retrying cannot fix stops the process at once.
    let began = Instant::now();
    supervisor.do_send(exited(
        &tp,
        0,
        Failure::new("testing", SinkError::Stopped("clickhouse")),
    ));
    let failure = tokio::time::timeout(Duration::from_secs(2), fatal.recv())
        .await?
        .context("no fatal report")?;
    assert!(!failure.is_retryable());
    assert!(began.elapsed() < Duration::from_secs(1));
    Ok(())
}

/// The generations running, in order.
async fn running(supervisor: &Addr<Supervisor>) -> Result<Vec<u64>> {
    Ok(supervisor
        .send(GetAllStates)
        .await?
        .iter()
        .map(|s| s.generation)
        .collect())
}

#[actix::test]
async fn failed_partitions_restart_as_new_generations_until_the_budget_is_spent() -> Result<()> {
    let env = TestEnv::new("actor-budget", &Scenario::default()).await?;
    let policy = RestartPolicy {
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..RestartPolicy::default()
    };
    let (supervisor, mut fatal, tp) = supervisor_with_one_partition(&env, policy).await?;
    for generation in 0..=u64::try_from(policy.max_restarts)? {
        // The current generation runs: report it failed (retryable).
        let deadline = Instant::now() + Duration::from_secs(20);
        while running(&supervisor).await? != vec![generation] {
            anyhow::ensure!(
                Instant::now() < deadline,
                "generation {generation} never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let retryable = Failure::new("testing", SinkError::TimedOut("a test"));
        supervisor.do_send(exited(&tp, generation, retryable));
    }
    // The sixth failure within the window spends the budget: fatal, at once.
    let failure = tokio::time::timeout(Duration::from_secs(5), fatal.recv())
        .await?
        .context("no fatal report")?;
    assert!(!failure.is_retryable());
    assert!(failure.to_string().contains("failed 6 times"), "{failure}");
    Ok(())
}

//! How long a moved partition with 100,000 series takes to serve again:
//! its state (checkpoint and 100,000 series histories, each 20 windows
//! deep) is written to `partition_state` as a running partition would,
//! then a partition actor is started for it, as an assignment does, and
//! timed until it reads (state loaded, epoch claimed, position set).
//!
//! Needs the local services (`scripts/services-start`):
//!
//! ```sh
//! . /tmp/reactor-services/env
//! cargo run --release -p integration-tests --example recovery [-- SERIES]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::{Context as _, Result};
use integration_tests::shell::{assign, partition_deps};
use integration_tests::{Scenario, TestEnv};
use rand::{Rng, SeedableRng};
use reactor::actors::messages::{GetState, PartitionExited};
use reactor::actors::partition::{OwnedQueue, PartitionStart};
use reactor::actors::PartitionActor;
use reactor::aggregate::{SeriesHistory, SeriesKind};
use reactor::event::decode::Decoder;
use reactor::event::{EngagementKind, TopicKind};
use reactor::pipeline::{Checkpoint, SeriesSnapshot};
use reactor::rollup::{Dimensions, Metric};
use reactor::sink::clickhouse::state::Saved;
use reactor::sink::clickhouse::When;

/// Ignores exit reports.
struct Ignore;

impl Actor for Ignore {
    type Context = Context<Self>;
}

impl Handler<PartitionExited> for Ignore {
    type Result = ();

    fn handle(&mut self, _: PartitionExited, _ctx: &mut Context<Self>) {}
}

#[actix::main]
async fn main() -> Result<()> {
    let series: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let env = TestEnv::new("recovery", &Scenario::default()).await?;
    let deps = partition_deps(&env, &env.services.clickhouse, Duration::from_secs(10)).await?;
    let settings = deps.settings.pipelines[&TopicKind::Engagement];
    let topic = env.config.topics.engagement.clone();

    // The state a running partition would have saved.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let snapshots: Vec<SeriesSnapshot> = (0..series)
        .map(|i| {
            let mut history = SeriesHistory::default();
            let level = rng.random_range(1.0..100.0);
            for position in 0..20 {
                let value: f64 = level * rng.random_range(0.5..1.5);
                let _verdict = history.close_window(
                    29_000_000 + position,
                    value.round(),
                    SeriesKind::Count,
                    &settings.history,
                    &[],
                );
            }
            SeriesSnapshot {
                metric: Metric::Engagement(EngagementKind::View),
                dimensions: Dimensions {
                    campaign_id: format!("campaign-{:03}", i / 1000),
                    content_id: format!("content-{i:06}"),
                    channel: "web".into(),
                },
                history: Some(history),
            }
        })
        .collect();
    let bytes: usize = snapshots
        .iter()
        .map(|s| serde_json::to_string(&s.history).map_or(0, |j| j.len()))
        .sum();
    let saved = Saved {
        epoch: 1,
        checkpoint: Some(Checkpoint::at(0)),
        seq: 1,
    };
    let began = Instant::now();
    deps.writer
        .write_state(&topic, 0, &saved, &snapshots, When::Now)
        .await?
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "saved {series} series ({:.1} MB of JSON) with a checkpoint in {:.2?}",
        bytes as f64 / 1e6,
        began.elapsed()
    );
    drop(snapshots);

    for generation in 0..3u64 {
        // Split first, then assign, as the rebalance protocol does.
        let queue = deps
            .consumer
            .split_partition_queue(&topic, 0)
            .context("split")?;
        if generation == 0 {
            assign(&deps, &topic, 0)?;
        }
        let (queue, released) = OwnedQueue::new(queue);
        let (cancel, cancelled) = tokio::sync::watch::channel(false);
        let start = PartitionStart {
            topic: Arc::from(topic.as_str()),
            partition: 0,
            generation,
            queue,
            decoder: Decoder::new(TopicKind::Engagement, false, settings.limits)?,
            settings,
            cancel: cancelled,
        };
        let began = Instant::now();
        let actor = PartitionActor::new(start, deps.clone(), Ignore.start().recipient()).start();
        let state = loop {
            let state = actor.send(GetState).await?;
            if state.phase == "running" {
                break state;
            }
            anyhow::ensure!(began.elapsed() < Duration::from_secs(120), "never loaded");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let took = began.elapsed();
        let tracked = state.pipeline.map_or(0, |p| p.series_tracked);
        anyhow::ensure!(tracked == series, "restored {tracked} series of {series}");
        println!("start {generation}: serving again {took:.2?} after assignment, {tracked} series restored");
        let _ignored = cancel.send(true);
        let (reply, answer) = tokio::sync::oneshot::channel();
        actor.do_send(reactor::actors::messages::Drain { reply, lost: false });
        let _saved = answer.await;
        let _released = released.await;
    }
    Ok(())
}

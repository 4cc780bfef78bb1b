//! SIGKILL Reactor while events are flowing and start it again: the final
//! rollups are still exact (nothing lost, nothing counted twice), every
//! column, trend and anomaly included (they continue from the saved series
//! histories as if the process had never stopped).

use std::time::Duration;

use std::sync::atomic::Ordering;

use integration_tests::expected::{rollups, stored_count};
use integration_tests::proxy::{Fault, FaultProxy, Scope};
use integration_tests::shell::partition_deps;
use integration_tests::{eventually, TestEnv};
use reactor::aggregate::{HistorySettings, SeriesHistory, SeriesKind};
use reactor::event::{EngagementKind, TopicKind};
use reactor::generate::publish::FormatMix;
use reactor::pipeline::{Checkpoint, SeriesSnapshot};
use reactor::rollup::{Dimensions, Metric};
use reactor::sink::clickhouse::state::{load_partition, Saved};
use reactor::sink::clickhouse::{RollupWriter, When};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_midway_and_restart_gives_exact_rollups() -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("restart", &scenario).await?;
    let events = crate::events(7, 100_000);
    let expected = rollups(&events, 60);
    let total = events.len() as u64;

    let mut first = env.start_reactor("first")?;
    let partitions = scenario.partitions;
    // Slow enough (25 s) that the kill lands while events still flow.
    let (publishing, progress) = env.publish_in_background(events, 7, 4_000.0).await?;

    // Kill once the first instance has written rollups and checkpoints.
    let client = env.clickhouse();
    let written = eventually(
        "the first rollups and checkpoints",
        Duration::from_secs(90),
        || {
            let client = client.clone();
            async move {
                let rows = stored_count(&client).await.unwrap_or(0);
                // Checkpoints past the first windows, with series histories.
                let (checkpoints, series): (u64, u64) = client
                    .query(
                        "SELECT countIf(metric = '' AND position(body, '\"closed_through\":1') > 0), \
                                countIf(metric != '') FROM partition_state",
                    )
                    .fetch_one()
                    .await
                    .unwrap_or((0, 0));
                Ok((rows > 0 && checkpoints > 0 && series > 0).then_some(rows))
            }
        },
    )
    .await?;
    first.kill();
    let at_kill = progress.position();
    assert!(
        at_kill < total,
        "the kill came after publishing finished ({at_kill} of {total}); the test did not exercise a restart midway"
    );
    println!("killed after {written} rows written and {at_kill} of {total} events published");

    let mut second = env.start_reactor("second")?;
    let (publisher, _report) = publishing.await??;
    env.close_windows_with_sentinels(&publisher, partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut second, &expected, 60, Duration::from_secs(180))
        .await?;
    assert!(
        second.log().contains("partition state loaded") && second.log().contains("checkpoint=Some"),
        "the second instance did not resume from checkpoints:\n{}",
        second.log_tail(40)
    );
    second.stop()?;
    Ok(())
}

/// Reactor's state lost (the `partition_state` table dropped) while the
/// group's committed offsets remain: the next start resumes from the
/// committed offsets, not from the start of the topics, and every row's
/// aggregates are exact (trend and anomaly start afresh, as documented).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_state_a_partition_resumes_from_the_committed_offset() -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("committed", &scenario).await?;
    let events = crate::events(29, 40_000);
    let expected = rollups(&events, 60);
    let (first, second) = events.split_at(events.len() / 2);
    let publisher = env.publisher().await?;
    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 29,
    };
    // Drains at the end: final checkpoints, committed to Kafka too.
    run_first_half(&env, &publisher, mix, first).await?;
    let client = env.clickhouse();
    client.query("DROP TABLE partition_state").execute().await?;

    let mut b = env.start_reactor("b")?;
    let _report = publisher
        .publish(mix.assign(second.to_vec()), None, None)
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    eventually("every expected row", Duration::from_secs(180), || {
        let client = client.clone();
        let want = expected.len() as u64;
        async move { Ok((stored_count(&client).await.unwrap_or(0) >= want).then_some(())) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    integration_tests::expected::compare(
        &expected,
        &integration_tests::expected::stored(&client).await?,
        60,
        None,
    )?;
    let log = b.log();
    let resumed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("partition state loaded"))
        .collect();
    assert!(
        resumed
            .iter()
            .any(|l| l.contains("checkpoint=Some(Checkpoint { offset: ")
                && !l.contains("offset: 0,")),
        "no partition resumed from a committed offset:\n{}",
        resumed.join("\n")
    );
    b.stop()?;
    Ok(())
}

/// Every checkpoint lies past the end of its partition, as when a topic
/// was deleted and created again or the broker lost acknowledged records:
/// the offsets are taken for another log's, so the partitions are read
/// from their start, nothing skipped as read already, and, since the log
/// here is in fact the same, the rows come out exact in every column (the
/// windows the checkpoints had written are not counted again; trend and
/// anomaly go on from the saved histories). Each reset is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_past_the_end_of_its_partition_is_read_from_the_start() -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("pastend", &scenario).await?;
    let events = crate::events(31, 30_000);
    let expected = rollups(&events, 60);
    let (first, second) = events.split_at(events.len() / 2);
    let publisher = env.publisher().await?;
    let json = FormatMix::Json;
    run_first_half(&env, &publisher, json, first).await?;
    let client = env.clickhouse();

    // Every checkpoint moved a million offsets on, past the end.
    let checkpoints: Vec<(String, String, i32, u64, String)> = client
        .query(
            "SELECT consumer_group, topic, partition, max(seq), argMax(body, seq) \
             FROM partition_state WHERE metric = '' \
             GROUP BY consumer_group, topic, partition",
        )
        .fetch_all()
        .await?;
    let mut moved = 0_u32;
    for (group, topic, partition, seq, body) in checkpoints {
        let mut body: serde_json::Value = serde_json::from_str(&body)?;
        let Some(offset) = body["checkpoint"]["offset"].as_i64() else {
            continue;
        };
        body["checkpoint"]["offset"] = (offset + 1_000_000).into();
        client
            .query(
                "INSERT INTO partition_state \
                 SELECT ?, ?, ?, '', '', '', '', ?, ?, now()",
            )
            .bind(group)
            .bind(topic)
            .bind(partition)
            .bind(seq + 1)
            .bind(body.to_string())
            .execute()
            .await?;
        moved += 1;
    }
    assert!(moved > 0, "no checkpoint to move");

    let mut b = env.start_reactor("b")?;
    let _report = publisher
        .publish(json.assign(second.to_vec()), None, None)
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut b, &expected, 60, Duration::from_secs(180))
        .await?;
    let resets = b.metrics().await?;
    let resets: f64 = resets
        .named("reactor_offset_resets_total")
        .filter(|s| s.labels.get("reason").map(String::as_str) == Some("past_end"))
        .map(|s| s.value)
        .sum();
    assert_eq!(resets, f64::from(moved), "{}", b.log_tail(40));
    assert_eq!(
        b.log()
            .matches("the checkpoint lies past the end of this partition")
            .count(),
        moved as usize,
        "{}",
        b.log_tail(40)
    );
    b.stop()?;
    Ok(())
}

/// Runs an instance over `events` until more than a thousand rows are
/// written, then stops it (it drains: final checkpoints).
async fn run_first_half(
    env: &TestEnv,
    publisher: &reactor::generate::publish::Publisher,
    mix: FormatMix,
    events: &[reactor::event::Event],
) -> anyhow::Result<()> {
    let mut instance = env.start_reactor("a")?;
    let _report = publisher
        .publish(mix.assign(events.to_vec()), None, None)
        .await?;
    let client = env.clickhouse();
    eventually("the first half's windows", Duration::from_secs(90), || {
        let client = client.clone();
        async move { Ok((stored_count(&client).await.unwrap_or(0) > 1_000).then_some(())) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    instance.stop()
}

/// A view series' saved history after one window of `value`.
fn snapshot(campaign: &str, value: f64, settings: &HistorySettings) -> SeriesSnapshot {
    let mut history = SeriesHistory::default();
    let _verdict = history.close_window(1, value, SeriesKind::Count, settings, &[]);
    SeriesSnapshot {
        metric: Metric::Engagement(EngagementKind::View),
        dimensions: Dimensions {
            campaign_id: campaign.into(),
            content_id: "content".into(),
            channel: "web".into(),
        },
        history: Some(history),
    }
}

/// Writes the state of `topic`/0 and waits until it is written.
async fn write_state(
    writer: &RollupWriter,
    topic: &str,
    saved: &Saved,
    series: &[SeriesSnapshot],
) -> anyhow::Result<()> {
    writer
        .write_state(topic, 0, saved, series, When::Now)
        .await?
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The state `topic`/0 resumes from, series in campaign order.
async fn load_state(
    env: &TestEnv,
    topic: &str,
) -> anyhow::Result<(Option<Saved>, Vec<SeriesSnapshot>)> {
    let mut loaded = load_partition(
        &env.clickhouse(),
        &env.config.kafka.group_id,
        topic,
        0,
        Duration::from_secs(10),
    )
    .await?;
    loaded
        .series
        .sort_by(|a, b| a.dimensions.campaign_id.cmp(&b.dimensions.campaign_id));
    Ok((loaded.saved, loaded.series))
}

/// A partition's state too large for one INSERT block is written in
/// several, its checkpoint row last. If the process dies after the first
/// blocks landed, their series rows are newer than any checkpoint: the
/// partition resumes from the checkpoint before, with the histories saved
/// with that one, not a mix of two checkpoints' histories.
#[actix::test]
async fn series_rows_newer_than_the_checkpoint_are_not_its_state() -> anyhow::Result<()> {
    let env = TestEnv::new("state", &crate::without_idle_closing()).await?;
    let deps = partition_deps(&env, &env.services.clickhouse, Duration::from_secs(3)).await?;
    let history = deps.settings.pipelines[&TopicKind::Engagement].history;
    let topic = env.config.topics.engagement.clone();
    let snapshot = |campaign: &str, value: f64| snapshot(campaign, value, &history);

    let first = Saved {
        epoch: 1,
        checkpoint: Some(Checkpoint::at(10)),
        seq: (1 << 32) + 1,
    };
    let series = [snapshot("a", 1.0), snapshot("b", 2.0)];
    write_state(&deps.writer, &topic, &first, &series).await?;
    // The next write's first block: a series row, its checkpoint row lost.
    let newer = serde_json::to_string(&snapshot("a", 50.0).history)?;
    env.clickhouse()
        .query(
            "INSERT INTO partition_state \
             SELECT consumer_group, topic, partition, metric, campaign_id, content_id, channel, \
                    seq + 1, ?, updated_at \
             FROM partition_state WHERE topic = ? AND campaign_id = 'a'",
        )
        .bind(newer)
        .bind(&topic)
        .execute()
        .await?;
    assert_eq!(
        load_state(&env, &topic).await?,
        (Some(first.clone()), series.to_vec())
    );

    // That write again, whole: its checkpoint and its series.
    let second = Saved {
        seq: first.seq + 1,
        checkpoint: Some(Checkpoint::at(20)),
        ..first
    };
    write_state(&deps.writer, &topic, &second, &[snapshot("a", 50.0)]).await?;
    assert_eq!(
        load_state(&env, &topic).await?,
        (Some(second), vec![snapshot("a", 50.0), snapshot("b", 2.0)])
    );
    Ok(())
}

/// A start that gives its partition up without waiting for its writes (a
/// drain that timed out, an assignment lost) fences its state writes: one
/// still being retried when ClickHouse answers again is dropped, so it
/// cannot land after a successor's claim and mix into its state.
#[actix::test]
async fn a_fenced_state_write_does_not_land_later() -> anyhow::Result<()> {
    let env = TestEnv::new("fence", &crate::without_idle_closing()).await?;
    let proxy = FaultProxy::start(&env.services.clickhouse).await?;
    let deps = partition_deps(&env, &proxy.url(), Duration::from_secs(3)).await?;
    let history = deps.settings.pipelines[&TopicKind::Engagement].history;
    let topic = env.config.topics.engagement.clone();

    proxy.set(Fault::ServerError, Scope::Inserts);
    let given_up = Saved {
        epoch: 1,
        checkpoint: Some(Checkpoint::at(10)),
        seq: (1 << 32) + 1,
    };
    let ack = deps
        .writer
        .write_state(
            &topic,
            0,
            &given_up,
            &[snapshot("a", 1.0, &history)],
            When::Now,
        )
        .await?;
    eventually("the write to be refused", Duration::from_secs(10), || {
        let refused = proxy.counts().refused.load(Ordering::Relaxed);
        async move { Ok((refused > 0).then_some(())) }
    })
    .await?;
    deps.writer.fence(&topic, 0, 1);
    proxy.heal();
    ack.await?.map_err(|e| anyhow::anyhow!("{e}"))?;

    // The successor's claim, and what the partition resumes from.
    let claim = Saved {
        epoch: 2,
        checkpoint: None,
        seq: 2 << 32,
    };
    write_state(&deps.writer, &topic, &claim, &[]).await?;
    assert_eq!(load_state(&env, &topic).await?, (Some(claim), Vec::new()));
    let rows: u64 = env
        .clickhouse()
        .query("SELECT count() FROM partition_state WHERE seq < ?")
        .bind(2_u64 << 32)
        .fetch_one()
        .await?;
    assert_eq!(rows, 0, "the fenced write landed");
    Ok(())
}

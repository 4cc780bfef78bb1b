//! Partitions move between replicas while events flow: a second replica
//! joins, is killed with SIGKILL, a third joins and leaves cleanly. Every
//! rollup row, trend slope and anomaly score included, is what one
//! uninterrupted run writes; and with cooperative-sticky assignment (the
//! default) the partitions a replica keeps through a rebalance are never
//! restarted. And a rebalance never waits for `clickhouse.flush_interval`.

use std::time::Duration;

use anyhow::Result;
use integration_tests::expected::{rollups, stored_count};
use integration_tests::{
    eventually, partitions_of, running_partitions_of, scrape, some_partitions_move_to, TestEnv,
};
use reactor::generate::publish::FormatMix;
use reactor::telemetry::metrics::DERIVED_EVENTS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_partitions_keep_every_column_exact() -> Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("moves", &scenario).await?;
    let events = crate::events(11, 90_000);
    let expected = rollups(&events, 60);
    let all = 3 * usize::try_from(scenario.partitions)?;

    let mut a = env.start_reactor("a")?;
    let a_address = a.wait_for_http(Duration::from_secs(60)).await?;
    let (publishing, progress) = env.publish_in_background(events, 11, 2_500.0).await?;
    let client = env.clickhouse();
    eventually("the first rollups", Duration::from_secs(90), || {
        let client = client.clone();
        async move { Ok((stored_count(&client).await.unwrap_or(0) > 0).then_some(())) }
    })
    .await?;
    let before = eventually(
        "replica a to own every partition",
        Duration::from_secs(60),
        || {
            let a_address = a_address.clone();
            async move {
                let owned = partitions_of(&a_address).await?;
                Ok((owned.len() == all).then_some(owned))
            }
        },
    )
    .await?;

    // B joins: some partitions move to it, the others stay where they were.
    let mut b = env.start_reactor("b")?;
    let b_address = b.wait_for_http(Duration::from_secs(60)).await?;
    let moved = some_partitions_move_to(&b_address, all, Duration::from_secs(90)).await?;
    let kept = partitions_of(&a_address).await?;
    for (partition, generation) in &kept {
        assert_eq!(
            before.get(partition),
            Some(generation),
            "{partition:?} stayed on replica a but was restarted by the rebalance"
        );
    }
    assert!(kept.keys().all(|p| !moved.contains_key(p)));

    // B dies without a word; its partitions come back to A after the
    // session timeout, from B's checkpoints and series histories.
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.kill();
    eventually(
        "replica a to own every partition again",
        Duration::from_secs(60),
        || {
            let a_address = a_address.clone();
            async move { Ok((partitions_of(&a_address).await?.len() == all).then_some(())) }
        },
    )
    .await?;

    // C joins and leaves cleanly.
    let mut c = env.start_reactor("c")?;
    let c_address = c.wait_for_http(Duration::from_secs(60)).await?;
    eventually(
        "partitions to move to replica c",
        Duration::from_secs(90),
        || {
            let c_address = c_address.clone();
            async move {
                Ok((!partitions_of(&c_address)
                    .await
                    .unwrap_or_default()
                    .is_empty())
                .then_some(()))
            }
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.stop()?;
    let at = progress.position();
    println!("replica c left after {at} events published");

    let (publisher, _report) = publishing.await??;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut a, &expected, 60, Duration::from_secs(180))
        .await?;
    a.stop()?;
    Ok(())
}

/// With `clickhouse.flush_interval` far longer than the test, partitions
/// still start and a rebalance still completes with every row written: a
/// partition claims its epoch before it reads, and a draining partition
/// writes its rows and final checkpoint, at once rather than at the next
/// flush (the rebalance waits on both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_waits_for_no_flush_interval() -> Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("urgent", &scenario).await?;
    let events = crate::events(13, 12_000);
    let expected = rollups(&events, 60);
    let all = 3 * usize::try_from(scenario.partitions)?;
    let an_hour = [("REACTOR__CLICKHOUSE__FLUSH_INTERVAL", "1h")];

    let mut a = env.start_reactor_with_env("a", &an_hour)?;
    let a_address = a.wait_for_http(Duration::from_secs(60)).await?;
    eventually(
        "replica a to run every partition (each claims its epoch first)",
        Duration::from_secs(60),
        || {
            let a_address = a_address.clone();
            async move { Ok((running_partitions_of(&a_address).await? == all).then_some(())) }
        },
    )
    .await?;
    let publisher = env.publisher().await?;
    let _report = publisher
        .publish(FormatMix::Json.assign(events), None, None)
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    // Every row is handed to the writer (its rollup event is published
    // after that) but waits there for the flush, under batch_max_rows.
    let want = expected.len() as f64;
    eventually(
        "replica a to publish a rollup event for every row",
        Duration::from_secs(120),
        || {
            let a_address = a_address.clone();
            async move {
                let published: f64 = scrape(&a_address)
                    .await?
                    .named(DERIVED_EVENTS)
                    .filter(|s| s.labels.get("kind").is_some_and(|k| k == "rollup"))
                    .map(|s| s.value)
                    .sum();
                Ok((published >= want).then_some(()))
            }
        },
    )
    .await?;
    assert_eq!(
        stored_count(&env.clickhouse()).await?,
        0,
        "rows were inserted before the flush interval or a rebalance"
    );

    // B joins: the partitions moving to it drain on A, which writes what
    // its writer holds; B claims them and runs them.
    let mut b = env.start_reactor_with_env("b", &an_hour)?;
    let b_address = b.wait_for_http(Duration::from_secs(60)).await?;
    let moved = some_partitions_move_to(&b_address, all, Duration::from_secs(90)).await?;
    eventually(
        "replica b to run the partitions it took",
        Duration::from_secs(60),
        || {
            let b_address = b_address.clone();
            let moved = moved.len();
            async move { Ok((running_partitions_of(&b_address).await? == moved).then_some(())) }
        },
    )
    .await?;
    env.assert_rollups_exact(&mut a, &expected, 60, Duration::from_secs(60))
        .await?;
    b.stop()?;
    a.stop()?;
    Ok(())
}

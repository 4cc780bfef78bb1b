//! When a second replica joins and partitions move to it, the replica that
//! gave them up stops reporting them: their open-window, watermark and lag
//! gauges read NaN instead of freezing at their last value, so sums,
//! dashboards and alerts follow the new owner. The partitions it keeps go
//! on reporting real values.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use integration_tests::{eventually, partitions_of, scrape, some_partitions_move_to, TestEnv};
use reactor::generate::publish::FormatMix;

type Partition = (String, i32);

/// The partitions a replica's `/state` lists.
async fn owned(address: &str) -> Result<BTreeSet<Partition>> {
    Ok(partitions_of(address).await?.into_keys().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_partitions_stop_reporting_their_gauges() -> Result<()> {
    moved_partitions_are_released("rebalance", &[]).await
}

/// The same with eager assignment (`kafka.assignment = "eager"`), where every
/// partition stops and restarts on each membership change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_assignment_still_moves_and_releases_partitions() -> Result<()> {
    moved_partitions_are_released("eager", &[("REACTOR__KAFKA__ASSIGNMENT", "eager")]).await
}

async fn moved_partitions_are_released(name: &str, vars: &[(&str, &str)]) -> Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new(name, &scenario).await?;
    let publisher = env.publisher().await?;
    let mut a = env.start_reactor_with_env("a", vars)?;
    let a_address = a.wait_for_http(Duration::from_secs(60)).await?;
    let _report = publisher
        .publish(FormatMix::Json.assign(crate::events(5, 3_000)), None, None)
        .await?;
    let all = 3 * usize::try_from(scenario.partitions)?;
    eventually(
        "replica a to report every partition",
        Duration::from_secs(60),
        || {
            let a_address = a_address.clone();
            async move {
                let open = scrape(&a_address)
                    .await?
                    .by_partition("reactor_open_windows");
                Ok((open.len() == all && open.values().all(|v| v.is_finite())).then_some(()))
            }
        },
    )
    .await?;

    let mut b = env.start_reactor_with_env("b", vars)?;
    let b_address = b.wait_for_http(Duration::from_secs(60)).await?;
    let moved: BTreeSet<Partition> =
        some_partitions_move_to(&b_address, all, Duration::from_secs(90))
            .await?
            .into_keys()
            .collect();

    // Kept partitions may be restarted by the rebalance (eager assignment);
    // their new actor reports within a tick.
    let metrics = eventually(
        "replica a to mark the moved partitions NaN and report the kept ones",
        Duration::from_secs(60),
        || {
            let (a_address, moved) = (a_address.clone(), moved.clone());
            async move {
                let kept = owned(&a_address).await?;
                let metrics = scrape(&a_address).await?;
                let open = metrics.by_partition("reactor_open_windows");
                let released = moved
                    .iter()
                    .all(|p| open.get(p).is_some_and(|v| v.is_nan()));
                let disjoint = kept.is_disjoint(&moved) && kept.len() + moved.len() == all;
                let reporting = kept
                    .iter()
                    .all(|p| open.get(p).is_some_and(|v| v.is_finite()));
                Ok((released && disjoint && reporting).then_some(metrics))
            }
        },
    )
    .await?;
    for partition in &moved {
        for name in ["reactor_watermark_seconds", "reactor_consumer_lag_messages"] {
            let value = metrics.by_partition(name).get(partition).copied();
            assert!(
                value.is_none_or(f64::is_nan),
                "{name} of moved {partition:?} on replica a: {value:?}"
            );
        }
    }

    b.stop()?;
    a.stop()?;
    Ok(())
}

//! A partition that stops receiving events closes its open windows after
//! `windows.idle_timeout`, so the tail of a stream is written.

use std::time::Duration;

use integration_tests::expected::rollups;
use integration_tests::{Scenario, TestEnv};
use reactor::generate::publish::FormatMix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_partitions_flush_their_last_windows() -> anyhow::Result<()> {
    let scenario = Scenario {
        partitions: 2,
        idle_timeout: "2s",
        ..Scenario::default()
    };
    let env = TestEnv::new("idle", &scenario).await?;
    let publisher = env.publisher().await?;
    let events = crate::events(3, 3_000);
    let expected = rollups(&events, 60);
    let mut reactor = env.start_reactor("a")?;
    let _report = publisher
        .publish(FormatMix::Json.assign(events), None, None)
        .await?;

    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(90))
        .await?;
    reactor.stop()?;
    Ok(())
}

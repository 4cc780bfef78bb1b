//! A partition whose writes fail for good is stopped and restarted from its
//! checkpoint with back-off, without stopping the process; once ClickHouse
//! accepts writes again the rollups end up exact.

use std::time::Duration;

use indicatif::ProgressBar;
use integration_tests::expected::{rollups, stored_count};
use integration_tests::{eventually, TestEnv};
use reactor::generate::publish::FormatMix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_partitions_restart_from_their_checkpoints() -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("recovery", &scenario).await?;
    let events = crate::events(11, 60_000);
    let expected = rollups(&events, 60);
    let mut reactor = env.start_reactor("a")?;
    let publisher = env.publisher().await?;
    let progress = ProgressBar::hidden();
    let published = progress.clone();
    let publishing = tokio::spawn(async move {
        let report = publisher
            .publish(
                FormatMix::Json.assign(events),
                Some(3_000.0),
                Some(&published),
            )
            .await?;
        anyhow::Ok((publisher, report))
    });

    let client = env.clickhouse();
    let _rows = eventually("the first rollups", Duration::from_secs(90), || {
        let client = client.clone();
        async move { Ok(stored_count(&client).await.ok().filter(|&n| n > 0)) }
    })
    .await?;
    // Inserts now fail with UNKNOWN_TABLE, which retrying cannot fix.
    client
        .query("RENAME TABLE rollups TO rollups_away")
        .execute()
        .await?;
    eventually("a partition to fail", Duration::from_secs(60), || {
        let failed = reactor.log().contains("partition failed");
        async move { Ok(failed.then_some(())) }
    })
    .await?;
    client
        .query("RENAME TABLE rollups_away TO rollups")
        .execute()
        .await?;
    assert!(
        progress.position() < 60_000,
        "the failure came after publishing finished"
    );

    let (publisher, _report) = publishing.await??;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await?;
    let log = reactor.log();
    assert!(
        log.contains("restarting from its checkpoint") && log.contains("partition restarted"),
        "{}",
        reactor.log_tail(40)
    );
    assert!(
        reactor
            .metric("reactor_partition_restarts_total")
            .unwrap_or(0.0)
            >= 1.0
    );
    assert!(reactor.terminate(Duration::from_secs(30))?);
    env.cleanup().await;
    Ok(())
}

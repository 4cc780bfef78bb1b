//! An error retrying cannot fix stops the process at once: writes that
//! ClickHouse refuses for good (the table is gone) make Reactor exit
//! non-zero within seconds, without restarting partitions, saying why and
//! what to do. Once the cause is fixed, a new instance resumes from the
//! checkpoints and the rollups end up exact.

use std::time::Duration;

use indicatif::ProgressBar;
use integration_tests::expected::{rollups, stored_count};
use integration_tests::{eventually, TestEnv};
use reactor::generate::publish::FormatMix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_sink_error_stops_the_process_at_once_and_a_restart_resumes_exactly(
) -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("fatal", &scenario).await?;
    let events = crate::events(11, 60_000);
    let expected = rollups(&events, 60);
    let mut first = env.start_reactor("first")?;
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
    eventually(
        "the first rollups and checkpoints",
        Duration::from_secs(90),
        || {
            let client = client.clone();
            async move {
                let rows = stored_count(&client).await.unwrap_or(0);
                // A checkpoint, not only the epoch claimed at the start.
                let checkpoints: u64 = client
                    .query(
                        "SELECT countIf(metric = '' AND position(body, '\"checkpoint\":{') > 0) \
                         FROM partition_state",
                    )
                    .fetch_one()
                    .await
                    .unwrap_or(0);
                Ok((rows > 0 && checkpoints > 0).then_some(()))
            }
        },
    )
    .await?;
    // Inserts now fail with UNKNOWN_TABLE (code 60), which retrying cannot fix.
    client
        .query("RENAME TABLE rollups TO rollups_away")
        .execute()
        .await?;
    let status = first.wait_for_exit(Duration::from_secs(60))?;
    assert!(!status.success(), "reactor exited 0 after a fatal error");
    let log = first.log();
    assert!(
        log.contains("stopping after an unrecoverable error") && log.contains("Code: 60"),
        "{}",
        first.log_tail(30)
    );
    assert!(
        log.contains("what to do:") && log.contains("clickhouse.create_schema"),
        "the exit does not say what to do:\n{}",
        first.log_tail(30)
    );
    assert!(
        !log.contains("restarting from its checkpoint"),
        "a fatal failure was retried:\n{}",
        first.log_tail(30)
    );
    assert!(
        progress.position() < 60_000,
        "the failure came after publishing finished"
    );

    // Fixed: the next instance resumes from the checkpoints.
    client
        .query("RENAME TABLE rollups_away TO rollups")
        .execute()
        .await?;
    let mut second = env.start_reactor("second")?;
    let (publisher, _report) = publishing.await??;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut second, &expected, 60, Duration::from_secs(180))
        .await?;
    assert!(second.log().contains("checkpoint=Some"));
    second.stop()?;
    Ok(())
}

/// Refused credentials are an answer, not an outage: the process stops at
/// once with what to do, rather than waiting 30 s for ClickHouse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_clickhouse_credentials_stop_the_start_at_once() -> anyhow::Result<()> {
    let env = TestEnv::new("fatal-password", &crate::without_idle_closing()).await?;
    let started = std::time::Instant::now();
    let mut reactor = env.start_reactor_with_env(
        "wrong-password",
        &[("REACTOR__CLICKHOUSE__PASSWORD", "not-the-password")],
    )?;
    let status = reactor.wait_for_exit(Duration::from_secs(60))?;
    let took = started.elapsed();
    assert!(!status.success(), "reactor exited 0");
    let log = reactor.log();
    assert!(
        log.contains("refused Reactor's first query")
            && log.contains("what to do: ClickHouse refused the credentials"),
        "{}",
        reactor.log_tail(20)
    );
    assert!(
        !log.contains("ClickHouse is not answering yet"),
        "refused credentials were retried:\n{}",
        reactor.log_tail(20)
    );
    println!("stopped after {took:?}");
    Ok(())
}

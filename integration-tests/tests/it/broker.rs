//! Faults on the Kafka side, on a broker of the test's own: a broker that
//! stops answering (SIGSTOP: a hung process, or a network that black-holes)
//! for longer than `idle_timeout` while the reader is at the end of its
//! partitions. Silence from an unreachable broker is not a quiet source:
//! no window may close as idle during the outage, so what the producer
//! held through it is counted, not late, and every row is exact.

use std::time::Duration;

use anyhow::Context as _;

use integration_tests::broker::PrivateBroker;
use integration_tests::expected::{rollups, stored_count};
use integration_tests::{eventually, Scenario, Services, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_answering_closes_no_window_as_idle() -> anyhow::Result<()> {
    let broker = PrivateBroker::start()?;
    let services = Services {
        kafka: broker.address().to_owned(),
        ..Services::from_env()
    };
    let scenario = Scenario {
        partitions: 2,
        idle_timeout: "3s",
        ..Scenario::default()
    };
    let env = TestEnv::with_services("broker-pause", &scenario, services).await?;
    // 1 minute of event time a second: the open windows at the pause are
    // only half published when it starts. The pause outlasts the session
    // timeout (6 s) too, so the group may rebalance when the broker is
    // back; the rows must be exact either way.
    let events = crate::events(31, 40_000);
    let expected = rollups(&events, 60);
    let mut reactor = env.start_reactor("a")?;
    let (publishing, progress) = env.publish_in_background(events, 31, 2_000.0).await?;

    let t0 = std::time::Instant::now();
    let client = env.clickhouse();
    eventually("the first rollups", Duration::from_secs(90), || {
        let client = client.clone();
        async move { Ok((stored_count(&client).await.unwrap_or(0) > 0).then_some(())) }
    })
    .await?;
    let at = progress.position();
    println!(
        "first rollups with {at} events acknowledged after {:?}",
        t0.elapsed()
    );
    broker.pause()?;
    // Over three idle timeouts: long enough for any idle close to fire.
    tokio::time::sleep(Duration::from_secs(10)).await;
    broker.resume()?;
    let _report = publishing.await??;
    anyhow::ensure!(
        at < 40_000,
        "the pause came after the last event ({at} acknowledged)"
    );

    let exact = env
        .assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await;
    exact
        .and(reactor.assert_none_late().await)
        .context("did a window close as idle while the broker was not answering?")?;
    reactor.stop()?;
    Ok(())
}

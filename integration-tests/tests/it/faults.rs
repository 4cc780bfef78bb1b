//! Faults at the wire, between Reactor and a real ClickHouse (the harness's
//! fault proxy): a paused server, inserts answered 503, and inserts applied
//! whose answers are lost. Events keep flowing meanwhile and idle closing is
//! on (5 s: long enough that the test's own publisher, sharing two cores
//! with the broker, never pauses that long); every rollup row must still be
//! exact, and no event late.

use std::time::Duration;

use integration_tests::expected::{rollups, stored_count};
use integration_tests::proxy::{Fault, FaultProxy, Scope};
use integration_tests::{eventually, Scenario, TestEnv};
use reactor::generate::publish::FormatMix;

/// Publishes 75,000 events at 3,000 a second through Reactor writing via a
/// fault proxy, applies `fault` (to `scope`) for `duration` once rows are
/// flowing, then checks every row exactly and that nothing was late.
async fn survives(
    name: &str,
    fault: Fault,
    scope: Scope,
    duration: Duration,
) -> anyhow::Result<()> {
    let scenario = Scenario {
        idle_timeout: "5s",
        ..Scenario::default()
    };
    let env = TestEnv::new(name, &scenario).await?;
    let proxy = FaultProxy::start(&env.services.clickhouse).await?;
    let events = crate::events(21, 75_000);
    let expected = rollups(&events, 60);
    let mut reactor =
        env.start_reactor_with_env("a", &[("REACTOR__CLICKHOUSE__URL", &proxy.url())])?;
    let (publishing, progress) = env.publish_in_background(events, 21, 3_000.0).await?;

    let client = env.clickhouse();
    eventually("the first rollups", Duration::from_secs(90), || {
        let client = client.clone();
        async move { Ok((stored_count(&client).await.unwrap_or(0) > 0).then_some(())) }
    })
    .await?;
    proxy.set(fault, scope);
    let at = progress.position();
    tokio::time::sleep(duration).await;
    proxy.heal();
    anyhow::ensure!(
        progress.position() > at && progress.position() < 75_000,
        "events did not flow during the fault ({at} → {})",
        progress.position()
    );
    let _report = publishing.await??;

    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await?;
    reactor.assert_none_late().await?;
    println!(
        "{name}: {} rows exact; proxy forwarded {}, refused {}, dropped {} answers after applying",
        expected.len(),
        proxy
            .counts()
            .forwarded
            .load(std::sync::atomic::Ordering::Relaxed),
        proxy
            .counts()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        proxy
            .counts()
            .dropped_after_apply
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    reactor.stop()?;
    Ok(())
}

/// ClickHouse stops answering for three times `idle_timeout` while events
/// keep arriving: blocked partitions are not idle, so no window closes
/// early and nothing arrives late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_clickhouse_loses_nothing() -> anyhow::Result<()> {
    survives("pause", Fault::Pause, Scope::All, Duration::from_secs(15)).await
}

/// Every insert answered 503 for ten seconds: retried, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_failing_with_5xx_lose_nothing() -> anyhow::Result<()> {
    survives(
        "http503",
        Fault::ServerError,
        Scope::Inserts,
        Duration::from_secs(10),
    )
    .await
}

/// Inserts applied, their answers lost, for five seconds: retried, and the
/// rows written twice replace each other (same key, same version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_applied_whose_answers_are_lost_count_once() -> anyhow::Result<()> {
    survives(
        "dropped",
        Fault::DropResponse,
        Scope::Inserts,
        Duration::from_secs(5),
    )
    .await
}

/// ClickHouse stops answering, and then a replica dies, so its partitions
/// move to the survivor during the outage: the survivor does not exit; the
/// moved partitions wait to load their state (the process unready, saying
/// why) and resume when ClickHouse is back, every column exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_during_an_outage_waits_instead_of_crashing() -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("outage-rebalance", &scenario).await?;
    let proxy = FaultProxy::start(&env.services.clickhouse).await?;
    let events = crate::events(23, 40_000);
    let expected = rollups(&events, 60);
    let via_proxy = [("REACTOR__CLICKHOUSE__URL", proxy.url())];
    let vars: Vec<(&str, &str)> = via_proxy.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = env.start_reactor_with_env("a", &vars)?;
    let a_address = a.wait_for_http(Duration::from_secs(60)).await?;
    let mut b = env.start_reactor_with_env("b", &vars)?;
    let _b_address = b.wait_for_http(Duration::from_secs(60)).await?;
    let publisher = env.publisher().await?;
    let (first, second) = events.split_at(events.len() / 2);
    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 23,
    };
    let _report = publisher
        .publish(mix.assign(first.to_vec()), None, None)
        .await?;
    let client = env.clickhouse();
    eventually("the first rollups", Duration::from_secs(90), || {
        let client = client.clone();
        async move { Ok((stored_count(&client).await.unwrap_or(0) > 0).then_some(())) }
    })
    .await?;

    proxy.set(Fault::Pause, Scope::All);
    b.kill();
    let url = format!("http://{a_address}/readyz");
    let why = eventually(
        "replica a to load b's partitions and say it waits",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let (status, body) = integration_tests::http_get(&url, None).await?;
                Ok((status == 503 && body.contains("loading its state")).then_some(body))
            }
        },
    )
    .await?;
    println!(
        "during the outage, /readyz said: {}",
        why.lines().next().unwrap_or("")
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    anyhow::ensure!(
        a.is_running(),
        "replica a exited during the outage:\n{}",
        a.log_tail(30)
    );
    proxy.heal();

    let _report = publisher
        .publish(mix.assign(second.to_vec()), None, None)
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut a, &expected, 60, Duration::from_secs(180))
        .await?;
    eventually(
        "replica a to be ready again",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                let (status, _) = integration_tests::http_get(&url, None).await?;
                Ok((status == 200).then_some(()))
            }
        },
    )
    .await?;
    a.stop()?;
    Ok(())
}

/// SIGTERM while ClickHouse does not answer: the drain stops at
/// `pipeline.drain_timeout` with rows in flight, and the exit status says
/// so (an operator or script sees a stop that was not clean); the next
/// start resumes from the checkpoints and every row is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_cut_short_by_an_outage_fails_the_exit_status_and_loses_nothing(
) -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("outage-drain", &scenario).await?;
    let proxy = FaultProxy::start(&env.services.clickhouse).await?;
    let events = crate::events(29, 20_000);
    let expected = rollups(&events, 60);
    let mut a = env.start_reactor_with_env(
        "a",
        &[
            ("REACTOR__CLICKHOUSE__URL", proxy.url().as_str()),
            ("REACTOR__PIPELINE__DRAIN_TIMEOUT", "2s"),
        ],
    )?;
    let publisher = env.publisher().await?;
    let (first, second) = events.split_at(events.len() / 2);
    let _report = publisher
        .publish(FormatMix::Json.assign(first.to_vec()), None, None)
        .await?;
    let client = env.clickhouse();
    eventually("the first rollups", Duration::from_secs(90), || {
        let client = client.clone();
        async move { Ok((stored_count(&client).await.unwrap_or(0) > 0).then_some(())) }
    })
    .await?;

    // The second half closes more windows, whose rows cannot be written.
    proxy.set(Fault::Pause, Scope::All);
    let _report = publisher
        .publish(FormatMix::Json.assign(second.to_vec()), None, None)
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = a.terminate(Duration::from_secs(30))?;
    assert!(
        !status.success(),
        "a drain cut short exited 0:\n{}",
        a.log_tail(20)
    );
    assert!(
        a.log()
            .contains("did not drain within pipeline.drain_timeout (2s): nothing is lost"),
        "{}",
        a.log_tail(20)
    );
    proxy.heal();

    let mut b = env.start_reactor("b")?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut b, &expected, 60, Duration::from_secs(180))
        .await?;
    b.stop()?;
    Ok(())
}

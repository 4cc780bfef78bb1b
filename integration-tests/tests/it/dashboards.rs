//! The Grafana dashboards of `helm/reactor/dashboards` over what Reactor itself
//! wrote: `scripts/check/dashboards/run_sql.py` runs every ClickHouse query
//! (panels, annotations, variables; with the variables at All and at a
//! selection) on the test ClickHouse and on current ClickHouse through chDB,
//! and every PromQL query on the local Prometheus scraping this Reactor. Each
//! must run, both ClickHouses must agree, and the panels must show data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use integration_tests::expected::rollups;
use integration_tests::{eventually, Scenario, ScrapeTarget, TestEnv};
use reactor::event::Event;
use reactor::generate::publish::FormatMix;

const SPIKE_MINUTE: i64 = 15;

/// Clicks on one content: about 40 a minute for 20 minutes and 400 in minute
/// 15, so the anomaly panels, table and annotation have a window to show.
fn spike_series() -> Vec<Event> {
    let mut events = Vec::new();
    for minute in 0..20 {
        let clicks = if minute == SPIKE_MINUTE {
            400
        } else {
            40 + minute % 3
        };
        for i in 0..clicks {
            events.push(crate::spike_click(minute, i, clicks, 1_000 + 37 * i));
        }
    }
    events
}

/// The interpreter of the virtualenv holding chDB, from `scripts/check/dashboards-types`.
fn dashboards_python() -> Result<PathBuf> {
    let python = std::env::var_os("REACTOR_DASHBOARDS_PYTHON").ok_or_else(|| {
        anyhow!(
            "REACTOR_DASHBOARDS_PYTHON is not set: install the dashboards' SQL runner \
             (Python with chDB) and export its interpreter with \
             `eval \"$(scripts/check/dashboards-types --install)\"` (scripts/test does this)"
        )
    })?;
    let python = PathBuf::from(python);
    ensure!(
        python.exists(),
        "REACTOR_DASHBOARDS_PYTHON={} does not exist: run `eval \"$(scripts/check/dashboards-types --install)\"`",
        python.display()
    );
    Ok(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_over_reactors_rollups() -> Result<()> {
    let python = dashboards_python()?;
    let prometheus = integration_tests::Services::from_env().prometheus;
    let scenario = Scenario {
        partitions: 2,
        extra: "[anomaly]\nwarm_up = 5\n",
        ..crate::without_idle_closing()
    };
    let env = TestEnv::new("dashboards", &scenario).await?;
    let instance = env.kafka().group_id.clone();
    let publisher = env.publisher().await?;
    let mut events = crate::events(23, 10_000);
    events.extend(spike_series());
    events.sort_by_key(Event::occurred_at);
    let expected = rollups(&events, 60);

    let mut reactor = env.start_reactor("a")?;
    let address = reactor.wait_for_http(Duration::from_secs(60)).await?;
    let _target = ScrapeTarget::register(&instance, &address)?;

    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 23,
    };
    let _report = publisher.publish(mix.assign(events), None, None).await?;
    // One record for the dead-letter panel.
    let topics = env.topics();
    publisher
        .send_raw(&topics.engagement, Some(0), Some(b"bad"), b"not an event")
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    // After its partition's sentinel, so its windows have closed: a late event.
    publisher
        .send_raw(
            &topics.engagement,
            Some(0),
            Some(b"late"),
            br#"{"event_id":"late","occurred_at":"2026-01-01T00:05:00Z","content_id":"content-000-000","campaign_id":"campaign-000","channel":"web","user_id":"u","kind":"view"}"#,
        )
        .await?;
    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await?;
    // The late event and the consumer lag (librdkafka statistics, every 5 s)
    // are on /metrics; then Prometheus (1 s scrapes) is given time to see them.
    eventually(
        "the late event and the consumer lag on /metrics",
        Duration::from_secs(30),
        || {
            let url = format!("http://{address}/metrics");
            async move {
                let text = reqwest::get(&url).await?.text().await?;
                let has = |name: &str| text.lines().any(|l| l.starts_with(&format!("{name}{{")));
                Ok(
                    (has("reactor_late_events_total") && has("reactor_consumer_lag_messages"))
                        .then_some(()),
                )
            }
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check/dashboards/run_sql.py");
    let mut command = std::process::Command::new(&python);
    command
        .arg(&script)
        .args(["--clickhouse-url", &env.services.clickhouse])
        .args(["--database", &env.config.clickhouse.database])
        // Every window of the events: the earliest starts 5 s before 00:00.
        .args([
            "--from",
            "2025-12-31T23:59:00Z",
            "--to",
            "2026-01-01T00:30:00Z",
        ])
        .args(["--prometheus-url", &prometheus, "--instance", &instance])
        .args(["--prometheus-range", "5m", "--scrape-interval", "1s"])
        // Panels of failures this scenario does not cause.
        .args(["--allow-empty", "Errors and retries"])
        .args(["--allow-empty", "Insert failures"])
        .args(["--allow-empty", "Partition restarts"])
        .args(["--allow-empty", "Restarts in range"]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    ensure!(
        output.status.success(),
        "run_sql.py failed ({}); its output is above",
        output.status
    );
    assert!(stdout.contains("OK: queries executed"), "{stdout}");

    reactor.stop()?;
    Ok(())
}

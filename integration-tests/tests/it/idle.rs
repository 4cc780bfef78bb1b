//! A partition that stops receiving events closes its open windows after
//! `windows.idle_timeout`, so the tail of a stream is written; not while a
//! batch of it waits for the schema registry.

use std::time::Duration;

use integration_tests::expected::rollups;
use integration_tests::{Scenario, TestEnv, TestRegistry};
use reactor::event::decode::{reader_schema, AVRO_SCHEMAS};
use reactor::event::encode::to_confluent_avro;
use reactor::event::{EngagementEvent, EngagementKind, Event, EventTime, TopicKind};
use reactor::generate::publish::FormatMix;
use reactor::registry::SchemaRegistry;

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

/// The last record of a partition needs a schema the registry cannot give
/// (it is down) for several idle timeouts: the partition waits for it
/// instead of closing its windows as idle without it, and once the
/// registry answers the record counts in its window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_stay_open_while_a_batch_waits_for_the_registry() -> anyhow::Result<()> {
    let scenario = Scenario {
        partitions: 1,
        idle_timeout: "5s",
        derived_format: "json",
        ..Scenario::default()
    };
    let env = TestEnv::new("idle-registry", &scenario).await?;
    let publisher = env.publisher().await?;
    let events = crate::events(5, 500);
    // In the last window, which is open until the partition is idle.
    let last = Event::Engagement(EngagementEvent {
        event_id: "after-the-outage".into(),
        occurred_at: EventTime::from_millis(crate::EVENTS_END.as_millis() - 5_000),
        content_id: "content-late".into(),
        campaign_id: "campaign-000".into(),
        channel: "web".into(),
        user_id: "u".into(),
        kind: EngagementKind::Click,
        dwell_ms: Some(10),
    });
    let mut all = events.clone();
    all.push(last.clone());
    let expected = rollups(&all, 60);

    // Reactor's registry: the record's schema id is registered, then the
    // registry goes down before Reactor ever asks for it.
    let registry = TestRegistry::start(&[]).await?;
    let port = registry.port();
    let url = registry.url();
    let schema_text = AVRO_SCHEMAS
        .iter()
        .find(|(kind, _)| *kind == TopicKind::Engagement)
        .map_or("", |(_, text)| text);
    let subject = format!("{}-value", env.topics().engagement);
    let id = SchemaRegistry::new(&url, Duration::from_secs(5))?
        .register_avro(&subject, schema_text)
        .await?;
    drop(registry);
    let payload = to_confluent_avro(&last, &reader_schema(TopicKind::Engagement)?, id)?;

    let mut reactor =
        env.start_reactor_with_env("a", &[("REACTOR__SCHEMA_REGISTRY__URL", url.as_str())])?;
    let _report = publisher
        .publish(FormatMix::Json.assign(events), None, None)
        .await?;
    // The events before it are counted (the window before the last is
    // written), and the last window is open, before the record comes.
    let before_last = u32::try_from((crate::EVENTS_END.as_millis() - 120_000) / 1_000)?;
    integration_tests::eventually(
        "the window before the last to be written",
        Duration::from_secs(30),
        || {
            let query = env
                .clickhouse()
                .query("SELECT count() FROM rollups WHERE toUInt32(window_start) = ?")
                .bind(before_last);
            async move {
                Ok(query
                    .fetch_one::<u64>()
                    .await
                    .is_ok_and(|n| n > 0)
                    .then_some(()))
            }
        },
    )
    .await?;
    publisher
        .send_raw(
            &env.topics().engagement,
            None,
            Some(b"campaign-000"),
            &payload,
        )
        .await?;
    // Three idle timeouts with the record's batch waiting. The registry
    // comes back with the schema already in it: Reactor's next retry may
    // come the moment it listens, and an id it does not have is final.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let schemas = tempfile::tempdir()?;
    let schema_file = schemas.path().join("engagement.avsc");
    std::fs::write(&schema_file, schema_text)?;
    let register = format!("{subject}={}", schema_file.display());
    let registry = TestRegistry::start_on(port, &["--register", &register]).await?;
    let again = SchemaRegistry::new(&url, Duration::from_secs(5))?
        .register_avro(&subject, schema_text)
        .await?;
    assert_eq!(
        again, id,
        "a fresh registry gives the first schema id 1 again"
    );

    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(90))
        .await?;
    reactor.stop()?;
    drop(registry);
    Ok(())
}

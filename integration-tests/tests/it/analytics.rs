//! What Reactor computes beyond sums, end to end: an injected spike raises
//! the anomaly event with the expected id on the anomalies topic, every
//! closed window's rollup is published with its deterministic id, and the
//! stored p50/p90/p95/p99 are within 1 % of the exact percentiles of the
//! published events; and rollup events only for the metrics chosen.

use std::collections::BTreeSet;
use std::time::Duration;

use apache_avro::Schema;
use integration_tests::expected::{rollups, Key};
use integration_tests::{read_topic_async, Scenario, TestEnv};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::message::Message;
use reactor::aggregate::{rank, QUANTILES, RELATIVE_ACCURACY};
use reactor::derived::{event_id, AnomalyEvent, DerivedKind, RollupEvent};
use reactor::event::Event;
use reactor::generate::publish::FormatMix;
use reactor::rollup::Dimensions;
use reactor::sink::derived::DERIVED_SCHEMAS;
use serde::Deserialize;

const SPIKE_MINUTE: i64 = 15;

/// A click series for one content: about 150 clicks a minute with dwell
/// times (so its dwell percentiles come from the sketch), and 1,500 in
/// minute 15.
fn spike_series(seed: u64) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut events = Vec::new();
    for minute in 0..20 {
        let clicks = if minute == SPIKE_MINUTE {
            1_500
        } else {
            150 + rng.random_range(0..20)
        };
        for i in 0..clicks {
            let dwell = (rng.random_range(4.0f64..12.0)).exp() as i64;
            events.push(crate::spike_click(minute, i, clicks, dwell));
        }
    }
    events
}

fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8], kind: DerivedKind) -> anyhow::Result<T> {
    let text = DERIVED_SCHEMAS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, t)| *t)
        .unwrap_or_default();
    let schema = Schema::parse_str(text)?;
    anyhow::ensure!(payload.first() == Some(&0), "not Confluent Avro");
    let value = apache_avro::from_avro_datum(&schema, &mut &payload[5..], None)?;
    Ok(apache_avro::from_value(&value)?)
}

/// `reactor anomaly events` lists the anomaly events Reactor published,
/// and one written with the schema before `escalates` was added (as an
/// earlier Reactor wrote them, registered under the same subject).
async fn assert_cli_reads_anomaly_events_of_every_schema_version(
    env: &TestEnv,
    spike: &AnomalyEvent,
) -> anyhow::Result<()> {
    let line = |e: &AnomalyEvent| {
        format!(
            "{}\t{}\t{}/{}/{}\t{}\t{:.2}\t{:.1}\t{}",
            reactor::event::EventTime::from_millis(e.window_start).to_rfc3339(),
            e.metric,
            e.campaign_id,
            e.content_id,
            e.channel,
            e.observed,
            e.expected,
            e.score,
            e.escalates.as_deref().unwrap_or("-")
        )
    };
    let listed = env
        .reactor_command(&["anomaly", "events", "--campaign", "spike-campaign"], &[])
        .await?;
    assert!(listed.lines().any(|l| l == line(spike)), "{listed}");

    let mut older: serde_json::Value = serde_json::from_str(
        DERIVED_SCHEMAS
            .iter()
            .find(|(k, _)| *k == DerivedKind::Anomaly)
            .map_or("", |(_, t)| t),
    )?;
    if let Some(fields) = older["fields"].as_array_mut() {
        fields.retain(|f| f["name"] != "escalates");
    }
    let older = older.to_string();
    let registry =
        reactor::registry::SchemaRegistry::new(&env.services.registry, Duration::from_secs(10))?;
    let id = registry
        .register_avro(&format!("{}-value", env.topics().anomalies), &older)
        .await?;
    let event = AnomalyEvent {
        campaign_id: "older-campaign".into(),
        escalates: None,
        ..spike.clone()
    };
    let older_schema = Schema::parse_str(&older)?;
    let mut record = apache_avro::types::Record::new(&older_schema)
        .ok_or_else(|| anyhow::anyhow!("the older schema is not a record"))?;
    record.put("id", event.id.as_str());
    record.put("metric", event.metric.as_str());
    record.put("campaign_id", event.campaign_id.as_str());
    record.put("content_id", event.content_id.as_str());
    record.put("channel", event.channel.as_str());
    record.put(
        "window_start",
        apache_avro::types::Value::TimestampMillis(event.window_start),
    );
    record.put(
        "window_end",
        apache_avro::types::Value::TimestampMillis(event.window_end),
    );
    record.put("window_size_ms", event.window_size_ms);
    record.put("observed", event.observed);
    record.put("expected", event.expected);
    record.put("score", event.score);
    record.put("threshold", event.threshold);
    let mut payload = reactor::event::framing::confluent_header(id).to_vec();
    payload.extend(apache_avro::to_avro_datum(&older_schema, record)?);
    let producer = reactor::kafka::producer::create(env.kafka())?;
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&env.topics().anomalies)
                .key(event.campaign_id.as_bytes())
                .payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    let listed = env
        .reactor_command(&["anomaly", "events", "--campaign", "older-campaign"], &[])
        .await?;
    assert!(listed.lines().any(|l| l == line(&event)), "{listed}");
    Ok(())
}

/// The ids of the rollup events of the rows keyed `keys` (one-minute
/// windows), as anyone can compute them.
fn rollup_event_ids<'a>(keys: impl Iterator<Item = &'a Key>) -> BTreeSet<String> {
    keys.map(|(metric, campaign, content, channel, start)| {
        let dims = Dimensions {
            campaign_id: campaign.clone(),
            content_id: content.clone(),
            channel: channel.clone(),
        };
        event_id(
            DerivedKind::Rollup,
            metric,
            &dims,
            i64::from(*start) * 1000,
            60_000,
        )
    })
    .collect()
}

/// The rollup events on the rollups topic: at least `count`, and any more
/// already there.
async fn published_rollup_events(env: &TestEnv, count: usize) -> anyhow::Result<Vec<RollupEvent>> {
    let messages = read_topic_async(
        env.kafka(),
        &env.topics().rollups,
        count,
        Duration::from_secs(60),
    )
    .await?;
    messages
        .iter()
        .map(|m| decode(m.payload().unwrap_or_default(), DerivedKind::Rollup))
        .collect()
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Percentiles {
    metric: String,
    campaign_id: String,
    content_id: String,
    channel: String,
    window_start: u32,
    p50: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_raises_its_anomaly_and_percentiles_are_within_bound() -> anyhow::Result<()> {
    let scenario = Scenario {
        partitions: 2,
        extra: "[anomaly]\nwarm_up = 5\n",
        ..crate::without_idle_closing()
    };
    let env = TestEnv::new("analytics", &scenario).await?;
    let publisher = env.publisher().await?;
    let mut events = crate::events(11, 20_000);
    events.extend(spike_series(5));
    events.sort_by_key(Event::occurred_at);
    let expected = rollups(&events, 60);

    let mut reactor = env.start_reactor("a")?;
    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 11,
    };
    let _report = publisher.publish(mix.assign(events), None, None).await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await?;

    // The anomaly, with the id anyone can compute from what it is about.
    let spike_dims = Dimensions {
        campaign_id: "spike-campaign".into(),
        content_id: "spike-content".into(),
        channel: "web".into(),
    };
    let spike_start = crate::START_MS + SPIKE_MINUTE * 60_000;
    let want_id = event_id(
        DerivedKind::Anomaly,
        "engagement.click",
        &spike_dims,
        spike_start,
        60_000,
    );
    let messages = read_topic_async(
        env.kafka(),
        &env.topics().anomalies,
        1,
        Duration::from_secs(60),
    )
    .await?;
    let mut anomalies = Vec::new();
    for message in &messages {
        let event: AnomalyEvent =
            decode(message.payload().unwrap_or_default(), DerivedKind::Anomaly)?;
        assert_eq!(message.key(), Some(event.campaign_id.as_bytes()));
        anomalies.push(event);
    }
    let spike = anomalies
        .iter()
        .find(|a| a.id == want_id)
        .unwrap_or_else(|| panic!("no anomaly {want_id} among {anomalies:#?}"));
    assert_eq!(
        (spike.metric.as_str(), spike.window_start, spike.window_end),
        ("engagement.click", spike_start, spike_start + 60_000)
    );
    assert_eq!(spike.observed, 1_500.0);
    assert!((150.0..170.0).contains(&spike.expected), "{spike:?}");
    assert!(spike.score >= spike.threshold, "{spike:?}");
    assert_eq!(spike.escalates, None, "an incident's first event");
    assert_cli_reads_anomaly_events_of_every_schema_version(&env, spike).await?;

    // Every closed window's rollup, published once with its id.
    let want_ids = rollup_event_ids(expected.keys());
    let published = published_rollup_events(&env, want_ids.len()).await?;
    let got_ids: BTreeSet<String> = published.into_iter().map(|e| e.id).collect();
    assert_eq!(got_ids, want_ids);

    // Percentiles within the sketch's bound of the exact ones.
    let stored = env
        .clickhouse()
        .query(
            "SELECT metric, campaign_id, content_id, channel, toUInt32(window_start), p50, p90, p95, p99 \
             FROM rollups FINAL WHERE metric IN ('engagement.dwell_ms', 'conversion.revenue', 'content.sentiment', 'content.seo_score')",
        )
        .fetch_all::<Percentiles>()
        .await?;
    let (mut checked, mut sketched) = (0, 0);
    for row in &stored {
        let key = (
            row.metric.clone(),
            row.campaign_id.clone(),
            row.content_id.clone(),
            row.channel.clone(),
            row.window_start,
        );
        let mut values = expected[&key].values().to_vec();
        values.sort_by(f64::total_cmp);
        sketched += usize::from(values.len() > reactor::aggregate::EXACT_LIMIT);
        for (q, got) in QUANTILES.iter().zip([row.p50, row.p90, row.p95, row.p99]) {
            let exact = values[rank(*q, values.len())];
            let got = got.unwrap_or_else(|| panic!("{key:?}: no p{q}"));
            assert!(
                (got - exact).abs() <= RELATIVE_ACCURACY * exact.abs() + 1e-9,
                "{key:?} q={q}: stored {got}, exact {exact}"
            );
        }
        checked += 1;
    }
    assert!(checked > 1_000, "only {checked} rows with percentiles");
    assert!(sketched >= 20, "only {sketched} rows came from the sketch");

    reactor.stop()?;
    Ok(())
}

/// With `derived.rollup_metrics`, rollup events are published for the rows
/// of the metrics named, exactly once each, and for no other row; every row
/// is still written to ClickHouse exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_events_only_for_the_metrics_chosen() -> anyhow::Result<()> {
    let scenario = Scenario {
        partitions: 2,
        ..crate::without_idle_closing()
    };
    let env = TestEnv::new("rollup-metrics", &scenario).await?;
    let publisher = env.publisher().await?;
    let events = crate::events(23, 6_000);
    let expected = rollups(&events, 60);

    // As a list in one variable, the way a Helm value or a shell sets it.
    let mut reactor = env.start_reactor_with_env(
        "a",
        &[(
            "REACTOR__DERIVED__ROLLUP_METRICS",
            "engagement.click,conversion.*",
        )],
    )?;
    let _report = publisher
        .publish(FormatMix::Json.assign(events), None, None)
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await?;

    let chosen = |metric: &str| metric == "engagement.click" || metric.starts_with("conversion.");
    let want_ids = rollup_event_ids(expected.keys().filter(|(metric, ..)| chosen(metric)));
    let left_out = expected
        .keys()
        .filter(|(metric, ..)| !chosen(metric))
        .count();
    assert!(
        want_ids.len() > 100 && left_out > 100,
        "{} rows chosen, {left_out} left out",
        want_ids.len()
    );
    let published = published_rollup_events(&env, want_ids.len()).await?;
    let count = published.len();
    let mut got_ids = BTreeSet::new();
    for event in published {
        assert!(chosen(&event.metric), "a rollup event of {}", event.metric);
        let _new = got_ids.insert(event.id);
    }
    assert_eq!(got_ids, want_ids);
    assert_eq!(count, want_ids.len(), "rollup events published twice");

    reactor.stop()?;
    Ok(())
}

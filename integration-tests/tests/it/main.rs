//! End-to-end tests against the real broker, ClickHouse and schema registry
//! started by `scripts/services-start`. One binary, a fresh environment per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actors;
mod analytics;
mod broker;
mod cli;
mod dashboards;
mod exact;
mod fatal;
mod faults;
mod hostile;
mod idle;
mod logs;
mod moves;
mod observability;
mod rebalance;
mod registry;
mod replay;
mod restart;
mod security;

use reactor::event::{EngagementEvent, EngagementKind, Event, EventTime};
use reactor::generate::{EventGenerator, GeneratorSettings};

/// Event time just after every event of [`events`].
pub(crate) const EVENTS_END: EventTime = EventTime::from_millis(START_MS + 20 * 60_000);

/// Start of the scenarios' event time, 2026-01-01T00:00:00Z.
pub(crate) const START_MS: i64 = 1_767_225_600_000;

/// Click `i` of `clicks` in `minute` (spread evenly over it) on the content
/// the spike tests watch: campaign "spike-campaign", content
/// "spike-content", channel "web".
pub(crate) fn spike_click(minute: i64, i: i64, clicks: i64, dwell_ms: i64) -> Event {
    Event::Engagement(EngagementEvent {
        event_id: format!("spike-{minute}-{i}"),
        occurred_at: EventTime::from_millis(START_MS + minute * 60_000 + i * 59_000 / clicks),
        content_id: "spike-content".into(),
        campaign_id: "spike-campaign".into(),
        channel: "web".into(),
        user_id: format!("user-{i}"),
        kind: EngagementKind::Click,
        dwell_ms: Some(dwell_ms),
    })
}

/// A scenario whose windows are closed by sentinel events, not by idle
/// detection (which depends on wall-clock pauses in the test's publisher).
pub(crate) fn without_idle_closing() -> integration_tests::Scenario {
    integration_tests::Scenario {
        idle_timeout: "10m",
        ..integration_tests::Scenario::default()
    }
}

/// The seeded events a scenario publishes: `count` events over 20 minutes of
/// event time, up to 5 s out of order, 20 campaigns.
pub(crate) fn events(seed: u64, count: u64) -> Vec<Event> {
    EventGenerator::new(GeneratorSettings {
        seed,
        count,
        start: EventTime::from_millis(START_MS),
        span: std::time::Duration::from_secs(20 * 60),
        disorder: std::time::Duration::from_secs(5),
        campaigns: 20,
        contents_per_campaign: 10,
        ..GeneratorSettings::default()
    })
    .collect()
}

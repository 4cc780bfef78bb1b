//! Shared by the benchmarks: the pipeline settings and the seeded input.
#![allow(dead_code)] // each benchmark uses part of it

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reactor::aggregate::{AnomalySettings, HistorySettings, TrendSettings};
use reactor::event::decode::{reader_schema, Decoder, Format};
use reactor::event::encode::{to_confluent_avro, to_json};
use reactor::event::validate::Limits;
use reactor::event::{EngagementEvent, EngagementKind, Event, EventTime, Record, TopicKind};
use reactor::pipeline::{ClockQuorum, PartitionPipeline, PipelineSettings, Source, WindowSettings};
use reactor::rollup::Rollup;
use reactor::window::{LatePolicy, WindowSpec};

const START_MS: i64 = 1_767_225_600_000;
pub(crate) const SCHEMA_ID: u32 = 7;
/// Events per one-minute window: at 1,000 keys each key's dwell series
/// holds about 300 values (the sketch), at 100,000 keys about 3 (exact).
pub(crate) const EVENTS_PER_WINDOW: usize = 300_000;
pub(crate) const WINDOWS: usize = 2;

pub(crate) fn settings() -> PipelineSettings {
    PipelineSettings {
        windows: WindowSettings {
            spec: WindowSpec::tumbling(Duration::from_secs(60)),
            allowed_lateness: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_future_skew: Duration::from_secs(3600),
            clock_quorum: ClockQuorum {
                first_watermark: 5,
                jump: 100,
            },
            late_policy: LatePolicy::Drop,
        },
        history: HistorySettings {
            trend: TrendSettings {
                windows: 10,
                threshold: 10.0,
            },
            anomaly: AnomalySettings {
                alpha: 0.05,
                warm_up: 10,
                threshold: 3.0,
                quiet_windows: 50,
                escalation: 4.0,
            },
        },
        history_retention: Duration::from_secs(86_400),
        limits: Limits::default(),
        max_keys: 1_000_000,
    }
}

pub(crate) fn pipeline() -> PartitionPipeline {
    let mut p = PartitionPipeline::new(
        Arc::from("engagement.events"),
        0,
        Decoder::new(TopicKind::Engagement, true, Default::default()).expect("embedded schema"),
        settings(),
        None,
        1,
    );
    let schema = reader_schema(TopicKind::Engagement).expect("embedded schema");
    p.add_writer_schemas([(SCHEMA_ID, Some(schema.canonical_form().as_str()))]);
    p
}

/// Engagement events over `keys` (campaign, content, channel) keys, every
/// one with a dwell time, in time order over `WINDOWS` one-minute windows.
pub(crate) fn events(keys: usize, count: usize) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(keys as u64);
    let channels = ["web", "email", "social", "search"];
    let step = 60_000.0 / EVENTS_PER_WINDOW as f64;
    (0..count)
        .map(|i| {
            let key = rng.random_range(0..keys);
            let campaign = key / 100;
            Event::Engagement(EngagementEvent {
                event_id: format!("evt-{i:010}"),
                occurred_at: EventTime::from_millis(START_MS + (i as f64 * step) as i64),
                content_id: format!("content-{campaign:04}-{key:06}"),
                campaign_id: format!("campaign-{campaign:04}"),
                channel: channels[key % channels.len()].to_owned(),
                user_id: format!("user-{:07}", rng.random_range(0..1_000_000)),
                kind: EngagementKind::ALL[rng.random_range(0..EngagementKind::ALL.len())],
                dwell_ms: Some(rng.random_range(4.0f64..11.0).exp() as i64),
            })
        })
        .collect()
}

pub(crate) fn records(events: &[Event], format: Format) -> Vec<Record> {
    let schema = reader_schema(TopicKind::Engagement).expect("embedded schema");
    events
        .iter()
        .enumerate()
        .map(|(offset, event)| Record {
            offset: offset as i64,
            key: Some(event.campaign_id().as_bytes().to_vec()),
            payload: Some(match format {
                Format::Json => to_json(event).expect("encodes"),
                Format::Avro => to_confluent_avro(event, &schema, SCHEMA_ID).expect("encodes"),
            }),
        })
        .collect()
}

/// Runs every record through a fresh pipeline in batches of 2,000, then
/// closes the remaining windows; returns the rows produced.
pub(crate) fn run(records: Vec<Record>) -> usize {
    let mut rows = 0;
    run_with(records, |batch| rows += batch.len());
    rows
}

/// The rows closed over `records`, all windows closed at the end.
pub(crate) fn closed_rows(records: Vec<Record>) -> Vec<Rollup> {
    let mut rows = Vec::new();
    run_with(records, |batch| rows.extend_from_slice(batch));
    rows
}

fn run_with(records: Vec<Record>, mut closed: impl FnMut(&[Rollup])) {
    let mut p = pipeline();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let batch: Vec<Record> = records.by_ref().take(2_000).collect();
        let out = p.process(batch).expect("schemas fetched");
        if let Some(b) = out.rollups {
            closed(&b.rows);
            p.rollups_written(b.id);
        }
    }
    let idle = Source {
        quiet_for: Some(Duration::from_secs(3600)),
        draining: false,
    };
    let tail = p.tick(idle).expect("schemas fetched");
    if let Some(b) = tail.rollups {
        closed(&b.rows);
    }
}

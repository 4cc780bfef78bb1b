//! The aggregation core on one core, no I/O: decode → route → window →
//! aggregate → closed rows (with percentiles, trend, anomaly and derived
//! events), through `PartitionPipeline::process`, exactly as a partition
//! actor drives it.
//!
//! `cargo bench --bench aggregation` runs the throughput benchmarks (JSON and
//! Avro input, 1,000 and 100,000 keys) and first prints the memory held per
//! open (key, window), measured with a counting allocator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reactor::aggregate::{AnomalySettings, HistorySettings, TrendSettings};
use reactor::event::decode::{reader_schema, Decoder, Format};
use reactor::event::encode::{to_confluent_avro, to_json};
use reactor::event::{EngagementEvent, EngagementKind, Event, EventTime, Record, TopicKind};
use reactor::pipeline::{LatePolicy, PartitionPipeline, PipelineSettings, WindowSettings};
use reactor::window::WindowSpec;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const START_MS: i64 = 1_767_225_600_000;
const SCHEMA_ID: u32 = 7;
/// Events per one-minute window: at 1,000 keys each key's dwell series
/// holds about 300 values (the sketch), at 100,000 keys about 3 (exact).
const EVENTS_PER_WINDOW: usize = 300_000;
const WINDOWS: usize = 2;

fn settings() -> PipelineSettings {
    PipelineSettings {
        windows: WindowSettings {
            spec: WindowSpec::tumbling(Duration::from_secs(60)),
            allowed_lateness: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_future_skew: Duration::from_secs(3600),
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
                threshold: 4.0,
            },
        },
        history_retention: Duration::from_secs(86_400),
    }
}

fn pipeline() -> PartitionPipeline {
    let mut p = PartitionPipeline::new(
        Arc::from("engagement.events"),
        0,
        Decoder::new(TopicKind::Engagement, true).expect("embedded schema"),
        settings(),
        None,
    );
    let schema = reader_schema(TopicKind::Engagement).expect("embedded schema");
    p.add_writer_schema(SCHEMA_ID, Some(&schema.canonical_form()));
    p
}

/// Engagement events over `keys` (campaign, content, channel) keys, every
/// one with a dwell time, in time order over `WINDOWS` one-minute windows.
fn events(keys: usize, count: usize) -> Vec<Event> {
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

fn records(events: &[Event], format: Format) -> Vec<Record> {
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
fn run(records: Vec<Record>) -> usize {
    let mut p = pipeline();
    let now = Instant::now();
    let mut rows = 0;
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let batch: Vec<Record> = records.by_ref().take(2_000).collect();
        let out = p.process(batch, now).expect("schemas fetched");
        if let Some(b) = out.rollups {
            rows += b.rows.len();
            p.rollups_written(b.id);
        }
    }
    if let Some(b) = p.tick(now + Duration::from_secs(3600)).rollups {
        rows += b.rows.len();
    }
    rows
}

/// Heap held by the open windows of one minute, per open series and per
/// open (campaign, content, channel) key.
fn memory_report() {
    println!("memory held by open windows (one window open, nothing closed):");
    for keys in [1_000, 100_000] {
        let input = records(&events(keys, EVENTS_PER_WINDOW - 1_000), Format::Json);
        let mut p = pipeline();
        let region = Region::new(GLOBAL);
        for batch in input.chunks(2_000) {
            let _out = p.process(batch.to_vec(), Instant::now());
        }
        let stats = region.change();
        let held = stats.bytes_allocated as f64 - stats.bytes_deallocated as f64;
        let state = p.state();
        let series: usize = state.open_windows.iter().map(|(_, n)| n).sum();
        // Each key has one dwell series and up to six count series.
        let keys_open = state.open_windows.len() * keys.min(EVENTS_PER_WINDOW);
        println!(
            "  {keys:>7} keys: {:>6.1} MiB held, {series} open series → {:.0} B per series, {:.0} B per open (key, window)",
            held / 1_048_576.0,
            held / series as f64,
            held / keys_open as f64,
        );
    }
}

fn throughput(c: &mut Criterion) {
    let count = EVENTS_PER_WINDOW * WINDOWS;
    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(count as u64));
    for keys in [1_000, 100_000] {
        let events = events(keys, count);
        for format in [Format::Json, Format::Avro] {
            let input = records(&events, format);
            group.bench_function(format!("{}/{keys}_keys", format.as_str()), |b| {
                b.iter_batched(|| input.clone(), run, BatchSize::LargeInput);
            });
        }
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let events = events(1_000, 10_000);
    let decoder = {
        let mut d = Decoder::new(TopicKind::Engagement, true).expect("embedded schema");
        let schema = reader_schema(TopicKind::Engagement).expect("embedded schema");
        d.add_writer_schema(SCHEMA_ID, Some(&schema.canonical_form()));
        d
    };
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(events.len() as u64));
    for format in [Format::Json, Format::Avro] {
        let input = records(&events, format);
        group.bench_function(format.as_str(), |b| {
            b.iter(|| {
                input
                    .iter()
                    .filter(|r| decoder.decode(r.payload.as_deref()).is_ok())
                    .count()
            });
        });
    }
    group.finish();
}

fn main() {
    memory_report();
    let mut criterion = Criterion::default().configure_from_args();
    decode(&mut criterion);
    throughput(&mut criterion);
    criterion.final_summary();
}

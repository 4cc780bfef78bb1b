//! The aggregation core on one core, no I/O: decode → route → window →
//! aggregate → closed rows (with percentiles, trend and anomaly), through
//! `PartitionPipeline::process`, exactly as a partition actor drives it,
//! with the binary's allocator (mimalloc).
//!
//! `cargo bench --bench aggregation`: JSON and Avro input, 1,000 and 100,000
//! keys, plus decoding alone and building derived rollup events alone. Memory per open (key, window) is measured by
//! `cargo bench --bench memory`.
#![allow(clippy::expect_used)] // setup that fails is a bug in the benchmark

mod common;

use std::time::Duration;

use common::{closed_rows, events, records, run, EVENTS_PER_WINDOW, SCHEMA_ID, WINDOWS};
use criterion::{BatchSize, Criterion, Throughput};
use reactor::derived::{DerivedKind, RollupEventView, ID_LENGTH};
use reactor::event::decode::{reader_schema, Decoder, Format};
use reactor::event::TopicKind;
use reactor::sink::derived::DERIVED_SCHEMAS;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        let mut d =
            Decoder::new(TopicKind::Engagement, true, Default::default()).expect("embedded schema");
        let schema = reader_schema(TopicKind::Engagement).expect("embedded schema");
        d.add_writer_schema(SCHEMA_ID, Some(&schema.canonical_form()));
        d
    };
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(events.len() as u64));
    for format in [Format::Json, Format::Avro] {
        let input = records(&events, format);
        group.bench_function(format.as_str(), |b| {
            // As the pipeline decodes: into the previous event's buffers.
            let mut slot = None;
            b.iter(|| {
                input
                    .iter()
                    .filter(|r| {
                        decoder
                            .decode_reusing(r.payload.as_deref(), &mut slot)
                            .is_ok()
                    })
                    .count()
            });
        });
    }
    group.finish();
}

/// A derived rollup event per closed row, as `sink::derived` builds them:
/// the id, then the event encoded from a view of the row.
fn derived(c: &mut Criterion) {
    let rows = closed_rows(records(&events(100_000, 20_000), Format::Json));
    let rollup_schema = DERIVED_SCHEMAS
        .iter()
        .find(|(kind, _)| *kind == DerivedKind::Rollup)
        .map(|(_, text)| text.parse::<serde_avro_fast::Schema>())
        .expect("a rollup schema")
        .expect("embedded schema");
    let mut group = c.benchmark_group("derived");
    group.throughput(Throughput::Elements(rows.len() as u64));
    // Each measures, per row, the view (its id) and what `encode` makes of it.
    let mut per_row = |name: &str, encode: &dyn Fn(&RollupEventView<'_>) -> usize| {
        group.bench_function(name, |b| {
            let mut id = [0; ID_LENGTH];
            b.iter(|| {
                rows.iter()
                    .map(|row| encode(&RollupEventView::of(row, &mut id)))
                    .sum::<usize>()
            });
        });
    };
    per_row("event_id", &|view| std::hint::black_box(view).key().len());
    per_row("rollup_json", &|view| {
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, view).expect("serialisable");
        out.len()
    });
    per_row("rollup_avro", &|view| {
        let mut config = serde_avro_fast::ser::SerializerConfig::new(&rollup_schema);
        serde_avro_fast::to_datum(view, Vec::with_capacity(512), &mut config)
            .expect("fits the schema")
            .len()
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    derived(&mut criterion);
    decode(&mut criterion);
    throughput(&mut criterion);
    criterion.final_summary();
}

//! The rollup contract, tested in one place: the pipeline's [`Rollup`], the
//! ClickHouse row ([`RollupRow`]) and its DDL (`schemas/clickhouse/`), the
//! derived [`RollupEvent`] and its Avro schema (`schemas/avro/rollup.avsc`)
//! all carry the same columns with the same values. A column added in one
//! place and not the others fails here: the `Rollup` literal below lists
//! every field without `..`, so a new field does not compile until it is
//! mapped.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::clickhouse::rows::RollupRow;
use crate::derived::rollup_event;
use crate::event::EventTime;
use crate::rollup::{Dimensions, Rollup};

const DDL: &str = include_str!("../../schemas/clickhouse/001_rollups.sql");
const AVSC: &str = include_str!("../../schemas/avro/rollup.avsc");

/// Every field set, each to a value no other field has.
fn rollup() -> Rollup {
    Rollup {
        metric: "engagement.dwell_ms".into(),
        dimensions: Dimensions {
            campaign_id: "campaign-7".into(),
            content_id: "content-3".into(),
            channel: "email".into(),
        },
        window_start: EventTime::from_millis(1_767_225_600_000),
        window_end: EventTime::from_millis(1_767_225_660_000),
        count: 11,
        sum: 1.5,
        min: 2.5,
        max: 3.5,
        avg: 4.5,
        p50: Some(5.5),
        p90: Some(6.5),
        p95: Some(7.5),
        p99: Some(8.5),
        trend_slope: Some(9.5),
        anomaly_score: Some(10.5),
        source_topic: Arc::from("engagement.events"),
        source_partition: 12,
    }
}

/// The column names of `CREATE TABLE ... reactor.rollups (...)`.
fn ddl_columns() -> Vec<String> {
    let create = DDL.find("CREATE TABLE").unwrap_or(0);
    let open = create + DDL[create..].find('(').unwrap_or(0) + 1;
    let body = &DDL[open..DDL.find(")\nENGINE").unwrap_or(open)];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn avsc_fields() -> Vec<String> {
    let schema: Value = serde_json::from_str(AVSC).unwrap_or_default();
    schema["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[String]) -> BTreeSet<&str> {
    names.iter().map(String::as_str).collect()
}

#[test]
fn the_row_the_event_the_ddl_and_the_avro_schema_agree() {
    let rollup = rollup();
    let row = serde_json::to_value(RollupRow::new(rollup.clone(), 99)).unwrap_or_default();
    let event = serde_json::to_value(rollup_event(&rollup)).unwrap_or_default();

    // Same columns (inserts name them, so order does not matter).
    assert_eq!(keys(&row).len(), ddl_columns().len());
    assert_eq!(set(&keys(&row)), set(&ddl_columns()), "RollupRow vs DDL");
    assert_eq!(
        set(&keys(&event)),
        set(&avsc_fields()),
        "RollupEvent vs rollup.avsc"
    );
    let row_only: BTreeSet<&str> = ["version"].into();
    let event_only: BTreeSet<&str> = ["id", "window_size_ms"].into();
    let row_keys = keys(&row);
    let event_keys = keys(&event);
    let (row_set, event_set) = (set(&row_keys), set(&event_keys));
    assert_eq!(
        row_set
            .difference(&event_set)
            .copied()
            .collect::<BTreeSet<_>>(),
        row_only,
        "columns only the ClickHouse row has"
    );
    assert_eq!(
        event_set
            .difference(&row_set)
            .copied()
            .collect::<BTreeSet<_>>(),
        event_only,
        "fields only the derived event has"
    );

    // Every shared column carries the rollup's value (times in the unit of
    // each side: seconds in ClickHouse, milliseconds in events).
    let expected = [
        ("metric", Value::from("engagement.dwell_ms")),
        ("campaign_id", "campaign-7".into()),
        ("content_id", "content-3".into()),
        ("channel", "email".into()),
        ("count", 11.into()),
        ("sum", 1.5.into()),
        ("min", 2.5.into()),
        ("max", 3.5.into()),
        ("avg", 4.5.into()),
        ("p50", 5.5.into()),
        ("p90", 6.5.into()),
        ("p95", 7.5.into()),
        ("p99", 8.5.into()),
        ("trend_slope", 9.5.into()),
        ("anomaly_score", 10.5.into()),
        ("source_topic", "engagement.events".into()),
        ("source_partition", 12.into()),
    ];
    for (name, value) in &expected {
        assert_eq!(&row[name], value, "RollupRow.{name}");
        assert_eq!(&event[name], value, "RollupEvent.{name}");
    }
    assert_eq!(row["window_start"], 1_767_225_600);
    assert_eq!(row["window_end"], 1_767_225_660);
    assert_eq!(event["window_start"], 1_767_225_600_000i64);
    assert_eq!(event["window_end"], 1_767_225_660_000i64);
    assert_eq!(event["window_size_ms"], 60_000);
    assert_eq!(row["version"], 99);
    let covered = expected.len() + ["window_start", "window_end"].len();
    assert_eq!(
        covered + row_only.len(),
        row_keys.len(),
        "a RollupRow column is not checked here"
    );
}

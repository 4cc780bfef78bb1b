//! Every metric Reactor exports, in one place: names, help texts, and the
//! functions that record them. Names start with `reactor_` and end with their
//! unit; labels are limited to `topic`, `partition`, `format`, `reason`,
//! `kind`, `table` and `outcome`, never keys or ids. Hot paths record once per batch.

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// Records read from input partitions.
pub const EVENTS_CONSUMED: &str = "reactor_events_consumed_total";
/// Records decoded, by format.
pub const EVENTS_DECODED: &str = "reactor_events_decoded_total";
/// Records sent to the dead-letter topic, by reason.
pub const DEAD_LETTERS: &str = "reactor_dead_letters_total";
/// Failed attempts to forward a record to a side topic (retried).
pub const FORWARD_FAILURES: &str = "reactor_forward_failures_total";
/// Events whose windows had all closed (dropped, or forwarded to the late topic).
pub const LATE_EVENTS: &str = "reactor_late_events_total";
/// Derived events published, by kind (rollup, trend, anomaly).
pub const DERIVED_EVENTS: &str = "reactor_derived_events_total";
/// Failed attempts to publish a derived event (retried).
pub const DERIVED_FAILURES: &str = "reactor_derived_publish_failures_total";
/// Windows closed.
pub const WINDOWS_CLOSED: &str = "reactor_windows_closed_total";
/// Windows currently open, per partition.
pub const OPEN_WINDOWS: &str = "reactor_open_windows";
/// Event-time watermark per partition, in seconds since the epoch.
pub const WATERMARK: &str = "reactor_watermark_seconds";
/// Rows written to ClickHouse, by table.
pub const ROWS_WRITTEN: &str = "reactor_clickhouse_rows_written_total";
/// Duration of successful ClickHouse inserts, by table.
pub const INSERT_DURATION: &str = "reactor_clickhouse_insert_duration_seconds";
/// Failed ClickHouse inserts, by table and outcome (retry or fatal).
pub const INSERT_FAILURES: &str = "reactor_clickhouse_insert_failures_total";
/// Consumer lag per partition, from librdkafka statistics: end offset minus
/// committed offset, and Reactor commits only what its checkpoints cover.
pub const CONSUMER_LAG: &str = "reactor_consumer_lag_messages";
/// Errors reported by the Kafka consumer.
pub const CONSUMER_ERRORS: &str = "reactor_consumer_errors_total";
/// Partitions currently assigned to this process.
pub const ASSIGNED_PARTITIONS: &str = "reactor_assigned_partitions";
/// Time from a partition's start to reading: its state loaded from
/// ClickHouse, its epoch claimed, its position set.
pub const PARTITION_LOAD_DURATION: &str = "reactor_partition_load_duration_seconds";
/// Partition actor restarts after a failure.
pub const PARTITION_RESTARTS: &str = "reactor_partition_restarts_total";
/// Partitions that resumed elsewhere than their checkpoint, because the
/// checkpoint's offset was no longer in the partition, by reason.
pub const OFFSET_RESETS: &str = "reactor_offset_resets_total";
/// Records deleted from a partition before Reactor read them.
pub const RECORDS_DELETED_UNREAD: &str = "reactor_records_deleted_unread_total";
/// Failed schema registry requests (retried).
pub const SCHEMA_REGISTRY_ERRORS: &str = "reactor_schema_registry_errors_total";
/// Build information; the value is always 1.
pub const BUILD_INFO: &str = "reactor_build_info";

/// Installs the Prometheus recorder and describes every metric. Call once.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            &[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        )?
        .install_recorder()?;
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

fn describe() {
    describe_counter!(
        EVENTS_CONSUMED,
        Unit::Count,
        "Records read from input partitions."
    );
    describe_counter!(
        EVENTS_DECODED,
        Unit::Count,
        "Records decoded into events, by format (json, avro)."
    );
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Records sent to the dead-letter topic, by reason."
    );
    describe_counter!(
        FORWARD_FAILURES,
        Unit::Count,
        "Failed attempts to forward a record to the dead-letter or late-events topic; each is retried."
    );
    describe_counter!(
        DERIVED_EVENTS,
        Unit::Count,
        "Derived events published to Kafka, by kind (rollup, trend, anomaly)."
    );
    describe_counter!(
        DERIVED_FAILURES,
        Unit::Count,
        "Failed attempts to publish a derived event; each is retried."
    );
    describe_counter!(
        LATE_EVENTS,
        Unit::Count,
        "Events for windows that had already closed (dropped and counted)."
    );
    describe_counter!(WINDOWS_CLOSED, Unit::Count, "Event-time windows closed.");
    describe_gauge!(OPEN_WINDOWS, Unit::Count, "Windows currently open.");
    describe_gauge!(
        WATERMARK,
        Unit::Seconds,
        "Event-time watermark, seconds since the Unix epoch."
    );
    describe_counter!(
        ROWS_WRITTEN,
        Unit::Count,
        "Rows written to ClickHouse, by table."
    );
    describe_histogram!(
        INSERT_DURATION,
        Unit::Seconds,
        "Duration of successful ClickHouse inserts, by table."
    );
    describe_histogram!(
        PARTITION_LOAD_DURATION,
        Unit::Seconds,
        "Time from a partition's start to reading: state loaded from ClickHouse, epoch claimed, position set."
    );
    describe_counter!(
        INSERT_FAILURES,
        Unit::Count,
        "Failed ClickHouse inserts, by table and outcome (retry, fatal)."
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Messages between the partition's committed offset (Reactor's last checkpoint, which trails the open windows) and its end; a caught-up partition shows about input rate x (window + lateness)."
    );
    describe_counter!(
        CONSUMER_ERRORS,
        Unit::Count,
        "Errors reported by the Kafka consumer."
    );
    describe_gauge!(
        ASSIGNED_PARTITIONS,
        Unit::Count,
        "Input partitions assigned to this process."
    );
    describe_counter!(
        PARTITION_RESTARTS,
        Unit::Count,
        "Partition actors restarted after a failure."
    );
    describe_counter!(
        OFFSET_RESETS,
        Unit::Count,
        "Partitions that resumed elsewhere than their checkpoint because its offset was no longer in the partition, by reason (deleted_before_read, past_end)."
    );
    describe_counter!(
        RECORDS_DELETED_UNREAD,
        Unit::Count,
        "Records deleted from a partition (retention, deleted records) between Reactor's checkpoint and the partition's earliest offset: never read."
    );
    describe_counter!(
        SCHEMA_REGISTRY_ERRORS,
        Unit::Count,
        "Failed schema registry requests; each is retried."
    );
    describe_gauge!(
        BUILD_INFO,
        Unit::Count,
        "Build information: the version label; always 1."
    );
}

/// What one processed batch of a partition counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Records read.
    pub records: u64,
    /// Records decoded from JSON.
    pub json: u64,
    /// Records decoded from Avro.
    pub avro: u64,
    /// Records whose windows had all closed.
    pub late: u64,
    /// Windows closed.
    pub windows_closed: u64,
}

/// Counts one processed batch of a partition.
pub fn batch(topic: &str, partition: i32, stats: BatchCounts) {
    let (topic, partition) = (topic.to_owned(), partition.to_string());
    counter!(EVENTS_CONSUMED, "topic" => topic.clone(), "partition" => partition)
        .increment(stats.records);
    if stats.json > 0 {
        counter!(EVENTS_DECODED, "topic" => topic.clone(), "format" => "json")
            .increment(stats.json);
    }
    if stats.avro > 0 {
        counter!(EVENTS_DECODED, "topic" => topic.clone(), "format" => "avro")
            .increment(stats.avro);
    }
    if stats.late > 0 {
        counter!(LATE_EVENTS, "topic" => topic.clone()).increment(stats.late);
    }
    if stats.windows_closed > 0 {
        counter!(WINDOWS_CLOSED, "topic" => topic).increment(stats.windows_closed);
    }
}

/// Counts a partition resumed elsewhere than its checkpoint, and the records
/// that were deleted before they were read (0 for `past_end`).
pub fn offset_reset(topic: &str, partition: i32, reason: &'static str, unread: u64) {
    let (topic, partition) = (topic.to_owned(), partition.to_string());
    counter!(OFFSET_RESETS, "topic" => topic.clone(), "partition" => partition.clone(), "reason" => reason)
        .increment(1);
    counter!(RECORDS_DELETED_UNREAD, "topic" => topic, "partition" => partition).increment(unread);
}

/// Counts a dead letter.
pub fn dead_letter(topic: &str, reason: &'static str) {
    counter!(DEAD_LETTERS, "topic" => topic.to_owned(), "reason" => reason).increment(1);
}

/// Counts a failed delivery to a side topic.
pub fn side_topic_failure(topic: &str) {
    counter!(FORWARD_FAILURES, "topic" => topic.to_owned()).increment(1);
}

/// Counts derived events published.
pub fn derived_published(kind: &'static str, count: u64) {
    counter!(DERIVED_EVENTS, "kind" => kind).increment(count);
}

/// Counts a failed derived-event publication.
pub fn derived_failure(kind: &'static str) {
    counter!(DERIVED_FAILURES, "kind" => kind).increment(1);
}

/// Sets a partition's open-window count and watermark.
pub fn partition_progress(
    topic: &str,
    partition: i32,
    open_windows: usize,
    watermark_ms: Option<i64>,
) {
    let (topic, partition) = (topic.to_owned(), partition.to_string());
    gauge!(OPEN_WINDOWS, "topic" => topic.clone(), "partition" => partition.clone())
        .set(open_windows as f64);
    if let Some(ms) = watermark_ms {
        gauge!(WATERMARK, "topic" => topic, "partition" => partition).set(ms as f64 / 1000.0);
    }
}

/// Marks a partition this process no longer owns (revoked, or stopped): its
/// open-window, watermark and lag gauges read NaN from now on, until an owner
/// sets them again. The exporter cannot delete a series, and a frozen last
/// value would be summed, graphed and alerted on as if it were current; NaN
/// is ignored by comparisons and shows as a gap.
pub fn partition_released(topic: &str, partition: i32) {
    let (topic, partition) = (topic.to_owned(), partition.to_string());
    for name in [OPEN_WINDOWS, WATERMARK, CONSUMER_LAG] {
        gauge!(name, "topic" => topic.clone(), "partition" => partition.clone()).set(f64::NAN);
    }
}

/// Sets a partition's consumer lag.
pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    gauge!(CONSUMER_LAG, "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(lag as f64);
}

/// Counts a consumer error.
pub fn consumer_error() {
    counter!(CONSUMER_ERRORS).increment(1);
}

/// Sets the number of assigned partitions.
pub fn assigned_partitions(count: usize) {
    gauge!(ASSIGNED_PARTITIONS).set(count as f64);
}

/// Records how long a partition took to load its state.
pub fn partition_loaded(seconds: f64) {
    histogram!(PARTITION_LOAD_DURATION).record(seconds);
}

/// Counts a partition restart.
pub fn partition_restart(topic: &str, partition: i32) {
    counter!(PARTITION_RESTARTS, "topic" => topic.to_owned(), "partition" => partition.to_string())
        .increment(1);
}

/// Counts a failed registry request.
pub fn schema_registry_error() {
    counter!(SCHEMA_REGISTRY_ERRORS).increment(1);
}

/// Records a successful insert.
pub fn insert_succeeded(table: &'static str, rows: usize, seconds: f64) {
    counter!(ROWS_WRITTEN, "table" => table).increment(rows as u64);
    histogram!(INSERT_DURATION, "table" => table).record(seconds);
}

/// Counts a failed insert.
pub fn insert_failed(table: &'static str, outcome: &'static str) {
    counter!(INSERT_FAILURES, "table" => table, "outcome" => outcome).increment(1);
}

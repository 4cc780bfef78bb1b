//! Rows as ClickHouse stores them (RowBinary, in column order).

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::state::Saved;
use crate::event::EventTime;
use crate::pipeline::{Checkpoint, SeriesSnapshot};
use crate::rollup::Rollup;

/// A row of `rollups`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct RollupRow {
    /// Metric name.
    pub metric: String,
    /// Campaign.
    pub campaign_id: String,
    /// Content, or empty.
    pub content_id: String,
    /// Channel, or empty.
    pub channel: String,
    /// Window start, seconds since the epoch.
    pub window_start: u32,
    /// Window end, seconds since the epoch.
    pub window_end: u32,
    /// Observations.
    pub count: u64,
    /// Sum.
    pub sum: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Trend slope.
    pub trend_slope: Option<f64>,
    /// Anomaly score.
    pub anomaly_score: Option<f64>,
    /// Input topic.
    pub source_topic: String,
    /// Input partition.
    pub source_partition: i32,
    /// Replacement version: the newest write of a window wins.
    pub version: u64,
}

fn seconds(time: EventTime) -> u32 {
    u32::try_from(time.as_millis().div_euclid(1000)).unwrap_or(0)
}

impl RollupRow {
    /// The stored form of `rollup`, stamped with `version`.
    pub fn new(rollup: Rollup, version: u64) -> Self {
        RollupRow {
            metric: rollup.metric.into_owned(),
            campaign_id: rollup.dimensions.campaign_id,
            content_id: rollup.dimensions.content_id,
            channel: rollup.dimensions.channel,
            window_start: seconds(rollup.window_start),
            window_end: seconds(rollup.window_end),
            count: rollup.count,
            sum: rollup.sum,
            min: rollup.min,
            max: rollup.max,
            avg: rollup.avg,
            p50: rollup.p50,
            p90: rollup.p90,
            p95: rollup.p95,
            p99: rollup.p99,
            trend_slope: rollup.trend_slope,
            anomaly_score: rollup.anomaly_score,
            source_topic: rollup.source_topic.to_string(),
            source_partition: rollup.source_partition,
            version,
        }
    }
}

/// A row of `partition_state`: a partition's checkpoint (empty series
/// key) or one series' history, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct StateRow {
    /// Consumer group.
    pub consumer_group: String,
    /// Input topic.
    pub topic: String,
    /// Input partition.
    pub partition: i32,
    /// Metric of the series; empty for the checkpoint row.
    pub metric: String,
    /// Campaign of the series.
    pub campaign_id: String,
    /// Content of the series.
    pub content_id: String,
    /// Channel of the series.
    pub channel: String,
    /// Checkpoint sequence, increasing per partition: the newest wins.
    pub seq: u64,
    /// The checkpoint or the history, as JSON.
    pub body: String,
    /// When written, seconds since the epoch (for people).
    pub updated_at: u32,
}

impl StateRow {
    /// The checkpoint row of a partition: its epoch and checkpoint.
    pub fn checkpoint(
        group: &str,
        topic: &str,
        partition: i32,
        saved: &Saved,
    ) -> Result<Self, serde_json::Error> {
        Ok(StateRow {
            consumer_group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            metric: String::new(),
            campaign_id: String::new(),
            content_id: String::new(),
            channel: String::new(),
            seq: saved.seq,
            body: serde_json::to_string(&CheckpointBody {
                epoch: saved.epoch,
                checkpoint: saved.checkpoint.clone(),
            })?,
            updated_at: 0,
        })
    }

    /// The row of one series' history (an empty body: forgotten), written
    /// with the checkpoint of sequence `seq`.
    pub fn series(
        group: &str,
        topic: &str,
        partition: i32,
        snapshot: &SeriesSnapshot,
        seq: u64,
    ) -> Result<Self, serde_json::Error> {
        Ok(StateRow {
            consumer_group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            metric: snapshot.metric.name().into_owned(),
            campaign_id: snapshot.dimensions.campaign_id.clone(),
            content_id: snapshot.dimensions.content_id.clone(),
            channel: snapshot.dimensions.channel.clone(),
            seq,
            body: match &snapshot.history {
                Some(history) => serde_json::to_string(history)?,
                None => String::new(),
            },
            updated_at: 0,
        })
    }
}

/// The body of a checkpoint row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// The newest epoch claimed by a start of the partition.
    pub epoch: u32,
    /// Where and how to resume; `None` before the first checkpoint.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

/// A series row as read back (`metric` is never empty).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct SeriesRow {
    /// Metric of the series.
    pub metric: String,
    /// Campaign.
    pub campaign_id: String,
    /// Content.
    pub content_id: String,
    /// Channel.
    pub channel: String,
    /// The history, as JSON.
    pub body: String,
}

//! Whole rollup rows as stored, every column but the version, for
//! comparing two runs (a chaos run with a golden one, a replay with live).

use std::collections::BTreeMap;

use anyhow::Result;
use clickhouse::Row;
use serde::Deserialize;

use crate::expected::Key;

/// A row of `rollups`, every column but the version.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct FullRow {
    /// Metric.
    pub metric: String,
    /// Campaign.
    pub campaign_id: String,
    /// Content.
    pub content_id: String,
    /// Channel.
    pub channel: String,
    /// Window start, seconds.
    pub window_start: u32,
    /// Window end, seconds.
    pub window_end: u32,
    /// Count.
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
}

impl FullRow {
    /// The row's key.
    pub fn key(&self) -> Key {
        (
            self.metric.clone(),
            self.campaign_id.clone(),
            self.content_id.clone(),
            self.channel.clone(),
            self.window_start,
        )
    }

    /// Equal, every column; floats bit for bit.
    pub fn same(&self, other: &FullRow) -> bool {
        let bits = |x: Option<f64>| x.map(f64::to_bits);
        let (a, b) = (self, other);
        a.key() == b.key()
            && (a.window_end, a.count) == (b.window_end, b.count)
            && [a.sum, a.min, a.max, a.avg].map(f64::to_bits)
                == [b.sum, b.min, b.max, b.avg].map(f64::to_bits)
            && [a.p50, a.p90, a.p95, a.p99, a.trend_slope, a.anomaly_score].map(bits)
                == [b.p50, b.p90, b.p95, b.p99, b.trend_slope, b.anomaly_score].map(bits)
            && (a.source_topic.as_str(), a.source_partition)
                == (b.source_topic.as_str(), b.source_partition)
    }
}

/// Every current row of `client`'s database, by key.
pub async fn full_rows(client: &clickhouse::Client) -> Result<BTreeMap<Key, FullRow>> {
    let rows = client
        .query(
            "SELECT metric, campaign_id, content_id, channel, toUInt32(window_start), toUInt32(window_end), \
                    count, sum, min, max, avg, p50, p90, p95, p99, trend_slope, anomaly_score, \
                    source_topic, source_partition FROM rollups FINAL",
        )
        .fetch_all::<FullRow>()
        .await?;
    Ok(rows.into_iter().map(|r| (r.key(), r)).collect())
}

/// The differences between `got` and `want`, one line each (at most
/// `limit`), and how many there are.
pub fn differences(
    got: &BTreeMap<Key, FullRow>,
    want: &BTreeMap<Key, FullRow>,
    limit: usize,
) -> (usize, Vec<String>) {
    let mut lines = Vec::new();
    let mut count = 0;
    let mut note = |line: String| {
        count += 1;
        if lines.len() < limit {
            lines.push(line);
        }
    };
    for (key, w) in want {
        match got.get(key) {
            Some(g) if g.same(w) => {}
            Some(g) => note(format!("{key:?}: got {g:?}, want {w:?}")),
            None => note(format!("{key:?}: missing")),
        }
    }
    for key in got.keys().filter(|k| !want.contains_key(*k)) {
        note(format!("{key:?}: not expected"));
    }
    (count, lines)
}

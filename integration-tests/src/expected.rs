//! The rollups Reactor should produce, computed directly from the published
//! events with an independent implementation (its own metric mapping, and
//! the `fsum` crate for correctly rounded sums), and the comparison with
//! what is in ClickHouse.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Result};
use clickhouse::Row;
use reactor::aggregate::{HistorySettings, SeriesHistory, SeriesKind};
use reactor::event::{EngagementKind, Event};
use reactor::rollup::Metric;
use serde::Deserialize;

/// (metric, campaign, content, channel, window start in seconds).
pub type Key = (String, String, String, String, u32);

/// Expected aggregate of one series and window.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    values: Vec<f64>,
}

impl Expected {
    /// The observations, in publication order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    fn count(&self) -> u64 {
        self.values.len() as u64
    }
    fn sum(&self) -> f64 {
        fsum::FSum::with_all(self.values.iter()).value()
    }
    fn min(&self) -> f64 {
        self.values.iter().copied().fold(f64::INFINITY, f64::min)
    }
    fn max(&self) -> f64 {
        self.values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// Expected rollups of `events` for tumbling windows of `window_secs`.
pub fn rollups(events: &[Event], window_secs: i64) -> BTreeMap<Key, Expected> {
    let mut out: BTreeMap<Key, Expected> = BTreeMap::new();
    for event in events {
        let window_ms = window_secs * 1000;
        let start =
            (event.occurred_at().as_millis().div_euclid(window_ms) * window_ms / 1000) as u32;
        let mut add = |metric: String, campaign: &str, content: &str, channel: &str, value: f64| {
            out.entry((
                metric,
                campaign.to_owned(),
                content.to_owned(),
                channel.to_owned(),
                start,
            ))
            .or_default()
            .values
            .push(value);
        };
        match event {
            Event::Content(e) => {
                let dims = (&e.campaign_id, &e.content_id, &e.channel);
                add("content.published".into(), dims.0, dims.1, dims.2, 1.0);
                if let Some(v) = e.sentiment {
                    add("content.sentiment".into(), dims.0, dims.1, dims.2, v);
                }
                if let Some(v) = e.seo_score {
                    add("content.seo_score".into(), dims.0, dims.1, dims.2, v);
                }
            }
            Event::Engagement(e) => {
                let kind = match e.kind {
                    EngagementKind::Impression => "impression",
                    EngagementKind::View => "view",
                    EngagementKind::Click => "click",
                    EngagementKind::Like => "like",
                    EngagementKind::Share => "share",
                    EngagementKind::Comment => "comment",
                };
                add(
                    format!("engagement.{kind}"),
                    &e.campaign_id,
                    &e.content_id,
                    &e.channel,
                    1.0,
                );
                if let Some(v) = e.dwell_ms {
                    add(
                        "engagement.dwell_ms".into(),
                        &e.campaign_id,
                        &e.content_id,
                        &e.channel,
                        v as f64,
                    );
                }
            }
            Event::Conversion(e) => {
                let content = e.content_id.clone().unwrap_or_default();
                let channel = e.channel.clone().unwrap_or_default();
                add(
                    format!("conversion.{}", e.kind),
                    &e.campaign_id,
                    &content,
                    &channel,
                    1.0,
                );
                if let Some(v) = e.revenue {
                    add(
                        "conversion.revenue".into(),
                        &e.campaign_id,
                        &content,
                        &channel,
                        v,
                    );
                }
                if let Some(v) = e.cost {
                    add(
                        "conversion.cost".into(),
                        &e.campaign_id,
                        &content,
                        &channel,
                        v,
                    );
                }
            }
        }
    }
    out
}

/// A rollup row as read back from ClickHouse.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct StoredRollup {
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
    /// Min.
    pub min: f64,
    /// Max.
    pub max: f64,
    /// Mean.
    pub avg: f64,
    /// Trend slope.
    pub trend_slope: Option<f64>,
    /// Anomaly score.
    pub anomaly_score: Option<f64>,
}

/// Expected trend slope and anomaly score of one series and window.
pub type Signals = (Option<f64>, Option<f64>);

/// The trend slope and anomaly score an uninterrupted run gives every row
/// of `expected`: each series' windows, in order, through a fresh
/// [`SeriesHistory`] with `history`'s settings. The tracked value is the
/// count for counts, the total for revenue and cost, the mean otherwise
/// (README, "Trend").
pub fn signals(
    expected: &BTreeMap<Key, Expected>,
    history: &HistorySettings,
    window_secs: u32,
) -> Result<BTreeMap<Key, Signals>> {
    let mut series: BTreeMap<(String, String, String, String), SeriesHistory> = BTreeMap::new();
    let mut out = BTreeMap::new();
    // Keys sort by series, then window start: windows come in order.
    for (key, want) in expected {
        let metric: Metric = key.0.parse()?;
        let (kind, value) = if metric.is_count() {
            (SeriesKind::Count, want.count() as f64)
        } else if matches!(metric, Metric::Revenue | Metric::Cost) {
            (SeriesKind::Measure, want.sum())
        } else {
            (SeriesKind::Measure, want.sum() / want.count() as f64)
        };
        let position = i64::from(key.4 / window_secs);
        let verdict = series
            .entry((key.0.clone(), key.1.clone(), key.2.clone(), key.3.clone()))
            .or_default()
            .close_window(position, value, kind, history, &[]);
        let _previous = out.insert(
            key.clone(),
            (
                verdict.trend.map(|t| t.slope),
                verdict.score.map(|s| s.score),
            ),
        );
    }
    Ok(out)
}

fn close(stored: Option<f64>, want: Option<f64>) -> bool {
    match (stored, want) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

/// Every current row of the test database's `rollups` (deduplicated with FINAL).
pub async fn stored(client: &clickhouse::Client) -> Result<Vec<StoredRollup>> {
    Ok(client
        .query(
            "SELECT metric, campaign_id, content_id, channel, toUInt32(window_start), toUInt32(window_end), \
                    count, sum, min, max, avg, trend_slope, anomaly_score FROM rollups FINAL",
        )
        .fetch_all::<StoredRollup>()
        .await?)
}

/// Number of current rows.
pub async fn stored_count(client: &clickhouse::Client) -> Result<u64> {
    Ok(client
        .query("SELECT count() FROM rollups FINAL")
        .fetch_one::<u64>()
        .await?)
}

/// Rows in `rollups` counting every written copy of a window: read from the
/// parts' metadata, so cheap enough to poll while a benchmark runs (unlike
/// [`stored_count`], which merges at query time). On a fresh database
/// without rewrites it equals [`stored_count`]; it is never below it.
pub async fn written_count(client: &clickhouse::Client) -> Result<u64> {
    Ok(client
        .query("SELECT count() FROM rollups")
        .fetch_one::<u64>()
        .await?)
}

/// Checks that `stored` holds exactly the `expected` rows: no row missing, no
/// row extra, counts, sums, min and max exact, mean within 1e-9 relative,
/// and, given `signals`, the trend slope and anomaly score of an
/// uninterrupted run (within 1e-9 relative).
pub fn compare(
    expected: &BTreeMap<Key, Expected>,
    stored: &[StoredRollup],
    window_secs: u32,
    signals: Option<&BTreeMap<Key, Signals>>,
) -> Result<()> {
    let mut problems = String::new();
    let mut seen = BTreeMap::new();
    for row in stored {
        let key = (
            row.metric.clone(),
            row.campaign_id.clone(),
            row.content_id.clone(),
            row.channel.clone(),
            row.window_start,
        );
        if seen.insert(key.clone(), ()).is_some() {
            let _written = writeln!(problems, "duplicate row {key:?}");
            continue;
        }
        let Some(want) = expected.get(&key) else {
            let _written = writeln!(problems, "unexpected row {key:?}: {row:?}");
            continue;
        };
        let mean = want.sum() / want.count() as f64;
        let mean_ok =
            ((row.avg - mean) / mean.abs().max(f64::MIN_POSITIVE)).abs() <= 1e-9 || row.avg == mean;
        if row.count != want.count()
            || row.sum.to_bits() != want.sum().to_bits()
            || row.min != want.min()
            || row.max != want.max()
            || !mean_ok
            || row.window_end != row.window_start + window_secs
        {
            let _written = writeln!(
                problems,
                "{key:?}: stored count {} sum {} min {} max {} avg {}, expected count {} sum {} min {} max {} avg {mean}",
                row.count,
                row.sum,
                row.min,
                row.max,
                row.avg,
                want.count(),
                want.sum(),
                want.min(),
                want.max()
            );
        }
        if let Some((trend, score)) = signals.and_then(|s| s.get(&key)) {
            if !close(row.trend_slope, *trend) || !close(row.anomaly_score, *score) {
                let _written = writeln!(
                    problems,
                    "{key:?}: stored trend {:?} anomaly {:?}, an uninterrupted run gives trend {trend:?} anomaly {score:?}",
                    row.trend_slope, row.anomaly_score
                );
            }
        }
    }
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains_key(*k)).collect();
    if !missing.is_empty() {
        let _written = writeln!(
            problems,
            "{} expected rows missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let lines: Vec<&str> = problems.lines().take(30).collect();
        bail!(
            "rollups differ from the published events ({} problems):\n{}",
            problems.lines().count(),
            lines.join("\n")
        )
    }
}

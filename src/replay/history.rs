//! Series histories as of a replay's `from`, rebuilt from the rows already
//! in ClickHouse: each row holds its window's tracked value, so folding a
//! series' rows in window order through a fresh [`SeriesHistory`] gives the
//! trend and anomaly state the live partition had when it closed its last
//! window before `from`. Pure.

use crate::aggregate::{HistorySettings, SeriesHistory, SeriesKind};
use crate::event::EventTime;
use crate::pipeline::SeriesSnapshot;
use crate::rollup::{Dimensions, Metric, Rollup, UnknownMetric};

/// A stored row, as much of it as a history needs.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, serde::Deserialize)]
pub struct StoredValue {
    /// Metric name.
    pub metric: String,
    /// Campaign.
    pub campaign_id: String,
    /// Content.
    pub content_id: String,
    /// Channel.
    pub channel: String,
    /// Window start, seconds.
    pub window_start: u32,
    /// Count.
    pub count: u64,
    /// Sum.
    pub sum: f64,
    /// Mean.
    pub avg: f64,
}

/// How histories are rebuilt.
#[derive(Debug, Clone, Copy)]
pub struct Rebuild {
    /// Trend and anomaly settings.
    pub history: HistorySettings,
    /// Window slide, ms (positions are window start / slide).
    pub slide_ms: i64,
    /// `history.retention`, ms.
    pub retention_ms: i64,
    /// The replay's first window start.
    pub from: EventTime,
}

/// The histories of the series in `rows` (sorted by series, then window
/// start) as of `rebuild.from`. A series silent for longer than the
/// retention starts afresh, and one silent for longer at `from` is left
/// out, as the live partition forgets them (to within the lateness: live
/// forgets by its watermark, which runs slightly ahead of window starts).
/// `partial`: the sorted positions of the windows live closed partial,
/// which are not part of any history.
pub fn histories_as_of(
    rows: impl IntoIterator<Item = StoredValue>,
    rebuild: &Rebuild,
    partial: &[i64],
) -> Result<Vec<SeriesSnapshot>, UnknownMetric> {
    let retention = rebuild.retention_ms.div_euclid(rebuild.slide_ms.max(1));
    let end = rebuild.from.as_millis().div_euclid(rebuild.slide_ms.max(1));
    let mut out: Vec<SeriesSnapshot> = Vec::new();
    let mut current: Option<(Metric, Dimensions, SeriesKind, SeriesHistory)> = None;
    let mut finish = |series: Option<(Metric, Dimensions, SeriesKind, SeriesHistory)>| {
        if let Some((metric, dimensions, _, history)) = series {
            if history
                .last_position()
                .is_some_and(|p| end - p <= retention)
            {
                out.push(SeriesSnapshot {
                    metric,
                    dimensions,
                    history: Some(history),
                });
            }
        }
    };
    for row in rows {
        let position = (i64::from(row.window_start) * 1000).div_euclid(rebuild.slide_ms.max(1));
        if position >= end {
            continue;
        }
        let same = current.as_ref().is_some_and(|(m, d, _, _)| {
            m.name() == row.metric
                && d.campaign_id == row.campaign_id
                && d.content_id == row.content_id
                && d.channel == row.channel
        });
        if !same {
            finish(current.take());
            let metric: Metric = row.metric.parse()?;
            let kind = if metric.is_count() {
                SeriesKind::Count
            } else {
                SeriesKind::Measure
            };
            let dimensions = Dimensions {
                campaign_id: row.campaign_id.clone(),
                content_id: row.content_id.clone(),
                channel: row.channel.clone(),
            };
            current = Some((metric, dimensions, kind, SeriesHistory::default()));
        }
        if let Some((metric, _, kind, history)) = current.as_mut() {
            if history
                .last_position()
                .is_some_and(|last| position - last > retention)
            {
                *history = SeriesHistory::default();
            }
            let value = metric.tracked_value(&Rollup {
                count: row.count,
                sum: row.sum,
                avg: row.avg,
                ..Rollup::default()
            });
            let _verdict = history.close_window(position, value, *kind, &rebuild.history, partial);
        }
    }
    finish(current.take());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: &str, content: &str, minute: u32, count: u64) -> StoredValue {
        StoredValue {
            metric: metric.into(),
            campaign_id: "c".into(),
            content_id: content.into(),
            channel: "web".into(),
            window_start: 1_800_000_000 + minute * 60,
            count,
            sum: count as f64,
            avg: 1.0,
        }
    }

    #[test]
    fn folds_each_series_as_the_live_partition_did() {
        let rebuild = Rebuild {
            history: HistorySettings {
                trend: crate::aggregate::TrendSettings {
                    windows: 10,
                    threshold: 5.0,
                },
                anomaly: crate::aggregate::AnomalySettings::default(),
            },
            slide_ms: 60_000,
            retention_ms: 30 * 60_000,
            from: EventTime::from_millis(1_800_000_000_000 + 20 * 60_000),
        };
        let rows = vec![
            row("engagement.click", "a", 0, 3),
            row("engagement.click", "a", 1, 5),
            row("engagement.click", "a", 25, 7), // not before `from`: ignored
            row("engagement.view", "b", 2, 1),
        ];
        let histories = histories_as_of(rows, &rebuild, &[]).unwrap();
        assert_eq!(histories.len(), 2);
        let mut live = SeriesHistory::default();
        let p0 = 1_800_000_000 / 60;
        let _v = live.close_window(p0, 3.0, SeriesKind::Count, &rebuild.history, &[]);
        let _v = live.close_window(p0 + 1, 5.0, SeriesKind::Count, &rebuild.history, &[]);
        assert_eq!(histories[0].history.as_ref(), Some(&live));
        assert_eq!(histories[0].metric.name(), "engagement.click");

        // Quiet for longer than the retention at `from`: forgotten.
        let late = Rebuild {
            from: EventTime::from_millis(1_800_000_000_000 + 40 * 60_000),
            ..rebuild
        };
        assert!(
            histories_as_of(vec![row("engagement.click", "a", 0, 3)], &late, &[])
                .unwrap()
                .is_empty()
        );
        assert!(histories_as_of(vec![row("weather.rain", "a", 0, 3)], &rebuild, &[]).is_err());
    }
}

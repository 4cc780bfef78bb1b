//! Closing windows: each closed window's series become rollup rows, each
//! row's tracked value goes through its series' history (trend, anomaly),
//! and the verdicts become derived events. Histories of series quiet for
//! longer than the retention are forgotten here too.

use std::sync::Arc;

use super::{Output, PartitionPipeline, RollupBatch, SeriesSnapshot};
use crate::aggregate::{SeriesHistory, SeriesKind};
use crate::derived;
use crate::event::EventTime;
use crate::rollup::Rollup;
use crate::window::ClosedWindow;

impl PartitionPipeline {
    /// Closes every window the watermark has passed: one row per series,
    /// with its trend and anomaly verdict, and the derived events they
    /// raise, as one batch held in the ledger until it is written. Windows
    /// ending after `complete_through` are closed partial (the partition
    /// went idle): a series without a row in one is not flagged as empty.
    pub(super) fn close(
        &mut self,
        watermark: EventTime,
        complete_through: Option<EventTime>,
        out: &mut Output,
    ) {
        let closed = self.windows.close_through(watermark);
        if closed.is_empty() {
            return;
        }
        out.stats.windows_closed += closed.len() as u64;
        let mut rows = Vec::with_capacity(closed.iter().map(|w| w.state.len()).sum());
        self.series_hint = closed.iter().map(|w| w.state.len()).max().unwrap_or(0);
        let mut events = Vec::new();
        let mut snapshots = Vec::with_capacity(rows.capacity());
        let mut held_offsets = Vec::with_capacity(closed.len());
        let slide_ms = self.windows.slide_ms();
        let retention = self.retention_windows();
        let history = self.settings.history;
        let thresholds = (history.trend.threshold, history.anomaly.threshold);
        for ClosedWindow {
            start,
            end,
            first_offset,
            state,
        } in closed
        {
            held_offsets.push(first_offset);
            let position = start.as_millis().div_euclid(slide_ms);
            // An idle close's partial window holds part of its time only:
            // it is not part of any series' history (its rows are scored
            // but raise no event; see `SeriesHistory::close_window`), and
            // its series without a row are not checked for an outage.
            let complete = complete_through.is_some_and(|complete| end <= complete);
            if !complete && self.partial_windows.last() < Some(&position) {
                self.partial_windows.push(position);
            }
            // Rows in map order: the table is keyed, so order carries no
            // meaning, and sorting would move every row around.
            for (key, series_state) in state {
                let mut row = Rollup {
                    metric: key.metric.name(),
                    dimensions: self.dimensions.get(key.dimensions).clone(),
                    window_start: start,
                    window_end: end,
                    source_topic: Arc::clone(&self.topic),
                    source_partition: self.partition,
                    ..Rollup::default()
                };
                series_state.finish(&mut row);
                let observed = key.metric.tracked_value(&row);
                let kind = if key.metric.is_count() {
                    SeriesKind::Count
                } else {
                    SeriesKind::Measure
                };
                let metric = key.metric.clone();
                let series = self.histories.entry(key).or_default();
                // Quiet for longer than the retention: start afresh. Judged
                // per series as each window closes, so it does not depend on
                // when the sweep below ran (batching, restarts).
                if series
                    .last_position()
                    .is_some_and(|last| last < position.saturating_sub(retention))
                {
                    *series = SeriesHistory::default();
                }
                let verdict =
                    series.close_window(position, observed, kind, &history, &self.partial_windows);
                snapshots.push(SeriesSnapshot {
                    metric,
                    dimensions: row.dimensions.clone(),
                    history: Some(series.clone()),
                });
                row.trend_slope = verdict.trend.map(|t| t.slope);
                row.anomaly_score = verdict.score.map(|s| s.score);
                events.extend(derived::signals_of_row(
                    &row,
                    verdict.trend.as_ref(),
                    verdict.score.as_ref(),
                    verdict
                        .escalates
                        .map(|earlier| start.as_millis() - (position - earlier) * slide_ms),
                    observed,
                    thresholds,
                ));
                rows.push(row);
            }
            if complete {
                self.empty_window_alarms(start, end, position, &mut events);
            }
        }
        self.forget_quiet_series(watermark, &mut snapshots);
        self.ledger.closed(watermark);
        let id = self
            .ledger
            .batch_closed(held_offsets, self.watermark.current());
        let version = self.ledger.version(id);
        self.pending_snapshots.push_back((id, snapshots));
        out.rollups = Some(RollupBatch {
            id,
            version,
            rows,
            events,
        });
    }

    /// Anomaly events for count series that counted nothing in the window
    /// [`start`, `end`) at `position` (they have no row): a tracking outage
    /// is flagged while it lasts, not once the series comes back. Each
    /// series' history is left as it is; its next row folds the empty
    /// windows in, with the same verdicts ([`SeriesHistory::empty_window`]),
    /// so the event is decided alike however the stream was batched or
    /// restarted. Checked while a series has been empty for at most twice
    /// the quiet period.
    fn empty_window_alarms(
        &self,
        start: EventTime,
        end: EventTime,
        position: i64,
        events: &mut Vec<derived::DerivedEvent>,
    ) {
        let history = self.settings.history;
        let most = 2 * i64::from(history.anomaly.quiet_windows).max(1);
        let thresholds = (history.trend.threshold, history.anomaly.threshold);
        let slide_ms = self.windows.slide_ms();
        for (key, series) in &self.histories {
            if !key.metric.is_count() {
                continue;
            }
            let Some(verdict) =
                series.empty_window(position, most, &history, &self.partial_windows)
            else {
                continue;
            };
            let Some(score) = verdict.score.filter(|s| s.anomalous) else {
                continue;
            };
            let row = Rollup {
                metric: key.metric.name(),
                dimensions: self.dimensions.get(key.dimensions).clone(),
                window_start: start,
                window_end: end,
                ..Rollup::default()
            };
            events.extend(derived::signals_of_row(
                &row,
                None,
                Some(&score),
                verdict
                    .escalates
                    .map(|earlier| start.as_millis() - (position - earlier) * slide_ms),
                0.0,
                thresholds,
            ));
        }
    }

    /// The history retention in window positions (slides).
    fn retention_windows(&self) -> i64 {
        let retention_ms =
            i64::try_from(self.settings.history_retention.as_millis()).unwrap_or(i64::MAX);
        retention_ms.div_euclid(self.windows.slide_ms())
    }

    /// The oldest window position whose series a close at `watermark`
    /// keeps: a window still open ends after the watermark, so it starts
    /// at or after the first open position, and histories are kept for
    /// the retention before it.
    pub(super) fn oldest_kept(&self, watermark: EventTime) -> i64 {
        let first_open =
            (watermark.as_millis() - self.windows.size_ms()).div_euclid(self.windows.slide_ms());
        first_open.saturating_sub(self.retention_windows())
    }

    /// Drops the history of series that every window still to close would
    /// start afresh (see [`Self::close`]), so state does not grow with
    /// every key ever seen; each forgotten series leaves a tombstone in
    /// `snapshots`, so a restored partition forgets it too.
    fn forget_quiet_series(&mut self, watermark: EventTime, snapshots: &mut Vec<SeriesSnapshot>) {
        let slide_ms = self.windows.slide_ms();
        let oldest_kept = self.oldest_kept(watermark);
        self.partial_windows.retain(|&p| p >= oldest_kept);
        let dimensions = &self.dimensions;
        self.histories.retain(|key, h| {
            let keep = h.last_position().is_some_and(|p| p >= oldest_kept);
            if !keep {
                snapshots.push(SeriesSnapshot {
                    metric: key.metric.clone(),
                    dimensions: dimensions.get(key.dimensions).clone(),
                    history: None,
                });
            }
            keep
        });
        // Dimensions are kept while a kept history or an open window may
        // refer to them: a history's last position, and every open window's,
        // is at most the newest position its dimensions were seen in.
        let oldest_open = self
            .windows
            .iter()
            .map(|(start, _)| start.as_millis().div_euclid(slide_ms))
            .min()
            .unwrap_or(i64::MAX);
        self.dimensions.forget_before(oldest_kept.min(oldest_open));
    }
}

//! What a series carries from one closed window to the next.

use serde::{Deserialize, Serialize};

use super::{AnomalySettings, Detector, Score, SeriesKind, Trend, TrendSettings, TrendUpdate};

/// Most empty windows of a count series folded in before a window with a
/// row: a day of one-minute windows, past which the baseline has long
/// forgotten what came before (it learns at `anomaly.alpha`, 0.02).
const MOST_EMPTY_WINDOWS: i64 = 1_440;

/// Trend and anomaly settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistorySettings {
    /// Trend.
    pub trend: TrendSettings,
    /// Anomaly.
    pub anomaly: AnomalySettings,
}

/// The cross-window state of one series: its recent values for the trend and
/// its anomaly detector. A few hundred bytes and serialisable: partitions
/// save it with their checkpoints and restore it when they start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesHistory {
    trend: Trend,
    anomaly: Detector,
    /// Position (window start / slide) of the last window folded in.
    last_position: Option<i64>,
    /// Position of the window of the last anomaly event; `None`: none, or
    /// saved before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_alarm_position: Option<i64>,
}

/// What a closed window says about its series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The trend after this window, once there are two windows.
    pub trend: Option<TrendUpdate>,
    /// The window's anomaly score, once the baseline is warmed up.
    pub score: Option<Score>,
    /// For an anomaly that escalates an earlier one: the position of that
    /// one's window, if known.
    pub escalates: Option<i64>,
}

impl SeriesHistory {
    /// Folds in the closed window at `position` whose tracked value is
    /// `value`. Windows arrive in position order; a repeat is ignored.
    ///
    /// `partial`: the sorted positions of windows its partition closed
    /// before they were complete (it went idle). Such a window holds only
    /// part of its time, so it is not part of the history: a row there is
    /// scored against the history (its trend slope and anomaly score are
    /// written) but not folded in, and raises no alarm or trend change; an
    /// empty window there is not a zero of a count series.
    pub fn close_window(
        &mut self,
        position: i64,
        value: f64,
        kind: SeriesKind,
        settings: &HistorySettings,
        partial: &[i64],
    ) -> Verdict {
        if self.last_position.is_some_and(|last| position <= last) {
            return Verdict {
                trend: None,
                score: None,
                escalates: None,
            };
        }
        if is_partial(position, partial) {
            let mut copy = self.clone();
            let verdict = copy.fold_window(position, value, kind, settings, partial);
            return Verdict {
                trend: verdict.trend.map(|t| TrendUpdate { change: None, ..t }),
                score: verdict.score.map(|s| Score {
                    anomalous: false,
                    escalation: false,
                    ..s
                }),
                escalates: None,
            };
        }
        self.fold_window(position, value, kind, settings, partial)
    }

    /// [`Self::close_window`] for a complete window.
    fn fold_window(
        &mut self,
        position: i64,
        value: f64,
        kind: SeriesKind,
        settings: &HistorySettings,
        partial: &[i64],
    ) -> Verdict {
        // A count series has a row only for windows it counted something
        // in: the windows between its last row and this one counted zero,
        // and its baseline must see them (a series of 0.3 clicks a window
        // is mostly empty windows). Their verdicts are not published: the
        // windows have no row. The trend regresses on the windows with rows.
        if kind == SeriesKind::Count {
            if let Some(last) = self.last_position {
                let first = (last + 1).max(position.saturating_sub(MOST_EMPTY_WINDOWS));
                let _last_verdict = fold_empty(
                    &mut self.anomaly,
                    &mut self.last_alarm_position,
                    first..position,
                    &settings.anomaly,
                    partial,
                );
            }
        }
        self.last_position = Some(position);
        let trend = self.trend.observe(position, value, &settings.trend);
        let score = self.anomaly.observe_in(
            value,
            kind,
            &settings.anomaly,
            since_alarm(position, self.last_alarm_position),
        );
        let mut escalates = None;
        if let Some(score) = score.filter(|s| s.anomalous) {
            escalates = self.last_alarm_position.filter(|_| score.escalation);
            self.last_alarm_position = Some(position);
        }
        Verdict {
            trend,
            score,
            escalates,
        }
    }

    /// The verdict of the empty window at `position` of a count series
    /// whose last row came before it: what folding in the empty windows up
    /// to it (as [`Self::close_window`] will when the next row comes) says
    /// of it. Pure: the history is left as it is. `None` when the empty
    /// windows so far cannot raise an alarm yet
    /// ([`Detector::empty_run_may_alarm`]), the gap is longer than
    /// `most_windows`, or the window is partial.
    pub fn empty_window(
        &self,
        position: i64,
        most_windows: i64,
        settings: &HistorySettings,
        partial: &[i64],
    ) -> Option<Verdict> {
        let last = self.last_position?;
        if position <= last
            || position - last > most_windows
            || is_partial(position, partial)
            || !self
                .anomaly
                .empty_run_may_alarm((position - last) as u64, &settings.anomaly)
        {
            return None;
        }
        // A copy of the detector (136 bytes, no allocation), not of the
        // whole history: this runs for every silent series as windows close.
        let mut detector = self.anomaly;
        let mut last_alarm = self.last_alarm_position;
        fold_empty(
            &mut detector,
            &mut last_alarm,
            last + 1..position + 1,
            &settings.anomaly,
            partial,
        )
    }

    /// Position of the last window folded in.
    pub fn last_position(&self) -> Option<i64> {
        self.last_position
    }

    /// Windows its anomaly baseline has seen (empty ones of a count series
    /// included).
    pub fn anomaly_windows(&self) -> u64 {
        self.anomaly.windows()
    }
}

/// Windows from the last alarm (at `last_alarm`) to `position`, by
/// position: windows without a value count too.
fn since_alarm(position: i64, last_alarm: Option<i64>) -> Option<u64> {
    last_alarm.map(|at| position.abs_diff(at))
}

/// Whether `position` is one of the `partial` (sorted) positions.
fn is_partial(position: i64, partial: &[i64]) -> bool {
    !partial.is_empty() && partial.binary_search(&position).is_ok()
}

/// Folds the empty windows at `positions` of a count series into
/// `detector`, keeping `last_alarm` (the position of its last alarm): the
/// one rule the next row and the live check both follow, so they decide
/// alike. The verdict of the last of them.
fn fold_empty(
    detector: &mut Detector,
    last_alarm: &mut Option<i64>,
    positions: std::ops::Range<i64>,
    settings: &AnomalySettings,
    partial: &[i64],
) -> Option<Verdict> {
    let mut verdict = None;
    for empty in positions.filter(|&p| !is_partial(p, partial)) {
        let since = since_alarm(empty, *last_alarm);
        let score = detector.observe_in(0.0, SeriesKind::Count, settings, since);
        let mut escalates = None;
        if let Some(score) = score.filter(|s| s.anomalous) {
            escalates = last_alarm.filter(|_| score.escalation);
            *last_alarm = Some(empty);
        }
        verdict = Some(Verdict {
            trend: None,
            score,
            escalates,
        });
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(warm_up: u32) -> HistorySettings {
        HistorySettings {
            trend: TrendSettings {
                windows: 5,
                threshold: 3.0,
            },
            anomaly: AnomalySettings {
                alpha: 0.1,
                warm_up,
                threshold: 3.0,
                quiet_windows: 50,
                escalation: 4.0,
            },
        }
    }

    #[test]
    fn survives_a_round_trip_through_json_and_continues_identically() {
        let settings = settings(3);
        let mut live = SeriesHistory::default();
        for (x, v) in [(1, 10.0), (2, 12.0), (3, 9.0), (4, 11.0)] {
            let _verdict = live.close_window(x, v, SeriesKind::Count, &settings, &[]);
        }
        let saved = serde_json::to_string(&live).unwrap_or_default();
        assert!(saved.len() < 600, "{saved}");
        let mut restored: SeriesHistory = serde_json::from_str(&saved).unwrap_or_default();
        assert_eq!(restored, live);
        let a = live.close_window(5, 40.0, SeriesKind::Count, &settings, &[]);
        let b = restored.close_window(5, 40.0, SeriesKind::Count, &settings, &[]);
        assert_eq!(a, b);
        assert!(a.score.is_some_and(|s| s.anomalous));
        assert_eq!(
            live.close_window(5, 1.0, SeriesKind::Count, &settings, &[])
                .trend,
            None
        );
    }

    #[test]
    fn an_escalation_names_the_window_of_the_alarm_it_escalates_also_after_a_restore() {
        let settings = settings(30);
        let mut live = SeriesHistory::default();
        let position = |i: i64| 1_000 + i;
        for i in 0..100 {
            let v = [2.0, 4.0, 3.0, 5.0, 1.0, 3.0, 4.0, 2.0][i as usize % 8];
            let verdict = live.close_window(position(i), v, SeriesKind::Count, &settings, &[]);
            assert!(verdict.score.is_none_or(|s| !s.anomalous), "{i}");
        }
        // A weak alarm starts the incident and escalates nothing.
        let weak = live.close_window(position(100), 16.0, SeriesKind::Count, &settings, &[]);
        assert!(
            weak.score.is_some_and(|s| s.anomalous && !s.escalation),
            "{weak:?}"
        );
        assert_eq!(weak.escalates, None);
        let saved = serde_json::to_string(&live).unwrap_or_default();
        let mut restored: SeriesHistory = serde_json::from_str(&saved).unwrap_or_default();
        for series in [&mut live, &mut restored] {
            let strong =
                series.close_window(position(101), 200.0, SeriesKind::Count, &settings, &[]);
            assert!(
                strong.score.is_some_and(|s| s.anomalous && s.escalation),
                "{strong:?}"
            );
            assert_eq!(strong.escalates, Some(position(100)));
        }

        // Saved before the alarm's window was kept: the alarm may still
        // escalate, but which window it escalates is not known.
        let mut old: serde_json::Value = serde_json::from_str(&saved).unwrap_or_default();
        let removed = old
            .as_object_mut()
            .and_then(|o| o.remove("last_alarm_position"));
        assert_eq!(removed, Some(serde_json::json!(position(100))));
        let mut old: SeriesHistory = serde_json::from_value(old).unwrap_or_default();
        let strong = old.close_window(position(101), 200.0, SeriesKind::Count, &settings, &[]);
        assert!(strong.score.is_some_and(|s| s.escalation), "{strong:?}");
        assert_eq!(strong.escalates, None);
    }

    /// The quiet period after an alarm is counted in windows, those a
    /// measure has no value in included.
    #[test]
    fn the_quiet_period_of_a_measure_counts_its_empty_windows() {
        let settings = settings(10);
        let mut series = SeriesHistory::default();
        let value = |i: i64| [10.0, 11.0, 9.0, 10.5, 9.5][i as usize % 5];
        for i in 0..100 {
            let _verdict = series.close_window(i, value(i), SeriesKind::Measure, &settings, &[]);
        }
        let first = series.close_window(100, 60.0, SeriesKind::Measure, &settings, &[]);
        assert!(first.score.is_some_and(|s| s.anomalous), "{first:?}");
        // Ten values in the next 60 windows, then a window like the first
        // alarm's: 60 windows after it, past the quiet period of 50.
        for i in 0..10 {
            let _verdict =
                series.close_window(101 + 6 * i, value(i), SeriesKind::Measure, &settings, &[]);
        }
        let second = series.close_window(160, 60.0, SeriesKind::Measure, &settings, &[]);
        assert!(
            second.score.is_some_and(|s| s.anomalous && !s.escalation),
            "{second:?}"
        );
    }

    /// A window closed partial is not part of the history: a row there is
    /// scored as a complete window would be, raises no alarm and leaves
    /// the history as it was; an empty one is not a zero.
    #[test]
    fn partial_windows_are_not_part_of_the_history() {
        let settings = settings(10);
        let steady = || {
            let mut series = SeriesHistory::default();
            for i in 0..100 {
                let _verdict = series.close_window(i, 50.0, SeriesKind::Count, &settings, &[]);
            }
            series
        };
        let (mut complete, mut partial) = (steady(), steady());
        let a = complete.close_window(100, 5.0, SeriesKind::Count, &settings, &[]);
        let b = partial.close_window(100, 5.0, SeriesKind::Count, &settings, &[100]);
        assert!(a.score.is_some_and(|s| s.anomalous), "{a:?}");
        assert!(b.score.is_some_and(|s| !s.anomalous), "{b:?}");
        assert_eq!(a.score.map(|s| s.score), b.score.map(|s| s.score));
        assert!(b.trend.is_some_and(|t| t.change.is_none()), "{b:?}");
        assert_eq!(partial, steady());
        // The next window is judged against the history without the
        // partial one: a normal window is normal.
        let next = partial.close_window(101, 50.0, SeriesKind::Count, &settings, &[100]);
        assert!(
            next.score
                .is_some_and(|s| !s.anomalous && s.score.abs() < 1.0),
            "{next:?}"
        );

        // Empty at 100 (partial), then a row at 101: 100 is no zero, so no
        // alarm is recorded there; unmarked, it is an outage.
        let mut series = steady();
        assert_eq!(series.empty_window(100, 100, &settings, &[100]), None);
        let next = series.close_window(101, 50.0, SeriesKind::Count, &settings, &[100]);
        assert!(next.score.is_some_and(|s| !s.anomalous), "{next:?}");
        assert_eq!(series.last_alarm_position, None);
        assert_eq!(series.anomaly_windows(), 101);
        let mut unmarked = steady();
        let _verdict = unmarked.close_window(101, 50.0, SeriesKind::Count, &settings, &[]);
        assert_eq!(unmarked.last_alarm_position, Some(100));
    }

    /// A count series is folded in only for windows it has a row for: the
    /// windows between count zero, as if every window had been folded in.
    #[test]
    fn a_count_series_empty_windows_count_as_zero() {
        let settings = settings(10);
        let counts: Vec<f64> = (0..400)
            .map(|i: u64| match (i * 7919) % 10 {
                0 | 3 | 7 => 1.0,
                5 => 2.0,
                _ => 0.0,
            })
            .chain([5.0]) // a spike of a series of 0.5 a window
            .collect();
        let mut every = SeriesHistory::default();
        let mut rows_only = SeriesHistory::default();
        let mut last = (None, None);
        for (i, &count) in counts.iter().enumerate() {
            let position = i as i64;
            let all = every.close_window(position, count, SeriesKind::Count, &settings, &[]);
            if count > 0.0 {
                let sparse =
                    rows_only.close_window(position, count, SeriesKind::Count, &settings, &[]);
                assert_eq!(sparse.score, all.score, "window {i}");
                last = (sparse.score, all.score);
            }
        }
        assert!(
            last.0.is_some_and(|s| s.anomalous && s.score > 3.0),
            "{last:?}"
        );
        // Measures are not filled: an empty window has no value.
        let mut measure = SeriesHistory::default();
        for position in [0, 5, 10] {
            let _verdict = measure.close_window(position, 1.0, SeriesKind::Measure, &settings, &[]);
        }
        assert_eq!(measure.anomaly_windows(), 3);
    }
}

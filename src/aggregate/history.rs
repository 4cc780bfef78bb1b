//! What a series carries from one closed window to the next.

use serde::{Deserialize, Serialize};

use super::{AnomalySettings, Detector, Score, SeriesKind, Trend, TrendSettings, TrendUpdate};

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
}

/// What a closed window says about its series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The trend after this window, once there are two windows.
    pub trend: Option<TrendUpdate>,
    /// The window's anomaly score, once the baseline is warmed up.
    pub score: Option<Score>,
}

impl SeriesHistory {
    /// Folds in the closed window at `position` whose tracked value is
    /// `value`. Windows arrive in position order; a repeat is ignored.
    pub fn close_window(
        &mut self,
        position: i64,
        value: f64,
        kind: SeriesKind,
        settings: &HistorySettings,
    ) -> Verdict {
        if self.last_position.is_some_and(|last| position <= last) {
            return Verdict {
                trend: None,
                score: None,
            };
        }
        self.last_position = Some(position);
        Verdict {
            trend: self.trend.observe(position, value, &settings.trend),
            score: self.anomaly.observe(value, kind, &settings.anomaly),
        }
    }

    /// Position of the last window folded in.
    pub fn last_position(&self) -> Option<i64> {
        self.last_position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_round_trip_through_json_and_continues_identically() {
        let settings = HistorySettings {
            trend: TrendSettings {
                windows: 5,
                threshold: 3.0,
            },
            anomaly: AnomalySettings {
                alpha: 0.1,
                warm_up: 3,
                threshold: 3.0,
                quiet_windows: 50,
                escalation: 4.0,
            },
        };
        let mut live = SeriesHistory::default();
        for (x, v) in [(1, 10.0), (2, 12.0), (3, 9.0), (4, 11.0)] {
            let _verdict = live.close_window(x, v, SeriesKind::Count, &settings);
        }
        let saved = serde_json::to_string(&live).unwrap_or_default();
        assert!(saved.len() < 600, "{saved}");
        let mut restored: SeriesHistory = serde_json::from_str(&saved).unwrap_or_default();
        assert_eq!(restored, live);
        let a = live.close_window(5, 40.0, SeriesKind::Count, &settings);
        let b = restored.close_window(5, 40.0, SeriesKind::Count, &settings);
        assert_eq!(a, b);
        assert!(a.score.is_some_and(|s| s.anomalous));
        assert_eq!(
            live.close_window(5, 1.0, SeriesKind::Count, &settings)
                .trend,
            None
        );
    }
}

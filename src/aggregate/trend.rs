//! Trend: the least-squares slope of a series' value over its last N closed
//! windows, and the changes worth telling anyone about.
//!
//! The x axis is the window's position in window steps (its start divided by
//! the slide), so the slope reads "change of the value per window", whatever
//! the window size, and windows a series skipped (no events) leave gaps
//! instead of being squeezed together.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Trend settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendSettings {
    /// Closed windows the slope is fitted over (at least 2).
    pub windows: usize,
    /// A `reactor.trends` event is published when the slope's magnitude
    /// crosses this value (either way).
    pub threshold: f64,
}

/// Why a trend event was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendChange {
    /// The slope went from rising to falling or back.
    SignChange,
    /// The slope's magnitude rose to the threshold or above.
    AboveThreshold,
    /// The slope's magnitude fell back below the threshold.
    BelowThreshold,
}

impl TrendChange {
    /// The name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            TrendChange::SignChange => "sign_change",
            TrendChange::AboveThreshold => "above_threshold",
            TrendChange::BelowThreshold => "below_threshold",
        }
    }
}

/// The slope of one series now, and what changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendUpdate {
    /// The slope over the retained windows.
    pub slope: f64,
    /// The previous slope, if there was one.
    pub previous: Option<f64>,
    /// Set when this update is worth an event.
    pub change: Option<TrendChange>,
}

/// The recent values of one series. Small and serialisable: at most N points
/// and the last slope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    points: VecDeque<(i64, f64)>,
    slope: Option<f64>,
}

impl Trend {
    /// Adds the value of the window at position `x` (window steps) and
    /// returns the new slope, once there are two points.
    pub fn observe(&mut self, x: i64, value: f64, settings: &TrendSettings) -> Option<TrendUpdate> {
        if self.points.back().is_some_and(|&(last, _)| x <= last) {
            return None; // a window already counted (cannot happen in order)
        }
        if self.points.capacity() == 0 {
            // Exactly the window kept (and the one pushed before trimming),
            // rather than growing 4, 8, 16.
            self.points.reserve_exact(settings.windows.max(2) + 1);
        }
        self.points.push_back((x, value));
        while self.points.len() > settings.windows.max(2) {
            let _oldest = self.points.pop_front();
        }
        let slope = least_squares_slope(self.points.iter().copied())?;
        let previous = self.slope.replace(slope);
        Some(TrendUpdate {
            slope,
            previous,
            change: previous.and_then(|p| change(p, slope, settings.threshold)),
        })
    }

    /// The last slope computed.
    pub fn slope(&self) -> Option<f64> {
        self.slope
    }
}

/// What changed between two consecutive slopes, if anything.
pub(super) fn change(previous: f64, current: f64, threshold: f64) -> Option<TrendChange> {
    let sign = |v: f64| {
        if v > 0.0 {
            1
        } else if v < 0.0 {
            -1
        } else {
            0
        }
    };
    let (was, is) = (sign(previous), sign(current));
    if was != 0 && is != 0 && was != is {
        Some(TrendChange::SignChange)
    } else if previous.abs() < threshold && current.abs() >= threshold {
        Some(TrendChange::AboveThreshold)
    } else if previous.abs() >= threshold && current.abs() < threshold {
        Some(TrendChange::BelowThreshold)
    } else {
        None
    }
}

/// Ordinary least-squares slope of `y` on `x`, or `None` with fewer than two
/// distinct x. Centred on the first x so large positions lose no precision.
pub fn least_squares_slope(points: impl Iterator<Item = (i64, f64)> + Clone) -> Option<f64> {
    let mut iter = points.clone();
    let (x0, _) = iter.next()?;
    let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (x, y) in points.clone() {
        n += 1.0;
        sx += (x - x0) as f64;
        sy += y;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        let dx = (x - x0) as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SETTINGS: TrendSettings = TrendSettings {
        windows: 10,
        threshold: 5.0,
    };

    #[test]
    fn reports_sign_changes_and_threshold_crossings() {
        let mut t = Trend::default();
        assert_eq!(t.observe(0, 10.0, &SETTINGS), None);
        let up = t.observe(1, 12.0, &SETTINGS).map(|u| (u.slope, u.change));
        assert_eq!(up, Some((2.0, None)));
        let steep = t.observe(2, 30.0, &SETTINGS).map(|u| (u.slope, u.change));
        assert_eq!(steep, Some((10.0, Some(TrendChange::AboveThreshold))));
        let mut t = Trend::default();
        for (x, y) in [(0, 10.0), (1, 11.0), (2, 12.0), (3, 0.0)] {
            let _update = t.observe(x, y, &SETTINGS);
        }
        assert_eq!(t.slope(), Some(-2.9));
        assert_eq!(change(1.0, -1.0, 5.0), Some(TrendChange::SignChange));
        assert_eq!(change(6.0, 1.0, 5.0), Some(TrendChange::BelowThreshold));
        assert_eq!(change(0.0, 1.0, 5.0), None);
    }

    #[test]
    fn keeps_only_the_last_n_windows_and_ignores_repeats() {
        let settings = TrendSettings {
            windows: 3,
            threshold: 1e9,
        };
        let mut t = Trend::default();
        for (x, y) in [(0, 100.0), (1, 0.0), (2, 1.0), (3, 2.0)] {
            let _update = t.observe(x, y, &settings);
        }
        assert_eq!(t.slope(), Some(1.0));
        assert_eq!(t.observe(3, 50.0, &settings), None);
        assert_eq!(t.points.len(), 3);
    }

    proptest! {
        #[test]
        fn the_slope_of_a_line_is_exact(
            intercept in -1_000_000i64..1_000_000,
            slope in -10_000i64..10_000,
            start in 0i64..40_000_000,
            gaps in prop::collection::vec(1i64..5, 2..30),
        ) {
            let mut t = Trend::default();
            let mut x = start;
            let mut last = None;
            for gap in gaps {
                let y = (intercept + slope * (x - start)) as f64;
                last = t.observe(x, y, &SETTINGS).map(|u| u.slope);
                x += gap;
            }
            let last = last.unwrap_or(f64::NAN);
            prop_assert!((last - slope as f64).abs() <= 1e-9 * (slope as f64).abs().max(1.0), "{} vs {}", last, slope);
        }
    }
}

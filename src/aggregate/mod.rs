//! Aggregators: what is computed per series per window, and per series
//! across windows.
//!
//! Within a window every aggregator is mergeable (two partial aggregates of
//! the same series combine into the aggregate of all their observations) and
//! fills its own columns of the [`Rollup`] row in [`Aggregator::finish`]:
//! [`Average`] (count, exact sum, min, max, mean) for every series, and
//! [`Percentiles`] (p50/p90/p95/p99 within 1 %) for measured values.
//!
//! Across windows, [`SeriesHistory`] keeps what a series' closed windows tell
//! about the next one: its [`Trend`] (least-squares slope over the last N
//! windows) and its anomaly [`Detector`] (how surprising each window is, as
//! `-log10 p`, against the series' own history).

mod anomaly;
mod average;
mod exact_sum;
mod history;
#[cfg(test)]
mod laws;
mod percentile;
mod trend;

use std::fmt::Debug;

pub use anomaly::{raises_alarm, AnomalySettings, Detector, LastAlarm, Score, SeriesKind};
pub use average::Average;
pub use exact_sum::ExactSum;
pub use history::{HistorySettings, SeriesHistory, Verdict};
pub use percentile::{rank, Percentiles, EXACT_LIMIT, QUANTILES, RELATIVE_ACCURACY};
pub use trend::{least_squares_slope, Trend, TrendChange, TrendSettings, TrendUpdate};

use crate::rollup::Rollup;

/// A mergeable summary of a stream of observations.
pub trait Aggregator: Default + Clone + Debug {
    /// Adds one observation.
    fn record(&mut self, value: f64);

    /// Folds in another aggregate of the same series, as if its observations
    /// had been recorded here. Order and grouping do not change the result.
    fn merge(&mut self, other: &Self);

    /// Writes the result into the columns of `rollup` this aggregator owns.
    fn finish(&self, rollup: &mut Rollup);
}

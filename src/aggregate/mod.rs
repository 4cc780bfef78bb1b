//! Aggregators: what is computed per series per window.
//!
//! Each aggregator is mergeable (two partial aggregates of the same series
//! combine into the aggregate of all their observations) and fills its own
//! columns of the [`Rollup`] row in [`Aggregator::finish`]. This issue ships
//! [`Average`]; percentile, trend and anomaly aggregators plug in the same way.

mod average;
mod exact_sum;

use std::fmt::Debug;

pub use average::Average;
pub use exact_sum::ExactSum;

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

//! Count, sum, minimum, maximum and mean.

use super::{Aggregator, ExactSum};
use crate::rollup::Rollup;

/// Count, exact sum, min, max; the mean is derived when finishing.
#[derive(Debug, Clone, PartialEq)]
pub struct Average {
    count: u64,
    sum: ExactSum,
    min: f64,
    max: f64,
}

impl Default for Average {
    fn default() -> Self {
        Average {
            count: 0,
            sum: ExactSum::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Average {
    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact sum, correctly rounded.
    pub fn sum(&self) -> f64 {
        self.sum.value()
    }

    /// Arithmetic mean, or `None` before the first observation.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum.value() / self.count as f64)
    }
}

impl Aggregator for Average {
    fn record(&mut self, value: f64) {
        self.count += 1;
        self.sum.add(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum.merge(&other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    fn finish(&self, rollup: &mut Rollup) {
        rollup.count = self.count;
        rollup.sum = self.sum.value();
        if self.count > 0 {
            rollup.min = self.min;
            rollup.max = self.max;
            rollup.avg = self.sum.value() / self.count as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64]) -> Average {
        let mut a = Average::default();
        values.iter().for_each(|&v| a.record(v));
        a
    }

    #[test]
    fn computes_count_sum_min_max_mean() {
        let mut row = Rollup::default();
        of(&[3.0, 1.0, 2.0, 10.0]).finish(&mut row);
        assert_eq!(
            (row.count, row.sum, row.min, row.max, row.avg),
            (4, 16.0, 1.0, 10.0, 4.0)
        );
        assert_eq!(Average::default().mean(), None);
    }
}

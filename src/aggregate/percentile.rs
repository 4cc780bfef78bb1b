//! p50, p90, p95 and p99 with a relative-error guarantee.
//!
//! A window that holds few values keeps them exactly (a short vector), so its
//! percentiles are exact and cost a few bytes per value. Past
//! [`EXACT_LIMIT`] values the vector is folded into a DDSketch
//! ([`sketches_ddsketch`]) with [`RELATIVE_ACCURACY`]: every percentile it
//! reports is within 1 % of the exact value of the same rank, whatever the
//! distribution, also after merging. Both forms are mergeable and depend only
//! on the multiset of values recorded, so merging in any order or grouping
//! gives the same result as one aggregate over the union.
//!
//! Rank convention (both forms, and the one tests compare against): the
//! q-quantile of `n` sorted values is the value at index `floor(q * (n - 1))`.

use sketches_ddsketch::{Config, DDSketch};

use super::Aggregator;
use crate::rollup::Rollup;

/// Relative accuracy of the sketch: a reported percentile `p` of a true value
/// `x` satisfies `|p - x| <= RELATIVE_ACCURACY * |x|`.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Most values kept exactly before switching to the sketch. 128 values take
/// 1 KiB, less than a populated sketch, which holds about 8 bytes per
/// occupied 2 % wide bucket between the smallest and largest value.
pub const EXACT_LIMIT: usize = 128;

/// The quantiles written to every rollup that has percentiles.
pub const QUANTILES: [f64; 4] = [0.50, 0.90, 0.95, 0.99];

fn sketch_config() -> Config {
    // Buckets start at the smallest normal f64, so a small value is kept to
    // 1 % like any other (only subnormal magnitudes count as zero). Up to
    // 2048 buckets per sign, allocated only between the smallest and the
    // largest value seen: 1 % over any 17 decades of one window's values;
    // past that the lowest buckets collapse (DDSketch's documented
    // behaviour), as they would only for values like 1e-12 and 1e6 in one
    // window of one series.
    Config::new(RELATIVE_ACCURACY, 2048, f64::MIN_POSITIVE)
}

#[derive(Clone)]
enum Repr {
    Exact(Vec<f64>),
    Sketch(Box<DDSketch>),
}

impl std::fmt::Debug for Repr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repr::Exact(values) => f.debug_tuple("Exact").field(values).finish(),
            Repr::Sketch(sketch) => f
                .debug_struct("Sketch")
                .field("count", &sketch.count())
                .field("buckets", &sketch.length())
                .finish(),
        }
    }
}

/// Percentiles of one series in one window. See the module docs.
#[derive(Debug, Clone)]
pub struct Percentiles {
    repr: Repr,
}

impl Default for Percentiles {
    fn default() -> Self {
        Percentiles {
            repr: Repr::Exact(Vec::new()),
        }
    }
}

impl Percentiles {
    /// Values recorded.
    pub fn count(&self) -> usize {
        match &self.repr {
            Repr::Exact(values) => values.len(),
            Repr::Sketch(sketch) => sketch.count(),
        }
    }

    /// Whether the values are still held exactly.
    pub fn is_exact(&self) -> bool {
        matches!(self.repr, Repr::Exact(_))
    }

    /// The `q`-quantile (`0 <= q <= 1`), or `None` before the first value.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.quantiles(&[q]).map(|[v]| v)
    }

    /// Several quantiles at once (sorting the exact values once).
    pub fn quantiles<const N: usize>(&self, qs: &[f64; N]) -> Option<[f64; N]> {
        match &self.repr {
            Repr::Exact(values) if values.is_empty() => None,
            Repr::Exact(values) => {
                let mut sorted = values.clone();
                sorted.sort_unstable_by(f64::total_cmp);
                Some(qs.map(|q| sorted[rank(q, sorted.len())]))
            }
            Repr::Sketch(sketch) => {
                // A bucket's value can lie just outside the values recorded
                // (a p99 1 % above the maximum): clamped, which only brings
                // it closer to the truth.
                let (min, max) = (sketch.min()?, sketch.max()?);
                let mut out = [0.0; N];
                for (slot, q) in out.iter_mut().zip(qs) {
                    let estimate = sketch.quantile(q.clamp(0.0, 1.0)).ok().flatten()?;
                    *slot = estimate.clamp(min, max);
                }
                Some(out)
            }
        }
    }

    fn to_sketch(values: &[f64]) -> Box<DDSketch> {
        let mut sketch = Box::new(DDSketch::new(sketch_config()));
        values.iter().for_each(|&v| sketch.add(v));
        sketch
    }
}

/// Index of the `q`-quantile among `n` sorted values.
pub fn rank(q: f64, n: usize) -> usize {
    let last = n.saturating_sub(1);
    ((q.clamp(0.0, 1.0) * last as f64) as usize).min(last)
}

impl Aggregator for Percentiles {
    #[inline]
    fn record(&mut self, value: f64) {
        match &mut self.repr {
            Repr::Exact(values) if values.len() < EXACT_LIMIT => values.push(value),
            Repr::Exact(values) => {
                let mut sketch = Self::to_sketch(values);
                sketch.add(value);
                self.repr = Repr::Sketch(sketch);
            }
            Repr::Sketch(sketch) => sketch.add(value),
        }
    }

    fn merge(&mut self, other: &Self) {
        match (&mut self.repr, &other.repr) {
            (Repr::Exact(mine), Repr::Exact(theirs))
                if mine.len() + theirs.len() <= EXACT_LIMIT =>
            {
                mine.extend_from_slice(theirs);
            }
            (Repr::Exact(mine), Repr::Exact(theirs)) => {
                let mut sketch = Self::to_sketch(mine);
                theirs.iter().for_each(|&v| sketch.add(v));
                self.repr = Repr::Sketch(sketch);
            }
            (Repr::Exact(mine), Repr::Sketch(theirs)) => {
                let mut sketch = theirs.clone();
                mine.iter().for_each(|&v| sketch.add(v));
                self.repr = Repr::Sketch(sketch);
            }
            (Repr::Sketch(mine), Repr::Exact(theirs)) => theirs.iter().for_each(|&v| mine.add(v)),
            (Repr::Sketch(mine), Repr::Sketch(theirs)) => {
                // Same configuration on both sides, so merging cannot fail.
                let _same_config = mine.merge(theirs);
            }
        }
    }

    fn finish(&self, rollup: &mut Rollup) {
        if let Some([p50, p90, p95, p99]) = self.quantiles(&QUANTILES) {
            rollup.p50 = Some(p50);
            rollup.p90 = Some(p90);
            rollup.p95 = Some(p95);
            rollup.p99 = Some(p99);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn of(values: &[f64]) -> Percentiles {
        let mut p = Percentiles::default();
        values.iter().for_each(|&v| p.record(v));
        p
    }

    fn exact(values: &[f64], q: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        sorted[rank(q, sorted.len())]
    }

    fn within_bound(estimate: f64, truth: f64) -> bool {
        (estimate - truth).abs() <= RELATIVE_ACCURACY * truth.abs() + 1e-9
    }

    #[test]
    fn few_values_are_exact_and_empty_has_none() {
        let p = of(&[5.0, 1.0, 4.0, 2.0, 3.0]);
        assert!(p.is_exact());
        assert_eq!(p.quantiles(&QUANTILES), Some([3.0, 4.0, 4.0, 4.0]));
        assert_eq!(Percentiles::default().quantile(0.5), None);
        let mut row = Rollup::default();
        Percentiles::default().finish(&mut row);
        assert_eq!(row.p50, None);
    }

    fn assert_bound_on(name: &str, values: &[f64]) {
        let p = of(values);
        assert!(!p.is_exact(), "{name}: expected a sketch");
        for q in QUANTILES {
            let (estimate, truth) = (p.quantile(q).unwrap_or(f64::NAN), exact(values, q));
            assert!(
                within_bound(estimate, truth),
                "{name} q={q}: {estimate} vs exact {truth}"
            );
        }
    }

    #[test]
    fn within_one_percent_on_uniform_lognormal_and_pareto_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 50_000;
        let uniform: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1000.0)).collect();
        let lognormal: Vec<f64> = (0..n)
            .map(|_| {
                // Box-Muller normal, then exp.
                let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (5.0 + 1.5 * z).exp()
            })
            .collect();
        let pareto: Vec<f64> = (0..n)
            .map(|_| 1.0 / rng.random_range(1e-12..1.0f64).powf(1.0 / 1.2))
            .collect();
        let signed: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        assert_bound_on("uniform", &uniform);
        assert_bound_on("lognormal", &lognormal);
        assert_bound_on("pareto", &pareto);
        assert_bound_on("signed", &signed);
    }

    #[test]
    fn small_values_are_kept_to_one_percent_and_no_percentile_leaves_the_range() {
        for scale in [1e-5, 1e-9, 1e-10, 1e-12, 1e-15, 1e-30, 1e-300, -1e-12] {
            let values: Vec<f64> = (0..400)
                .map(|i| scale * (1.0 + f64::from(i) / 1000.0))
                .collect();
            let p = of(&values);
            assert!(!p.is_exact());
            let (min, max) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            for q in QUANTILES {
                let (estimate, truth) = (p.quantile(q).unwrap(), exact(&values, q));
                assert!(
                    (estimate - truth).abs() <= RELATIVE_ACCURACY * truth.abs(),
                    "scale {scale:e} q={q}: {estimate:e} vs exact {truth:e}"
                );
                assert!(
                    (min..=max).contains(&estimate),
                    "scale {scale:e} q={q}: {estimate:e} outside [{min:e}, {max:e}]"
                );
            }
        }
        // A window of 1.0s: every percentile is 1.0, not the bucket's 1.0 +- 1 %.
        let ones = of(&[1.0; 200]);
        assert_eq!(ones.quantiles(&QUANTILES), Some([1.0; 4]));
    }

    proptest! {
        #[test]
        fn percentiles_stay_within_the_bound(values in super::super::laws::values()) {
            let p = of(&values);
            for q in QUANTILES {
                match p.quantile(q) {
                    None => prop_assert!(values.is_empty()),
                    Some(estimate) => {
                        let truth = exact(&values, q);
                        prop_assert!(within_bound(estimate, truth), "q={} {} vs {}", q, estimate, truth);
                    }
                }
            }
        }
    }
}

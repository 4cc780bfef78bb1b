//! Exact, mergeable floating-point sums.
//!
//! A plain `f64` running sum depends on the order of its terms, so the same
//! events batched or partitioned differently would give sums differing in the
//! last bits, and merging two partial sums would not be associative. This
//! keeps the sum exactly as a short list of non-overlapping partials
//! (Shewchuk's algorithm, as in CPython's `math.fsum`) and rounds once when
//! read. Integer-valued data keeps a single partial; decimals rarely need
//! more than two or three. (The `fsum` crate implements the same algorithm
//! but cannot merge two sums.)

/// The exact sum of the `f64` values added, correctly rounded when read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactSum {
    /// The largest partial, inline: integer-valued data (every count) never
    /// needs another, so most sums never allocate.
    top: Option<f64>,
    /// The other non-overlapping partials, increasing in magnitude; with
    /// `top` last, their exact sum is the exact sum of everything added.
    low: Vec<f64>,
}

impl ExactSum {
    /// Adds `x` exactly. Non-finite values poison the sum, as in `math.fsum`.
    pub fn add(&mut self, mut x: f64) {
        let Some(top) = self.top else {
            self.top = Some(x);
            return;
        };
        let mut kept = 0;
        for i in 0..self.low.len() {
            let (hi, lo) = two_sum(x, self.low[i]);
            if lo != 0.0 {
                self.low[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        let (hi, lo) = two_sum(x, top);
        if lo != 0.0 {
            if kept < self.low.len() {
                self.low[kept] = lo;
            } else {
                self.low.push(lo);
            }
            kept += 1;
        }
        self.low.truncate(kept);
        self.top = Some(hi);
    }

    /// Adds everything `other` holds, exactly.
    pub fn merge(&mut self, other: &ExactSum) {
        for &partial in other.low.iter().chain(&other.top) {
            self.add(partial);
        }
    }

    /// The sum, correctly rounded to the nearest `f64` (ties to even).
    pub fn value(&self) -> f64 {
        let Some(top) = self.top else {
            return 0.0;
        };
        let rest = &self.low;
        let mut total = top;
        let mut rest = rest.iter().rev().peekable();
        while let Some(&x) = rest.next() {
            let previous = total;
            total = previous + x;
            let error = x - (total - previous);
            if error != 0.0 {
                // Round half-even correctly across several partials: if the
                // next partial pushes the same way, the tie is broken.
                if let Some(&&next) = rest.peek() {
                    if (error < 0.0 && next < 0.0) || (error > 0.0 && next > 0.0) {
                        let doubled = error * 2.0;
                        let bumped = total + doubled;
                        if doubled == bumped - total {
                            total = bumped;
                        }
                    }
                }
                break;
            }
        }
        total
    }
}

/// `x + y` as the rounded sum and its exact rounding error (Fast2Sum on the
/// larger magnitude first).
#[inline]
fn two_sum(x: f64, y: f64) -> (f64, f64) {
    let (x, y) = if x.abs() < y.abs() { (y, x) } else { (x, y) };
    let hi = x + y;
    (hi, y - (hi - x))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sum_of(values: &[f64]) -> f64 {
        let mut s = ExactSum::default();
        values.iter().for_each(|&v| s.add(v));
        s.value()
    }

    #[test]
    fn classic_cancellation_cases() {
        assert_eq!(sum_of(&[]), 0.0);
        assert_eq!(sum_of(&[0.1; 10]), 1.0);
        assert_eq!(sum_of(&[1e100, 1.0, -1e100]), 1.0);
        assert_eq!(sum_of(&[1e-16, 1.0, 1e16]), 1.000_000_000_000_000_2e16);
        assert_eq!(sum_of(&[1.0, 1e100, 1.0, -1e100]), 2.0);
    }

    fn decimals() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(
            (-1_000_000i64..1_000_000).prop_map(|c| c as f64 / 100.0),
            0..200,
        )
    }

    proptest! {
        #[test]
        fn order_does_not_matter(mut values in decimals(), seed in any::<u64>()) {
            let forward = sum_of(&values);
            // A deterministic shuffle driven by the seed.
            let n = values.len();
            for i in (1..n).rev() {
                let j = (seed.wrapping_mul(i as u64 + 1).rotate_left(17) % (i as u64 + 1)) as usize;
                values.swap(i, j);
            }
            prop_assert_eq!(forward.to_bits(), sum_of(&values).to_bits());
        }

        #[test]
        fn merge_equals_one_sum_over_the_union(a in decimals(), b in decimals(), c in decimals()) {
            let part = |v: &[f64]| { let mut s = ExactSum::default(); v.iter().for_each(|&x| s.add(x)); s };
            let all: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
            let (pa, pb, pc) = (part(&a), part(&b), part(&c));
            let mut left = pa.clone();
            left.merge(&pb);
            left.merge(&pc);
            let mut bc = pb.clone();
            bc.merge(&pc);
            let mut right = pa.clone();
            right.merge(&bc);
            prop_assert_eq!(left.value().to_bits(), sum_of(&all).to_bits());
            prop_assert_eq!(right.value().to_bits(), sum_of(&all).to_bits());
        }

        #[test]
        fn integers_are_summed_exactly(values in prop::collection::vec(0i64..10_000_000, 0..500)) {
            let expected: i64 = values.iter().sum();
            let floats: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            prop_assert_eq!(sum_of(&floats), expected as f64);
        }
    }
}

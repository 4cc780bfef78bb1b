//! The merge law every [`Aggregator`] must obey, checked once for all of
//! them: partial aggregates merged in any grouping finish into the same
//! columns, bit for bit, as one aggregate over all the observations, and
//! merging an empty aggregate changes nothing. An aggregator added to
//! [`every_aggregator_obeys_the_merge_law`] is checked the same way.

use proptest::prelude::*;

use super::{Aggregator, Average, Percentiles};
use crate::rollup::Rollup;

fn of<A: Aggregator>(values: &[f64]) -> A {
    let mut aggregate = A::default();
    values.iter().for_each(|&v| aggregate.record(v));
    aggregate
}

/// The columns an aggregator fills, as bits (so -0.0, NaN and rounding
/// differences all count).
fn columns<A: Aggregator>(aggregate: &A) -> [Option<u64>; 9] {
    let mut row = Rollup::default();
    aggregate.finish(&mut row);
    [
        Some(row.count),
        Some(row.sum.to_bits()),
        Some(row.min.to_bits()),
        Some(row.max.to_bits()),
        Some(row.avg.to_bits()),
        row.p50.map(f64::to_bits),
        row.p90.map(f64::to_bits),
        row.p95.map(f64::to_bits),
        row.p99.map(f64::to_bits),
    ]
}

/// `(a ⊕ b) ⊕ c`, `a ⊕ (b ⊕ c)` and `a ⊕ ∅` against one aggregate over all.
fn merge_law<A: Aggregator>(a: &[f64], b: &[f64], c: &[f64]) -> Result<(), TestCaseError> {
    let all: Vec<f64> = a.iter().chain(b).chain(c).copied().collect();
    let whole = columns(&of::<A>(&all));
    let mut left = of::<A>(a);
    left.merge(&of(b));
    left.merge(&of(c));
    let mut bc = of::<A>(b);
    bc.merge(&of(c));
    let mut right = of::<A>(a);
    right.merge(&bc);
    let mut with_empty = of::<A>(a);
    with_empty.merge(&A::default());
    let name = std::any::type_name::<A>();
    prop_assert_eq!(columns(&left), whole, "{} (a+b)+c", name);
    prop_assert_eq!(columns(&right), whole, "{} a+(b+c)", name);
    prop_assert_eq!(
        columns(&with_empty),
        columns(&of::<A>(a)),
        "{} a+empty",
        name
    );
    Ok(())
}

/// Plain, small, and heavy-tailed values, enough of them to leave the exact
/// range of the percentile sketch (also the percentile bound's input).
pub(super) fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![
            -1e6f64..1e6,
            0.001f64..10.0,
            (1.0f64..20.0).prop_map(f64::exp)
        ],
        0..400,
    )
}

proptest! {
    #[test]
    fn every_aggregator_obeys_the_merge_law(a in values(), b in values(), c in values()) {
        merge_law::<Average>(&a, &b, &c)?;
        merge_law::<Percentiles>(&a, &b, &c)?;
    }
}

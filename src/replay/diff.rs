//! What a replay changes: its rows against those already in ClickHouse,
//! every column but the version. Pure.

use std::collections::HashMap;

use crate::sink::clickhouse::rows::RollupRow;

/// The key of a row.
pub type RowKey = (String, String, String, String, u32);

/// The key of `row`.
pub fn key(row: &RollupRow) -> RowKey {
    (
        row.metric.clone(),
        row.campaign_id.clone(),
        row.content_id.clone(),
        row.channel.clone(),
        row.window_start,
    )
}

/// One changed row, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Which row.
    pub key: RowKey,
    /// The column that differs most, relatively.
    pub column: &'static str,
    /// Its value in ClickHouse.
    pub before: Option<f64>,
    /// The replay's value.
    pub after: Option<f64>,
    /// |after - before| / max(|before|, |after|, 1e-12); 1 when one is NULL.
    pub relative: f64,
}

/// How a replay's rows compare with ClickHouse's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Rows ClickHouse does not have.
    pub new: u64,
    /// Rows that differ in some column.
    pub changed: u64,
    /// Rows equal in every column.
    pub unchanged: u64,
    /// The largest changes, largest first (at most [`Diff::KEEP`]).
    pub largest: Vec<Change>,
}

fn values(row: &RollupRow) -> [(&'static str, Option<f64>); 12] {
    [
        ("count", Some(row.count as f64)),
        ("sum", Some(row.sum)),
        ("min", Some(row.min)),
        ("max", Some(row.max)),
        ("avg", Some(row.avg)),
        ("p50", row.p50),
        ("p90", row.p90),
        ("p95", row.p95),
        ("p99", row.p99),
        ("trend_slope", row.trend_slope),
        ("anomaly_score", row.anomaly_score),
        ("window_end", Some(f64::from(row.window_end))),
    ]
}

fn relative(before: Option<f64>, after: Option<f64>) -> f64 {
    match (before, after) {
        (Some(a), Some(b)) if a.to_bits() == b.to_bits() => 0.0,
        (Some(a), Some(b)) => (b - a).abs() / a.abs().max(b.abs()).max(1e-12),
        (None, None) => 0.0,
        _ => 1.0,
    }
}

impl Diff {
    /// Changes kept for the report.
    pub const KEEP: usize = 10;

    /// Compares `row` (the replay's) with `existing` (ClickHouse's), and
    /// takes its row out of `existing`: what is left at the end, the
    /// replay did not produce.
    pub fn add(&mut self, row: &RollupRow, existing: &mut HashMap<RowKey, RollupRow>) {
        let Some(before) = existing.remove(&key(row)) else {
            self.new += 1;
            return;
        };
        let worst = values(&before)
            .into_iter()
            .zip(values(row))
            .map(|((column, b), (_, a))| (column, b, a, relative(b, a)))
            .filter(|(_, _, _, r)| *r > 0.0)
            .max_by(|x, y| x.3.total_cmp(&y.3));
        let same_source = before.source_topic == row.source_topic
            && before.source_partition == row.source_partition;
        match worst {
            None if same_source => self.unchanged += 1,
            None => {
                self.changed += 1;
                self.keep(Change {
                    key: key(row),
                    column: "source_partition",
                    before: Some(f64::from(before.source_partition)),
                    after: Some(f64::from(row.source_partition)),
                    relative: 1.0,
                });
            }
            Some((column, b, a, relative)) => {
                self.changed += 1;
                self.keep(Change {
                    key: key(row),
                    column,
                    before: b,
                    after: a,
                    relative,
                });
            }
        }
    }

    fn keep(&mut self, change: Change) {
        self.largest.push(change);
        self.largest
            .sort_by(|x, y| y.relative.total_cmp(&x.relative));
        self.largest.truncate(Self::KEEP);
    }

    /// Adds `other`'s counts and changes.
    pub fn merge(&mut self, other: Diff) {
        self.new += other.new;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
        for change in other.largest {
            self.keep(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::{Dimensions, Rollup};

    fn row(count: u64, sum: f64) -> RollupRow {
        RollupRow::new(
            Rollup {
                metric: "conversion.revenue".into(),
                dimensions: Dimensions {
                    campaign_id: "c".into(),
                    ..Dimensions::default()
                },
                window_start: crate::event::EventTime::from_millis(60_000),
                window_end: crate::event::EventTime::from_millis(120_000),
                count,
                sum,
                min: 1.0,
                max: 2.0,
                avg: sum / count as f64,
                source_topic: "t".into(),
                ..Rollup::default()
            },
            1,
        )
    }

    #[test]
    fn counts_new_changed_and_unchanged_rows_and_keeps_the_largest_changes() {
        let stored = || -> HashMap<RowKey, RollupRow> { [(key(&row(2, 3.0)), row(2, 3.0))].into() };
        let mut existing = stored();
        let mut diff = Diff::default();
        diff.add(&row(2, 3.0), &mut existing);
        assert_eq!((diff.new, diff.changed, diff.unchanged), (0, 0, 1));
        assert!(existing.is_empty(), "compared rows are taken out");
        let mut other = row(2, 3.0);
        other.window_start = 999;
        diff.add(&other, &mut stored());
        assert_eq!(diff.new, 1);
        diff.add(&row(3, 6.0), &mut stored());
        assert_eq!(diff.changed, 1);
        let change = &diff.largest[0];
        assert_eq!(change.column, "sum");
        assert_eq!((change.before, change.after), (Some(3.0), Some(6.0)));
        assert!((change.relative - 0.5).abs() < 1e-12);
    }
}

//! Whole rollup rows as stored (Reactor's own [`RollupRow`](FullRow)), compared in
//! every column but the version, for comparing two runs (a chaos run with a
//! golden one, a replay with live).

use std::collections::BTreeMap;

use anyhow::Result;
pub use reactor::sink::clickhouse::rows::RollupRow as FullRow;

use crate::expected::Key;

/// The row's key.
pub fn key(row: &FullRow) -> Key {
    reactor::replay::diff::key(row)
}

/// Equal in every column but the version; floats bit for bit.
pub fn same(a: &FullRow, b: &FullRow) -> bool {
    let bits = |x: Option<f64>| x.map(f64::to_bits);
    key(a) == key(b)
        && (a.window_end, a.count) == (b.window_end, b.count)
        && [a.sum, a.min, a.max, a.avg].map(f64::to_bits)
            == [b.sum, b.min, b.max, b.avg].map(f64::to_bits)
        && [a.p50, a.p90, a.p95, a.p99, a.trend_slope, a.anomaly_score].map(bits)
            == [b.p50, b.p90, b.p95, b.p99, b.trend_slope, b.anomaly_score].map(bits)
        && (a.source_topic.as_str(), a.source_partition)
            == (b.source_topic.as_str(), b.source_partition)
}

/// Every current row of `client`'s database, by key.
pub async fn full_rows(client: &clickhouse::Client) -> Result<BTreeMap<Key, FullRow>> {
    let rows = client
        .query("SELECT ?fields FROM rollups FINAL")
        .fetch_all::<FullRow>()
        .await?;
    Ok(rows.into_iter().map(|r| (key(&r), r)).collect())
}

/// The differences between `got` and `want`, one line each (at most
/// `limit`), and how many there are.
pub fn differences(
    got: &BTreeMap<Key, FullRow>,
    want: &BTreeMap<Key, FullRow>,
    limit: usize,
) -> (usize, Vec<String>) {
    let mut lines = Vec::new();
    let mut count = 0;
    let mut note = |line: String| {
        count += 1;
        if lines.len() < limit {
            lines.push(line);
        }
    };
    for (key, w) in want {
        match got.get(key) {
            Some(g) if same(g, w) => {}
            Some(g) => note(format!("{key:?}: got {g:?}, want {w:?}")),
            None => note(format!("{key:?}: missing")),
        }
    }
    for key in got.keys().filter(|k| !want.contains_key(*k)) {
        note(format!("{key:?}: not expected"));
    }
    (count, lines)
}

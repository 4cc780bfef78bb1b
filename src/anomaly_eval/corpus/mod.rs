//! A seeded, labelled corpus of marketing-shaped series, one value per
//! closed window, for developing and checking the anomaly detector.
//!
//! Families (weights): sparse counts (0.20: mostly zero, negative-binomial
//! bursts, weak daily cycle), dense counts (0.25: strong daily cycle, slow
//! drift), money (0.18: sums of lognormal or Pareto purchases), sentiment
//! (0.14: mean of per-item scores in [-1, 1] around a wandering mood), SEO
//! scores (0.11: integers, mostly constant, rare steps and blips), and pure
//! Gaussian and Poisson noise (0.06 each, never labelled). Labelled
//! anomalies: spikes, bursts, dips, level shifts up and down, variance
//! changes, outages (drops to zero), price bugs and sentiment crises. About
//! 20 % of the other series carry none, so false alarms there cost too.
//! Apart from the mix, [`noise`] and [`revenue_noise`] give clean series
//! for false-alarm rates (Gaussian, Poisson, lognormal revenue).
//!
//! Labels follow the Numenta Anomaly Benchmark's labeller: each anomaly is
//! a window of 10 % of the series' length divided by its number of
//! anomalies, centred on the anomaly's start (overlaps merged), after the
//! probationary first 15 %.

mod draw;
mod families;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::aggregate::SeriesKind;
use draw::{log_uniform, normal, place_anomalies, poisson, sign};
use families::{dense_counts, money, sentiment, seo, sparse_counts};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// A series family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Mostly-zero counts with bursts.
    SparseCount,
    /// Counts with a daily cycle.
    DenseCount,
    /// Heavy-tailed money sums.
    Money,
    /// Bounded mean scores in [-1, 1].
    Sentiment,
    /// Integer scores in [0, 100].
    Seo,
    /// Gaussian noise, no anomaly.
    NoiseGauss,
    /// Poisson noise, no anomaly.
    NoisePoisson,
    /// Revenue sums of lognormal purchases, no anomaly (not in the mix:
    /// false-alarm rates only).
    NoiseRevenue,
}

const FAMILIES: [(Family, f64); 7] = [
    (Family::SparseCount, 0.20),
    (Family::DenseCount, 0.25),
    (Family::Money, 0.18),
    (Family::Sentiment, 0.14),
    (Family::Seo, 0.11),
    (Family::NoiseGauss, 0.06),
    (Family::NoisePoisson, 0.06),
];

impl Family {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::SparseCount => "sparse counts",
            Family::DenseCount => "dense counts",
            Family::Money => "money",
            Family::Sentiment => "sentiment",
            Family::Seo => "seo score",
            Family::NoiseGauss => "gaussian noise",
            Family::NoisePoisson => "poisson noise",
            Family::NoiseRevenue => "revenue noise",
        }
    }
}

/// One labelled series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Family and seed.
    pub name: String,
    /// Its family.
    pub family: Family,
    /// What the detector is told.
    pub kind: SeriesKind,
    /// One value per window.
    pub values: Vec<f64>,
    /// Labelled anomaly windows, inclusive index ranges.
    pub windows: Vec<(usize, usize)>,
}

/// The series of `seeds`, one per seed.
pub fn corpus(seeds: std::ops::Range<u64>) -> Vec<Series> {
    seeds.map(series).collect()
}

/// Pure noise (no anomaly), for false-alarm rates: `count` series of `n`
/// windows, Gaussian measures or Poisson counts.
pub fn noise(kind: SeriesKind, count: usize, n: usize, seed: u64) -> Vec<Series> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let values = match kind {
                SeriesKind::Measure => {
                    let mean = log_uniform(&mut rng, 0.1, 1000.0) * sign(&mut rng);
                    let sd = mean.abs() * log_uniform(&mut rng, 0.01, 1.0);
                    (0..n).map(|_| normal(&mut rng, mean, sd)).collect()
                }
                SeriesKind::Count => {
                    let rate = log_uniform(&mut rng, 0.05, 500.0);
                    (0..n).map(|_| poisson(&mut rng, rate)).collect()
                }
            };
            Series {
                name: format!("noise-{i}"),
                family: match kind {
                    SeriesKind::Measure => Family::NoiseGauss,
                    SeriesKind::Count => Family::NoisePoisson,
                },
                kind,
                values,
                windows: Vec::new(),
            }
        })
        .collect()
}

/// Clean heavy-tailed revenue (no anomaly), for false-alarm rates: `count`
/// series of `n` windows, each the sum of a Poisson number of lognormal
/// purchases. A window without a purchase has no row, so it is left out,
/// as the pipeline leaves it out of a measure's series.
pub fn revenue_noise(count: usize, n: usize, seed: u64) -> Vec<Series> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|i| Series {
            name: format!("revenue-noise-{i}"),
            family: Family::NoiseRevenue,
            kind: SeriesKind::Measure,
            values: revenue(&mut rng, n),
            windows: Vec::new(),
        })
        .collect()
}

/// Up to `n` windows of one clean revenue series (see [`revenue_noise`]).
fn revenue(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    let rate = log_uniform(rng, 1.0, 40.0);
    let sigma: f64 = rng.random_range(0.5..1.4);
    let price = log_uniform(rng, 5.0, 200.0);
    (0..n)
        .filter_map(|_| {
            let purchases = poisson(rng, rate) as usize;
            let total: f64 = (0..purchases)
                .map(|_| price * normal(rng, -0.5 * sigma * sigma, sigma).exp())
                .sum();
            (purchases > 0).then(|| (total * 100.0).round() / 100.0)
        })
        .collect()
}

/// NAB's probationary period: the first 15 %, at most 750 windows.
pub fn probation(n: usize) -> usize {
    ((0.15 * n as f64).floor() as usize).min(750)
}

/// NAB's label windows around anomaly `starts`.
fn label_windows(n: usize, starts: &[usize]) -> Vec<(usize, usize)> {
    if starts.is_empty() || n == 0 {
        return Vec::new();
    }
    let half = (0.10 * n as f64 / starts.len() as f64) as usize / 2;
    let mut sorted = starts.to_vec();
    sorted.sort_unstable();
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for a in sorted {
        let (lo, hi) = (a.saturating_sub(half), (a + half).min(n - 1));
        match windows.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => windows.push((lo, hi)),
        }
    }
    windows
}

/// The series of `seed`.
pub fn series(seed: u64) -> Series {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let total: f64 = FAMILIES.iter().map(|(_, w)| w).sum();
    let mut draw = rng.random_range(0.0..total);
    let family = FAMILIES
        .iter()
        .find(|(_, w)| {
            draw -= w;
            draw < 0.0
        })
        .map_or(Family::NoisePoisson, |(f, _)| *f);
    let n = rng.random_range(1000..=5000usize);
    let noise_family = matches!(family, Family::NoiseGauss | Family::NoisePoisson);
    let with_anomalies = !noise_family && rng.random::<f64>() > 0.2;
    let k = if with_anomalies {
        rng.random_range(1..=3)
    } else {
        0
    };
    let mut window_seconds = *[60i64, 300, 3600].choose(&mut rng).unwrap_or(&60);
    if matches!(family, Family::SparseCount | Family::Money) && rng.random_bool(0.5) {
        window_seconds = *[300i64, 3600].choose(&mut rng).unwrap_or(&300);
    }
    let t0 = rng.random_range(0..365i64) * DAY
        + rng.random_range(0..DAY / window_seconds) * window_seconds;
    let t: Vec<i64> = (0..n as i64).map(|i| t0 + window_seconds * i).collect();
    let starts = if k > 0 {
        place_anomalies(&mut rng, n, k, 60)
    } else {
        Vec::new()
    };
    let mut shifted = false;
    let (kind, values) = match family {
        Family::SparseCount => sparse_counts(&mut rng, &t, &starts, &mut shifted),
        Family::DenseCount => dense_counts(&mut rng, &t, &starts, &mut shifted),
        Family::Money => money(&mut rng, &t, &starts, &mut shifted),
        Family::Sentiment => sentiment(&mut rng, &t, &starts, &mut shifted),
        Family::Seo => seo(&mut rng, n, &starts, &mut shifted),
        Family::NoiseGauss => {
            let mean = log_uniform(&mut rng, 0.1, 1000.0) * sign(&mut rng);
            let sd = mean.abs() * log_uniform(&mut rng, 0.01, 1.0);
            let values = (0..n).map(|_| normal(&mut rng, mean, sd)).collect();
            (SeriesKind::Measure, values)
        }
        Family::NoisePoisson => {
            let rate = log_uniform(&mut rng, 0.05, 500.0);
            let values = (0..n).map(|_| poisson(&mut rng, rate)).collect();
            (SeriesKind::Count, values)
        }
        Family::NoiseRevenue => (SeriesKind::Measure, revenue(&mut rng, n)),
    };
    Series {
        name: format!("{}-{seed}", family.as_str()),
        family,
        kind,
        values,
        windows: label_windows(n, &starts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_seeded_labelled_and_covers_every_family() {
        let a = corpus(0..300);
        let b = corpus(0..300);
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x.values == y.values && x.windows == y.windows));
        for (family, _) in FAMILIES {
            assert!(a.iter().any(|s| s.family == family), "{family:?}");
        }
        for s in &a {
            assert!((1000..=5000).contains(&s.values.len()), "{}", s.name);
            assert!(s.values.iter().all(|v| v.is_finite()), "{}", s.name);
            assert!(s
                .windows
                .iter()
                .all(|&(lo, hi)| lo <= hi && hi < s.values.len()));
            if matches!(s.family, Family::NoiseGauss | Family::NoisePoisson) {
                assert!(s.windows.is_empty());
            }
        }
        let labelled = a.iter().filter(|s| !s.windows.is_empty()).count();
        assert!(labelled > 150, "{labelled} of 300 labelled");
    }
}

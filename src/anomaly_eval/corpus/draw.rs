//! Random draws and placement helpers for the corpus generator.

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Poisson, StandardNormal};

use super::{probation, DAY};

pub(super) fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    rng.random_range(lo.ln()..hi.ln()).exp()
}

pub(super) fn sign(rng: &mut ChaCha8Rng) -> f64 {
    if rng.random_bool(0.5) {
        1.0
    } else {
        -1.0
    }
}

/// A draw from Normal(mean, sd).
pub(super) fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    mean + sd * z
}

pub(super) fn poisson(rng: &mut ChaCha8Rng, rate: f64) -> f64 {
    if rate <= 0.0 {
        return 0.0;
    }
    Poisson::new(rate).map_or(0.0, |p| p.sample(rng))
}

pub(super) fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    Gamma::new(shape, 1.0).map_or(shape, |g| g.sample(rng))
}

/// Negative binomial with mean `mu` and gamma shape `shape`
/// (variance mu + mu^2 / shape); Poisson for an infinite shape.
pub(super) fn negative_binomial(rng: &mut ChaCha8Rng, mu: f64, shape: f64) -> f64 {
    if shape.is_infinite() {
        return poisson(rng, mu);
    }
    let rate = gamma(rng, shape) * mu.max(0.0) / shape;
    poisson(rng, rate)
}

/// A skewed daily shape (a sharper peak than a sinusoid), `exp(amp * s(t))`.
pub(super) fn daily(rng: &mut ChaCha8Rng, t: &[i64], amp: f64) -> Vec<f64> {
    let phase = rng.random_range(0.0..std::f64::consts::TAU);
    let second = rng.random_range(0.0..std::f64::consts::TAU);
    let shape: Vec<f64> = t
        .iter()
        .map(|&t| {
            let x = std::f64::consts::TAU * (t.rem_euclid(DAY)) as f64 / DAY as f64 + phase;
            x.sin() + 0.35 * (2.0 * x + second).sin()
        })
        .collect();
    let peak = shape.iter().fold(0.0f64, |m, s| m.max(s.abs())).max(1e-9);
    shape.into_iter().map(|s| (amp * s / peak).exp()).collect()
}

/// `k` anomaly starts after the probation, spread so each has room.
pub(super) fn place_anomalies(
    rng: &mut ChaCha8Rng,
    n: usize,
    k: usize,
    min_len: usize,
) -> Vec<usize> {
    let lo = probation(n) + 20;
    let hi = n.saturating_sub(30);
    if hi <= lo {
        return Vec::new();
    }
    let k = if hi - lo < k * (min_len + 40) {
        ((hi - lo) / (min_len + 40)).max(1)
    } else {
        k
    };
    (0..k)
        .map(|i| {
            let a = lo + (hi - lo) * i / k;
            let b = lo + (hi - lo) * (i + 1) / k;
            let span = ((0.6 * (b - a) as f64) as usize).max(1);
            a + rng.random_range(0..span)
        })
        .collect()
}

/// An anomaly type among `choices`; a level shift at most once per series.
pub(super) fn pick(
    rng: &mut ChaCha8Rng,
    choices: &[&'static str],
    shifted: &mut bool,
) -> &'static str {
    let ok: Vec<&'static str> = choices
        .iter()
        .copied()
        .filter(|c| !(c.starts_with("shift") && *shifted))
        .collect();
    let typ = ok.choose(rng).copied().unwrap_or("spike");
    if typ.starts_with("shift") {
        *shifted = true;
    }
    typ
}

pub(super) fn range(rng: &mut ChaCha8Rng, lo: usize, hi_inclusive: usize) -> usize {
    rng.random_range(lo..=hi_inclusive.max(lo))
}

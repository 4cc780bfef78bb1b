//! The series families of the corpus: how each is generated and which
//! anomalies it carries.

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Pareto};

use super::draw::{
    daily, gamma, log_uniform, negative_binomial, normal, pick, poisson, range, sign,
};
use crate::aggregate::SeriesKind;

pub(super) fn sparse_counts(
    rng: &mut ChaCha8Rng,
    t: &[i64],
    starts: &[usize],
    shifted: &mut bool,
) -> (SeriesKind, Vec<f64>) {
    let n = t.len();
    let base = log_uniform(rng, 0.02, 1.0);
    let shape = log_uniform(rng, 0.3, 5.0);
    let amp = rng.random_range(0.0..0.8);
    let mu: Vec<f64> = daily(rng, t, amp).into_iter().map(|d| base * d).collect();
    let mut add = vec![0.0; n];
    let mut mult = vec![1.0; n];
    for &s in starts {
        let mut choices = vec!["burst", "shift_up"];
        if base >= 0.3 {
            choices.push("outage");
        }
        match pick(rng, &choices, shifted) {
            "burst" => {
                let d = range(rng, 1, 3);
                let size = (10.0 * base).max(6.0) * rng.random_range(1.0..3.0);
                add[s..(s + d).min(n)].iter_mut().for_each(|a| *a += size);
            }
            "shift_up" => {
                let f = rng.random_range(4.0..12.0);
                mult[s..].iter_mut().for_each(|m| *m *= f);
            }
            _ => {
                let d = range(rng, (8.0 / base) as usize, (20.0 / base) as usize);
                mult[s..(s + d).min(n)].iter_mut().for_each(|m| *m = 0.0);
            }
        }
    }
    let values = (0..n)
        .map(|i| {
            if mult[i] == 0.0 {
                0.0
            } else {
                negative_binomial(rng, mu[i] * mult[i], shape) + poisson(rng, add[i])
            }
        })
        .collect();
    (SeriesKind::Count, values)
}

pub(super) fn dense_counts(
    rng: &mut ChaCha8Rng,
    t: &[i64],
    starts: &[usize],
    shifted: &mut bool,
) -> (SeriesKind, Vec<f64>) {
    let n = t.len();
    let base = log_uniform(rng, 5.0, 2000.0);
    let shape = log_uniform(rng, 5.0, 300.0);
    let amp = rng.random_range(0.2..1.0);
    let mut drift = Vec::with_capacity(n);
    let mut level = 0.0;
    for _ in 0..n {
        level += normal(rng, 0.0, 0.002);
        drift.push(level);
    }
    let mean_drift = drift.iter().sum::<f64>() / n as f64;
    let cycle = daily(rng, t, amp);
    let mu: Vec<f64> = (0..n)
        .map(|i| base * cycle[i] * (drift[i] - mean_drift).exp())
        .collect();
    let mut mult = vec![1.0; n];
    let mut shapes = vec![shape; n];
    for &s in starts {
        let choices = [
            "spike",
            "dip",
            "shift_down",
            "shift_up",
            "outage",
            "variance",
        ];
        let end = |d: usize| (s + d).min(n);
        match pick(rng, &choices, shifted) {
            "spike" => {
                let (d, f) = (range(rng, 1, 7), rng.random_range(2.0..5.0));
                mult[s..end(d)].iter_mut().for_each(|m| *m *= f);
            }
            "dip" => {
                let (d, f) = (range(rng, 5, 49), rng.random_range(0.1..0.5));
                mult[s..end(d)].iter_mut().for_each(|m| *m *= f);
            }
            "shift_down" => {
                let f = rng.random_range(0.3..0.6);
                mult[s..].iter_mut().for_each(|m| *m *= f);
            }
            "shift_up" => {
                let f = rng.random_range(1.8..3.0);
                mult[s..].iter_mut().for_each(|m| *m *= f);
            }
            "outage" => {
                let d = range(rng, 10, 99);
                mult[s..end(d)].iter_mut().for_each(|m| *m = 0.0);
            }
            _ => {
                let (d, f) = (range(rng, 100, 299), rng.random_range(20.0..60.0));
                shapes[s..end(d)].iter_mut().for_each(|k| *k = shape / f);
            }
        }
    }
    let values = (0..n)
        .map(|i| {
            let rate = gamma(rng, shapes[i]) * mu[i] * mult[i] / shapes[i];
            poisson(rng, rate)
        })
        .collect();
    (SeriesKind::Count, values)
}

pub(super) fn money(
    rng: &mut ChaCha8Rng,
    t: &[i64],
    starts: &[usize],
    shifted: &mut bool,
) -> (SeriesKind, Vec<f64>) {
    let n = t.len();
    let rate = log_uniform(rng, 0.5, 40.0);
    let shape = log_uniform(rng, 2.0, 50.0);
    let amp = rng.random_range(0.0..0.9);
    let price = log_uniform(rng, 5.0, 200.0);
    let pareto = rng.random_bool(0.4);
    let alpha = rng.random_range(1.6..3.0);
    let sigma: f64 = rng.random_range(0.5..1.4);
    let mu: Vec<f64> = daily(rng, t, amp).into_iter().map(|d| rate * d).collect();
    let mut mult = vec![1.0; n];
    let mut price_mult = vec![1.0; n];
    for &s in starts {
        let choices = ["spike", "outage", "shift_down", "shift_up", "price_bug"];
        let end = |d: usize| (s + d).min(n);
        match pick(rng, &choices, shifted) {
            "spike" => {
                let (d, f) = (range(rng, 1, 4), rng.random_range(4.0..10.0));
                mult[s..end(d)].iter_mut().for_each(|m| *m *= f);
            }
            "outage" => {
                let lo = (10.0f64).max(10.0 / rate) as usize;
                let hi = (30.0f64).max(40.0 / rate) as usize;
                let d = range(rng, lo, hi);
                mult[s..end(d)].iter_mut().for_each(|m| *m = 0.0);
            }
            "shift_down" => {
                let f = rng.random_range(0.25..0.5);
                mult[s..].iter_mut().for_each(|m| *m *= f);
            }
            "shift_up" => {
                let f = rng.random_range(2.0..4.0);
                mult[s..].iter_mut().for_each(|m| *m *= f);
            }
            _ => {
                let d = range(rng, 3, 29);
                let f = *[0.01, 0.1, 10.0].choose(rng).unwrap_or(&0.1);
                price_mult[s..end(d)].iter_mut().for_each(|m| *m *= f);
            }
        }
    }
    let lognormal = LogNormal::new(-0.5 * sigma * sigma, sigma).ok();
    let pareto_amounts = Pareto::new(1.0, alpha).ok();
    let values = (0..n)
        .map(|i| {
            let purchases = negative_binomial(rng, mu[i] * mult[i], shape) as usize;
            let total: f64 = (0..purchases)
                .map(|_| match (pareto, &pareto_amounts, &lognormal) {
                    (true, Some(p), _) => price * (alpha - 1.0) / alpha * p.sample(rng),
                    (_, _, Some(l)) => price * l.sample(rng),
                    _ => price,
                })
                .sum();
            ((total * price_mult[i]) * 100.0).round() / 100.0
        })
        .collect();
    (SeriesKind::Measure, values)
}

pub(super) fn sentiment(
    rng: &mut ChaCha8Rng,
    t: &[i64],
    starts: &[usize],
    shifted: &mut bool,
) -> (SeriesKind, Vec<f64>) {
    let n = t.len();
    let mood0 = rng.random_range(-0.2..0.5);
    let item_sd = rng.random_range(0.3..0.6);
    let volume = log_uniform(rng, 5.0, 200.0);
    let amp = rng.random_range(0.0..0.8);
    let mut mood = Vec::with_capacity(n);
    let mut ar = 0.0;
    for i in 0..n {
        if i > 0 {
            ar = 0.995 * ar + normal(rng, 0.0, 0.01);
        }
        mood.push(mood0 + ar);
    }
    let mut sd = vec![item_sd; n];
    for &s in starts {
        let choices = ["crisis", "shift_down", "spike_neg", "variance"];
        let end = |d: usize| (s + d).min(n);
        match pick(rng, &choices, shifted) {
            "crisis" => {
                let (d, f) = (range(rng, 30, 299), rng.random_range(0.25..0.6));
                mood[s..end(d)].iter_mut().for_each(|m| *m -= f);
            }
            "shift_down" => {
                let f = rng.random_range(0.2..0.5);
                mood[s..].iter_mut().for_each(|m| *m -= f);
            }
            "spike_neg" => {
                let d = range(rng, 1, 4);
                mood[s..end(d)].iter_mut().for_each(|m| *m = -0.7);
            }
            _ => {
                let d = range(rng, 100, 299);
                sd[s..end(d)].iter_mut().for_each(|v| *v = 0.95);
            }
        }
    }
    let cycle = daily(rng, t, amp);
    let values = (0..n)
        .map(|i| {
            let items = negative_binomial(rng, volume * cycle[i], 20.0).max(1.0);
            let v = normal(rng, mood[i], sd[i] / items.sqrt());
            (v.clamp(-1.0, 1.0) * 10_000.0).round() / 10_000.0
        })
        .collect();
    (SeriesKind::Measure, values)
}

pub(super) fn seo(
    rng: &mut ChaCha8Rng,
    n: usize,
    starts: &[usize],
    shifted: &mut bool,
) -> (SeriesKind, Vec<f64>) {
    let level = f64::from(rng.random_range(30..96u8));
    let step_p = rng.random_range(0.002..0.01);
    let blip_p = rng.random_range(0.0..0.02);
    let mut lv = level;
    let mut base = Vec::with_capacity(n);
    for _ in 0..n {
        if rng.random::<f64>() < step_p {
            lv += *[-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]
                .choose(rng)
                .unwrap_or(&1.0);
        }
        let blip = if rng.random::<f64>() < blip_p {
            sign(rng)
        } else {
            0.0
        };
        base.push(lv + blip);
    }
    let mut offset = vec![0.0; n];
    for &s in starts {
        let choices = ["drop", "shift_down", "shift_up", "zero"];
        let end = |d: usize| (s + d).min(n);
        match pick(rng, &choices, shifted) {
            "drop" => {
                let (d, f) = (range(rng, 20, 199), rng.random_range(10.0..40.0));
                offset[s..end(d)].iter_mut().for_each(|o| *o -= f);
            }
            "shift_down" => {
                let f = rng.random_range(8.0..30.0);
                offset[s..].iter_mut().for_each(|o| *o -= f);
            }
            "shift_up" => {
                let f = rng.random_range(8.0..20.0);
                offset[s..].iter_mut().for_each(|o| *o += f);
            }
            _ => {
                let d = range(rng, 5, 59);
                offset[s..end(d)].iter_mut().for_each(|o| *o = -1000.0);
            }
        }
    }
    let values = (0..n)
        .map(|i| (base[i] + offset[i]).round().clamp(0.0, 100.0))
        .collect();
    (SeriesKind::Measure, values)
}

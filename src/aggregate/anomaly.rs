//! Anomaly: how far a closed window's value is from its series' baseline.
//!
//! The baseline is an exponentially weighted mean and variance of the
//! series' value across its closed windows (after a warm-up during which all
//! windows weigh the same). The score is the signed distance from the
//! baseline mean in baseline standard deviations, so one threshold serves
//! every series:
//!
//! - **Mostly constant or mostly zero series** would have a variance near
//!   zero and score any wobble as huge. The deviation is floored: by the
//!   Poisson noise of the mean for counts (`sqrt(max(mean, 1))`), by 1 % of
//!   the mean's magnitude for measurements.
//! - **Spikes** do not poison the baseline: a value beyond the threshold
//!   enters the baseline clipped to the threshold, so the window after a
//!   spike is still judged against normal behaviour.
//! - **Level shifts** are absorbed at the rate `alpha`: they score high for a
//!   few windows, then become the new normal.
//! - Scores are never capped, so they do not pile up at a maximum.
//!
//! The state is three numbers per series, serialisable.

use serde::{Deserialize, Serialize};

/// Anomaly settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalySettings {
    /// EWMA weight of the newest window, in (0, 1].
    pub alpha: f64,
    /// Windows a series must have before it is scored.
    pub warm_up: u32,
    /// |score| at or above which a window is an anomaly.
    pub threshold: f64,
}

/// How a series' noise floor is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseFloor {
    /// Counts of events: at least Poisson noise.
    Count,
    /// Measured values: at least 1 % of the mean.
    Measure,
}

/// The score of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The baseline mean the window was compared with.
    pub expected: f64,
    /// Signed distance from it, in baseline standard deviations.
    pub score: f64,
    /// Whether |score| reached the threshold.
    pub anomalous: bool,
}

/// The baseline of one series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    windows: u64,
    mean: f64,
    var: f64,
}

impl Baseline {
    /// Scores `value` (once warmed up) against the baseline, then folds it in.
    pub fn observe(
        &mut self,
        value: f64,
        floor: NoiseFloor,
        settings: &AnomalySettings,
    ) -> Option<Score> {
        let scored = (self.windows >= u64::from(settings.warm_up)).then(|| {
            let scale = self.scale(floor);
            let score = (value - self.mean) / scale;
            (
                Score {
                    expected: self.mean,
                    score,
                    anomalous: score.abs() >= settings.threshold,
                },
                scale,
            )
        });
        let input = match scored {
            Some((s, scale)) if s.anomalous => {
                self.mean + settings.threshold.copysign(s.score) * scale
            }
            _ => value,
        };
        self.windows += 1;
        if self.windows <= u64::from(settings.warm_up.max(1)) {
            // Equal weights while warming up (Welford).
            let n = self.windows as f64;
            let delta = input - self.mean;
            self.mean += delta / n;
            self.var += (delta * (input - self.mean) - self.var) / n;
        } else {
            let diff = input - self.mean;
            let increment = settings.alpha * diff;
            self.mean += increment;
            self.var = (1.0 - settings.alpha) * (self.var + diff * increment);
        }
        scored.map(|(s, _)| s)
    }

    fn scale(&self, floor: NoiseFloor) -> f64 {
        let floor_var = match floor {
            NoiseFloor::Count => self.mean.abs().max(1.0),
            NoiseFloor::Measure => (0.01 * self.mean.abs()).powi(2).max(1e-18),
        };
        self.var.max(floor_var).sqrt()
    }

    /// Windows folded in so far.
    pub fn windows(&self) -> u64 {
        self.windows
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const SETTINGS: AnomalySettings = AnomalySettings {
        alpha: 0.05,
        warm_up: 10,
        threshold: 4.0,
    };

    fn normal(rng: &mut ChaCha8Rng) -> f64 {
        let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    #[test]
    fn seeded_noise_fires_at_most_the_documented_false_positive_rate() {
        // config/default.toml documents: with the default alpha and warm-up,
        // Gaussian noise scores 4 or more in fewer than 1 window in 1,000.
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let (series, windows) = (200, 500);
        let mut fired = 0u32;
        let mut scored = 0u32;
        for s in 0..series {
            let level = 10.0 + f64::from(s) * 50.0;
            let sd = level * 0.1;
            let mut baseline = Baseline::default();
            for _ in 0..windows {
                let value = level + sd * normal(&mut rng);
                if let Some(score) = baseline.observe(value, NoiseFloor::Measure, &SETTINGS) {
                    scored += 1;
                    fired += u32::from(score.anomalous);
                }
            }
        }
        let rate = f64::from(fired) / f64::from(scored);
        assert!(
            rate < 0.001,
            "false-positive rate {rate} ({fired} of {scored})"
        );
    }

    #[test]
    fn an_injected_spike_fires_in_its_window_and_does_not_poison_the_baseline() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut baseline = Baseline::default();
        for _ in 0..50 {
            let _score = baseline.observe(
                100.0 + 5.0 * normal(&mut rng),
                NoiseFloor::Measure,
                &SETTINGS,
            );
        }
        let spike = baseline.observe(200.0, NoiseFloor::Measure, &SETTINGS);
        assert!(
            spike.is_some_and(|s| s.anomalous && s.score > 10.0),
            "{spike:?}"
        );
        let after = baseline.observe(100.0, NoiseFloor::Measure, &SETTINGS);
        assert!(after.is_some_and(|s| !s.anomalous), "{after:?}");
        let dip = baseline.observe(0.0, NoiseFloor::Measure, &SETTINGS);
        assert!(
            dip.is_some_and(|s| s.anomalous && s.score < -10.0),
            "{dip:?}"
        );
    }

    #[test]
    fn constant_and_zero_series_are_not_scored_as_huge() {
        let mut counts = Baseline::default();
        for _ in 0..30 {
            let _score = counts.observe(0.0, NoiseFloor::Count, &SETTINGS);
        }
        // One event on a series that is always zero: 1 Poisson sd.
        let one = counts.observe(1.0, NoiseFloor::Count, &SETTINGS);
        assert_eq!(one.map(|s| (s.score, s.anomalous)), Some((1.0, false)));
        let mut flat = Baseline::default();
        for _ in 0..30 {
            let _score = flat.observe(50.0, NoiseFloor::Measure, &SETTINGS);
        }
        let wobble = flat.observe(50.5, NoiseFloor::Measure, &SETTINGS);
        assert_eq!(wobble.map(|s| s.anomalous), Some(false));
        assert!(wobble.is_some_and(|s| s.score.is_finite()));
    }

    #[test]
    fn a_level_shift_becomes_the_new_normal() {
        let mut baseline = Baseline::default();
        for _ in 0..30 {
            let _score = baseline.observe(100.0, NoiseFloor::Count, &SETTINGS);
        }
        let first = baseline.observe(300.0, NoiseFloor::Count, &SETTINGS);
        assert!(first.is_some_and(|s| s.anomalous));
        let mut quiet_after = None;
        for window in 1..200 {
            let s = baseline.observe(300.0, NoiseFloor::Count, &SETTINGS);
            if s.is_some_and(|s| !s.anomalous) {
                quiet_after = Some(window);
                break;
            }
        }
        assert!(quiet_after.is_some_and(|w| w < 100), "{quiet_after:?}");
    }

    #[test]
    fn not_scored_during_warm_up() {
        let mut baseline = Baseline::default();
        for _ in 0..SETTINGS.warm_up {
            assert_eq!(baseline.observe(1.0, NoiseFloor::Count, &SETTINGS), None);
        }
        assert!(baseline
            .observe(1.0, NoiseFloor::Count, &SETTINGS)
            .is_some());
        assert_eq!(baseline.windows(), u64::from(SETTINGS.warm_up) + 1);
    }
}

//! The detector Reactor shipped before the current one, kept unchanged for
//! comparison on the corpus: an EWMA mean and variance (Welford during the
//! warm-up), the distance from the mean in standard deviations, a deviation
//! floor (Poisson noise for counts, 1 % of the mean for measures), and
//! anomalous values clipped at the threshold before they enter the baseline.

use crate::aggregate::SeriesKind;

/// Its settings as shipped: alpha 0.05, warm-up 10, threshold 4.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreviousSettings {
    /// EWMA weight.
    pub alpha: f64,
    /// Windows before scoring.
    pub warm_up: u32,
    /// |score| that is anomalous, and where values are clipped.
    pub threshold: f64,
}

impl Default for PreviousSettings {
    fn default() -> Self {
        PreviousSettings {
            alpha: 0.05,
            warm_up: 10,
            threshold: 4.0,
        }
    }
}

/// Its state: three numbers per series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PreviousDetector {
    windows: u64,
    mean: f64,
    var: f64,
}

impl PreviousDetector {
    /// Scores `value` (once warmed up), then folds it in.
    pub fn observe(
        &mut self,
        value: f64,
        kind: SeriesKind,
        settings: &PreviousSettings,
    ) -> Option<f64> {
        let scored = (self.windows >= u64::from(settings.warm_up)).then(|| {
            let scale = self.scale(kind);
            ((value - self.mean) / scale, scale)
        });
        let input = match scored {
            Some((score, scale)) if score.abs() >= settings.threshold => {
                self.mean + settings.threshold.copysign(score) * scale
            }
            _ => value,
        };
        self.windows += 1;
        if self.windows <= u64::from(settings.warm_up.max(1)) {
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
        scored.map(|(score, _)| score)
    }

    fn scale(&self, kind: SeriesKind) -> f64 {
        let floor_var = match kind {
            SeriesKind::Count => self.mean.abs().max(1.0),
            SeriesKind::Measure => (0.01 * self.mean.abs()).powi(2).max(1e-18),
        };
        self.var.max(floor_var).sqrt()
    }
}

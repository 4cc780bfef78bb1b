//! Anomaly: how surprising a closed window is, given its own series' history.
//!
//! One threshold serves every series, so the score is a probability on one
//! scale: `score = -log10 p`, where `p` approximates how likely the last
//! ~10 windows of this series are under its own recent history. Score 3
//! means "about one window in a thousand of this series looks like this";
//! the score is unbounded and grows smoothly, so it never piles up at a
//! maximum. Three views are scored and the most surprising wins:
//!
//! 1. **Magnitude** (Numenta's "anomaly likelihood" idea). Each window's
//!    two-sided tail surprise `u = -log10 p_t` comes from a per-series
//!    model: the signed root of the negative-binomial deviance for counts
//!    (rate and over-dispersion learned, so mostly-zero and dense counts
//!    score alike), a robust z for measures (EW mean absolute deviation,
//!    floored by a slow one and by 1 % of the level, compressed with
//!    Student-like tails for heavy-tailed money, and wider above the level
//!    for a right-skewed series, by how few of its windows are above it).
//!    The short-term average of `u` is then judged against its own long-run
//!    distribution in this series (a Gamma matched to its mean and
//!    variance), so a series that is always noisy, or badly modelled, does
//!    not alarm all the time.
//! 2. **Direction**: an EWMA of the clipped signed z, in units of its own
//!    long-run spread: a sustained shift up or down.
//! 3. **Outage**: a run of exact zeros, each costing `-log10` of how likely
//!    a zero is: for measures, how often this series is zero (discounted,
//!    as the short averages); for counts, the model's probability of an
//!    empty window at the current rate, summed over the run, so the view
//!    is `-log10` of the whole run's probability. After an empty window,
//!    the next one is as likely as the series' empty windows have been
//!    followed by another, where that is likelier: a series whose empty
//!    windows come in runs (quiet nights) has runs of them that the slowly
//!    moving rate does not expect, and they are its normal. An empty
//!    window of a count series is scored by this view alone: one empty
//!    window of a series of 5 a window (p 0.007) is not an anomaly at the
//!    threshold of 3, two in a row are, and so are about 8 of a series of
//!    1 a window.
//!
//! The baseline (level and scales) learns at `alpha` with residuals clipped
//! at 4 scales, so a spike does not poison it and a level shift becomes the
//! new normal within tens of windows. After an alarm, no new alarm is raised
//! for `quiet_windows` windows (the score is still reported), unless the
//! incident escalates: a window scoring at least `escalation` times the last
//! alarm's score raises one ([`raises_alarm`]). An incident that starts
//! late in a window alarms on weak evidence; the escalation carries its
//! full strength. When the quiet period ends the short-term averages start
//! afresh, so what was suppressed in it raises no late event.
//!
//! The state is 17 numbers per series (136 bytes), serialisable; each
//! closed window costs O(1). Designed on a labelled corpus of
//! marketing-shaped series ([`crate::anomaly_eval`]), measured on it and on
//! NAB's real labelled series (BENCHMARKS.md).

mod math;

use serde::{Deserialize, Serialize};

use math::{log10_gamma_sf, log10_sf, nb_deviance_z};

/// Anomaly settings (`[anomaly]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalySettings {
    /// Weight of the newest window in the baseline, in (0, 1].
    pub alpha: f64,
    /// Windows a series must have before it is scored.
    pub warm_up: u32,
    /// Score (`-log10 p`) at or above which a window is an anomaly.
    pub threshold: f64,
    /// Windows after an anomaly during which no new one is raised, unless
    /// it escalates.
    pub quiet_windows: u32,
    /// Within the quiet period, a window whose |score| is at least this
    /// multiple of the last anomaly's raises another; 0: never.
    pub escalation: f64,
}

impl Default for AnomalySettings {
    fn default() -> Self {
        AnomalySettings {
            alpha: 0.02,
            warm_up: 10,
            threshold: 3.0,
            quiet_windows: 50,
            escalation: 4.0,
        }
    }
}

/// The last alarm of a series, as [`raises_alarm`] needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastAlarm {
    /// Windows scored since it (1: the window before this one).
    pub windows_ago: u64,
    /// Its |score|; 0 if unknown (never escalated).
    pub score: f64,
}

/// Whether a window whose |score| is `score` is an anomaly, given the last
/// alarm of its series: it reaches the threshold, and either no alarm is
/// within the quiet period or it escalates the one that is (its |score| is
/// at least `escalation` times that alarm's). An escalation must also be
/// as extreme on its own (`own`: `-log10` of its own two-sided p) as the
/// threshold, not only through its recent windows, which the score
/// averages: an ordinary window right after an incident scores high, and
/// is not a new event of it. (A first alarm needs no such gate: a
/// sustained moderate drop is surprising only as a run of windows.) The
/// detector and the corpus scorer ([`crate::anomaly_eval`]) both decide
/// with this.
pub fn raises_alarm(
    settings: &AnomalySettings,
    score: f64,
    own: f64,
    last: Option<LastAlarm>,
) -> bool {
    if score < settings.threshold {
        return false;
    }
    match last {
        Some(last) if last.windows_ago <= u64::from(settings.quiet_windows) => {
            settings.escalation > 0.0
                && last.score > 0.0
                && score >= settings.escalation * last.score
                && own >= settings.threshold
        }
        _ => true,
    }
}

/// What kind of value a series tracks, which decides how its surprise is
/// modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesKind {
    /// Counts of events: negative-binomial.
    Count,
    /// Measured values (money, durations, scores): robust z.
    Measure,
}

/// The score of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The baseline level the window was compared with.
    pub expected: f64,
    /// `-log10 p`, signed by the direction of the recent deviation
    /// (negative: below the baseline).
    pub score: f64,
    /// How unusual the window is on its own, `-log10` of its two-sided p
    /// (for an empty window of a count series, its run's; see
    /// [`raises_alarm`]).
    pub own: f64,
    /// Whether |score| reached the threshold outside a quiet period, or
    /// escalated the alarm within one.
    pub anomalous: bool,
    /// Whether this alarm escalates an earlier one of the same incident
    /// (raised within that alarm's quiet period).
    pub escalation: bool,
}

// The detector's constants (BENCHMARKS.md, "Anomaly detector", has what each
// is worth on the corpus).
/// Residuals fed to the baseline are clipped at this many scales, and z at
/// this many in the direction chart.
const CLIP: f64 = 4.0;
/// Mean absolute deviation to standard deviation (Gaussian), sqrt(pi/2).
const C_MAD: f64 = 1.2533;
/// Weight of the slow scale floor, relative to `alpha`.
const SLOW_SHARE: f64 = 0.1;
/// Measures: the scale is at least this share of the level.
const REL_FLOOR: f64 = 0.01;
/// Measures: z is compressed as sqrt(NU ln(1 + z^2 / NU)) (heavy tails).
const NU: f64 = 10.0;
/// Counts: the expected count is at least this; measures: so is the zero
/// frequency.
const RATE_FLOOR: f64 = 0.01;
/// Measures: the share of windows above the baseline is taken as at least
/// this when it stretches the scale above it (so by at most 1 / 0.3).
const UP_SHARE_FLOOR: f64 = 0.15;
/// Weight of the zero frequency (measures) and of how often an empty window
/// follows another (counts).
const ZERO_WEIGHT: f64 = 0.01;
/// A window's surprise enters the short average as U_SOFT ln(1 + u/U_SOFT),
/// so one astronomically unlikely window cannot pin the score for long.
const U_SOFT: f64 = 50.0;
/// Weight of the short-term averages (about ten windows).
const SHORT: f64 = 0.1;
/// Weight of their long-run statistics (about a thousand windows).
const LONG: f64 = 0.001;
/// Short averages enter the long-run statistics clipped at this many sds.
const CAP: f64 = 4.0;
/// Long-run statistics never fall below this share of their priors.
const FLOOR_SHARE: f64 = 0.5;
/// Prior long-run mean of the short average of u: E[-log10 p] = 1/ln 10.
const UM0: f64 = 1.0 / std::f64::consts::LN_10;
/// Prior long-run variance of it: UM0^2 SHORT / (2 - SHORT).
const UV0: f64 = UM0 * UM0 * SHORT / (2.0 - SHORT);
/// Prior long-run variance of the short average of a standard normal z.
const ZV0: f64 = SHORT / (2.0 - SHORT);
/// `log10 2`: two-sided tails.
const LOG10_2: f64 = std::f64::consts::LOG10_2;

/// The anomaly state of one series. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detector {
    /// Windows folded in.
    n: u64,
    /// Baseline: exponentially weighted mean.
    level: f64,
    /// EW mean absolute clipped residual.
    mad: f64,
    /// EW mean squared clipped residual (counts: over-dispersion).
    msq: f64,
    /// Slow EW mean absolute clipped residual: a scale floor.
    slow_mad: f64,
    /// Short-term average of the per-window surprise.
    ubar: f64,
    /// Long-run mean and variance of `ubar`.
    um: f64,
    uv: f64,
    /// Short-term average of the clipped signed z.
    zbar: f64,
    /// Long-run mean of `zbar` squared.
    zv: f64,
    /// EW frequency of exact zeros (measures).
    p0: f64,
    /// Surprise of the current run of zeros: discounted (measures), or
    /// summed (counts).
    zrun: f64,
    /// `n` at the last alarm; 0: none.
    last_alarm: u64,
    /// |score| of the last alarm; 0: none, or saved before it was kept
    /// (such an alarm is never escalated).
    #[serde(default)]
    last_alarm_score: f64,
    /// Measures: slow EW share of windows above the baseline (0.5:
    /// symmetric; a state saved before it was kept reads as that).
    #[serde(default = "symmetric")]
    up_share: f64,
    /// Counts: EW share of the windows after an empty one that are empty
    /// too, learnt from the runs of empty windows that have ended (0: none
    /// seen, or saved before it was kept).
    #[serde(default)]
    zero_after_zero: f64,
    /// Counts: empty windows in a row up to the last one folded in.
    #[serde(default)]
    empty_run: u64,
}

fn symmetric() -> f64 {
    0.5
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            n: 0,
            level: 0.0,
            mad: 0.0,
            msq: 0.0,
            slow_mad: 0.0,
            ubar: UM0,
            um: UM0,
            uv: UV0,
            zbar: 0.0,
            zv: ZV0,
            p0: 0.0,
            zrun: 0.0,
            last_alarm: 0,
            last_alarm_score: 0.0,
            up_share: 0.5,
            zero_after_zero: 0.0,
            empty_run: 0,
        }
    }
}

/// What scoring a window computed, to fold in afterwards.
struct Scored {
    score: f64,
    direction: f64,
    ubar: f64,
    zbar: f64,
    zrun: f64,
    /// The outage view alone (0 unless the value is zero).
    outage: f64,
    /// How surprising this window is on its own (`-log10 p`, two-sided).
    own: f64,
}

impl Detector {
    /// Scores `value` (once warmed up) against the series' history, then
    /// folds it in. `None` during the warm-up.
    pub fn observe(
        &mut self,
        value: f64,
        kind: SeriesKind,
        settings: &AnomalySettings,
    ) -> Option<Score> {
        self.observe_in(value, kind, settings, None)
    }

    /// [`Self::observe`], with the quiet period after the last alarm
    /// counted from `since_alarm`: the windows since it by window position,
    /// for a series without a value in every window (`None`: the windows
    /// folded in, the same for a series with a value in each).
    pub fn observe_in(
        &mut self,
        value: f64,
        kind: SeriesKind,
        settings: &AnomalySettings,
        since_alarm: Option<u64>,
    ) -> Option<Score> {
        let expected = self.level;
        // This window's distance from the last alarm (1: the window before
        // this one), for the quiet period here and `last` below.
        let since = since_alarm.unwrap_or((self.n + 1).saturating_sub(self.last_alarm));
        if self.last_alarm > 0 && since > u64::from(settings.quiet_windows) {
            self.end_quiet_period();
        }
        let scored = (self.n >= u64::from(settings.warm_up)).then(|| self.score(value, kind));
        self.fold(value, kind, settings, scored.as_ref());
        let scored = scored?;
        let last = (self.last_alarm > 0).then_some(LastAlarm {
            windows_ago: since,
            score: self.last_alarm_score,
        });
        // An empty window of a count series is judged by the run of empty
        // windows it ends, not by how one empty window looks to the other
        // views (module docs): that is its score.
        let score = if kind == SeriesKind::Count && value == 0.0 {
            scored.outage
        } else {
            scored.score
        };
        let within_quiet =
            last.is_some_and(|last| last.windows_ago <= u64::from(settings.quiet_windows));
        let own = scored.own.max(scored.outage);
        let anomalous = raises_alarm(settings, score, own, last);
        let escalation = anomalous && within_quiet;
        if anomalous {
            self.last_alarm = self.n;
            self.last_alarm_score = score;
        }
        Some(Score {
            expected,
            score: score.copysign(scored.direction),
            own,
            anomalous,
            escalation,
        })
    }

    /// After a quiet period the series starts afresh: its short-term
    /// averages drop what the quiet period's windows added (the average
    /// surprise to at most its long-run mean, the direction to none), so
    /// an incident suppressed in it (a second spike) cannot raise a late
    /// event through the ordinary windows after it. A run of zeros goes on
    /// counting: a series still silent is still an outage.
    fn end_quiet_period(&mut self) {
        self.ubar = self.ubar.min(self.um);
        self.zbar = 0.0;
        self.last_alarm = 0;
        self.last_alarm_score = 0.0;
    }

    /// Whether `windows` more empty windows of this count series could
    /// raise an alarm: an upper bound on the outage view after them (the
    /// rate only falls while the series is empty, and a zero is least
    /// likely under Poisson), so a silent series that cannot alarm yet is
    /// not folded through to find out.
    pub fn empty_run_may_alarm(&self, windows: u64, settings: &AnomalySettings) -> bool {
        let most_per_window = self.level.max(RATE_FLOOR) * std::f64::consts::LOG10_E;
        let run = self.zrun + windows as f64 * most_per_window;
        run - LOG10_2 >= settings.threshold
    }

    /// `-log10` of the probability of a zero in the next window: for a
    /// count, by the negative-binomial (Poisson when not over-dispersed) at
    /// the current rate, or, for a window after an empty one, by how often
    /// this series' empty windows have been followed by another if that is
    /// more often (a series quiet every night has runs of them that the
    /// slowly moving rate does not expect); for a measure, by how often the
    /// series is zero.
    fn zero_surprise(&self, kind: SeriesKind) -> f64 {
        match kind {
            SeriesKind::Count => {
                let mu = self.level.max(RATE_FLOOR);
                let size = self.nb_size(mu);
                let model = if size.is_infinite() {
                    mu * std::f64::consts::LOG10_E
                } else {
                    size * (mu / size).ln_1p() * std::f64::consts::LOG10_E
                };
                if self.empty_run > 0 && self.zero_after_zero > 0.0 {
                    model.min(-self.zero_after_zero.log10())
                } else {
                    model
                }
            }
            SeriesKind::Measure => -self.p0.max(RATE_FLOOR).log10(),
        }
    }

    /// The negative-binomial size (over-dispersion) at mean `mu`; infinite
    /// when the series is not over-dispersed (Poisson).
    fn nb_size(&self, mu: f64) -> f64 {
        let over = self.msq - mu;
        if over > 1e-9 * mu {
            mu * mu / over
        } else {
            f64::INFINITY
        }
    }

    fn score(&self, value: f64, kind: SeriesKind) -> Scored {
        let mu = self.level;
        let (z, z_abs) = match kind {
            SeriesKind::Count => {
                let mu = mu.max(RATE_FLOOR);
                let z = nb_deviance_z(value, mu, self.nb_size(mu));
                (z, z.abs())
            }
            SeriesKind::Measure => {
                let z = (value - mu) / self.measure_scale(mu, value - mu).max(1e-12);
                (z, (NU * (z * z / NU).ln_1p()).sqrt())
            }
        };
        let own = (log10_sf(z_abs) - LOG10_2).max(0.0);
        let u = U_SOFT * (own / U_SOFT).ln_1p();
        let ubar = (1.0 - SHORT) * self.ubar + SHORT * u;
        let magnitude = log10_gamma_sf(ubar, self.um, self.uv);
        let zbar = (1.0 - SHORT) * self.zbar + SHORT * z.clamp(-CLIP, CLIP);
        let chart = (log10_sf(zbar.abs() / self.zv.sqrt()) - LOG10_2).max(0.0);
        let mut score = magnitude.max(chart);
        let (mut zrun, mut outage) = (0.0, 0.0);
        if value == 0.0 {
            let carried = match kind {
                SeriesKind::Count => self.zrun,
                SeriesKind::Measure => (1.0 - SHORT) * self.zrun,
            };
            zrun = carried + self.zero_surprise(kind);
            outage = (zrun - LOG10_2).max(0.0);
            score = score.max(outage);
        }
        // The sign says where the window is against its baseline (negative:
        // below), as a person reading it takes it: a spike right after a dip
        // scores up, an empty window down. Only a window right on the
        // baseline takes the direction of the recent deviation.
        let direction = if value != mu { value - mu } else { zbar };
        Scored {
            score,
            direction,
            ubar,
            zbar,
            zrun,
            outage,
            own,
        }
    }

    /// The scale of a measure's deviation `residual` from its level `mu`.
    /// At the baseline's fixed point its clipped residuals sum to zero, so
    /// the deviations above it add up to those below: with a share
    /// `up_share` of windows above, a deviation up is typically
    /// `mad / (2 up_share)`. A right-skewed series (revenue: many small
    /// windows, a few with big orders) has fewer windows above, and its big
    /// windows are measured on that wider scale; deviations down keep the
    /// plain one, so a drop is as sensitive as before.
    fn measure_scale(&self, mu: f64, residual: f64) -> f64 {
        let stretch = if residual > 0.0 {
            (0.5 / self.up_share.max(UP_SHARE_FLOOR)).max(1.0)
        } else {
            1.0
        };
        (C_MAD * stretch * self.mad)
            .max(C_MAD * stretch * self.slow_mad)
            .max(REL_FLOOR * mu.abs())
    }

    fn fold(
        &mut self,
        value: f64,
        kind: SeriesKind,
        settings: &AnomalySettings,
        scored: Option<&Scored>,
    ) {
        let warm_up = u64::from(settings.warm_up.max(1));
        let mu = self.level;
        self.n += 1;
        let residual = value - mu;
        let (weight, scale_weight, slow_weight, clipped) = if self.n <= warm_up {
            // Equal weights while warming up; the first window has no
            // baseline to deviate from, so the scales start at the second.
            let n = self.n as f64;
            let scale = if self.n > 1 { 1.0 / (n - 1.0) } else { 0.0 };
            (1.0 / n, scale, scale, residual)
        } else {
            let limit = CLIP
                * match kind {
                    SeriesKind::Count => self.msq.max(mu).max(RATE_FLOOR).sqrt(),
                    SeriesKind::Measure => self.measure_scale(mu, residual),
                };
            let clipped = if limit > 0.0 {
                residual.clamp(-limit, limit)
            } else {
                residual
            };
            let alpha = settings.alpha;
            (alpha, alpha, SLOW_SHARE * alpha, clipped)
        };
        self.level += weight * clipped;
        if kind == SeriesKind::Count {
            self.level = self.level.max(0.0);
        }
        self.mad += scale_weight * (clipped.abs() - self.mad);
        self.msq += scale_weight * (clipped * clipped - self.msq);
        self.slow_mad += slow_weight * (clipped.abs() - self.slow_mad);
        if let Some(scored) = scored {
            self.ubar = scored.ubar;
            let d = scored.ubar.min(self.um + CAP * self.uv.sqrt()) - self.um;
            self.um = (self.um + LONG * d).max(FLOOR_SHARE * UM0);
            self.uv = ((1.0 - LONG) * (self.uv + LONG * d * d)).max(FLOOR_SHARE * UV0);
            self.zbar = scored.zbar;
            let limit = CAP * self.zv.sqrt();
            let zb = scored.zbar.clamp(-limit, limit);
            self.zv = (self.zv + LONG * (zb * zb - self.zv)).max(FLOOR_SHARE * ZV0);
            self.zrun = scored.zrun;
        } else if value != 0.0 {
            self.zrun = 0.0;
        }
        if kind == SeriesKind::Count {
            if value == 0.0 {
                self.empty_run = self.empty_run.saturating_add(1);
            } else if self.empty_run > 0 {
                // The run that ended teaches the series how its empty windows
                // follow one another: run - 1 followed by another, the last by
                // none. The run going on does not, so an outage being
                // reported does not make itself normal.
                let stayed = (1.0 - ZERO_WEIGHT).powf((self.empty_run - 1) as f64);
                self.zero_after_zero =
                    (1.0 - (1.0 - self.zero_after_zero) * stayed) * (1.0 - ZERO_WEIGHT);
                self.empty_run = 0;
            }
        }
        if kind == SeriesKind::Measure {
            let weight = if self.n <= warm_up {
                1.0 / self.n as f64
            } else {
                ZERO_WEIGHT
            };
            let zero = if value == 0.0 { 1.0 } else { 0.0 };
            self.p0 += weight * (zero - self.p0);
            let up = match residual.partial_cmp(&0.0) {
                Some(std::cmp::Ordering::Greater) => 1.0,
                Some(std::cmp::Ordering::Less) => 0.0,
                _ => 0.5,
            };
            self.up_share += slow_weight * (up - self.up_share);
        }
    }

    /// Windows folded in so far.
    pub fn windows(&self) -> u64 {
        self.n
    }
}

#[cfg(test)]
mod tests;

//! The Numenta Anomaly Benchmark's scoring (standard profile), as NAB's
//! `sweeper.py` computes it: a detection inside a labelled window is worth
//! up to 1, more the earlier it comes (a scaled sigmoid of its position);
//! each window without one costs 1; each detection outside the windows
//! costs up to 0.11 (less just after a window); the probationary first
//! 15 % is not scored. A corpus scores `100 (raw - null) / (perfect - null)`:
//! 0 never alarms, 100 is perfect. One threshold serves every series.

use super::corpus::{probation, Series};
use crate::aggregate::{raises_alarm, AnomalySettings, LastAlarm};

const TRUE_POSITIVE: f64 = 1.0;
const FALSE_POSITIVE: f64 = 0.11;
const FALSE_NEGATIVE: f64 = 1.0;

fn scaled_sigmoid(x: f64) -> f64 {
    if x >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// One series' per-window worth of a detection, and which labelled window
/// each window falls in.
#[derive(Debug, Clone)]
pub struct Prepared {
    sweep: Vec<f64>,
    window_of: Vec<Option<usize>>,
    scorable_from: usize,
    windows: usize,
}

impl Prepared {
    /// Precomputes the weights of `series`.
    pub fn new(series: &Series) -> Self {
        let n = series.values.len();
        let max_tp = scaled_sigmoid(-1.0);
        let mut sweep = vec![0.0; n];
        let mut window_of = vec![None; n];
        let mut previous: Option<(usize, usize)> = None; // right edge, width
        let mut next = series.windows.iter().enumerate().peekable();
        let mut i = 0;
        while i < n {
            if let Some(&(w, &(lo, hi))) = next.peek().filter(|(_, &(lo, _))| lo == i) {
                let width = hi - lo + 1;
                for j in lo..=hi.min(n - 1) {
                    let position = -((hi - j + 1) as f64) / width as f64;
                    sweep[j] = scaled_sigmoid(position) * TRUE_POSITIVE / max_tp;
                    window_of[j] = Some(w);
                }
                previous = Some((hi, width));
                let _consumed = next.next();
                i = hi + 1;
                continue;
            }
            let position = match previous {
                Some((right, width)) if width > 1 => (i - right) as f64 / (width - 1) as f64,
                _ => 3.0,
            };
            sweep[i] = scaled_sigmoid(position) * FALSE_POSITIVE;
            i += 1;
        }
        let scorable_from = probation(n);
        let windows = (scorable_from..n)
            .filter_map(|j| window_of[j])
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        Prepared {
            sweep,
            window_of,
            scorable_from,
            windows,
        }
    }
}

/// A corpus score and what it is made of.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CorpusScore {
    /// 0 (never alarm) to 100 (perfect).
    pub score: f64,
    /// Labelled windows detected.
    pub detected: usize,
    /// Labelled windows.
    pub windows: usize,
    /// Detections outside every window.
    pub false_alarms: usize,
}

impl CorpusScore {
    /// Detected windows over all windows.
    pub fn recall(&self) -> f64 {
        self.detected as f64 / self.windows.max(1) as f64
    }

    /// Detected windows over all detections that count.
    pub fn precision(&self) -> f64 {
        self.detected as f64 / (self.detected + self.false_alarms).max(1) as f64
    }
}

/// When scores raise alarms: a threshold, a quiet period after each alarm,
/// and the escalation that may break it, applied as the detector applies
/// them ([`raises_alarm`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// |score| at or above which a window may alarm.
    pub threshold: f64,
    /// Windows after an alarm during which only an escalation alarms.
    pub quiet: usize,
    /// Multiple of the last alarm's |score| that escalates; 0: never.
    pub escalation: f64,
}

impl Rule {
    /// The rule `settings` give the detector.
    pub fn of(settings: &AnomalySettings) -> Self {
        Rule {
            threshold: settings.threshold,
            quiet: settings.quiet_windows as usize,
            escalation: settings.escalation,
        }
    }

    /// An alarm at every window reaching `threshold`: no quiet period, no
    /// escalation (how the previous detector shipped).
    pub fn every(threshold: f64) -> Self {
        Rule {
            threshold,
            quiet: 0,
            escalation: 0.0,
        }
    }

    fn settings(self) -> AnomalySettings {
        AnomalySettings {
            threshold: self.threshold,
            quiet_windows: u32::try_from(self.quiet).unwrap_or(u32::MAX),
            escalation: self.escalation,
            ..AnomalySettings::default()
        }
    }
}

/// The alarms of one series under `rule`: window indices. `scores`: per
/// window, its score and how unusual it is on its own (`None` while
/// warming up).
pub fn alarms(scores: &[Option<(f64, f64)>], rule: Rule) -> Vec<usize> {
    let settings = rule.settings();
    let mut kept: Vec<(usize, f64)> = Vec::new();
    for (i, window) in scores.iter().enumerate() {
        let Some((score, own)) = *window else {
            continue;
        };
        let score = score.abs();
        let last = kept.last().map(|&(at, score)| LastAlarm {
            windows_ago: (i - at) as u64,
            score,
        });
        if raises_alarm(&settings, score, own, last) {
            kept.push((i, score));
        }
    }
    kept.into_iter().map(|(i, _)| i).collect()
}

/// Scores `alarms` (per series, window indices) over a prepared corpus.
pub fn score(prepared: &[Prepared], alarms: &[Vec<usize>]) -> CorpusScore {
    let (mut raw, mut detected, mut windows, mut false_alarms) = (0.0, 0, 0, 0);
    for (p, alarms) in prepared.iter().zip(alarms) {
        let mut first_in: Vec<Option<f64>> = Vec::new();
        for &i in alarms.iter().filter(|&&i| i >= p.scorable_from) {
            match p.window_of[i] {
                Some(w) => {
                    if first_in.len() <= w {
                        first_in.resize(w + 1, None);
                    }
                    // The earliest detection in a window is worth the most.
                    first_in[w].get_or_insert(p.sweep[i]);
                }
                None => {
                    raw += p.sweep[i];
                    false_alarms += 1;
                }
            }
        }
        let hits: Vec<f64> = first_in.into_iter().flatten().collect();
        raw += hits.iter().sum::<f64>() - FALSE_NEGATIVE * (p.windows - hits.len()) as f64;
        detected += hits.len();
        windows += p.windows;
    }
    let null = -FALSE_NEGATIVE * windows as f64;
    let perfect = TRUE_POSITIVE * windows as f64;
    CorpusScore {
        score: if windows > 0 {
            100.0 * (raw - null) / (perfect - null)
        } else {
            f64::NAN
        },
        detected,
        windows,
        false_alarms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::SeriesKind;
    use crate::anomaly_eval::corpus::Family;

    fn one_window() -> Prepared {
        Prepared::new(&Series {
            name: "t".into(),
            family: Family::DenseCount,
            kind: SeriesKind::Count,
            values: vec![0.0; 1000],
            windows: vec![(500, 599)],
        })
    }

    #[test]
    fn scores_as_nab_does() {
        let p = [one_window()];
        let at = |i: usize| score(&p, &[vec![i]]);
        // First point of the window: a full hit.
        assert!((at(500).score - 100.0).abs() < 1e-9);
        // Nothing: the null score.
        assert_eq!(score(&p, &[vec![]]).score, 0.0);
        // Before the window (after probation): costs 0.11 of the window.
        assert!((at(300).score - 100.0 * (-1.11 + 1.0) / 2.0).abs() < 1e-9);
        // In the probation: free.
        assert_eq!(at(100).score, 0.0);
        // Later in the window is worth less; only the first detection counts.
        assert!(at(550).score < at(500).score);
        assert_eq!(score(&p, &[vec![500, 550]]).score, at(500).score);
        let rule = |quiet, escalation| Rule {
            threshold: 3.0,
            quiet,
            escalation,
        };
        let scores = [
            Some((5.0, 5.0)),
            Some((-5.0, 5.0)),
            None,
            Some((5.0, 5.0)),
            Some((-12.0, 12.0)),
            Some((20.0, 20.0)),
        ];
        assert_eq!(alarms(&scores, rule(1, 0.0)), vec![0, 3, 5]);
        // Escalations: 12 is over twice the 5 of window 3; 20 is not twice 12.
        assert_eq!(alarms(&scores, rule(10, 2.0)), vec![0, 4]);
        assert_eq!(alarms(&scores, rule(10, 0.0)), vec![0]);
    }
}

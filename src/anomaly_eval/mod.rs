//! Measuring the anomaly detector: over a user's own series
//! ([`backtest`], `reactor anomaly backtest`), and on labelled data: a seeded corpus of
//! marketing-shaped series with labelled anomalies ([`corpus`]), the
//! Numenta Anomaly Benchmark's scoring ([`scorer`]), and the detector
//! Reactor shipped before ([`mod@previous`]) to compare against.
//!
//! The protocol: a detector's threshold and quiet period are chosen on the
//! tuning seeds, then applied unchanged to held-out seeds; false-alarm rates
//! are measured on pure noise. `cargo run --release --example
//! anomaly_corpus` prints the table in BENCHMARKS.md; a test checks that
//! the current detector beats the previous one on held-out seeds.

pub mod backtest;
pub mod corpus;
pub mod previous;
pub mod scorer;

use std::ops::Range;

use corpus::Series;
use previous::{PreviousDetector, PreviousSettings};
use scorer::{alarms, score, CorpusScore, Prepared, Rule};

use crate::aggregate::{AnomalySettings, Detector};

/// Seeds the thresholds are chosen on.
pub const TUNING: Range<u64> = 1_000..1_500;
/// Seeds the chosen thresholds are checked on.
pub const HELD_OUT: Range<u64> = 50_000..50_500;
/// A second held-out set.
pub const HELD_OUT_B: Range<u64> = 90_000..90_500;

/// Thresholds tried when tuning: 0.5 to 20 in steps of 0.25.
pub fn threshold_grid() -> Vec<f64> {
    (2..=80).map(|i| f64::from(i) * 0.25).collect()
}

/// Quiet periods tried when tuning.
pub const QUIET_GRID: [usize; 4] = [0, 20, 50, 100];

/// A set of series with their scoring weights.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The series.
    pub series: Vec<Series>,
    /// Their weights.
    pub prepared: Vec<Prepared>,
}

impl Labelled {
    /// The series of `seeds`.
    pub fn of(seeds: Range<u64>) -> Self {
        let series = corpus::corpus(seeds);
        let prepared = series.iter().map(Prepared::new).collect();
        Labelled { series, prepared }
    }
}

/// Per-window scores and how unusual each window is on its own (`None`
/// while warming up), for every series.
pub type Scores = Vec<Vec<Option<(f64, f64)>>>;

/// The current detector's scores, with `settings` (the threshold and quiet
/// period are applied by the scorer, so they do not matter here).
pub fn current(series: &[Series], settings: &AnomalySettings) -> Scores {
    series
        .iter()
        .map(|s| {
            let mut detector = Detector::default();
            s.values
                .iter()
                .map(|&v| {
                    detector
                        .observe(v, s.kind, settings)
                        .map(|s| (s.score, s.own))
                })
                .collect()
        })
        .collect()
}

/// The previous detector's scores with `settings` (its threshold also clips
/// what enters its baseline, so it matters here).
pub fn previous(series: &[Series], settings: &PreviousSettings) -> Scores {
    series
        .iter()
        .map(|s| {
            let mut detector = PreviousDetector::default();
            s.values
                .iter()
                // It has no such gate: every window counts as unusual.
                .map(|&v| {
                    detector
                        .observe(v, s.kind, settings)
                        .map(|s| (s, f64::INFINITY))
                })
                .collect()
        })
        .collect()
}

/// The corpus score of `scores` under `rule`.
pub fn evaluate(set: &Labelled, scores: &Scores, rule: Rule) -> CorpusScore {
    let alarms: Vec<Vec<usize>> = scores.iter().map(|s| alarms(s, rule)).collect();
    score(&set.prepared, &alarms)
}

/// The threshold and quiet period that score best on `set`, with
/// `escalation`.
pub fn tune(
    set: &Labelled,
    scores: &Scores,
    thresholds: &[f64],
    escalation: f64,
) -> (Rule, CorpusScore) {
    let mut best: Option<(Rule, CorpusScore)> = None;
    for &threshold in thresholds {
        for quiet in QUIET_GRID {
            let rule = Rule {
                threshold,
                quiet,
                escalation,
            };
            let result = evaluate(set, scores, rule);
            if best.as_ref().is_none_or(|(_, b)| result.score > b.score) {
                best = Some((rule, result));
            }
        }
    }
    best.unwrap_or((
        Rule {
            threshold: 0.0,
            quiet: 0,
            escalation,
        },
        CorpusScore::default(),
    ))
}

/// The share of scored windows of `scores` (pure noise) that alarm under
/// `rule`.
pub fn false_alarm_rate(scores: &Scores, rule: Rule) -> f64 {
    let scored: usize = scores.iter().map(|s| s.iter().flatten().count()).sum();
    let raised: usize = scores.iter().map(|s| alarms(s, rule).len()).sum();
    raised as f64 / scored.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The acceptance test: on held-out seeds, the current detector
    /// at its defaults beats the previous one by a clear margin, both as the
    /// previous one shipped and with its threshold and quiet period tuned.
    #[test]
    fn the_current_detector_beats_the_previous_one_on_held_out_seeds() {
        let (tuning, held_out) = (Labelled::of(1_000..1_150), Labelled::of(50_000..50_150));
        let defaults = AnomalySettings::default();
        let current = evaluate(
            &held_out,
            &super::current(&held_out.series, &defaults),
            Rule::of(&defaults),
        );
        let shipped = PreviousSettings::default();
        let as_shipped = evaluate(
            &held_out,
            &previous(&held_out.series, &shipped),
            Rule::every(shipped.threshold),
        );
        let mut tuned_previous = CorpusScore::default();
        for threshold in [3.0, 4.0, 5.0, 6.0, 8.0] {
            let settings = PreviousSettings {
                threshold,
                ..shipped
            };
            let (rule, _) = tune(
                &tuning,
                &previous(&tuning.series, &settings),
                &[threshold],
                0.0,
            );
            let result = evaluate(&held_out, &previous(&held_out.series, &settings), rule);
            if result.score > tuned_previous.score {
                tuned_previous = result;
            }
        }
        assert!(
            current.score >= as_shipped.score + 20.0 && current.score >= tuned_previous.score + 10.0,
            "held-out: current {current:?}; previous as shipped {as_shipped:?}; previous tuned {tuned_previous:?}"
        );
    }
}

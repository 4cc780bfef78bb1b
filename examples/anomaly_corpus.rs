//! Prints the anomaly detector's scores on the labelled corpus, next to
//! the previous detector's: `cargo run --release --example anomaly_corpus`.
//! The figures in BENCHMARKS.md ("Anomaly detector") come from here.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use reactor::aggregate::{AnomalySettings, Detector, SeriesKind};
use reactor::anomaly_eval::corpus::{self, Family};
use reactor::anomaly_eval::previous::PreviousSettings;
use reactor::anomaly_eval::scorer::{CorpusScore, Rule};
use reactor::anomaly_eval::{
    current, evaluate, false_alarm_rate, previous, threshold_grid, tune, Labelled, Scores,
    HELD_OUT, HELD_OUT_B, TUNING,
};

struct Sets {
    tuning: Labelled,
    held_out: Labelled,
    held_out_b: Labelled,
    gauss: Vec<corpus::Series>,
    poisson: Vec<corpus::Series>,
    revenue: Vec<corpus::Series>,
}

fn row(label: &str, sets: &Sets, scores: [Scores; 6], rule: Rule) {
    let [tuning, held_out, held_out_b, gauss, poisson, revenue] = scores;
    let t = evaluate(&sets.tuning, &tuning, rule);
    let a = evaluate(&sets.held_out, &held_out, rule);
    let b = evaluate(&sets.held_out_b, &held_out_b, rule);
    let Rule {
        threshold,
        quiet,
        escalation,
    } = rule;
    println!(
        "| {label} | {threshold} | {quiet} | {escalation} | {:.1} | {:.1} | {:.1} | {:.2} / {:.2} | {:.1e} | {:.1e} | {:.1e} |",
        t.score,
        a.score,
        b.score,
        b.precision(),
        b.recall(),
        false_alarm_rate(&gauss, rule),
        false_alarm_rate(&poisson, rule),
        false_alarm_rate(&revenue, rule),
    );
}

fn main() {
    let sets = Sets {
        tuning: Labelled::of(TUNING),
        held_out: Labelled::of(HELD_OUT),
        held_out_b: Labelled::of(HELD_OUT_B),
        gauss: corpus::noise(SeriesKind::Measure, 40, 5_000, 7),
        poisson: corpus::noise(SeriesKind::Count, 40, 5_000, 8),
        revenue: corpus::revenue_noise(40, 5_000, 9),
    };
    let windows: usize = sets.tuning.series.iter().map(|s| s.values.len()).sum();
    println!(
        "corpus: {} tuning, {} + {} held-out series; {} tuning windows, {} labelled anomaly windows\n",
        sets.tuning.series.len(),
        sets.held_out.series.len(),
        sets.held_out_b.series.len(),
        windows,
        sets.tuning.series.iter().map(|s| s.windows.len()).sum::<usize>(),
    );
    println!("| detector | threshold | quiet | escalation | tuning | held-out A | held-out B | B precision / recall | false alarms per window, Gaussian noise | Poisson noise | lognormal revenue |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");

    let shipped = PreviousSettings::default();
    let previous_all = |settings: &PreviousSettings| -> [Scores; 6] {
        [
            previous(&sets.tuning.series, settings),
            previous(&sets.held_out.series, settings),
            previous(&sets.held_out_b.series, settings),
            previous(&sets.gauss, settings),
            previous(&sets.poisson, settings),
            previous(&sets.revenue, settings),
        ]
    };
    row(
        "previous, as shipped",
        &sets,
        previous_all(&shipped),
        Rule::every(shipped.threshold),
    );
    let mut best: Option<(Rule, CorpusScore)> = None;
    for threshold in [3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 8.0, 10.0] {
        let settings = PreviousSettings {
            threshold,
            ..shipped
        };
        let tuned = tune(
            &sets.tuning,
            &previous(&sets.tuning.series, &settings),
            &[threshold],
            0.0,
        );
        if best.as_ref().is_none_or(|b| tuned.1.score > b.1.score) {
            best = Some(tuned);
        }
    }
    if let Some((rule, _)) = best {
        let settings = PreviousSettings {
            threshold: rule.threshold,
            ..shipped
        };
        row(
            "previous, threshold and quiet period tuned",
            &sets,
            previous_all(&settings),
            rule,
        );
    }

    let defaults = AnomalySettings::default();
    let current_all = [
        current(&sets.tuning.series, &defaults),
        current(&sets.held_out.series, &defaults),
        current(&sets.held_out_b.series, &defaults),
        current(&sets.gauss, &defaults),
        current(&sets.poisson, &defaults),
        current(&sets.revenue, &defaults),
    ];
    let (tuned, _) = tune(
        &sets.tuning,
        &current_all[0],
        &threshold_grid(),
        defaults.escalation,
    );
    row(
        "current, at its defaults",
        &sets,
        current_all.clone(),
        Rule::of(&defaults),
    );
    row(
        "current, at its defaults without escalations",
        &sets,
        current_all.clone(),
        Rule {
            escalation: 0.0,
            ..Rule::of(&defaults)
        },
    );
    row(
        "current, threshold and quiet period tuned",
        &sets,
        current_all.clone(),
        tuned,
    );

    // Per family, held-out B, at the defaults.
    println!("\n| family (held-out B) | series | windows | current | precision / recall | previous, as shipped |");
    println!("|---|---|---|---|---|---|");
    let previous_b = previous(&sets.held_out_b.series, &shipped);
    for family in [
        Family::SparseCount,
        Family::DenseCount,
        Family::Money,
        Family::Sentiment,
        Family::Seo,
    ] {
        let pick = |scores: &Scores| -> (Labelled, Scores) {
            let mut set = Labelled {
                series: Vec::new(),
                prepared: Vec::new(),
            };
            let mut picked = Vec::new();
            for (i, s) in sets.held_out_b.series.iter().enumerate() {
                if s.family == family {
                    set.series.push(s.clone());
                    set.prepared.push(sets.held_out_b.prepared[i].clone());
                    picked.push(scores[i].clone());
                }
            }
            (set, picked)
        };
        let (set, now) = pick(&current_all[2]);
        let (_, before) = pick(&previous_b);
        let a = evaluate(&set, &now, Rule::of(&defaults));
        let b = evaluate(&set, &before, Rule::every(shipped.threshold));
        println!(
            "| {} | {} | {} | {:.1} | {:.2} / {:.2} | {:.1} |",
            family.as_str(),
            set.series.len(),
            a.windows,
            a.score,
            a.precision(),
            a.recall(),
            b.score
        );
    }

    spike_sensitivity(&sets, &defaults);

    // Cost: bytes of state and time per closed window.
    let values: Vec<(f64, SeriesKind)> = sets
        .tuning
        .series
        .iter()
        .flat_map(|s| s.values.iter().map(move |&v| (v, s.kind)))
        .collect();
    let started = Instant::now();
    let mut detector = Detector::default();
    let mut checksum = 0.0;
    for &(v, kind) in &values {
        if let Some(s) = detector.observe(v, kind, &defaults) {
            checksum += s.score;
        }
    }
    let per_window = started.elapsed().as_nanos() as f64 / values.len() as f64;
    println!(
        "\nstate: {} bytes per series (JSON in the checkpoint: {} bytes); {per_window:.0} ns per window over {} windows (checksum {checksum:.3e})",
        std::mem::size_of::<Detector>(),
        serde_json::to_string(&detector).map_or(0, |j| j.len()),
        values.len()
    );
}

/// How far out (in the series' own standard deviations, up) a single window
/// must be for its |score| to reach the threshold, after 300 clean windows
/// of a noise series (whether a quiet period would hold its event back is
/// not this question): the median over the series, how many reach it at
/// 6 sd, and how many not even at 30.
fn spike_sensitivity(sets: &Sets, defaults: &AnomalySettings) {
    const HISTORY: usize = 300;
    let needed = |series: &corpus::Series| -> Option<f64> {
        let history = &series.values[..HISTORY];
        let mean = history.iter().sum::<f64>() / HISTORY as f64;
        let var = history.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (HISTORY - 1) as f64;
        (6..=60).map(|k| f64::from(k) * 0.5).find(|&k| {
            let mut detector = Detector::default();
            for &v in history {
                detector.observe(v, series.kind, defaults);
            }
            detector
                .observe(mean + k * var.sqrt(), series.kind, defaults)
                .is_some_and(|s| s.score.abs() >= defaults.threshold)
        })
    };
    println!("\n| single-window spike after {HISTORY} windows | median sd needed | reaching it at 6 sd | not at 30 sd |");
    println!("|---|---|---|---|");
    for (label, set) in [
        ("Gaussian measure", &sets.gauss),
        ("lognormal revenue", &sets.revenue),
        ("Poisson count", &sets.poisson),
    ] {
        let mut found: Vec<f64> = set
            .iter()
            .map(|s| needed(s).unwrap_or(f64::INFINITY))
            .collect();
        found.sort_by(f64::total_cmp);
        let at_six = found.iter().filter(|&&k| k <= 6.0).count();
        let beyond = found.iter().filter(|k| k.is_infinite()).count();
        let median = found[found.len() / 2];
        println!(
            "| {label} | {median:.1} | {at_six} of {} | {beyond} |",
            set.len()
        );
    }
}

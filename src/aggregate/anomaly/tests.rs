use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};

use super::*;

const SETTINGS: AnomalySettings = AnomalySettings {
    alpha: 0.02,
    warm_up: 10,
    threshold: 3.0,
    quiet_windows: 50,
    escalation: 4.0,
};

fn run(values: impl IntoIterator<Item = f64>, kind: SeriesKind) -> Vec<Option<Score>> {
    let mut detector = Detector::default();
    values
        .into_iter()
        .map(|v| detector.observe(v, kind, &SETTINGS))
        .collect()
}

fn score_at(scores: &[Option<Score>], i: usize) -> f64 {
    scores[i].map_or(f64::NAN, |s| s.score)
}

/// The windows that raised an alarm, with their scores.
fn alarms(scores: &[Option<Score>]) -> Vec<(usize, f64)> {
    scores
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.filter(|s| s.anomalous).map(|s| (i, s.score)))
        .collect()
}

#[test]
fn noise_alarms_in_fewer_than_one_window_in_a_thousand() {
    // config/default.toml documents: at the default threshold (3) and quiet
    // period, Gaussian and Poisson noise alarm in fewer than 1 window in 1,000.
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (mut alarms, mut scored) = (0u32, 0u32);
    for series in 0..200 {
        let gaussian = series % 2 == 0;
        let level = rng.random_range(0.1f64..1_000.0);
        let normal = Normal::new(level, level * rng.random_range(0.01..1.0)).unwrap();
        let poisson = Poisson::new(rng.random_range(0.05..500.0)).unwrap();
        let values: Vec<f64> = (0..1_000)
            .map(|_| {
                if gaussian {
                    normal.sample(&mut rng)
                } else {
                    poisson.sample(&mut rng)
                }
            })
            .collect();
        let kind = if gaussian {
            SeriesKind::Measure
        } else {
            SeriesKind::Count
        };
        for score in run(values, kind).into_iter().flatten() {
            scored += 1;
            alarms += u32::from(score.anomalous);
        }
    }
    let rate = f64::from(alarms) / f64::from(scored);
    assert!(rate < 0.001, "{alarms} alarms in {scored} windows");
}

#[test]
fn a_spike_alarms_in_its_window_and_does_not_poison_the_baseline() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let noise = Normal::new(100.0, 5.0).unwrap();
    let mut values: Vec<f64> = (0..500).map(|_| noise.sample(&mut rng)).collect();
    values.push(200.0);
    values.extend((0..100).map(|_| noise.sample(&mut rng)));
    let scores = run(values, SeriesKind::Measure);
    let spike = scores[500].unwrap();
    assert!(spike.anomalous && spike.score > 5.0, "{spike:?}");
    assert!((spike.expected - 100.0).abs() < 2.0, "{spike:?}");
    // The baseline is not dragged up: it expects ~100 right after.
    let after = scores[501].unwrap();
    assert!((after.expected - 100.0).abs() < 3.0, "{after:?}");
    // Back to normal within the window the short averages span.
    assert!(score_at(&scores, 530).abs() < 3.0, "{:?}", scores[530]);
}

/// The score's sign follows the view that gave it: a spike right after a
/// dip scores up, though the short average of z still points down.
#[test]
fn a_spike_after_a_dip_scores_up() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let poisson = Poisson::new(30.0).unwrap();
    let mut values: Vec<f64> = (0..300).map(|_| poisson.sample(&mut rng)).collect();
    values.extend([2.0, 1.0, 3.0, 2.0, 1.0, 2.0, 3.0, 1.0]);
    values.push(148.0);
    let scores = run(values, SeriesKind::Count);
    let dip = scores[302].unwrap();
    assert!(dip.score < -3.0, "{dip:?}");
    let spike = scores[308].unwrap();
    assert!(spike.score > 3.0, "{spike:?}");
}

#[test]
fn mostly_zero_and_constant_series_are_not_scored_as_huge() {
    let zeros = |tail: f64| {
        let mut v = vec![0.0; 500];
        v.push(tail);
        run(v, SeriesKind::Count)
    };
    let one = zeros(1.0)[500].unwrap();
    assert!(!one.anomalous && one.score < 1.0, "one event: {one:?}");
    let twenty = zeros(20.0)[500].unwrap();
    assert!(
        twenty.anomalous && twenty.score > 5.0,
        "twenty events: {twenty:?}"
    );

    let mut flat = vec![50.0; 500];
    flat.push(50.5);
    let wobble = run(flat, SeriesKind::Measure)[500].unwrap();
    assert!(!wobble.anomalous && wobble.score.is_finite(), "{wobble:?}");
}

#[test]
fn a_level_shift_alarms_once_and_becomes_the_new_normal() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let before = Poisson::new(100.0).unwrap();
    let after = Poisson::new(300.0).unwrap();
    let mut values: Vec<f64> = (0..500).map(|_| before.sample(&mut rng)).collect();
    values.extend((0..300).map(|_| after.sample(&mut rng)));
    let scores = run(values, SeriesKind::Count);
    let alarms: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i].is_some_and(|s| s.anomalous))
        .collect();
    assert_eq!(alarms.first(), Some(&500), "{alarms:?}");
    assert!(alarms.len() <= 2, "{alarms:?}");
    assert!(
        score_at(&scores, 500) > 0.0,
        "an upward shift scores positive"
    );
    let quiet = (500..800).find(|&i| (i..800).all(|j| score_at(&scores, j).abs() < 3.0));
    assert!(quiet.is_some_and(|i| i < 600), "{quiet:?}");
}

#[test]
fn an_outage_of_a_measure_alarms_on_its_first_window() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let noise = Normal::new(100.0, 5.0).unwrap();
    let values: Vec<f64> = (0..500)
        .map(|_| noise.sample(&mut rng))
        .chain(std::iter::repeat_n(0.0, 10))
        .collect();
    let scores = run(values, SeriesKind::Measure);
    let first = scores[500].unwrap();
    assert!(first.anomalous && first.score < -3.0, "{first:?}");
}

#[test]
fn not_scored_during_warm_up_and_quiet_after_an_alarm() {
    let mut detector = Detector::default();
    for _ in 0..SETTINGS.warm_up {
        assert_eq!(detector.observe(1.0, SeriesKind::Count, &SETTINGS), None);
    }
    assert!(detector
        .observe(1.0, SeriesKind::Count, &SETTINGS)
        .is_some());
    assert_eq!(detector.windows(), u64::from(SETTINGS.warm_up) + 1);
    // Two bursts 20 windows apart: the second scores high, but is within
    // the quiet period.
    let mut scores = Vec::new();
    for i in 0..200 {
        let value = if i == 100 || i == 120 { 60.0 } else { 1.0 };
        scores.push(detector.observe(value, SeriesKind::Count, &SETTINGS));
    }
    assert!(scores[100].is_some_and(|s| s.anomalous));
    assert!(scores[120].is_some_and(|s| !s.anomalous && s.score >= 3.0));
}

/// An incident that starts late in a window: the first window holds a
/// little of it and alarms on weak evidence; the next holds all of it.
fn late_starting_incident() -> Vec<f64> {
    let mut values: Vec<f64> = (0..200)
        .map(|i| [2.0, 4.0, 3.0, 5.0, 1.0, 3.0, 4.0, 2.0][i % 8])
        .collect();
    values[100] = 16.0;
    values[101..104].fill(200.0);
    values
}

#[test]
fn an_escalating_incident_raises_a_second_event_with_its_full_strength() {
    let scores = run(late_starting_incident(), SeriesKind::Count);
    let alarms = alarms(&scores);
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    let ((first, weak), (second, strong)) = (alarms[0], alarms[1]);
    assert_eq!((first, second), (100, 101), "{alarms:?}");
    assert!(weak >= 3.0 && strong >= 4.0 * weak, "{alarms:?}");
    // The first starts an incident; the second says it escalates one.
    let escalations: Vec<bool> = [first, second]
        .map(|i| scores[i].is_some_and(|s| s.escalation))
        .to_vec();
    assert_eq!(escalations, [false, true]);
    // The windows after it score higher still (the score looks back ~10
    // windows), but not four times the escalation: nothing more.
    assert!(score_at(&scores, 103) > strong);

    // Without escalations: one incident, one event, the weak one.
    let settings = AnomalySettings {
        escalation: 0.0,
        ..SETTINGS
    };
    let mut detector = Detector::default();
    let alarms: Vec<usize> = late_starting_incident()
        .into_iter()
        .enumerate()
        .filter(|&(_, v)| {
            detector
                .observe(v, SeriesKind::Count, &settings)
                .is_some_and(|s| s.anomalous)
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(alarms, vec![100]);
}

#[test]
fn an_alarm_saved_without_its_score_is_not_escalated() {
    // A checkpoint written before alarms kept their score.
    let mut detector = Detector::default();
    let values = late_starting_incident();
    for &v in &values[..=100] {
        let _score = detector.observe(v, SeriesKind::Count, &SETTINGS);
    }
    let mut saved = serde_json::to_value(detector).unwrap();
    assert!(saved
        .as_object_mut()
        .and_then(|o| o.remove("last_alarm_score"))
        .is_some());
    let mut restored: Detector = serde_json::from_value(saved).unwrap();
    let next = restored.observe(values[101], SeriesKind::Count, &SETTINGS);
    assert!(
        next.is_some_and(|s| !s.anomalous && s.score >= 6.0),
        "{next:?}"
    );
}

#[test]
fn the_escalation_rule() {
    let last = |windows_ago, score| Some(LastAlarm { windows_ago, score });
    assert!(!raises_alarm(&SETTINGS, 2.9, 9.0, None));
    assert!(raises_alarm(&SETTINGS, 3.0, 9.0, None));
    // Within the quiet period only four times the last alarm's score
    // raises one.
    assert!(!raises_alarm(&SETTINGS, 15.9, 9.0, last(50, 4.0)));
    assert!(raises_alarm(&SETTINGS, 16.0, 9.0, last(50, 4.0)));
    assert!(raises_alarm(&SETTINGS, 3.0, 9.0, last(51, 4.0)));
    // An unknown score never escalates; neither does anything when off.
    assert!(!raises_alarm(&SETTINGS, 100.0, 9.0, last(1, 0.0)));
    let off = AnomalySettings {
        escalation: 0.0,
        ..SETTINGS
    };
    assert!(!raises_alarm(&off, 100.0, 9.0, last(1, 4.0)));
    // An escalation must be as extreme as the threshold on its own; a
    // first alarm may come from a run of mild windows.
    assert!(raises_alarm(&SETTINGS, 30.0, 0.1, None));
    assert!(raises_alarm(&SETTINGS, 30.0, 0.1, last(51, 4.0)));
    assert!(!raises_alarm(&SETTINGS, 30.0, 2.9, last(50, 4.0)));
    assert!(raises_alarm(&SETTINGS, 30.0, 3.0, last(50, 4.0)));
}

#[test]
fn state_is_small_and_survives_a_round_trip_continuing_identically() {
    assert!(std::mem::size_of::<Detector>() <= 512);
    assert_eq!(std::mem::size_of::<Detector>(), 136);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut live = Detector::default();
    for _ in 0..50 {
        let _score = live.observe(rng.random_range(0.0..10.0), SeriesKind::Measure, &SETTINGS);
    }
    let saved = serde_json::to_string(&live).unwrap();
    let mut restored: Detector = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored, live);
    for value in [3.0, 0.0, 40.0, 5.0] {
        assert_eq!(
            live.observe(value, SeriesKind::Measure, &SETTINGS),
            restored.observe(value, SeriesKind::Measure, &SETTINGS)
        );
    }
}

/// An empty window of a count series alarms by how unlikely the run of
/// empty windows it ends is, at the series' rate.
#[test]
fn empty_windows_of_a_count_series_alarm_by_their_run() {
    let steady = |rate: f64| {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let poisson = Poisson::new(rate).unwrap();
        let mut detector = Detector::default();
        for _ in 0..300 {
            let value: f64 = poisson.sample(&mut rng);
            let _score = detector.observe(value, SeriesKind::Count, &SETTINGS);
        }
        detector
    };
    let first_alarm = |mut detector: Detector| {
        (1..=200).find(|_| {
            detector
                .observe(0.0, SeriesKind::Count, &SETTINGS)
                .is_some_and(|s| s.anomalous)
        })
    };
    // One empty window of a series of 5 (p 0.007) is not an anomaly at
    // the threshold of 3; two in a row (p 5e-5) are.
    assert_eq!(first_alarm(steady(5.0)), Some(2));
    // A series of 1 a window that stops is flagged once the run's
    // probability (e^-windows, the rate falling as it learns the silence)
    // passes 1e-3 or so; one of 0.3 a window, later.
    let one = first_alarm(steady(1.0));
    assert!(one.is_some_and(|w| (7..=12).contains(&w)), "{one:?}");
    let sparse = first_alarm(steady(0.3));
    assert!(sparse.is_some_and(|w| (25..=60).contains(&w)), "{sparse:?}");
    // A dense series alarms on its first empty window.
    assert_eq!(first_alarm(steady(50.0)), Some(1));
    // The bound the live check uses never says no where an alarm comes.
    let detector = steady(1.0);
    let windows = one.unwrap_or_default();
    assert!(detector.empty_run_may_alarm(windows as u64, &SETTINGS));
    assert!(!detector.empty_run_may_alarm(1, &SETTINGS));
}

/// A count series that goes quiet every night has runs of empty windows
/// far longer than its slowly moving rate expects. How often its empty
/// windows follow one another says such runs are its normal, so its nights
/// raise at most one outage alarm each, not two: the rate still
/// lags the evening's fall, so most nights still raise one (README, blind
/// spots). A steady series that stops still alarms on its second empty
/// window (`empty_windows_of_a_count_series_alarm_by_their_run`).
#[test]
fn nightly_runs_of_empty_windows_raise_fewer_outages() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let (day, night) = (Poisson::new(4.0).unwrap(), Poisson::new(0.02).unwrap());
    let mut detector = Detector::default();
    let mut empty_alarms = 0u32;
    for _ in 0..30 {
        for window in 0..248 {
            let rate = if window < 200 { &day } else { &night };
            let value: f64 = rate.sample(&mut rng);
            let score = detector.observe(value, SeriesKind::Count, &SETTINGS);
            empty_alarms += u32::from(value == 0.0 && score.is_some_and(|s| s.anomalous));
        }
    }
    // Without it: 60.
    assert!(
        empty_alarms <= 30,
        "{empty_alarms} outage alarms in 30 nights"
    );
    assert!(detector.zero_after_zero > 0.8, "{detector:?}");
}

/// Revenue of a campaign: a Poisson number of lognormal orders a window.
fn revenue(rng: &mut ChaCha8Rng, orders: f64) -> f64 {
    let count: f64 = Poisson::new(orders).unwrap().sample(rng);
    let price = LogNormal::new(3.0, 1.2).unwrap();
    (0..count as u32).map(|_| price.sample(rng)).sum()
}

/// A right-skewed measure's big windows (a few big orders) are normal for
/// it, so they are measured on the wider scale above its level; a drop to
/// a fifth keeps the plain scale.
#[test]
fn a_right_skewed_measure_alarms_on_its_drops_not_on_its_big_orders() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut alarms, mut scored, mut drops_seen) = (0u32, 0u32, 0u32);
    for _ in 0..40 {
        let mut values: Vec<f64> = (0..2_000).map(|_| revenue(&mut rng, 8.0)).collect();
        values.extend((0..20).map(|_| revenue(&mut rng, 8.0 * 0.2)));
        let scores = run(values, SeriesKind::Measure);
        for score in scores[..2_000].iter().flatten() {
            scored += 1;
            alarms += u32::from(score.anomalous);
        }
        drops_seen += u32::from(
            scores[2_000..]
                .iter()
                .flatten()
                .any(|s| s.anomalous && s.score < 0.0),
        );
    }
    // With one scale on both sides: 185 alarms (2.3 in 1,000 windows) and
    // 32 of the 40 drops; with the wider one above: 80 and 38.
    let rate = f64::from(alarms) / f64::from(scored);
    assert!(rate < 0.0015, "{alarms} alarms in {scored} windows");
    assert!(drops_seen >= 36, "{drops_seen} of 40 drops seen");
}

/// A count series' state saved before runs of empty windows were kept
/// reads as none seen, and goes on learning them from the next run.
#[test]
fn a_count_state_saved_before_runs_were_kept_reads_as_none_seen() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let sparse = Poisson::new(0.5).unwrap();
    let mut detector = Detector::default();
    for _ in 0..500 {
        let _score = detector.observe(sparse.sample(&mut rng), SeriesKind::Count, &SETTINGS);
    }
    assert!(detector.zero_after_zero > 0.3, "{detector:?}");
    let mut saved = serde_json::to_value(detector).unwrap();
    let fields = saved.as_object_mut().unwrap();
    for kept_later in ["zero_after_zero", "empty_run"] {
        assert!(fields.remove(kept_later).is_some(), "{kept_later}");
    }
    let mut restored: Detector = serde_json::from_value(saved).unwrap();
    assert_eq!((restored.zero_after_zero, restored.empty_run), (0.0, 0));
    assert_eq!(
        Detector {
            zero_after_zero: detector.zero_after_zero,
            empty_run: detector.empty_run,
            ..restored
        },
        detector
    );
    for value in [0.0, 0.0, 1.0] {
        let _score = restored.observe(value, SeriesKind::Count, &SETTINGS);
    }
    assert!(restored.zero_after_zero > 0.0, "{restored:?}");
}

#[test]
fn a_state_saved_before_the_share_above_was_kept_reads_as_symmetric() {
    let mut detector = Detector::default();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for _ in 0..1_500 {
        let _score = detector.observe(revenue(&mut rng, 8.0), SeriesKind::Measure, &SETTINGS);
    }
    assert!(detector.up_share < 0.45, "{detector:?}");
    let mut saved = serde_json::to_value(detector).unwrap();
    assert!(saved
        .as_object_mut()
        .and_then(|o| o.remove("up_share"))
        .is_some());
    let restored: Detector = serde_json::from_value(saved).unwrap();
    assert_eq!(restored.up_share, 0.5);
    assert_eq!(
        Detector {
            up_share: detector.up_share,
            ..restored
        },
        detector
    );
}

/// A second spike inside the quiet period raises no event (it does not
/// escalate), and neither do the ordinary windows after it once the quiet
/// period ends, though the score averages the last ~10 windows: the
/// series starts afresh after a quiet period.
#[test]
fn a_spike_suppressed_in_the_quiet_period_raises_no_late_echo() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let poisson = Poisson::new(60.0).unwrap();
    let mut values: Vec<f64> = (0..400).map(|_| poisson.sample(&mut rng)).collect();
    values[200] = 200.0;
    values[248] = 140.0;
    let scores = run(values, SeriesKind::Count);
    let alarms = alarms(&scores);
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].0, 200, "{alarms:?}");
    assert!(score_at(&scores, 248) >= SETTINGS.threshold);
}

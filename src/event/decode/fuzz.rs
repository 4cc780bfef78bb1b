//! Fuzzing the decoders: arbitrary bytes, and valid JSON and Avro messages
//! mutated the way coverage-guided fuzzers mutate (bit flips, interesting
//! bytes, insertions, deletions, truncation, splices, deep nesting, huge
//! numbers), through every decoder with registered writer schemas. Nothing
//! may panic; every payload is an event or a dead-letter reason.
//!
//! Runs for `REACTOR_FUZZ_SECONDS` (default 2) from seed `REACTOR_FUZZ_SEED`
//! (default 1). The long run is `REACTOR_FUZZ_SECONDS=600 cargo test
//! --release -p reactor decode::fuzz -- --nocapture` (RELIABILITY.md).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::event::encode::{to_confluent_avro, to_json};
use crate::event::{ContentEvent, ConversionEvent, EngagementEvent, EngagementKind, EventTime};

fn seeds() -> Vec<Event> {
    let t = EventTime::from_millis(1_767_225_600_000);
    vec![
        Event::Engagement(EngagementEvent {
            event_id: "e-1".into(),
            occurred_at: t,
            content_id: "content-7".into(),
            campaign_id: "campaign-3".into(),
            channel: "email".into(),
            user_id: "user-42".into(),
            kind: EngagementKind::Click,
            dwell_ms: Some(1234),
        }),
        Event::Content(ContentEvent {
            event_id: "c-1".into(),
            occurred_at: t,
            content_id: "content-7".into(),
            campaign_id: "campaign-3".into(),
            channel: "web".into(),
            content_type: "video".into(),
            sentiment: Some(-0.25),
            seo_score: None,
        }),
        Event::Conversion(ConversionEvent {
            event_id: "v-1".into(),
            occurred_at: t,
            campaign_id: "campaign-3".into(),
            content_id: None,
            channel: Some("web".into()),
            user_id: "user-42".into(),
            kind: "purchase".into(),
            revenue: Some(99.5),
            cost: Some(1.25),
            currency: Some("EUR".into()),
        }),
    ]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One mutation of `input`, in place.
fn mutate(rng: &mut ChaCha8Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'{', b'"', b'\\'];
    let len = input.len();
    match rng.random_range(0..10) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] = INTERESTING[rng.random_range(0..INTERESTING.len())];
        }
        2 => {
            let i = rng.random_range(0..=len);
            input.insert(i, rng.random());
        }
        3 if len > 0 => {
            let i = rng.random_range(0..len);
            let _removed = input.remove(i);
        }
        4 => input.truncate(rng.random_range(0..=len)),
        5 if len > 1 => {
            // Duplicate a slice in place (varint lengths, repeated fields).
            let a = rng.random_range(0..len);
            let b = rng.random_range(a..len.min(a + 32));
            let chunk = input[a..=b].to_vec();
            let at = rng.random_range(0..=input.len());
            let _tail = input.splice(at..at, chunk);
        }
        6 => {
            // Splice the tail of another seed.
            let other = &corpus[rng.random_range(0..corpus.len())];
            let at = rng.random_range(0..=len);
            let from = rng.random_range(0..=other.len());
            input.truncate(at);
            input.extend_from_slice(&other[from..]);
        }
        7 => {
            // Deep nesting.
            let depth = rng.random_range(1..5_000);
            let at = rng.random_range(0..=len);
            let nested: Vec<u8> = std::iter::repeat_n(b'[', depth)
                .chain(std::iter::repeat_n(b']', depth))
                .collect();
            let _tail = input.splice(at..at, nested);
        }
        8 => {
            // A huge or odd number where a number may be.
            let numbers: [&[u8]; 6] = [
                b"1e308",
                b"-1e400",
                b"99999999999999999999999",
                b"NaN",
                b"0.0000000000000000000001",
                b"-0",
            ];
            let at = rng.random_range(0..=len);
            let number = numbers[rng.random_range(0..numbers.len())];
            let _tail = input.splice(at..at, number.iter().copied());
        }
        _ if len > 0 => {
            // Overwrite a run with random bytes (Avro varints, lengths).
            let a = rng.random_range(0..len);
            let b = rng.random_range(a..len.min(a + 8));
            rng.fill(&mut input[a..=b]);
        }
        _ => input.push(rng.random()),
    }
}

#[test]
fn decoding_arbitrary_and_mutated_payloads_never_panics() {
    let seconds: f64 = env_or("REACTOR_FUZZ_SECONDS", 2.0);
    let seed: u64 = env_or("REACTOR_FUZZ_SEED", 1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut decoders: Vec<Decoder> = TopicKind::ALL
        .into_iter()
        .map(|kind| Decoder::new(kind, true, Limits::default()).unwrap())
        .collect();
    let mut corpus = Vec::new();
    for (i, event) in seeds().into_iter().enumerate() {
        let id = u32::try_from(i + 1).unwrap();
        let schema = reader_schema(event.topic_kind()).unwrap();
        for decoder in &mut decoders {
            decoder.add_writer_schema(id, Some(&schema.canonical_form()));
        }
        corpus.push(to_json(&event).unwrap());
        corpus.push(to_confluent_avro(&event, &schema, id).unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut runs, mut decoded) = (0u64, 0u64);
    let mut slot = None;
    while Instant::now() < deadline {
        for _ in 0..256 {
            let input = if rng.random_range(0..8) == 0 {
                let len = rng.random_range(0..96);
                (0..len).map(|_| rng.random()).collect()
            } else {
                let mut input = corpus[rng.random_range(0..corpus.len())].clone();
                for _ in 0..rng.random_range(1..6) {
                    mutate(&mut rng, &mut input, &corpus);
                }
                input
            };
            for decoder in &mut decoders {
                // As the pipeline does: ids it has not seen are asked of the
                // registry first (which, here, knows none of them).
                if let Some(id) = decoder.missing_schema(Some(&input)) {
                    decoder.add_writer_schema(id, None);
                }
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    decoder
                        .decode_reusing(Some(&input), &mut slot)
                        .map(|_| ())
                        .map_err(|e| (e.kind(), e.to_string()))
                }));
                match outcome {
                    Ok(Ok(())) => decoded += 1,
                    Ok(Err((kind, reason))) => {
                        assert!(!kind.is_empty() && !reason.is_empty());
                        assert_ne!(kind, "internal", "{reason}");
                    }
                    Err(_) => panic!(
                        "decoding panicked (seed {seed}) on {} bytes: {:02x?}",
                        input.len(),
                        input
                    ),
                }
                runs += 1;
            }
        }
    }
    println!(
        "fuzz: {runs} decodes in {seconds}s ({:.0}/s), {decoded} decoded as events, seed {seed}, no panic",
        runs as f64 / seconds
    );
    assert!(runs > 0);
}

/// A JSON text of `event` with its members shuffled, spaced at random, its
/// absent optional fields sometimes written as `null`, and one of its
/// numbers sometimes replaced by an awkward literal.
fn json_variant(rng: &mut ChaCha8Rng, event: &Event) -> String {
    const NUMBERS: [&str; 16] = [
        "0",
        "-0",
        "-0.0",
        "1e-400",
        "2.2250738585072011e-308",
        "4.9e-324",
        "9007199254740993",
        "1.7976931348623157e308",
        "123456789012345678901234567890",
        "0.1",
        "1E5",
        "1e+5",
        "-1.5E-5",
        "1767225600000",
        "-9223372036854775808",
        "18446744073709551616",
    ];
    let json = to_json(event).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
    let mut members: Vec<(String, String)> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null() || rng.random_bool(0.5))
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    for (_, v) in &mut members {
        if (v.starts_with(|c: char| c.is_ascii_digit() || c == '-')) && rng.random_bool(0.3) {
            *v = NUMBERS[rng.random_range(0..NUMBERS.len())].to_owned();
        }
    }
    for i in (1..members.len()).rev() {
        members.swap(i, rng.random_range(0..=i));
    }
    let space = |rng: &mut ChaCha8Rng| [" ", "", "\n", "\t ", "\r\n"][rng.random_range(0..5)];
    let mut out = format!("{}{{", space(rng));
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{}\"{k}\"{}:{}{v}{}",
            space(rng),
            space(rng),
            space(rng),
            space(rng)
        ));
    }
    out.push_str(&format!("}}{}", space(rng)));
    out
}

/// A random event of each kind, with strings that need escaping, or not,
/// and optional fields present or not.
fn random_events(rng: &mut ChaCha8Rng) -> Vec<Event> {
    let text = |rng: &mut ChaCha8Rng| -> String {
        // Mostly what producers write; now and then what must be escaped.
        const PIECES: [&str; 8] = ["campaign-1", "é", "😀", " ", "web", "\"", "\\", "\n"];
        (0..rng.random_range(0..4))
            .map(|_| {
                let pieces = if rng.random_bool(0.9) { 5 } else { 8 };
                PIECES[rng.random_range(0..pieces)]
            })
            .collect()
    };
    let number = |rng: &mut ChaCha8Rng| -> Option<f64> {
        rng.random_bool(0.8).then(|| match rng.random_range(0..3) {
            0 => f64::from(rng.random_range(-1000..1000)),
            1 => rng.random_range(-1e6..1e6),
            _ => f64::from_bits(rng.random::<u64>() >> 2),
        })
    };
    let t = EventTime::from_millis(rng.random_range(946_684_800_000..4_102_444_800_000));
    vec![
        Event::Engagement(EngagementEvent {
            event_id: text(rng),
            occurred_at: t,
            content_id: text(rng),
            campaign_id: text(rng),
            channel: text(rng),
            user_id: text(rng),
            kind: EngagementKind::ALL[rng.random_range(0..EngagementKind::ALL.len())],
            dwell_ms: rng
                .random_bool(0.7)
                .then(|| rng.random_range(-5..10_000_000)),
        }),
        Event::Content(ContentEvent {
            event_id: text(rng),
            occurred_at: t,
            content_id: text(rng),
            campaign_id: text(rng),
            channel: text(rng),
            content_type: text(rng),
            sentiment: number(rng),
            seo_score: number(rng),
        }),
        Event::Conversion(ConversionEvent {
            event_id: text(rng),
            occurred_at: t,
            campaign_id: text(rng),
            content_id: rng.random_bool(0.5).then(|| text(rng)),
            channel: rng.random_bool(0.5).then(|| text(rng)),
            user_id: text(rng),
            kind: text(rng),
            revenue: number(rng),
            cost: number(rng),
            currency: rng.random_bool(0.5).then(|| text(rng)),
        }),
    ]
}

/// The JSON fast path decides nothing serde_json would decide otherwise:
/// on valid events written every which way and on mutations of them, for
/// every topic's shape, whatever it reads, serde_json reads the same (to
/// the bit: `{:?}` tells -0.0 from 0.0), into a fresh event or over the
/// previous one. It must also take the payloads producers write.
#[test]
fn the_json_fast_path_reads_what_serde_json_reads_or_leaves_it_to_serde_json() {
    let seconds: f64 = env_or("REACTOR_FUZZ_SECONDS", 2.0);
    let seed: u64 = env_or("REACTOR_FUZZ_SEED", 1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut runs, mut fast) = (0u64, 0u64);
    let mut previous: Vec<Event> = TopicKind::ALL.into_iter().map(Event::blank).collect();
    for event in seeds() {
        let json = String::from_utf8(to_json(&event).unwrap()).unwrap();
        let mut read = Event::blank(event.topic_kind());
        assert!(flat_json::decode_into(&json, &mut read).is_some(), "{json}");
        assert_eq!(format!("{read:?}"), format!("{event:?}"));
    }
    while Instant::now() < deadline {
        let events = random_events(&mut rng);
        let corpus: Vec<Vec<u8>> = events
            .iter()
            .map(|e| json_variant(&mut rng, e).into_bytes())
            .collect();
        for mut input in corpus.clone() {
            for _ in 0..rng.random_range(0..3) {
                mutate(&mut rng, &mut input, &corpus);
            }
            let Ok(json) = std::str::from_utf8(&input) else {
                continue;
            };
            for previous in &mut previous {
                let kind = previous.topic_kind();
                for start in [Event::blank(kind), previous.clone()] {
                    let mut by_fast_path = start.clone();
                    runs += 1;
                    if flat_json::decode_into(json, &mut by_fast_path).is_none() {
                        continue;
                    }
                    fast += 1;
                    let mut by_serde = start;
                    let serde = decode_json_with_serde(json, &mut by_serde);
                    assert!(
                        serde.is_ok(),
                        "fast path read {json} as {by_fast_path:?}; serde_json: {serde:?}"
                    );
                    assert_eq!(
                        format!("{by_fast_path:?}"),
                        format!("{by_serde:?}"),
                        "{json}"
                    );
                    *previous = by_fast_path;
                }
            }
        }
    }
    println!(
        "json fast path: {runs} payloads, {fast} read by it and equal to serde_json's, seed {seed}"
    );
    assert!(fast > runs / 20, "{fast} of {runs}");
}

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

//! 100,000 mixed JSON and Avro events, with malformed messages mixed in: every
//! rollup is exact, and every bad message is dead-lettered with its reason.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::expected::rollups;
use integration_tests::{header, read_topic_async, TestEnv};
use reactor::event::decode::Format;
use reactor::generate::publish::FormatMix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_are_exact_and_bad_input_is_dead_lettered() -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("exact", &scenario).await?;
    let publisher = env.publisher().await?;
    let events = crate::events(42, 100_000);
    let expected = rollups(&events, 60);

    let mut reactor = env.start_reactor("a")?;
    let (first, second) = events.split_at(events.len() / 2);
    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 42,
    };
    let _report = publisher
        .publish(mix.assign(first.to_vec()), None, None)
        .await?;

    // Malformed input in the middle of the stream, with the reason expected.
    let topics = env.topics();
    let mut truncated_avro = publisher.encode(&first[0], Format::Avro)?;
    truncated_avro.truncate(9);
    let truncated_topic = publisher.topic(first[0].topic_kind()).to_owned();
    let mut unknown_id = vec![0u8];
    unknown_id.extend_from_slice(&987_654_321u32.to_be_bytes());
    unknown_id.extend_from_slice(b"\x02ab");
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (&topics.engagement, b"\xff\xfe not an event".to_vec(), "unrecognised_format"),
        (&topics.engagement, vec![0, 0, 0], "unrecognised_format"),
        (&topics.engagement, Vec::new(), "empty_payload"),
        (
            &topics.engagement,
            br#"{"event_id":"x","occurred_at":"2026-01-01T00:05:00Z","content_id":"c","channel":"web","user_id":"u","kind":"view"}"#.to_vec(),
            "missing_field",
        ),
        (&topics.engagement, br#"{"event_id": "#.to_vec(), "invalid_json"),
        (&topics.engagement, unknown_id, "unknown_schema"),
        (
            &topics.conversion,
            br#"{"event_id":"x","occurred_at":1767225900,"campaign_id":"campaign-000","user_id":"u","kind":"signup"}"#.to_vec(),
            "absurd_timestamp",
        ),
        (
            &topics.conversion,
            br#"{"event_id":"x","occurred_at":"2026-01-01T00:05:00Z","campaign_id":"campaign-000","user_id":"u","kind":"Big Sale!"}"#.to_vec(),
            "invalid_field",
        ),
        (&truncated_topic, truncated_avro, "invalid_avro"),
    ];
    for (topic, payload, _) in &bad {
        publisher
            .send_raw(topic, None, Some(b"campaign-000"), payload)
            .await?;
    }
    let _report = publisher
        .publish(mix.assign(second.to_vec()), None, None)
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;

    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await?;

    // Dead letters: one per bad message, reason and source in headers.
    let mut want_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, kind) in &bad {
        *want_kinds.entry((*kind).to_owned()).or_default() += 1;
    }
    let letters = read_topic_async(
        env.kafka(),
        &topics.dead_letter,
        bad.len(),
        Duration::from_secs(60),
    )
    .await?;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for letter in &letters {
        *kinds
            .entry(header(letter, "reactor.error.kind"))
            .or_default() += 1;
        assert!(
            !header(letter, "reactor.error").is_empty(),
            "no reason on {letter:?}"
        );
        assert!(
            [&topics.engagement, &topics.conversion, &topics.content]
                .contains(&&header(letter, "reactor.source.topic")),
            "source topic header on {letter:?}"
        );
        assert!(header(letter, "reactor.source.offset")
            .parse::<i64>()
            .is_ok());
        assert!(header(letter, "reactor.source.partition")
            .parse::<i32>()
            .is_ok());
    }
    assert_eq!(kinds, want_kinds, "dead-letter reasons");

    reactor.stop()?;
    Ok(())
}

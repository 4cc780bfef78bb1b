//! Hostile input against a real broker and ClickHouse. A fresh partition
//! whose first record claims 2099, or 2001, keeps its clock; a corpus of
//! hostile records mixed into a normal run goes, every one of them, to the
//! dead-letter topic with its reason; the good events are exact.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::expected::rollups;
use integration_tests::{header, read_topic_async, TestEnv};
use rdkafka::Message as _;
use reactor::event::decode::Format;
use reactor::event::{EngagementEvent, EngagementKind, Event, EventTime, TopicKind};
use reactor::generate::publish::FormatMix;

fn engagement_json(occurred_at: &str, content_id: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"event_id":"h","occurred_at":"{occurred_at}","content_id":"{content_id}","campaign_id":"campaign-000","channel":"web","user_id":"u","kind":"view"{extra}}}"#
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_first_record_does_not_poison_its_partition() -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("first-record", &scenario).await?;
    let publisher = env.publisher().await?;
    let mut reactor = env.start_reactor("a")?;
    // Before anything else, on every partition of every input topic: a
    // record from 2099 (even partitions) or from 2001 (odd ones).
    let topics = env.topics();
    let mut future = 0;
    fn content(at: &str) -> Vec<u8> {
        format!(r#"{{"event_id":"h","occurred_at":"{at}","content_id":"hostile","campaign_id":"campaign-000","channel":"web","content_type":"post"}}"#).into_bytes()
    }
    fn conversion(at: &str) -> Vec<u8> {
        format!(r#"{{"event_id":"h","occurred_at":"{at}","campaign_id":"campaign-000","user_id":"u","kind":"signup"}}"#).into_bytes()
    }
    fn engagement(at: &str) -> Vec<u8> {
        engagement_json(at, "hostile", "")
    }
    type Shape = fn(&str) -> Vec<u8>;
    let shapes: [(&String, Shape); 3] = [
        (&topics.engagement, engagement),
        (&topics.content, content),
        (&topics.conversion, conversion),
    ];
    for (topic, json) in shapes {
        for partition in 0..scenario.partitions {
            let at = if partition % 2 == 0 {
                future += 1;
                "2099-06-01T00:00:00Z"
            } else {
                "2001-06-01T00:00:00Z"
            };
            publisher
                .send_raw(topic, Some(partition), Some(b"campaign-000"), &json(at))
                .await?;
        }
    }
    let events = crate::events(31, 30_000);
    let expected = rollups(&events, 60);
    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 31,
    };
    let _report = publisher.publish(mix.assign(events), None, None).await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await?;

    // The 2099 records are dead letters; the 2001 ones late (dropped).
    let letters = read_topic_async(
        env.kafka(),
        &topics.dead_letter,
        future,
        Duration::from_secs(60),
    )
    .await?;
    let kinds: Vec<String> = letters
        .iter()
        .map(|m| header(m, "reactor.error.kind"))
        .collect();
    assert_eq!(kinds, vec!["future_timestamp"; future], "dead letters");
    let late = reactor.metric("reactor_late_events_total").await;
    assert_eq!(
        late,
        Some((3 * scenario.partitions - i32::try_from(future)?) as f64)
    );
    reactor.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_corpus_is_dead_lettered_with_reasons_and_good_events_stay_exact(
) -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("hostile", &scenario).await?;
    let publisher = env.publisher().await?;
    let mut events = crate::events(37, 40_000);
    // A good event with a key that is not UTF-8: keys are not Reactor's
    // business, it counts.
    let odd_key = Event::Engagement(EngagementEvent {
        event_id: "odd-key".into(),
        // Where the stream is when it is published, between the halves.
        occurred_at: EventTime::from_millis(crate::START_MS + 10 * 60_000 + 1_000),
        content_id: "content-odd".into(),
        campaign_id: "campaign-000".into(),
        channel: "web".into(),
        user_id: "u".into(),
        kind: EngagementKind::Like,
        dwell_ms: None,
    });
    events.push(odd_key.clone());
    let expected = rollups(&events, 60);
    let _ = events.pop();
    let mut reactor = env.start_reactor("a")?;
    let (first, second) = events.split_at(events.len() / 2);
    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 37,
    };
    let _report = publisher
        .publish(mix.assign(first.to_vec()), None, None)
        .await?;

    let topics = env.topics();
    let at = "2026-01-01T00:08:00Z";
    let avro_id = publisher
        .schema_id(TopicKind::Engagement)
        .ok_or_else(|| anyhow::anyhow!("no engagement schema registered"))?;
    let mut garbage_avro = vec![0];
    garbage_avro.extend_from_slice(&avro_id.to_be_bytes());
    garbage_avro.extend_from_slice(&[0xff; 40]);
    // A well-formed record followed by bytes of something else: not counted.
    let mut overlong_avro = publisher.encode(
        &Event::Engagement(EngagementEvent {
            event_id: "overlong".into(),
            ..match &odd_key {
                Event::Engagement(e) => e.clone(),
                _ => unreachable!(),
            }
        }),
        Format::Avro,
    )?;
    overlong_avro.extend_from_slice(b"\x02\x04xyz");
    let mut unknown_id = vec![0];
    unknown_id.extend_from_slice(&2_000_000_123u32.to_be_bytes());
    unknown_id.extend_from_slice(b"\x02ab");
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let nested_object = format!("{}1{}", r#"{"a":"#.repeat(50_000), "}".repeat(50_000));
    let conversion = |extra: &str| {
        format!(r#"{{"event_id":"h","occurred_at":"{at}","campaign_id":"campaign-000","user_id":"u","kind":"purchase"{extra}}}"#)
            .into_bytes()
    };
    let corpus: Vec<(&str, &[u8], Vec<u8>, &str)> = vec![
        (&topics.engagement, b"k", engagement_json(at, &"x".repeat(300_000), ""), "dimension_too_long"),
        (&topics.engagement, b"k", engagement_json(at, "c", &format!(r#","dwell_ms":{nested_object}"#)), "invalid_json"),
        (&topics.engagement, b"k", nested.clone().into_bytes(), "unrecognised_format"),
        (&topics.engagement, b"k", garbage_avro, "invalid_avro"),
        (&topics.engagement, b"k", overlong_avro, "invalid_avro"),
        (&topics.engagement, b"k", unknown_id, "unknown_schema"),
        (&topics.engagement, b"\xff\xfe\x00key", b"\xff\xfe\xfd not utf-8".to_vec(), "unrecognised_format"),
        (&topics.engagement, b"k", engagement_json(at, "c", r#","dwell_ms":1e300"#), "invalid_json"),
        (&topics.engagement, b"k", engagement_json(at, "c", r#","dwell_ms":99999999999999999999999"#), "invalid_json"),
        (&topics.conversion, b"k", conversion(r#","revenue":1e300"#), "value_out_of_range"),
        (&topics.conversion, b"k", conversion(r#","cost":-5e15"#), "value_out_of_range"),
        (&topics.engagement, b"k", engagement_json(at, "c", r#","dwell_ms":"long""#), "invalid_json"),
        (&topics.engagement, b"k", br#"{"event_id":"h","occurred_at":true,"content_id":"c","campaign_id":"c","channel":"web","user_id":"u","kind":"view"}"#.to_vec(), "invalid_json"),
        (&topics.engagement, b"k", Vec::new(), "empty_payload"),
        (&topics.content, b"k", br#"{"event_id":"h"}"#.to_vec(), "missing_field"),
        (&topics.engagement, b"k", engagement_json("1970-01-01T00:00:01Z", "c", ""), "absurd_timestamp"),
        // Larger than librdkafka's default message.max.bytes (1 MB), which
        // a broker here takes: forwarded whole.
        (&topics.engagement, b"k", [b"{".as_slice(), &[b'x'; 3 << 20]].concat(), "invalid_json"),
    ];
    for (topic, key, payload, _) in &corpus {
        publisher.send_raw(topic, None, Some(key), payload).await?;
    }
    let odd = publisher.encode(&odd_key, Format::Json)?;
    publisher
        .send_raw(&topics.engagement, None, Some(b"\xc3\x28odd"), &odd)
        .await?;
    let _report = publisher
        .publish(mix.assign(second.to_vec()), None, None)
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(180))
        .await?;

    let letters = read_topic_async(
        env.kafka(),
        &topics.dead_letter,
        corpus.len(),
        Duration::from_secs(60),
    )
    .await?;
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, _, kind) in &corpus {
        *want.entry((*kind).to_owned()).or_default() += 1;
    }
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for letter in &letters {
        *got.entry(header(letter, "reactor.error.kind")).or_default() += 1;
        assert!(!header(letter, "reactor.error").is_empty(), "no reason");
        // The original payload, whole.
        let payload = letter.payload().unwrap_or_default();
        assert!(
            corpus.iter().any(|(_, _, p, _)| p.as_slice() == payload),
            "a dead letter's payload ({} bytes, reactor.truncated {:?}) is none of the records sent",
            payload.len(),
            header(letter, "reactor.truncated")
        );
    }
    assert_eq!(
        got, want,
        "every hostile record is dead-lettered, with its reason"
    );
    reactor.stop()?;
    Ok(())
}

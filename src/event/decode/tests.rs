use super::*;
use crate::event::encode::{to_confluent_avro, to_json};
use crate::event::{EngagementKind, EventTime};

const T: i64 = 1_763_890_200_000; // 2025-11-23T09:30:00Z

fn engagement() -> Event {
    Event::Engagement(EngagementEvent {
        event_id: "e-1".into(),
        occurred_at: EventTime::from_millis(T),
        content_id: "content-7".into(),
        campaign_id: "campaign-3".into(),
        channel: "email".into(),
        user_id: "user-42".into(),
        kind: EngagementKind::Click,
        dwell_ms: Some(1234),
    })
}

fn conversion() -> Event {
    Event::Conversion(ConversionEvent {
        event_id: "c-1".into(),
        occurred_at: EventTime::from_millis(T + 5),
        campaign_id: "campaign-3".into(),
        content_id: None,
        channel: Some("web".into()),
        user_id: "user-42".into(),
        kind: "purchase".into(),
        revenue: Some(99.5),
        cost: None,
        currency: Some("EUR".into()),
    })
}

fn decoder(kind: TopicKind) -> Decoder {
    Decoder::new(kind, true).unwrap()
}

fn schema_text(kind: TopicKind) -> &'static str {
    AVRO_SCHEMAS.iter().find(|(k, _)| *k == kind).unwrap().1
}

fn avro(event: &Event, id: u32) -> Vec<u8> {
    to_confluent_avro(event, &reader_schema(event.topic_kind()).unwrap(), id).unwrap()
}

#[test]
fn embedded_schemas_parse() {
    for kind in TopicKind::ALL {
        reader_schema(kind).unwrap();
    }
}

#[test]
fn json_round_trips() {
    for event in [engagement(), conversion()] {
        let json = to_json(&event).unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains("\"2025-11-23T09:30:00"), "{text}");
        let (decoded, format) = decoder(event.topic_kind()).decode(Some(&json)).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(format, Format::Json);
    }
}

#[test]
fn json_accepts_millis_whitespace_and_unknown_fields() {
    let json = format!(
        "  {{\"event_id\":\"e\",\"occurred_at\":{T},\"content_id\":\"x\",\"campaign_id\":\"c\",\
         \"channel\":\"web\",\"user_id\":\"u\",\"kind\":\"view\",\"extra\":[1,2]}}"
    );
    let (event, _) = decoder(TopicKind::Engagement)
        .decode(Some(json.as_bytes()))
        .unwrap();
    let Event::Engagement(e) = event else {
        panic!()
    };
    assert_eq!(e.occurred_at.as_millis(), T);
    assert_eq!(e.kind, EngagementKind::View);
    assert_eq!(e.dwell_ms, None);
}

#[test]
fn avro_through_registered_schema_round_trips() {
    let mut decoder = decoder(TopicKind::Engagement);
    let event = engagement();
    let payload = avro(&event, 7);
    assert_eq!(decoder.missing_schema(Some(&payload)), Some(7));
    decoder.add_writer_schema(7, Some(schema_text(TopicKind::Engagement)));
    assert_eq!(decoder.missing_schema(Some(&payload)), None);
    let (decoded, format) = decoder.decode(Some(&payload)).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(format, Format::Avro);

    let mut decoder = self::decoder(TopicKind::Conversion);
    decoder.add_writer_schema(8, Some(schema_text(TopicKind::Conversion)));
    let event = conversion();
    assert_eq!(decoder.decode(Some(&avro(&event, 8))).unwrap().0, event);
}

#[test]
fn avro_from_an_older_writer_schema_fills_defaults() {
    // A producer still on a schema without `dwell_ms`.
    let old = r#"{"type":"record","name":"EngagementEvent","namespace":"io.reactor.events","fields":[
        {"name":"event_id","type":"string"},
        {"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"content_id","type":"string"},{"name":"campaign_id","type":"string"},
        {"name":"channel","type":"string"},{"name":"user_id","type":"string"},
        {"name":"kind","type":{"type":"enum","name":"EngagementKind","symbols":["impression","view","click","like","share","comment"]}}]}"#;
    let old_schema = Schema::parse_str(old).unwrap();
    let Event::Engagement(mut e) = engagement() else {
        panic!()
    };
    e.dwell_ms = None;
    let event = Event::Engagement(e);
    let payload = to_confluent_avro(&event, &old_schema, 3).unwrap();
    let mut decoder = decoder(TopicKind::Engagement);
    decoder.add_writer_schema(3, Some(old));
    assert_eq!(decoder.decode(Some(&payload)).unwrap().0, event);
}

#[test]
fn unknown_schema_id_is_dead_lettered() {
    let mut decoder = decoder(TopicKind::Engagement);
    let payload = avro(&engagement(), 99);
    decoder.add_writer_schema(99, None);
    let err = decoder.decode(Some(&payload)).unwrap_err();
    assert_eq!(err, DecodeError::UnknownSchemaId { schema_id: 99 });
    assert_eq!(err.kind(), "unknown_schema");
    assert_eq!(err.disposition(), Disposition::Skip);
}

#[test]
fn schema_of_another_topic_is_unusable() {
    let mut decoder = decoder(TopicKind::Engagement);
    decoder.add_writer_schema(5, Some(schema_text(TopicKind::Content)));
    let err = decoder.decode(Some(&avro(&conversion(), 5))).unwrap_err();
    assert!(
        matches!(err, DecodeError::UnusableSchema { schema_id: 5, .. }),
        "{err}"
    );
    decoder.add_writer_schema(6, Some("{not json"));
    let err = decoder.decode(Some(&avro(&conversion(), 6))).unwrap_err();
    assert!(err.to_string().contains("not a valid Avro schema"), "{err}");
}

#[test]
fn avro_without_a_registry_says_so() {
    let decoder = Decoder::new(TopicKind::Engagement, false).unwrap();
    let payload = avro(&engagement(), 1);
    assert_eq!(decoder.missing_schema(Some(&payload)), None);
    let err = decoder.decode(Some(&payload)).unwrap_err();
    assert_eq!(err, DecodeError::NoSchemaRegistry { schema_id: 1 });
}

#[test]
fn corrupt_avro_body_is_an_avro_error() {
    let mut decoder = decoder(TopicKind::Engagement);
    decoder.add_writer_schema(7, Some(schema_text(TopicKind::Engagement)));
    let mut payload = avro(&engagement(), 7);
    payload.truncate(12);
    let err = decoder.decode(Some(&payload)).unwrap_err();
    assert!(
        matches!(err, DecodeError::Avro { schema_id: 7, .. }),
        "{err}"
    );
    assert_eq!(err.kind(), "invalid_avro");
}

#[test]
fn framing_errors() {
    let decoder = decoder(TopicKind::Content);
    assert_eq!(decoder.decode(None).unwrap_err(), DecodeError::EmptyPayload);
    assert_eq!(
        decoder.decode(Some(b"")).unwrap_err(),
        DecodeError::EmptyPayload
    );
    assert_eq!(
        decoder.decode(Some(b"   ")).unwrap_err(),
        DecodeError::EmptyPayload
    );
    assert_eq!(
        decoder.decode(Some(&[0, 0, 1])).unwrap_err(),
        DecodeError::Truncated { len: 3 }
    );
    let err = decoder.decode(Some(b"\xff\xfe garbage")).unwrap_err();
    assert_eq!(err, DecodeError::UnknownFormat { first_byte: 0xff });
    assert!(err.to_string().contains("0xff"), "{err}");
    assert_eq!(
        decoder.decode(Some(b"[1,2]")).unwrap_err().kind(),
        "unrecognised_format"
    );
}

#[test]
fn missing_required_field_is_named() {
    let json = br#"{"event_id":"e","occurred_at":1763890200000,"content_id":"x","channel":"web","user_id":"u","kind":"view"}"#;
    let err = decoder(TopicKind::Engagement)
        .decode(Some(json))
        .unwrap_err();
    assert_eq!(err.kind(), "missing_field");
    assert!(err.to_string().contains("campaign_id"), "{err}");
}

#[test]
fn malformed_json_and_wrong_types_are_invalid_json() {
    let decoder = decoder(TopicKind::Engagement);
    assert_eq!(
        decoder.decode(Some(b"{\"event_id\": ")).unwrap_err().kind(),
        "invalid_json"
    );
    let wrong_kind = br#"{"event_id":"e","occurred_at":1763890200000,"content_id":"x","campaign_id":"c","channel":"web","user_id":"u","kind":"teleport"}"#;
    let err = decoder.decode(Some(wrong_kind)).unwrap_err();
    assert!(err.to_string().contains("teleport"), "{err}");
}

#[test]
fn absurd_timestamps_are_rejected_in_both_formats() {
    let Event::Engagement(mut e) = engagement() else {
        panic!()
    };
    e.occurred_at = EventTime::from_millis(T / 1000); // seconds sent as milliseconds
    let event = Event::Engagement(e);
    let mut decoder = decoder(TopicKind::Engagement);
    decoder.add_writer_schema(1, Some(schema_text(TopicKind::Engagement)));
    for payload in [to_json(&event).unwrap(), avro(&event, 1)] {
        let err = decoder.decode(Some(&payload)).unwrap_err();
        assert_eq!(err.kind(), "absurd_timestamp", "{err}");
        assert!(err.to_string().contains("1970-01-21"), "{err}");
    }
}

#[test]
fn field_rules() {
    let decoder = decoder(TopicKind::Conversion);
    let check = |edit: fn(&mut ConversionEvent), field: &str| {
        let Event::Conversion(mut e) = conversion() else {
            panic!()
        };
        edit(&mut e);
        let err = decoder
            .decode(Some(&to_json(&Event::Conversion(e)).unwrap()))
            .unwrap_err();
        assert!(
            matches!(&err, DecodeError::InvalidField { field: f, .. } if *f == field),
            "{field}: {err}"
        );
    };
    check(|e| e.kind = "Purchase!".into(), "kind");
    check(|e| e.kind = String::new(), "kind");
    check(|e| e.currency = Some("euro".into()), "currency");
    check(|e| e.campaign_id = " ".into(), "campaign_id");
    check(|e| e.event_id = String::new(), "event_id");

    let Event::Engagement(mut e) = engagement() else {
        panic!()
    };
    e.dwell_ms = Some(-1);
    let err = self::decoder(TopicKind::Engagement)
        .decode(Some(&to_json(&Event::Engagement(e)).unwrap()))
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_field");
}

#[test]
fn decoding_into_a_reused_event_gives_what_decode_gives() {
    let full = to_json(&conversion()).unwrap();
    let Event::Conversion(mut sparse) = conversion() else {
        unreachable!()
    };
    sparse.channel = None;
    sparse.revenue = None;
    sparse.currency = None;
    sparse.content_id = Some("content-9".into());
    let sparse = to_json(&Event::Conversion(sparse)).unwrap();
    let payloads: Vec<Vec<u8>> = vec![
        full.clone(),
        sparse.clone(),
        br#"{"event_id": "x"}"#.to_vec(),
        br#"{"event_id": "c-2", "occurred_at": 1763890200000, "campaign_id": "c", "user_id": "u", "kind": "signup", "cost": 1.5}"#.to_vec(),
        b"{not json".to_vec(),
        to_json(&engagement()).unwrap(),
        full,
        sparse,
    ];
    let decoder = decoder(TopicKind::Conversion);
    let mut slot = Some(engagement()); // of another kind: replaced
    for payload in &payloads {
        let want = decoder.decode(Some(payload));
        let got = decoder
            .decode_reusing(Some(payload), &mut slot)
            .map(|(event, format)| (event.clone(), format));
        assert_eq!(
            got.map_err(|e| e.to_string()),
            want.map_err(|e| e.to_string()),
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
}

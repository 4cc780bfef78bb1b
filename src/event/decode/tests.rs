use super::*;
use crate::event::encode::{to_confluent_avro, to_json};
use crate::event::{ConversionEvent, EngagementEvent, EngagementKind, EventTime};

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
    Decoder::new(kind, true, Limits::default()).unwrap()
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
fn a_writer_with_a_new_enum_symbol_fails_only_the_records_that_carry_it() {
    // A producer added "bookmark" to EngagementKind: its clicks still
    // count; its bookmarks are dead-lettered, naming the symbol.
    let newer =
        schema_text(TopicKind::Engagement).replace(r#""comment"]"#, r#""comment", "bookmark"]"#);
    assert_ne!(newer, schema_text(TopicKind::Engagement));
    let writer = Schema::parse_str(&newer).unwrap();
    let mut decoder = decoder(TopicKind::Engagement);
    decoder.add_writer_schema(4, Some(&newer));
    let click = to_confluent_avro(&engagement(), &writer, 4).unwrap();
    assert_eq!(decoder.decode(Some(&click)).unwrap().0, engagement());
    // The same record with the new symbol: the enum's index is the last
    // varint before the dwell_ms union; rewrite it from click (2) to
    // bookmark (6, zigzag 12).
    let at = click.len() - 3; // kind, union branch 1, dwell_ms 1234 (2 bytes)
    let mut bookmark = click.clone();
    assert_eq!(bookmark[at - 1], 4, "zigzag of click's index 2");
    bookmark[at - 1] = 12;
    let err = decoder.decode(Some(&bookmark)).unwrap_err();
    assert!(
        matches!(err, DecodeError::Avro { schema_id: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("bookmark"), "{err}");
    assert_eq!(err.disposition(), Disposition::Skip);
}

#[test]
fn a_writer_that_made_a_field_optional_fails_only_the_records_without_it() {
    // A producer made content_id optional (a change a registry in BACKWARD
    // mode accepts): its records with a content id count; one without is
    // dead-lettered on its own.
    let newer = schema_text(TopicKind::Engagement).replace(
        r#"{"name": "content_id", "type": "string"}"#,
        r#"{"name": "content_id", "type": ["null", "string"], "default": null}"#,
    );
    assert_ne!(newer, schema_text(TopicKind::Engagement));
    let writer = Schema::parse_str(&newer).unwrap();
    let mut decoder = decoder(TopicKind::Engagement);
    decoder.add_writer_schema(5, Some(&newer));
    let framed = |content: apache_avro::types::Value| {
        use apache_avro::types::Value as V;
        let Event::Engagement(e) = engagement() else {
            unreachable!()
        };
        let record = V::Record(vec![
            ("event_id".into(), V::String(e.event_id)),
            (
                "occurred_at".into(),
                V::TimestampMillis(e.occurred_at.as_millis()),
            ),
            ("content_id".into(), content),
            ("campaign_id".into(), V::String(e.campaign_id)),
            ("channel".into(), V::String(e.channel)),
            ("user_id".into(), V::String(e.user_id)),
            ("kind".into(), V::Enum(2, "click".into())),
            ("dwell_ms".into(), V::Union(1, Box::new(V::Long(1234)))),
        ]);
        let mut payload = vec![0, 0, 0, 0, 5];
        payload.extend(apache_avro::to_avro_datum(&writer, record).unwrap());
        payload
    };
    use apache_avro::types::Value as V;
    let with = framed(V::Union(1, Box::new(V::String("content-7".into()))));
    assert_eq!(decoder.decode(Some(&with)).unwrap().0, engagement());
    let without = framed(V::Union(0, Box::new(V::Null)));
    let err = decoder.decode(Some(&without)).unwrap_err();
    assert_eq!(err.kind(), "invalid_avro", "{err}");
    // A union the reader cannot read in any branch is still refused whole.
    let other = schema_text(TopicKind::Engagement).replace(
        r#"{"name": "content_id", "type": "string"}"#,
        r#"{"name": "content_id", "type": ["null", "int"]}"#,
    );
    decoder.add_writer_schema(6, Some(&other));
    let payload = avro(&engagement(), 6);
    assert_eq!(
        decoder.decode(Some(&payload)).unwrap_err().kind(),
        "unknown_schema"
    );
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
fn a_batch_of_unknown_schema_ids_is_kept_whole_however_many_came_before() {
    // Garbage ids are forgotten to bound memory, but never the ids of the
    // batch being added: the batch is decoded with them next.
    let mut decoder = decoder(TopicKind::Engagement);
    for id in 0..4_090 {
        decoder.add_writer_schema(id, None);
    }
    let batch: Vec<u32> = (10_000..10_020).collect();
    decoder.add_writer_schemas(batch.iter().map(|&id| (id, None)));
    for &id in &batch {
        let payload = avro(&engagement(), id);
        assert_eq!(decoder.missing_schema(Some(&payload)), None, "id {id}");
        let err = decoder.decode(Some(&payload)).unwrap_err();
        assert_eq!(err, DecodeError::UnknownSchemaId { schema_id: id });
    }
    // The older garbage was forgotten, to be asked again if it comes back.
    assert_eq!(
        decoder.missing_schema(Some(&avro(&engagement(), 1))),
        Some(1)
    );
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
    let decoder = Decoder::new(TopicKind::Engagement, false, Limits::default()).unwrap();
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
fn bytes_after_the_avro_body_are_an_avro_error() {
    let mut decoder = decoder(TopicKind::Engagement);
    decoder.add_writer_schema(7, Some(schema_text(TopicKind::Engagement)));
    let mut payload = avro(&engagement(), 7);
    let body = payload.len() - crate::event::framing::HEADER_LEN;
    payload.extend_from_slice(&[0x02, 0x00]);
    let err = decoder.decode(Some(&payload)).unwrap_err();
    assert!(
        matches!(err, DecodeError::Avro { schema_id: 7, .. }),
        "{err}"
    );
    assert_eq!(err.kind(), "invalid_avro");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "2 bytes left after the record's last field ({body} of {} read)",
            body + 2
        )),
        "{text}"
    );
}

#[test]
fn an_avro_body_cut_short_says_so_with_its_length() {
    let mut decoder = decoder(TopicKind::Engagement);
    decoder.add_writer_schema(7, Some(schema_text(TopicKind::Engagement)));
    let payload = avro(&engagement(), 7);
    let header = crate::event::framing::HEADER_LEN;
    for cut in 1..payload.len() - header {
        let short = &payload[..payload.len() - cut];
        let err = decoder.decode(Some(short)).unwrap_err();
        assert_eq!(err.kind(), "invalid_avro", "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "the body ends before the record's last field ({} bytes)",
                short.len() - header
            )),
            "cut {cut}: {text}"
        );
    }
}

#[test]
fn framing_errors() {
    let decoder = decoder(TopicKind::Content);
    let empty = DecodeError::Framing(FramingError::Empty);
    assert_eq!(decoder.decode(None).unwrap_err(), empty);
    assert_eq!(decoder.decode(Some(b"")).unwrap_err(), empty);
    assert_eq!(decoder.decode(Some(b"   ")).unwrap_err(), empty);
    assert_eq!(empty.kind(), "empty_payload");
    assert_eq!(
        decoder.decode(Some(&[0, 0, 1])).unwrap_err(),
        DecodeError::Framing(FramingError::Truncated { len: 3 })
    );
    let err = decoder.decode(Some(b"\xff\xfe garbage")).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Framing(FramingError::UnknownFormat { first_byte: 0xff })
    );
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
    // Not UTF-8, inside a string or out of one.
    for payload in [
        &b"{\"event_id\":\"e\xff\",\"occurred_at\":1763890200000}"[..],
        &b"{\"event_id\":\"e\",\xfe}"[..],
    ] {
        let err = decoder.decode(Some(payload)).unwrap_err();
        assert_eq!(err.kind(), "invalid_json");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
    // Escapes still decode, UTF-8 too.
    let escaped = r#"{"event_id":"\u00e9t\u00e9 \"q\"","occurred_at":1763890200000,"content_id":"x","campaign_id":"ça","channel":"web","user_id":"u","kind":"click"}"#;
    let (Event::Engagement(e), _) = decoder.decode(Some(escaped.as_bytes())).unwrap() else {
        panic!("not an engagement")
    };
    assert_eq!(
        (e.event_id.as_str(), e.campaign_id.as_str()),
        ("été \"q\"", "ça")
    );
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
            matches!(&err, DecodeError::Invalid(Invalid::Field { field: f, .. }) if *f == field),
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

/// The decoder reads Avro with `serde_avro_fast`; these check it against
/// `apache_avro`'s generic decoding and schema resolution, which it replaced.
mod against_apache_avro {
    use apache_avro::types::Value;
    use proptest::prelude::*;

    use super::*;
    use crate::event::ContentEvent;

    fn generic(writer: &Schema, kind: TopicKind, body: &[u8]) -> Event {
        let reader = reader_schema(kind).unwrap();
        let value = apache_avro::from_avro_datum(writer, &mut &body[..], Some(&reader)).unwrap();
        match kind {
            TopicKind::Content => Event::Content(apache_avro::from_value(&value).unwrap()),
            TopicKind::Engagement => Event::Engagement(apache_avro::from_value(&value).unwrap()),
            TopicKind::Conversion => Event::Conversion(apache_avro::from_value(&value).unwrap()),
        }
    }

    fn fast(writer: &str, kind: TopicKind, body: &[u8], slot: &mut Event) -> Result<(), String> {
        if slot.topic_kind() != kind {
            *slot = Event::blank(kind);
        }
        decode_avro_into(&writer.parse().unwrap(), body, slot)
    }

    fn body(event: &Event) -> Vec<u8> {
        avro(event, 1)[5..].to_vec()
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 é€-]{0,12}"
    }

    fn event() -> impl Strategy<Value = Event> {
        let time = (946_684_800_000i64..4_102_444_799_999).prop_map(EventTime::from_millis);
        let number = prop::option::of(-1e9f64..1e9);
        prop_oneof![
            (
                text(),
                time.clone(),
                text(),
                text(),
                text(),
                text(),
                number.clone(),
                number.clone()
            )
                .prop_map(|(id, t, content, campaign, channel, ty, s, seo)| {
                    Event::Content(ContentEvent {
                        event_id: id,
                        occurred_at: t,
                        content_id: content,
                        campaign_id: campaign,
                        channel,
                        content_type: ty,
                        sentiment: s,
                        seo_score: seo,
                    })
                }),
            (
                text(),
                time.clone(),
                text(),
                text(),
                0usize..6,
                prop::option::of(any::<i64>())
            )
                .prop_map(|(id, t, content, campaign, kind, dwell)| {
                    Event::Engagement(EngagementEvent {
                        event_id: id,
                        occurred_at: t,
                        content_id: content,
                        campaign_id: campaign.clone(),
                        channel: campaign,
                        user_id: "u".into(),
                        kind: EngagementKind::ALL[kind],
                        dwell_ms: dwell,
                    })
                }),
            (
                text(),
                time,
                prop::option::of(text()),
                text(),
                number.clone(),
                number
            )
                .prop_map(|(id, t, content, kind, revenue, cost)| {
                    Event::Conversion(ConversionEvent {
                        event_id: id,
                        occurred_at: t,
                        campaign_id: "c".into(),
                        content_id: content.clone(),
                        channel: content,
                        user_id: "u".into(),
                        kind,
                        revenue,
                        cost,
                        currency: Some("EUR".into()),
                    })
                }),
        ]
    }

    proptest! {
        #[test]
        fn reads_what_the_generic_decoder_reads(event in event(), first in event()) {
            // Into a fresh event, and into a previous one of either kind
            // (reused buffers, or replaced).
            let kind = event.topic_kind();
            let writer = schema_text(kind);
            let body = body(&event);
            let mut slot = Event::blank(kind);
            fast(writer, kind, &body, &mut slot).unwrap();
            prop_assert_eq!(&slot, &generic(&reader_schema(kind).unwrap(), kind, &body));
            prop_assert_eq!(&slot, &event);
            let mut reused = first;
            fast(writer, kind, &body, &mut reused).unwrap();
            prop_assert_eq!(&reused, &event);
            // A truncated body fails, whatever the slot held.
            let cut = &body[..body.len() / 2];
            prop_assert!(fast(writer, kind, cut, &mut reused).is_err());
        }
    }

    #[test]
    fn an_evolved_writer_schema_reads_the_same_as_generic_resolution() {
        let text = r#"{"type": "record", "name": "EngagementEvent", "namespace": "io.reactor.events", "fields": [
                {"name": "tags", "type": {"type": "map", "values": {"type": "array", "items": "string"}}},
                {"name": "kind", "type": {"type": "enum", "name": "EngagementKind", "symbols": ["impression", "view", "click", "like", "share", "comment"]}},
                {"name": "campaign_id", "type": "string"},
                {"name": "score", "type": ["null", "float", "string"]},
                {"name": "event_id", "type": "string"},
                {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "content_id", "type": "string"},
                {"name": "checksum", "type": {"type": "fixed", "name": "md5", "size": 4}},
                {"name": "channel", "type": "string"},
                {"name": "user_id", "type": "string"},
                {"name": "nested", "type": {"type": "record", "name": "Nested", "fields": [{"name": "a", "type": "double"}, {"name": "b", "type": "bytes"}]}}
            ]}"#;
        let writer = Schema::parse_str(text).unwrap();
        let value = Value::Record(vec![
            (
                "tags".into(),
                Value::Map(
                    [(
                        "k".to_owned(),
                        Value::Array(vec![Value::String("x".into())]),
                    )]
                    .into(),
                ),
            ),
            ("kind".into(), Value::Enum(2, "click".into())),
            ("campaign_id".into(), Value::String("campaign-1".into())),
            ("score".into(), Value::Union(1, Box::new(Value::Float(0.5)))),
            ("event_id".into(), Value::String("e-9".into())),
            (
                "occurred_at".into(),
                Value::TimestampMillis(1_767_225_600_123),
            ),
            ("content_id".into(), Value::String("content-2".into())),
            ("checksum".into(), Value::Fixed(4, vec![1, 2, 3, 4])),
            ("channel".into(), Value::String("web".into())),
            ("user_id".into(), Value::String("u-1".into())),
            (
                "nested".into(),
                Value::Record(vec![
                    ("a".into(), Value::Double(1.0)),
                    ("b".into(), Value::Bytes(vec![9; 3])),
                ]),
            ),
        ]);
        let body = apache_avro::to_avro_datum(&writer, value).unwrap();
        let mut decoder = decoder(TopicKind::Engagement);
        decoder.add_writer_schema(5, Some(text));
        let mut payload = vec![0, 0, 0, 0, 5];
        payload.extend_from_slice(&body);
        let (event, _) = decoder.decode(Some(&payload)).unwrap();
        assert_eq!(event, generic(&writer, TopicKind::Engagement, &body));
        let Event::Engagement(e) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(
            (e.kind, e.dwell_ms, e.channel.as_str()),
            (EngagementKind::Click, None, "web")
        );
        let err = decoder
            .decode(Some(&payload[..payload.len() - 1]))
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_avro", "{err}");
    }
}

#[test]
fn limits_reject_long_dimensions_and_absurd_magnitudes() {
    let decoder = decoder(TopicKind::Conversion);
    let check = |edit: fn(&mut ConversionEvent), kind: &str, field: &str| {
        let Event::Conversion(mut e) = conversion() else {
            panic!()
        };
        edit(&mut e);
        let err = decoder
            .decode(Some(&to_json(&Event::Conversion(e)).unwrap()))
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.to_string().contains(field), "{err}");
    };
    check(
        |e| e.campaign_id = "c".repeat(257),
        "dimension_too_long",
        "limits.max_dimension_bytes",
    );
    check(
        |e| e.content_id = Some("x".repeat(900_000)),
        "dimension_too_long",
        "content_id",
    );
    check(
        |e| e.revenue = Some(1e300),
        "value_out_of_range",
        "limits.max_abs_value",
    );
    check(|e| e.cost = Some(-2e15), "value_out_of_range", "cost");
    // At the limits: accepted.
    let Event::Conversion(mut e) = conversion() else {
        panic!()
    };
    e.campaign_id = "c".repeat(256);
    e.revenue = Some(1e15);
    assert!(decoder
        .decode(Some(&to_json(&Event::Conversion(e)).unwrap()))
        .is_ok());
}

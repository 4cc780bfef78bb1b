//! Publishes derived events (rollups, trends, anomalies) to Kafka.
//!
//! Events are encoded as JSON or as Confluent-framed Avro with the schemas
//! in `schemas/avro/`, registered at start under `<topic>-value`. A batch is
//! acknowledged only once the broker has every event of it; failed sends are
//! retried with back-off, so a partition's checkpoint never passes a window
//! whose derived events are not published. Copies published again after a
//! restart carry the same deterministic ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tracing::warn;

use crate::config::{DerivedConfig, DerivedFormat, TopicsConfig};
use crate::derived::{self, DerivedEvent, DerivedKind, Outgoing, RollupEventView, RollupSelection};
use crate::error::{Classified, Disposition};
use crate::event::framing;
use crate::kafka::producer::{broken_producer_remedy, classify, ProduceFailure};
use crate::registry::SchemaRegistry;
use crate::retry::{pause, Backoff};
use crate::rollup::Rollup;
use crate::telemetry::metrics;

/// The Avro schema of each derived event kind (`schemas/avro/*.avsc`).
pub const DERIVED_SCHEMAS: [(DerivedKind, &str); 3] = [
    (
        DerivedKind::Rollup,
        include_str!("../../schemas/avro/rollup.avsc"),
    ),
    (
        DerivedKind::Trend,
        include_str!("../../schemas/avro/trend.avsc"),
    ),
    (
        DerivedKind::Anomaly,
        include_str!("../../schemas/avro/anomaly.avsc"),
    ),
];

/// Why derived events could not be set up or encoded. Either is a bug or a
/// configuration problem, not something retrying fixes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DerivedError {
    /// An embedded schema does not parse.
    #[error("embedded Avro schema for {kind} events: {message}")]
    Schema {
        /// Which.
        kind: &'static str,
        /// Why.
        message: String,
    },
    /// `derived.rollup_metrics` names a metric Reactor does not have.
    #[error("derived.rollup_metrics: {0}; name metrics as they are stored (engagement.click, engagement.dwell_ms, conversion.<kind>, content.published, ...) or whole sections (engagement.*, conversion.*, content.*)")]
    RollupMetric(#[from] crate::rollup::UnknownMetric),
    /// Avro output without a registry to register its schemas in.
    #[error("derived.format = \"avro\" needs schema_registry.url; set it, or use derived.format = \"json\"")]
    NoRegistry,
    /// Registering a schema failed.
    #[error("cannot register the {kind} event schema under subject {subject:?}: {message}; check schema_registry.url and that the registry accepts new schemas, or set derived.format = \"json\"")]
    Register {
        /// Which.
        kind: &'static str,
        /// Under which subject.
        subject: String,
        /// Why.
        message: String,
    },
    /// An event does not fit its schema.
    #[error("encoding a {kind} event: {message}")]
    Encode {
        /// Which.
        kind: &'static str,
        /// Why.
        message: String,
    },
    /// The broker refuses the event for good (authorization, size).
    #[error("cannot publish to {topic}: {source}")]
    Refused {
        /// Where.
        topic: String,
        /// Why.
        #[source]
        source: KafkaError,
    },
}

impl Classified for DerivedError {
    /// A bug or a configuration problem: retrying cannot fix either.
    fn disposition(&self) -> Disposition {
        Disposition::Fatal
    }

    fn remedy(&self) -> Option<std::borrow::Cow<'static, str>> {
        match self {
            DerivedError::Refused { source, .. } if broken_producer_remedy(source).is_some() => {
                broken_producer_remedy(source).map(Into::into)
            }
            DerivedError::Refused { topic, .. } => Some(format!("grant Reactor's Kafka principal WRITE (and DESCRIBE) on {topic} (topics.rollups, topics.trends, topics.anomalies), or raise the topic's max.message.bytes").into()),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Encoding {
    Json,
    /// The schema of each kind, and its id in the registry.
    Avro(HashMap<DerivedKind, (serde_avro_fast::Schema, u32)>),
}

/// Publishes derived events. Cheap to clone.
#[derive(Clone)]
pub struct DerivedSink {
    producer: FutureProducer,
    topics: Arc<HashMap<DerivedKind, String>>,
    encoding: Arc<Encoding>,
    rollups: Arc<RollupSelection>,
}

impl std::fmt::Debug for DerivedSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivedSink")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

/// How long registering a schema is retried while the registry does not
/// answer, as at start for ClickHouse and the brokers.
const REGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Registers `text` under `subject`, retrying what may pass (the registry
/// unreachable, overloaded) for up to [`REGISTER_TIMEOUT`].
async fn register(
    registry: &SchemaRegistry,
    subject: &str,
    text: &str,
) -> Result<u32, crate::registry::RegistryError> {
    use crate::error::{Classified as _, Disposition};
    let started = std::time::Instant::now();
    let mut backoff = crate::retry::Backoff::new(
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(4),
    );
    loop {
        match registry.register_avro(subject, text).await {
            Ok(id) => return Ok(id),
            Err(e)
                if e.disposition() == Disposition::Retry
                    && started.elapsed() < REGISTER_TIMEOUT =>
            {
                let delay = backoff.next_delay();
                tracing::warn!(%subject, error = %e, retry_in = ?delay, "cannot register a derived event schema yet; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl DerivedSink {
    /// A sink as `[derived]` says; for Avro, registers the three schemas
    /// first (retrying for up to 30 s while the registry does not answer).
    pub async fn new(
        producer: FutureProducer,
        topics: &TopicsConfig,
        config: &DerivedConfig,
        registry: Option<&SchemaRegistry>,
    ) -> Result<Self, DerivedError> {
        let topics: HashMap<DerivedKind, String> = [
            (DerivedKind::Rollup, topics.rollups.clone()),
            (DerivedKind::Trend, topics.trends.clone()),
            (DerivedKind::Anomaly, topics.anomalies.clone()),
        ]
        .into();
        let encoding = match (config.format, registry) {
            (DerivedFormat::Json, _) => Encoding::Json,
            (DerivedFormat::Avro, None) => return Err(DerivedError::NoRegistry),
            (DerivedFormat::Avro, Some(registry)) => {
                let mut schemas = HashMap::new();
                for (kind, text) in DERIVED_SCHEMAS {
                    let schema = text.parse::<serde_avro_fast::Schema>().map_err(|e| {
                        DerivedError::Schema {
                            kind: kind.as_str(),
                            message: e.to_string(),
                        }
                    })?;
                    let subject = format!("{}-value", topics.get(&kind).map_or("", String::as_str));
                    let id = register(registry, &subject, text).await.map_err(|e| {
                        DerivedError::Register {
                            kind: kind.as_str(),
                            subject: subject.clone(),
                            message: e.to_string(),
                        }
                    })?;
                    let _previous = schemas.insert(kind, (schema, id));
                }
                Encoding::Avro(schemas)
            }
        };
        Ok(DerivedSink {
            producer,
            topics: Arc::new(topics),
            encoding: Arc::new(encoding),
            rollups: Arc::new(RollupSelection::new(
                config.rollup_events,
                &config.rollup_metrics,
            )?),
        })
    }

    /// A batch's derived events, encoded as they go on the wire: a rollup
    /// event per row `[derived]` selects, then
    /// `signals` (trends, anomalies). Rollup events are encoded straight
    /// from the rows, without copying their strings.
    pub fn encode_batch(
        &self,
        rows: &[Rollup],
        signals: &[DerivedEvent],
    ) -> Result<Vec<EncodedEvent>, DerivedError> {
        derived::outgoing(rows, signals, &self.rollups)
            .map(|event| match event {
                Outgoing::Rollup(row) => {
                    let mut id = [0; derived::ID_LENGTH];
                    let view = RollupEventView::of(row, &mut id);
                    Ok(EncodedEvent {
                        kind: DerivedKind::Rollup,
                        key: view.key().to_owned(),
                        payload: encode_as(&self.encoding, DerivedKind::Rollup, &view)?,
                    })
                }
                Outgoing::Signal(signal) => Ok(EncodedEvent {
                    kind: signal.kind(),
                    key: signal.key().to_owned(),
                    payload: self.encode(signal)?,
                }),
            })
            .collect()
    }

    /// Encodes one event as it goes on the wire.
    pub fn encode(&self, event: &DerivedEvent) -> Result<Vec<u8>, DerivedError> {
        encode(&self.encoding, event)
    }

    /// Publishes `events` and waits until the broker has all of them,
    /// retrying failures with back-off. `Ok(false)`: `stop` resolved first.
    /// The events are handed to the producer in `turn` (see [`Turn`]).
    pub async fn publish(
        &self,
        events: &[EncodedEvent],
        mut turn: Turn,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<bool, DerivedError> {
        tokio::pin!(stop);
        if let Some(after) = turn.after.take() {
            tokio::select! {
                _done = after => {}
                () = &mut stop => return Ok(false),
            }
        }
        let mut pending: Vec<usize> = (0..events.len()).collect();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            let mut deliveries: Vec<(usize, DeliveryFuture)> = Vec::with_capacity(pending.len());
            let mut failed = Vec::new();
            for i in pending {
                let event = &events[i];
                let topic = self.topics.get(&event.kind).map_or("", String::as_str);
                let mut record = FutureRecord::to(topic)
                    .key(event.key.as_bytes())
                    .payload(event.payload.as_slice());
                loop {
                    match self.producer.send_result(record) {
                        Ok(delivery) => {
                            deliveries.push((i, delivery));
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            // The local queue is full: let it drain.
                            record = back;
                            tokio::select! {
                                () = tokio::time::sleep(Duration::from_millis(5)) => {},
                                () = &mut stop => return Ok(false),
                            }
                        }
                        Err((e, _)) => {
                            if classify(&e) != ProduceFailure::Retry {
                                return Err(DerivedError::Refused {
                                    topic: topic.to_owned(),
                                    source: e,
                                });
                            }
                            warn!(topic, error = %e, "cannot enqueue a derived event; retrying");
                            failed.push(i);
                            break;
                        }
                    }
                }
            }
            turn.handed_over();
            let mut published: HashMap<DerivedKind, u64> = HashMap::new();
            for (i, delivery) in deliveries {
                let kind = events[i].kind;
                tokio::select! {
                    result = delivery => match result {
                        Ok(Ok(_)) => *published.entry(kind).or_default() += 1,
                        Ok(Err((e, _))) => {
                            metrics::derived_failure(kind.as_str());
                            if classify(&e) != ProduceFailure::Retry {
                                let topic = self.topics.get(&kind).cloned().unwrap_or_default();
                                return Err(DerivedError::Refused { topic, source: e });
                            }
                            warn!(kind = kind.as_str(), error = %e, "publishing a derived event failed; retrying");
                            failed.push(i);
                        }
                        Err(_canceled) => failed.push(i),
                    },
                    () = &mut stop => return Ok(false),
                }
            }
            for (kind, count) in published {
                metrics::derived_published(kind.as_str(), count);
            }
            if failed.is_empty() {
                return Ok(true);
            }
            if !pause(backoff.next_delay(), stop.as_mut()).await {
                return Ok(false);
            }
            pending = failed;
        }
    }
}

/// The order in which batches of one partition hand their derived events
/// to the producer: the order the batches were closed in, so that events
/// of a series reach their topic partition in window order (the producer
/// is idempotent, so it keeps the order it is given), whichever task ships
/// first.
#[derive(Debug, Default)]
pub struct Turn {
    /// Resolves once the batch before has handed its events over (or given
    /// up).
    after: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Tells the batch after that this one has.
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Turn {
    /// The turn after the one `last` waits for; `last` becomes this one's.
    pub fn next(last: &mut Option<tokio::sync::oneshot::Receiver<()>>) -> Turn {
        let (done, handed_over) = tokio::sync::oneshot::channel();
        Turn {
            after: last.replace(handed_over),
            done: Some(done),
        }
    }

    /// This batch has handed its events to the producer.
    fn handed_over(&mut self) {
        if let Some(done) = self.done.take() {
            let _ignored = done.send(());
        }
    }
}

fn encode(encoding: &Encoding, event: &DerivedEvent) -> Result<Vec<u8>, DerivedError> {
    match event {
        DerivedEvent::Rollup(e) => encode_as(encoding, DerivedKind::Rollup, e),
        DerivedEvent::Trend(e) => encode_as(encoding, DerivedKind::Trend, e),
        DerivedEvent::Anomaly(e) => encode_as(encoding, DerivedKind::Anomaly, e),
    }
}

/// Encodes `event`, a `kind` event, as JSON or Confluent-framed Avro.
fn encode_as<T: serde::Serialize>(
    encoding: &Encoding,
    kind: DerivedKind,
    event: &T,
) -> Result<Vec<u8>, DerivedError> {
    let error = |message: String| DerivedError::Encode {
        kind: kind.as_str(),
        message,
    };
    match encoding {
        Encoding::Json => {
            // Room for a whole rollup event (about 450 bytes) at once.
            let mut out = Vec::with_capacity(512);
            serde_json::to_writer(&mut out, event).map_err(|e| error(e.to_string()))?;
            Ok(out)
        }
        Encoding::Avro(schemas) => {
            let (schema, id) = schemas
                .get(&kind)
                .ok_or_else(|| error("no schema registered".into()))?;
            // Written straight from the struct (serde_avro_fast), after the
            // framing, in one buffer: building an `apache_avro::Value` first
            // doubled Reactor's CPU per event on sparse input (BENCHMARKS.md).
            let mut out = Vec::with_capacity(512);
            out.extend_from_slice(&framing::confluent_header(*id));
            let mut config = serde_avro_fast::ser::SerializerConfig::new(schema);
            serde_avro_fast::to_datum(event, out, &mut config).map_err(|e| error(e.to_string()))
        }
    }
}

/// A derived event encoded as it goes on the wire.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    /// Which kind (and so which topic).
    pub kind: DerivedKind,
    /// The message key (the campaign).
    pub key: String,
    /// JSON or Confluent-framed Avro.
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derived::{rollup_event, signals_of_row, AnomalyEvent, RollupEvent, TrendEvent};
    use crate::rollup::{Dimensions, Rollup};

    /// Each batch's turn comes once the batch before has handed its events
    /// over, or given up (dropped its turn); the first needs no one.
    #[test]
    fn turns_come_in_the_order_the_batches_were_closed() {
        use futures::FutureExt as _;
        let mut last = None;
        let mut first = Turn::next(&mut last);
        let mut second = Turn::next(&mut last);
        let third = Turn::next(&mut last);
        assert!(first.after.is_none());
        let mut second_waits = second.after.take().expect("the second waits");
        let mut third_waits = third.after.expect("the third waits");
        assert_eq!((&mut second_waits).now_or_never(), None);
        first.handed_over();
        assert_eq!((&mut second_waits).now_or_never(), Some(Ok(())));
        assert_eq!((&mut third_waits).now_or_never(), None);
        drop(second); // gave up before its events went out
        assert!((&mut third_waits).now_or_never().is_some());
    }

    fn avro() -> Encoding {
        Encoding::Avro(
            DERIVED_SCHEMAS
                .iter()
                .enumerate()
                .map(|(i, (kind, text))| (*kind, (text.parse().unwrap(), 100 + i as u32)))
                .collect(),
        )
    }

    /// The Avro body apache-avro, the reference implementation, writes for
    /// `event` (through its `Value`, checked against the schema).
    fn reference_avro(event: &DerivedEvent) -> Vec<u8> {
        fn write<T: serde::Serialize>(kind: DerivedKind, event: &T) -> Vec<u8> {
            let text = DERIVED_SCHEMAS.iter().find(|(k, _)| *k == kind).unwrap().1;
            let schema = apache_avro::Schema::parse_str(text).unwrap();
            let value = apache_avro::to_value(event)
                .unwrap()
                .resolve(&schema)
                .unwrap();
            apache_avro::to_avro_datum(&schema, value).unwrap()
        }
        match event {
            DerivedEvent::Rollup(e) => write(DerivedKind::Rollup, e),
            DerivedEvent::Trend(e) => write(DerivedKind::Trend, e),
            DerivedEvent::Anomaly(e) => write(DerivedKind::Anomaly, e),
        }
    }

    /// Rollup events are encoded from a view of the row: the bytes must be
    /// those of the owned event (field names, order, `null`s, escapes).
    #[test]
    fn a_rollup_event_encodes_from_its_row_as_the_owned_event_does() {
        let measured = Rollup {
            metric: "engagement.dwell_ms".into(),
            dimensions: Dimensions {
                campaign_id: "c\"1".into(),
                content_id: "é\n☃".into(),
                channel: String::new(),
            },
            window_start: crate::event::EventTime::from_millis(1_700_000_000_000),
            window_end: crate::event::EventTime::from_millis(1_700_000_060_000),
            count: 3,
            sum: 6.5,
            min: -1.0,
            max: 3.25,
            avg: 2.1666666666666665,
            p50: Some(2.0),
            p90: Some(3.0),
            p95: Some(3.25),
            p99: Some(3.25),
            trend_slope: Some(-1.5),
            anomaly_score: Some(7.0),
            source_topic: "engagement.events".into(),
            source_partition: 3,
        };
        let counted = Rollup {
            metric: "engagement.click".into(),
            p50: None,
            p90: None,
            p95: None,
            p99: None,
            trend_slope: None,
            anomaly_score: None,
            ..measured.clone()
        };
        for encoding in [Encoding::Json, avro()] {
            for row in [&measured, &counted] {
                let mut id = [0; derived::ID_LENGTH];
                let view = RollupEventView::of(row, &mut id);
                let from_view = encode_as(&encoding, DerivedKind::Rollup, &view).unwrap();
                let owned = DerivedEvent::Rollup(rollup_event(row));
                assert_eq!(from_view, encode(&encoding, &owned).unwrap());
                assert_eq!(view.key(), owned.key());
                if let Encoding::Avro(_) = encoding {
                    assert_eq!(from_view[..5], [0, 0, 0, 0, 100]);
                    assert_eq!(from_view[5..], reference_avro(&owned));
                }
            }
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_avro_schema_and_json() {
        let row = Rollup {
            metric: "engagement.dwell_ms".into(),
            dimensions: Dimensions {
                campaign_id: "c".into(),
                content_id: "x".into(),
                channel: String::new(),
            },
            window_start: crate::event::EventTime::from_millis(1_700_000_000_000),
            window_end: crate::event::EventTime::from_millis(1_700_000_060_000),
            count: 3,
            sum: 6.0,
            min: 1.0,
            max: 3.0,
            avg: 2.0,
            p50: Some(2.0),
            trend_slope: Some(-1.5),
            source_topic: "engagement.events".into(),
            ..Rollup::default()
        };
        let trend = crate::aggregate::TrendUpdate {
            slope: -1.5,
            previous: Some(2.0),
            change: Some(crate::aggregate::TrendChange::SignChange),
        };
        let score = crate::aggregate::Score {
            expected: 20.0,
            score: -6.0,
            own: 6.0,
            anomalous: true,
            escalation: true,
        };
        let mut events = vec![DerivedEvent::Rollup(rollup_event(&row))];
        events.extend(signals_of_row(
            &row,
            Some(&trend),
            Some(&score),
            Some(0),
            2.0,
            (10.0, 4.0),
        ));
        assert_eq!(events.len(), 3);
        let encoding = avro();
        for event in &events {
            let bytes = encode(&encoding, event).unwrap();
            let Encoding::Avro(schemas) = &encoding else {
                unreachable!()
            };
            let id = schemas[&event.kind()].1;
            assert_eq!(bytes[..5], framing::confluent_header(id));
            // The bytes apache-avro writes, and what it reads back.
            assert_eq!(bytes[5..], reference_avro(event));
            let text = DERIVED_SCHEMAS
                .iter()
                .find(|(k, _)| *k == event.kind())
                .unwrap()
                .1;
            let schema = apache_avro::Schema::parse_str(text).unwrap();
            let value = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).unwrap();
            match event {
                DerivedEvent::Rollup(e) => {
                    assert_eq!(&apache_avro::from_value::<RollupEvent>(&value).unwrap(), e)
                }
                DerivedEvent::Trend(e) => {
                    assert_eq!(&apache_avro::from_value::<TrendEvent>(&value).unwrap(), e)
                }
                DerivedEvent::Anomaly(e) => {
                    assert_eq!(&apache_avro::from_value::<AnomalyEvent>(&value).unwrap(), e)
                }
            }
            let json = encode(&Encoding::Json, event).unwrap();
            let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(parsed["id"], event.id());
        }
    }

    fn any_f64() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
            Just(-0.0),
            -1e15..1e15,
        ]
    }

    proptest::proptest! {
        /// Any row's rollup event is written as apache-avro writes it.
        #[test]
        fn any_rollup_event_is_written_as_the_reference_writes_it(
            metric in ".{0,16}",
            campaign in ".{0,16}",
            content in "[\\\\\"\\x00-\\x1f a-zé☃]{0,16}",
            channel in ".{0,8}",
            start in proptest::num::i64::ANY,
            size in 1_i64..1_000_000_000,
            count in proptest::num::u64::ANY,
            values in proptest::collection::vec(any_f64(), 4),
            optional in proptest::collection::vec(proptest::option::of(any_f64()), 6),
            partition in proptest::num::i32::ANY,
        ) {
            let row = Rollup {
                metric: metric.into(),
                dimensions: Dimensions { campaign_id: campaign, content_id: content, channel },
                window_start: crate::event::EventTime::from_millis(start),
                window_end: crate::event::EventTime::from_millis(start.saturating_add(size)),
                count,
                sum: values[0],
                min: values[1],
                max: values[2],
                avg: values[3],
                p50: optional[0],
                p90: optional[1],
                p95: optional[2],
                p99: optional[3],
                trend_slope: optional[4],
                anomaly_score: optional[5],
                source_topic: "engagement.events".into(),
                source_partition: partition,
            };
            let mut id = [0; derived::ID_LENGTH];
            let view = RollupEventView::of(&row, &mut id);
            let bytes = encode_as(&avro(), DerivedKind::Rollup, &view).unwrap();
            proptest::prop_assert_eq!(&bytes[5..], reference_avro(&DerivedEvent::Rollup(rollup_event(&row))));
        }
    }
}

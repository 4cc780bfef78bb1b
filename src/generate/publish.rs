//! Publishing events to Kafka in JSON or Confluent Avro, at a given rate.

use std::time::{Duration, Instant};

use apache_avro::Schema;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::config::{KafkaConfig, TopicsConfig};
use crate::event::decode::{reader_schema, Format, AVRO_SCHEMAS};
use crate::event::encode::{to_confluent_avro, to_json};
use crate::event::{Event, TopicKind};
use crate::kafka::producer;
use crate::registry::SchemaRegistry;

/// Which format each event is published in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FormatMix {
    /// All JSON.
    Json,
    /// All Avro.
    Avro,
    /// Avro with this probability, else JSON (seeded).
    Mixed {
        /// Probability of Avro.
        avro_share: f64,
        /// Seed of the choice.
        seed: u64,
    },
}

impl FormatMix {
    /// Assigns a format to each event.
    pub fn assign(
        self,
        events: impl IntoIterator<Item = Event>,
    ) -> impl Iterator<Item = (Event, Format)> {
        let mut rng = ChaCha8Rng::seed_from_u64(match self {
            FormatMix::Mixed { seed, .. } => seed ^ 0x5eed,
            _ => 0,
        });
        events.into_iter().map(move |event| {
            let format = match self {
                FormatMix::Json => Format::Json,
                FormatMix::Avro => Format::Avro,
                FormatMix::Mixed { avro_share, .. }
                    if rng.random_bool(avro_share.clamp(0.0, 1.0)) =>
                {
                    Format::Avro
                }
                FormatMix::Mixed { .. } => Format::Json,
            };
            (event, format)
        })
    }
}

/// Failure to publish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Kafka refused.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The registry refused.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// Avro encoding failed.
    #[error("avro encoding: {0}")]
    Avro(#[from] apache_avro::Error),
    /// JSON encoding failed.
    #[error("json encoding: {0}")]
    Json(#[from] serde_json::Error),
    /// Avro was asked for without a registry.
    #[error("Avro output needs a schema registry (schema_registry.url or --schema-registry)")]
    NoRegistry,
}

/// What a publish run did.
#[derive(Debug, Clone, Copy)]
pub struct PublishReport {
    /// Messages acknowledged by the broker.
    pub messages: u64,
    /// Wall time taken.
    pub elapsed: Duration,
}

impl PublishReport {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Encodes and produces events to the input topics, keyed by campaign.
pub struct Publisher {
    producer: FutureProducer,
    topics: [(TopicKind, String); 3],
    avro: Option<Vec<(TopicKind, Schema, u32)>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher for the configured topics. With a registry, the Avro
    /// schemas are registered under `<topic>-value` (TopicNameStrategy).
    pub async fn new(
        kafka: &KafkaConfig,
        topics: &TopicsConfig,
        registry: Option<&SchemaRegistry>,
    ) -> Result<Self, PublishError> {
        let topics = [
            (TopicKind::Content, topics.content.clone()),
            (TopicKind::Engagement, topics.engagement.clone()),
            (TopicKind::Conversion, topics.conversion.clone()),
        ];
        let avro = match registry {
            None => None,
            Some(registry) => {
                let mut schemas = Vec::new();
                for (kind, topic) in &topics {
                    let text = AVRO_SCHEMAS
                        .iter()
                        .find(|(k, _)| k == kind)
                        .map_or("", |(_, t)| *t);
                    let id = registry
                        .register_avro(&format!("{topic}-value"), text)
                        .await?;
                    schemas.push((*kind, reader_schema(*kind)?, id));
                }
                Some(schemas)
            }
        };
        Ok(Publisher {
            producer: producer::create(kafka)?,
            topics,
            avro,
        })
    }

    /// The topic events of `kind` go to.
    pub fn topic(&self, kind: TopicKind) -> &str {
        self.topics
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or("", |(_, t)| t.as_str())
    }

    /// The registered schema id for `kind`, if Avro is set up.
    pub fn schema_id(&self, kind: TopicKind) -> Option<u32> {
        self.avro
            .as_ref()?
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, _, id)| *id)
    }

    /// Encodes an event in `format`.
    pub fn encode(&self, event: &Event, format: Format) -> Result<Vec<u8>, PublishError> {
        match format {
            Format::Json => Ok(to_json(event)?),
            Format::Avro => {
                let kind = event.topic_kind();
                let (_, schema, id) = self
                    .avro
                    .as_ref()
                    .and_then(|schemas| schemas.iter().find(|(k, _, _)| *k == kind))
                    .ok_or(PublishError::NoRegistry)?;
                Ok(to_confluent_avro(event, schema, *id)?)
            }
        }
    }

    /// Produces one raw message (to `partition`, or by key) and waits for
    /// the broker's acknowledgement.
    pub async fn send_raw(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), PublishError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        self.producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(e, _)| PublishError::Kafka(e))?;
        Ok(())
    }

    /// Produces every event (keyed by campaign id), at most `rate` per
    /// second if given, keeping up to 10,000 unacknowledged in flight.
    /// Returns once all are acknowledged.
    pub async fn publish(
        &self,
        events: impl IntoIterator<Item = (Event, Format)>,
        rate: Option<f64>,
        progress: Option<&ProgressBar>,
    ) -> Result<PublishReport, PublishError> {
        const IN_FLIGHT: usize = 10_000;
        let started = Instant::now();
        let mut pending = FuturesUnordered::new();
        let mut acknowledged = 0u64;
        for (sent, (event, format)) in (0u64..).zip(events) {
            if let Some(rate) = rate.filter(|r| *r > 0.0) {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
            }
            let payload = self.encode(&event, format)?;
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(self.topic(event.topic_kind()))
                    .key(event.campaign_id().as_bytes())
                    .payload(payload.as_slice());
            // Enqueued now (not when a future is first polled), so a rate
            // is a rate and not bursts of IN_FLIGHT records.
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        if let Some(result) = pending.next().await {
                            acknowledge(result, &mut acknowledged, progress)?;
                        }
                    }
                    Err((e, _)) => return Err(PublishError::Kafka(e)),
                }
            }
            while pending.len() >= IN_FLIGHT {
                if let Some(result) = pending.next().await {
                    acknowledge(result, &mut acknowledged, progress)?;
                }
            }
            // Count what is already acknowledged, without waiting.
            while let Some(Some(result)) = pending.next().now_or_never() {
                acknowledge(result, &mut acknowledged, progress)?;
            }
        }
        while let Some(result) = pending.next().await {
            acknowledge(result, &mut acknowledged, progress)?;
        }
        Ok(PublishReport {
            messages: acknowledged,
            elapsed: started.elapsed(),
        })
    }
}

/// Counts one delivery report.
fn acknowledge(
    result: Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
    acknowledged: &mut u64,
    progress: Option<&ProgressBar>,
) -> Result<(), PublishError> {
    match result {
        Ok(Ok(_)) => {}
        Ok(Err((e, _))) => return Err(PublishError::Kafka(e)),
        Err(_canceled) => return Err(PublishError::Kafka(KafkaError::Canceled)),
    }
    *acknowledged += 1;
    if let Some(bar) = progress {
        bar.inc(1);
    }
    Ok(())
}

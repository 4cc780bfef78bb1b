//! Producers for derived output and dead letters.

use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

use super::consumer::client_config_with_defaults;
use crate::config::KafkaConfig;

/// An idempotent producer waiting for all in-sync replicas, so an
/// acknowledged record survives a broker failure and retries never
/// duplicate it.
///
/// Derived events are compressed with LZ4 and wait up to 20 ms to fill a
/// batch unless `[kafka.properties]` sets `compression.type` or `linger.ms`.
/// The producer's own size limit (`message.max.bytes`) is librdkafka's
/// largest, so the broker's topic limit decides whether a forwarded record
/// fits: a 3 MB dead letter goes through whole to a topic that takes it,
/// and is cut only where the broker refuses it (librdkafka's 1 MB default
/// cut it everywhere).
pub fn create(kafka: &KafkaConfig) -> KafkaResult<FutureProducer> {
    let defaults = [
        ("compression.type", "lz4"),
        ("linger.ms", "20"),
        ("message.max.bytes", "1000000000"),
    ];
    let mut config = client_config_with_defaults(kafka, &defaults);
    let _ignored = config.set("acks", "all").set("enable.idempotence", "true");
    config.create()
}

/// What a failed produce means for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceFailure {
    /// Transient (broker down, leader moving, timeout, local queue full):
    /// retry.
    Retry,
    /// The record is larger than the broker or the producer accepts: the
    /// same record fails forever.
    TooLarge,
    /// Retrying cannot help (authorization, an invalid topic): stop with
    /// what to do.
    Fatal,
}

/// Classifies a produce error.
pub fn classify(error: &KafkaError) -> ProduceFailure {
    let code = match error {
        KafkaError::MessageProduction(code) => *code,
        _ => return ProduceFailure::Retry,
    };
    match code {
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize => {
            ProduceFailure::TooLarge
        }
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed
        | RDKafkaErrorCode::SaslAuthenticationFailed
        | RDKafkaErrorCode::Authentication
        | RDKafkaErrorCode::InvalidTopic
        | RDKafkaErrorCode::InvalidRecord
        // librdkafka's idempotent producer raised a fatal error (the broker
        // lost or reordered acknowledged records): this producer fails
        // every send from now on.
        | RDKafkaErrorCode::Fatal => ProduceFailure::Fatal,
        _ => ProduceFailure::Retry,
    }
}

/// What to do when `error` means the producer itself is broken rather
/// than the topic refusing: `None` for any other error.
pub fn broken_producer_remedy(error: &KafkaError) -> Option<&'static str> {
    matches!(error, KafkaError::MessageProduction(RDKafkaErrorCode::Fatal)).then_some(
        "Reactor's producer stopped after a fatal error (librdkafka's idempotence found acknowledged records lost or out of order on the broker; its log says which); restart Reactor: it resumes from its checkpoints with a new producer, and derived events published again carry the same ids",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_permissions_are_not_retried() {
        let produce = |code| KafkaError::MessageProduction(code);
        assert_eq!(
            classify(&produce(RDKafkaErrorCode::MessageSizeTooLarge)),
            ProduceFailure::TooLarge
        );
        assert_eq!(
            classify(&produce(RDKafkaErrorCode::TopicAuthorizationFailed)),
            ProduceFailure::Fatal
        );
        assert_eq!(
            classify(&produce(RDKafkaErrorCode::NotLeaderForPartition)),
            ProduceFailure::Retry
        );
        assert_eq!(
            classify(&produce(RDKafkaErrorCode::QueueFull)),
            ProduceFailure::Retry
        );
        assert_eq!(classify(&KafkaError::Canceled), ProduceFailure::Retry);
        let broken = produce(RDKafkaErrorCode::Fatal);
        assert_eq!(classify(&broken), ProduceFailure::Fatal);
        assert!(broken_producer_remedy(&broken).is_some());
        assert_eq!(
            broken_producer_remedy(&produce(RDKafkaErrorCode::TopicAuthorizationFailed)),
            None
        );
    }
}

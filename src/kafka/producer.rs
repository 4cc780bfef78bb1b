//! Producers for derived output and dead letters.

use rdkafka::error::KafkaResult;
use rdkafka::producer::FutureProducer;

use super::consumer::client_config;
use crate::config::KafkaConfig;

/// An idempotent producer waiting for all in-sync replicas, so an
/// acknowledged record survives a broker failure and retries never
/// duplicate it.
pub fn create(kafka: &KafkaConfig) -> KafkaResult<FutureProducer> {
    let mut config = client_config(kafka);
    let _ignored = config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "20");
    config.create()
}

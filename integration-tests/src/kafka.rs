//! Reading what Reactor published to Kafka.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rand::Rng;
use rdkafka::message::{Headers, Message, OwnedMessage};
use reactor::config::KafkaConfig;

/// Reads at least `count` messages of `topic` from the beginning (a fresh
/// group), or fails after `timeout`. Blocking; call from `spawn_blocking`.
pub fn read_topic(
    kafka: &KafkaConfig,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<OwnedMessage>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let id: u32 = rand::rng().random();
    let consumer: BaseConsumer = reactor::kafka::consumer::client_config(kafka)
        .set("group.id", format!("it-reader-{id:08x}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    while messages.len() < count {
        if Instant::now() > deadline {
            bail!(
                "read {} of {count} messages from {topic} within {timeout:?}",
                messages.len()
            );
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            messages.push(message?.detach());
        }
    }
    // Anything beyond `count` that is already there is read too.
    while let Some(message) = consumer.poll(Duration::from_secs(2)) {
        messages.push(message?.detach());
    }
    Ok(messages)
}

/// [`read_topic`] on a blocking thread.
pub async fn read_topic_async(
    kafka: &KafkaConfig,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<OwnedMessage>> {
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || read_topic(&kafka, &topic, count, timeout)).await?
}

/// The value of header `name` of `message`, as text ("" when absent).
pub fn header(message: &OwnedMessage, name: &str) -> String {
    message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == name).and_then(|h| h.value))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

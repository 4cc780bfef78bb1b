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

/// Every message of `topic` up to the end each partition had when reading
/// began (no consumer group: all partitions assigned from the beginning).
/// Blocking; call from `spawn_blocking`.
pub fn read_all(kafka: &KafkaConfig, topic: &str, timeout: Duration) -> Result<Vec<OwnedMessage>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let id: u32 = rand::rng().random();
    let consumer: BaseConsumer<reactor::kafka::consumer::ToolContext> =
        reactor::kafka::consumer::client_config(kafka)
            .set("group.id", format!("it-reader-{id:08x}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create_with_context(reactor::kafka::consumer::ToolContext)?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut open: std::collections::BTreeSet<i32> = partitions.into_iter().collect();
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    while !open.is_empty() {
        if Instant::now() > deadline {
            bail!("reading {topic} did not reach its end within {timeout:?}");
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                let _done = open.remove(&p);
            }
            Some(result) => messages.push(result?.detach()),
        }
    }
    Ok(messages)
}

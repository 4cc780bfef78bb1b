//! Reading a replay's input: by direct assignment (no group, no commits),
//! from a start found with `offsets_for_times` up to the end offsets
//! captured at start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tracing::warn;

use super::range::ReplayRange;
use super::ReplayOptions;
use crate::config::Config;
use crate::event::Record;
use crate::kafka::consumer::ToolContext;
use crate::pipeline::PipelineSettings;

/// The partitions of `topic` to replay: (partition, first offset, end
/// offset), skipping those with nothing to read.
pub(super) async fn plan_topic(
    consumer: &Arc<BaseConsumer<ToolContext>>,
    topic: &str,
    options: &ReplayOptions,
    range: &ReplayRange,
    settings: &PipelineSettings,
) -> anyhow::Result<Vec<(i32, i64, i64)>> {
    let consumer = Arc::clone(consumer);
    let topic = topic.to_owned();
    let wanted = options.partitions.clone();
    let hint = range.read_from(settings.windows.allowed_lateness);
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .with_context(|| format!("cannot read the metadata of {topic} (kafka.brokers)"))?;
        let all: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if all.is_empty() {
            bail!("topic {topic} does not exist");
        }
        if let Some(wanted) = &wanted {
            let missing: Vec<&i32> = wanted.iter().filter(|p| !all.contains(p)).collect();
            if !missing.is_empty() {
                bail!(
                    "--partitions: {topic} has no partition {missing:?} (it has {} partitions, 0 to {})",
                    all.len(),
                    all.len() - 1
                );
            }
        }
        let mut plan = Vec::new();
        for partition in all
            .into_iter()
            .filter(|p| wanted.as_ref().is_none_or(|w| w.contains(p)))
        {
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, timeout)
                .with_context(|| format!("cannot read the offsets of {topic}/{partition}"))?;
            let mut query = TopicPartitionList::new();
            query.add_partition_offset(&topic, partition, Offset::Offset(hint.as_millis()))?;
            // A hint: a broker that answers the first offset (or nothing)
            // only makes the replay read more.
            let start = consumer
                .offsets_for_times(query, timeout)
                .ok()
                .and_then(|found| {
                    found
                        .find_partition(&topic, partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        })
                })
                .unwrap_or(low)
                .clamp(low, high);
            if start < high {
                plan.push((partition, start, high));
            }
        }
        Ok(plan)
    })
    .await?
}

/// How far past the end offset captured at start a partition is read
/// before it ends without reaching its end (producers keep appending): a
/// broker's end offset may be short by up to a producer batch.
pub(super) const PAST_END: i64 = 10_000;

/// A record and its timestamp (ms), if any.
pub(super) type Timestamped = (Record, Option<i64>);

/// What a poll brings.
pub(super) enum Polled {
    /// A record of a topic partition, and its timestamp (ms), if any.
    Record(String, i32, Record, Option<i64>),
    /// The end of what a topic partition holds now.
    End(String, i32),
}

/// Up to `max` messages from the consumers: what is ready, or after a
/// short wait if nothing is.
pub(super) fn poll_batch(
    consumers: &[(String, Arc<BaseConsumer<ToolContext>>)],
    max: usize,
) -> anyhow::Result<Vec<Polled>> {
    let mut out = Vec::new();
    for round in 0..10 {
        let wait = if round == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(50)
        };
        for (topic, consumer) in consumers {
            let mut wait = wait;
            while out.len() < max {
                match consumer.poll(wait) {
                    None => break,
                    Some(Ok(message)) => out.push(Polled::Record(
                        topic.clone(),
                        message.partition(),
                        Record {
                            offset: message.offset(),
                            key: message.key().map(<[u8]>::to_vec),
                            payload: message.payload().map(<[u8]>::to_vec),
                        },
                        message.timestamp().to_millis(),
                    )),
                    Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                        out.push(Polled::End(topic.clone(), partition));
                    }
                    Some(Err(e)) => {
                        warn!(%topic, error = %e, "error reading; continuing");
                        break;
                    }
                }
                wait = Duration::ZERO;
            }
        }
        if !out.is_empty() {
            break;
        }
    }
    Ok(out)
}

pub(super) fn replay_consumer(config: &Config) -> anyhow::Result<BaseConsumer<ToolContext>> {
    crate::kafka::consumer::reading_config(&config.kafka)
        .set(
            "group.id",
            format!("{}-replay-{}", config.kafka.group_id, std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .create_with_context(ToolContext)
        .context("cannot create a Kafka consumer (kafka.brokers)")
}

/// The consumer's position in a partition: the offset it reads next,
/// past offsets that carry no record for the application.
pub(super) fn position(
    consumers: &BTreeMap<String, Arc<BaseConsumer<ToolContext>>>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let positions = consumers.get(topic)?.position().ok()?;
    positions
        .find_partition(topic, partition)?
        .offset()
        .to_raw()
        .filter(|offset| *offset >= 0)
}

pub(super) fn pause(
    consumers: &BTreeMap<String, Arc<BaseConsumer<ToolContext>>>,
    topic: &str,
    partition: i32,
) {
    let Some(consumer) = consumers.get(topic) else {
        return;
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    if let Err(e) = consumer.pause(&tpl) {
        warn!(%topic, partition, error = %e, "cannot pause a finished partition");
    }
}

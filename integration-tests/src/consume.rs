//! The consume-only ceiling: how fast a plain rdkafka `BaseConsumer` reads
//! a backlog and discards it, for the benchmark to compare Reactor with.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use reactor::config::KafkaConfig;

/// Reads every message of `topic` from the beginning until `count` have
/// been read, touching each payload's length; returns the messages read and
/// the time from the first message to the last. Blocking.
pub fn consume_only(kafka: &KafkaConfig, topic: &str, count: u64) -> Result<(u64, Duration)> {
    let consumer: BaseConsumer = reactor::kafka::consumer::client_config(kafka)
        .set("group.id", format!("consume-only-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        // A large prefetch, fetched again as soon as there is room: the
        // fastest settings measured (BENCHMARKS.md), so the ceiling is a
        // real one.
        .set("queued.max.messages.kbytes", "65536")
        .set(
            "fetch.queue.backoff.ms",
            reactor::kafka::consumer::FETCH_QUEUE_BACKOFF_MS,
        )
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let (mut read, mut bytes) = (0u64, 0usize);
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while read < count {
        if Instant::now() > deadline {
            bail!("read {read} of {count} messages of {topic} in 10 minutes");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first.get_or_insert_with(Instant::now);
                bytes += message.payload().map_or(0, <[u8]>::len);
                read += 1;
            }
            Some(Err(e)) => bail!("reading {topic}: {e}"),
            None => {}
        }
    }
    std::hint::black_box(bytes);
    Ok((read, first.map_or(Duration::ZERO, |t| t.elapsed())))
}

//! The consume-only ceiling: how fast a plain rdkafka `BaseConsumer` reads
//! a backlog and discards it, for the benchmark to compare Reactor with.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use reactor::config::KafkaConfig;

/// What [`consume_only`] read.
#[derive(Debug)]
pub struct ConsumeOnly {
    /// Messages read.
    pub read: u64,
    /// From the first message to the last.
    pub took: Duration,
    /// Messages read per partition, by partition id: how evenly the backlog
    /// is spread, which bounds how evenly the partitions' work spreads over
    /// cores.
    pub per_partition: Vec<u64>,
}

/// Reads every message of `topic` from the beginning until `count` have
/// been read, touching each payload's length. Blocking.
pub fn consume_only(kafka: &KafkaConfig, topic: &str, count: u64) -> Result<ConsumeOnly> {
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
    let mut per_partition = Vec::new();
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
                let p = usize::try_from(message.partition()).unwrap_or(0);
                if per_partition.len() <= p {
                    per_partition.resize(p + 1, 0);
                }
                per_partition[p] += 1;
            }
            Some(Err(e)) => bail!("reading {topic}: {e}"),
            None => {}
        }
    }
    std::hint::black_box(bytes);
    Ok(ConsumeOnly {
        read,
        took: first.map_or(Duration::ZERO, |t| t.elapsed()),
        per_partition,
    })
}

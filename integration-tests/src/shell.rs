//! Driving Reactor's actor shell in-process, against the real services:
//! the dependencies a partition actor or the supervisor needs for one
//! test's topics and database, and an assignment made by hand (the
//! consumer never joins its group).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};
use reactor::actors::{IoHandle, IoRuntime, PartitionDeps};
use reactor::config::DerivedFormat;
use reactor::health::Health;
use reactor::kafka::consumer;
use reactor::sink::clickhouse::{self, schema};

use crate::TestEnv;

/// What partition actors and the supervisor need for `env`'s topics,
/// writing to ClickHouse at `clickhouse_url` (the tables are created),
/// draining within `drain_timeout`, derived events as JSON.
pub async fn partition_deps(
    env: &TestEnv,
    clickhouse_url: &str,
    drain_timeout: Duration,
) -> Result<PartitionDeps> {
    let mut config = env.config.clone();
    config.clickhouse.url = clickhouse_url.to_owned();
    config.pipeline.drain_timeout = drain_timeout;
    config.derived.format = DerivedFormat::Json;
    let database = config.clickhouse.database.clone();
    let admin = clickhouse::client(&config.clickhouse, None)?;
    schema::apply(&admin, &database).await?;
    let data = clickhouse::client(&config.clickhouse, Some(&database))?;
    let sinks = reactor::app::shared_sinks(&config, data.clone(), None).await?;
    let (consumer, _events, _receiver) = consumer::create(&config.kafka, Duration::from_secs(60))?;
    Ok(PartitionDeps {
        consumer,
        clickhouse: data,
        writer: sinks.writer,
        dead_letters: sinks.dead_letters,
        late: sinks.late,
        derived: sinks.derived,
        registry: None,
        health: Arc::new(Health::new(Duration::from_secs(30))),
        settings: reactor::app::partition_settings(&config),
        io: io_runtime()?,
    })
}

/// The I/O runtime of the tests' actors, started once and kept for the
/// whole test process (as `reactor run` keeps its own until it exits).
fn io_runtime() -> Result<IoHandle> {
    static IO: OnceLock<IoRuntime> = OnceLock::new();
    if let Some(io) = IO.get() {
        return Ok(io.handle());
    }
    let io = IoRuntime::new(2)?;
    Ok(IO.get_or_init(|| io).handle())
}

/// Assigns `topic`/`partition` to the consumer from its committed offset, as
/// the rebalance callback does once the supervisor answers (split its queue
/// first).
pub fn assign(deps: &PartitionDeps, topic: &str, partition: i32) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Stored)?;
    deps.consumer.assign(&tpl)?;
    Ok(())
}

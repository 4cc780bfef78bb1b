//! The group consumer and its rebalance protocol.
//!
//! # Protocol
//!
//! librdkafka calls [`RebalanceContext::rebalance`] synchronously, on the
//! thread that polls the consumer's main queue (the *driver* thread, see
//! [`spawn_driver`]). The context turns each call into a [`RebalanceEvent`]
//! on a channel and blocks until the receiver (the supervisor) answers:
//!
//! - **Assign.** The receiver splits each new partition's queue off the main
//!   queue *before* it is assigned (librdkafka keeps an application-split
//!   queue split through the assignment), starts a partition actor reading it,
//!   and answers with the offset each partition resumes from. Only then does
//!   the context assign them, at exactly those offsets. No message can reach
//!   the main queue in between.
//! - **Revoke.** The receiver drains the partitions (in-flight writes finish,
//!   checkpoints are written) and answers with the offsets to commit; the
//!   context commits them synchronously and unassigns. A *lost* assignment
//!   (the group moved on without us) is not committed.
//!
//! If nobody answers (the process is stopping), the context proceeds without
//! assigning or committing: nothing is lost, the next owner resumes from the
//! last checkpoint. The main queue itself must never yield a message; the
//! driver reports one as a fatal [`RebalanceEvent::UnexpectedMessage`].

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::config::KafkaConfig;
use crate::telemetry::metrics;

/// The consumer type Reactor uses.
pub type ReactorConsumer = StreamConsumer<RebalanceContext>;

/// A topic partition.
pub type TopicPartition = (String, i32);

/// What the consumer asks of the supervisor during a rebalance.
#[derive(Debug)]
pub enum RebalanceEvent {
    /// These partitions are being assigned. Split their queues, start their
    /// actors, and answer with where each resumes.
    Assigned {
        /// The partitions.
        partitions: Vec<TopicPartition>,
        /// Where each partition starts.
        reply: SyncSender<Vec<(TopicPartition, Offset)>>,
    },
    /// These partitions are being revoked. Drain them and answer with the
    /// offsets to commit (none if `lost`).
    Revoked {
        /// The partitions.
        partitions: Vec<TopicPartition>,
        /// The assignment was lost (session timeout): do not commit.
        lost: bool,
        /// Offsets to commit before letting go.
        reply: SyncSender<Vec<(TopicPartition, i64)>>,
    },
    /// The main queue returned a message; the split protocol was violated
    /// and ordering can no longer be guaranteed.
    UnexpectedMessage {
        /// Where it came from.
        partition: TopicPartition,
        /// Its offset.
        offset: i64,
    },
}

/// librdkafka callbacks: rebalances (see the module docs), commit results,
/// errors, and statistics (consumer lag per partition).
#[derive(Debug)]
pub struct RebalanceContext {
    events: mpsc::UnboundedSender<RebalanceEvent>,
    reply_timeout: Duration,
}

impl RebalanceContext {
    fn ask<T>(&self, event: impl FnOnce(SyncSender<T>) -> RebalanceEvent) -> Option<T> {
        let (reply, answer) = sync_channel(1);
        self.events.send(event(reply)).ok()?;
        match answer.recv_timeout(self.reply_timeout) {
            Ok(value) => Some(value),
            Err(e) => {
                warn!(error = %e, "no answer to a rebalance from the supervisor; proceeding without it");
                None
            }
        }
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions = partitions_of(tpl);
        info!(?partitions, "partitions assigned");
        let Some(starts) = self.ask(|reply| RebalanceEvent::Assigned { partitions, reply }) else {
            return;
        };
        let mut assignment = TopicPartitionList::new();
        for ((topic, partition), offset) in starts {
            if let Err(e) = assignment.add_partition_offset(&topic, partition, offset) {
                error!(%topic, partition, error = %e, "cannot build the assignment");
            }
        }
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(&assignment),
            _ => consumer.assign(&assignment),
        };
        if let Err(e) = result {
            error!(error = %e, "assigning partitions failed");
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions = partitions_of(tpl);
        let lost = consumer.assignment_lost();
        info!(?partitions, lost, "partitions revoked");
        let commits = self
            .ask(|reply| RebalanceEvent::Revoked {
                partitions,
                lost,
                reply,
            })
            .unwrap_or_default();
        if !lost && !commits.is_empty() {
            if let Err(e) = commit(consumer, &commits, CommitMode::Sync) {
                warn!(error = %e, "committing offsets of revoked partitions failed; the next owner resumes from Reactor's checkpoints");
            }
        }
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        if let Err(e) = result {
            error!(error = %e, "unassigning partitions failed");
        }
    }
}

/// Whether librdkafka's error is the end of a partition
/// (`enable.partition.eof`), which is news, not an error.
fn is_partition_eof(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
    )
}

/// The context of the command-line tools' consumers (`reactor anomaly
/// events`...): librdkafka's errors logged, the end of a partition not.
#[derive(Debug, Default, Clone, Copy)]
pub struct ToolContext;

impl ClientContext for ToolContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_eof(&error) {
            debug!(%reason, "end of partition");
        } else {
            error!(%error, %reason, "librdkafka error");
        }
    }
}

impl ConsumerContext for ToolContext {}

impl ClientContext for RebalanceContext {
    /// librdkafka's error events. The end of a partition is reported this
    /// way too: it is how partitions know they are idle, not an error.
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            error if is_partition_eof(&error) => debug!(%reason, "end of partition"),
            error => {
                metrics::consumer_error();
                error!(%error, %reason, "librdkafka error");
            }
        }
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                // Only partitions this consumer fetches: librdkafka keeps
                // reporting a lag for partitions it was assigned before.
                if *partition >= 0 && p.consumer_lag >= 0 && p.fetch_state == "active" {
                    metrics::consumer_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for RebalanceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, tpl),
            other => {
                error!(error = ?other, "rebalance failed; dropping the assignment");
                if let Err(e) = consumer.unassign() {
                    error!(error = %e, "unassigning after a failed rebalance failed");
                }
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            warn!(error = %e, "offset commit failed; Reactor's checkpoints still hold the position");
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

/// Commits `offsets` (the next offset to read, per partition).
pub fn commit<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    offsets: &[(TopicPartition, i64)],
    mode: CommitMode,
) -> KafkaResult<()> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer.commit(&tpl, mode)
}

/// librdkafka settings shared by Reactor's consumers and producers:
/// `client.id` "reactor", then the user's pass-through properties (which
/// may change it), then TLS and SASL from `[kafka.tls]` and `[kafka.sasl]`,
/// then the brokers.
///
/// The result holds credentials: never log it (its `Debug` shows them).
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    client_config_with_defaults(kafka, &[])
}

/// [`client_config`] with more `defaults`, set before the user's
/// properties so that `[kafka.properties]` can change them.
pub fn client_config_with_defaults(kafka: &KafkaConfig, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in [("client.id", "reactor")].iter().chain(defaults) {
        let _ignored = config.set(*key, *value);
    }
    for (key, value) in kafka.properties.iter() {
        let _ignored = config.set(key, value);
    }
    for (key, value) in security_properties(kafka) {
        let _ignored = config.set(key, value);
    }
    let _ignored = config.set("bootstrap.servers", kafka.brokers.join(","));
    config
}

/// Every `[kafka.properties]` entry librdkafka refuses (an unknown name, a
/// value out of range), each with librdkafka's reason; checked as it builds
/// a client's configuration, without connecting.
pub fn refused_properties(kafka: &KafkaConfig) -> Vec<String> {
    kafka
        .properties
        .iter()
        .filter_map(|(key, value)| {
            let mut config = ClientConfig::new();
            let _ignored = config.set(key, value);
            let reason = match config.create_native_config().err()? {
                rdkafka::error::KafkaError::ClientConfig(_, reason, _, _) => reason,
                other => other.to_string(),
            };
            Some(format!("kafka.properties.{key:?}: {}", reason.trim()))
        })
        .collect()
}

/// The librdkafka properties for `[kafka.tls]` and `[kafka.sasl]`; none when
/// both are off, so `security.protocol` in `kafka.properties` still works.
pub fn security_properties(kafka: &KafkaConfig) -> Vec<(&'static str, String)> {
    let (tls, sasl) = (&kafka.tls, &kafka.sasl);
    let mechanism = sasl.mechanism.as_librdkafka();
    let protocol = match (tls.enabled, mechanism.is_some()) {
        (false, false) => return Vec::new(),
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    };
    let mut properties = vec![("security.protocol", protocol.to_owned())];
    if tls.enabled {
        properties.push(("ssl.endpoint.identification.algorithm", "https".to_owned()));
        let files = [
            ("ssl.ca.location", &tls.ca_file),
            ("ssl.certificate.location", &tls.cert_file),
            ("ssl.key.location", &tls.key_file),
        ];
        for (key, file) in files {
            if !file.is_empty() {
                properties.push((key, file.clone()));
            }
        }
        if !tls.key_password.is_empty() {
            properties.push(("ssl.key.password", tls.key_password.expose().to_owned()));
        }
    }
    if let Some(mechanism) = mechanism {
        properties.extend([
            ("sasl.mechanisms", mechanism.to_owned()),
            ("sasl.username", sasl.username.clone()),
            ("sasl.password", sasl.password.expose().to_owned()),
        ]);
    }
    properties
}

/// `fetch.queue.backoff.ms` unless the user sets it: how soon a partition
/// whose prefetch queue was full is fetched again. librdkafka's default
/// (1 s) idles a consumer on a backlog most of the time: a plain consumer
/// read 0.23 M events/s with it and about 2 M with 10 ms (BENCHMARKS.md).
pub const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// `fetch.wait.max.ms` unless the user sets it: how long the broker may
/// hold a fetch for partitions with nothing new. librdkafka has one fetch
/// in flight per broker, so while a fetch for idle partitions (an empty
/// topic of the three) is held, partitions with a backlog wait too: with
/// the default (500 ms) Reactor read a backlog in bursts with half-second
/// gaps (BENCHMARKS.md).
pub const FETCH_WAIT_MAX_MS: &str = "100";

/// [`client_config`] plus the settings of every Reactor consumer (the
/// group's, replay's, the tools'): the prefetch per partition
/// (`kafka.prefetch_kbytes_per_partition`), and [`FETCH_QUEUE_BACKOFF_MS`]
/// and [`FETCH_WAIT_MAX_MS`] unless `[kafka.properties]` sets them.
pub fn reading_config(kafka: &KafkaConfig) -> ClientConfig {
    let defaults = [
        ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS),
        ("fetch.wait.max.ms", FETCH_WAIT_MAX_MS),
    ];
    let mut config = client_config_with_defaults(kafka, &defaults);
    let _ignored = config
        .set(
            "queued.max.messages.kbytes",
            kafka.prefetch_kbytes_per_partition.to_string(),
        )
        // librdkafka's default, stated: records of aborted transactions are
        // never read, so never counted.
        .set("isolation.level", "read_committed");
    config
}

/// The consumer, a sender for its events (for [`spawn_driver`]) and the
/// channel its rebalance events arrive on.
pub type CreatedConsumer = (
    Arc<ReactorConsumer>,
    mpsc::UnboundedSender<RebalanceEvent>,
    mpsc::UnboundedReceiver<RebalanceEvent>,
);

/// Creates the group consumer (not yet subscribed) and the channel its
/// rebalance events arrive on.
pub fn create(kafka: &KafkaConfig, reply_timeout: Duration) -> KafkaResult<CreatedConsumer> {
    let (events, receiver) = mpsc::unbounded_channel();
    let mut config = reading_config(kafka);
    let _ignored = config
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // The end of a partition is how a partition knows it is idle.
        .set("enable.partition.eof", "true")
        // Where a partition starts is always an explicit seek (its
        // checkpoint, else `kafka.start_from`). This applies only when that
        // offset is out of range (retention deleted it, the topic was
        // recreated): the records still there are read, never skipped to
        // the end, whatever `start_from` says.
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            kafka.session_timeout.as_millis().to_string(),
        )
        .set("statistics.interval.ms", "5000")
        .set(
            "partition.assignment.strategy",
            kafka.assignment.as_librdkafka(),
        );
    let consumer = config.create_with_context(RebalanceContext {
        events: events.clone(),
        reply_timeout,
    })?;
    Ok((Arc::new(consumer), events, receiver))
}

/// Polls the consumer's main queue on a dedicated thread, which is where
/// librdkafka runs the rebalance callbacks (so they may block). Stops when
/// `stop` turns true; the consumer is closed when the last `Arc` to it drops.
pub fn spawn_driver(
    consumer: Arc<ReactorConsumer>,
    events: mpsc::UnboundedSender<RebalanceEvent>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("kafka-driver".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    error!(error = %e, "cannot start the Kafka driver thread's runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                loop {
                    tokio::select! {
                        received = consumer.recv() => match received {
                            Ok(message) => {
                                let partition = (message.topic().to_owned(), message.partition());
                                let offset = message.offset();
                                error!(topic = %partition.0, partition = partition.1, offset, "message on the consumer's main queue");
                                let _ignored = events.send(RebalanceEvent::UnexpectedMessage { partition, offset });
                            }
                            Err(e) => {
                                metrics::consumer_error();
                                warn!(error = %e, "Kafka consumer error");
                            }
                        },
                        changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
                    }
                }
            });
        })
}

#[cfg(test)]
mod tests {
    use rdkafka::producer::BaseProducer;

    use super::*;

    fn kafka(vars: &[(&str, &str)]) -> KafkaConfig {
        let env = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        crate::config::load(None, env).unwrap().kafka
    }

    fn property<'a>(properties: &'a [(&str, String)], key: &str) -> Option<&'a str> {
        properties
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn no_tls_and_no_sasl_set_nothing() {
        assert!(security_properties(&kafka(&[])).is_empty());
    }

    #[test]
    fn tls_and_sasl_map_to_librdkafka_properties() {
        let config = kafka(&[
            ("REACTOR__KAFKA__TLS__ENABLED", "true"),
            ("REACTOR__KAFKA__SASL__MECHANISM", "SCRAM-SHA-512"),
            ("REACTOR__KAFKA__SASL__USERNAME", "reactor"),
            ("REACTOR__KAFKA__SASL__PASSWORD", "hunter2"),
        ]);
        let properties = security_properties(&config);
        assert_eq!(property(&properties, "security.protocol"), Some("SASL_SSL"));
        assert_eq!(
            property(&properties, "sasl.mechanisms"),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(property(&properties, "sasl.username"), Some("reactor"));
        assert_eq!(property(&properties, "sasl.password"), Some("hunter2"));
        assert_eq!(
            property(&properties, "ssl.endpoint.identification.algorithm"),
            Some("https")
        );

        let plain = kafka(&[
            ("REACTOR__KAFKA__SASL__MECHANISM", "PLAIN"),
            ("REACTOR__KAFKA__SASL__USERNAME", "reactor"),
            ("REACTOR__KAFKA__SASL__PASSWORD", "hunter2"),
        ]);
        let properties = security_properties(&plain);
        assert_eq!(
            property(&properties, "security.protocol"),
            Some("SASL_PLAINTEXT")
        );
        assert_eq!(property(&properties, "ssl.ca.location"), None);
    }

    #[test]
    fn tuning_defaults_yield_to_the_users_properties() {
        let mut config = kafka(&[]);
        assert_eq!(client_config(&config).get("client.id"), Some("reactor"));
        assert_eq!(
            reading_config(&config).get("fetch.wait.max.ms"),
            Some("100")
        );
        for (key, value) in [("client.id", "marketing-eu"), ("fetch.wait.max.ms", "250")] {
            let _previous = config.properties.0.insert(key.into(), value.into());
        }
        let reading = reading_config(&config);
        assert_eq!(reading.get("client.id"), Some("marketing-eu"));
        assert_eq!(reading.get("fetch.wait.max.ms"), Some("250"));
        assert_eq!(reading.get("fetch.queue.backoff.ms"), Some("10"));
        // Set whatever the user wrote (the config check refuses other values).
        assert_eq!(reading.get("isolation.level"), Some("read_committed"));
    }

    /// librdkafka must be built with TLS and SCRAM support: creating a client
    /// with these settings fails at once if it is not.
    #[test]
    fn librdkafka_accepts_sasl_ssl_settings() {
        let config = kafka(&[
            ("REACTOR__KAFKA__BROKERS", "127.0.0.1:9"),
            ("REACTOR__KAFKA__TLS__ENABLED", "true"),
            ("REACTOR__KAFKA__SASL__MECHANISM", "SCRAM-SHA-256"),
            ("REACTOR__KAFKA__SASL__USERNAME", "reactor"),
            ("REACTOR__KAFKA__SASL__PASSWORD", "hunter2"),
        ]);
        let producer: Result<BaseProducer, _> = client_config(&config).create();
        assert!(producer.is_ok(), "{:?}", producer.err());
    }
}

//! Side topics: input records Reactor did not aggregate, forwarded with the
//! reason, so nothing is silently dropped.
//!
//! - The dead-letter topic gets records that cannot be used (undecodable,
//!   invalid, too far in the future), with headers `reactor.error` (the
//!   reason, for people) and `reactor.error.kind` (a fixed label).
//! - The late-events topic (`windows.late_policy = "side-topic"`) gets
//!   records whose windows had all closed, with `reactor.late.reason`.
//!
//! Both keep the original key and payload and add `reactor.source.topic`,
//! `reactor.source.partition` and `reactor.source.offset`. A record re-read
//! after a restart may be forwarded twice; the source headers identify
//! duplicates.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing::warn;

use crate::retry::{pause, Backoff};
use crate::telemetry::metrics;

/// Which side topic a sink writes, which decides its header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideTopic {
    /// Unusable records.
    DeadLetter,
    /// Late records.
    Late,
}

impl SideTopic {
    fn reason_header(self) -> &'static str {
        match self {
            SideTopic::DeadLetter => "reactor.error",
            SideTopic::Late => "reactor.late.reason",
        }
    }

    fn kind_header(self) -> &'static str {
        match self {
            SideTopic::DeadLetter => "reactor.error.kind",
            SideTopic::Late => "reactor.late.kind",
        }
    }
}

/// A record to forward.
#[derive(Debug, Clone, Copy)]
pub struct Forward<'a> {
    /// Where it came from.
    pub source_topic: &'a str,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its payload.
    pub payload: Option<&'a [u8]>,
    /// Why it is forwarded.
    pub reason: &'a str,
    /// A fixed label for the reason.
    pub kind: &'a str,
}

/// Produces to one side topic. Cheap to clone.
#[derive(Clone)]
pub struct SideTopicSink {
    producer: FutureProducer,
    topic: Arc<str>,
    side: SideTopic,
}

impl std::fmt::Debug for SideTopicSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideTopicSink")
            .field("topic", &self.topic)
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

impl SideTopicSink {
    /// A sink producing to `topic`.
    pub fn new(producer: FutureProducer, topic: &str, side: SideTopic) -> Self {
        SideTopicSink {
            producer,
            topic: topic.into(),
            side,
        }
    }

    /// Produces `record` and waits until the broker has it, retrying with
    /// back-off for as long as it takes. Returns early, without delivering,
    /// only if `stop` resolves first.
    pub async fn deliver(
        &self,
        record: Forward<'_>,
        stop: impl std::future::Future<Output = ()>,
    ) -> bool {
        let partition = record.source_partition.to_string();
        let offset = record.offset.to_string();
        tokio::pin!(stop);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: self.side.reason_header(),
                    value: Some(record.reason.as_bytes()),
                })
                .insert(Header {
                    key: self.side.kind_header(),
                    value: Some(record.kind.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.topic",
                    value: Some(record.source_topic.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.partition",
                    value: Some(partition.as_bytes()),
                })
                .insert(Header {
                    key: "reactor.source.offset",
                    value: Some(offset.as_bytes()),
                });
            let mut message: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).headers(headers);
            if let Some(key) = record.key {
                message = message.key(key);
            }
            if let Some(payload) = record.payload {
                message = message.payload(payload);
            }
            tokio::select! {
                result = self.producer.send(message, Timeout::After(Duration::from_secs(5))) => match result {
                    Ok(_) => return true,
                    Err((e, _)) => {
                        metrics::side_topic_failure(&self.topic);
                        let delay = backoff.next_delay();
                        warn!(topic = %self.topic, error = %e, retry_in = ?delay, "forwarding a record failed; retrying");
                        if !pause(delay, stop.as_mut()).await {
                            return false;
                        }
                    }
                },
                () = &mut stop => return false,
            }
        }
    }
}

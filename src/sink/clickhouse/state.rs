//! Reading the state partitions resume from (`partition_state`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::warn;

use super::rows::StateRow;
use crate::error::{Classified, Disposition};
use crate::pipeline::Checkpoint;
use crate::retry::Backoff;
use crate::sink::SinkError;

/// A partition's newest checkpoint, and its sequence number (the next
/// owner writes higher ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Where and how to resume.
    pub checkpoint: Checkpoint,
    /// Sequence of the write it came from.
    pub seq: u64,
}

/// The newest checkpoint of every partition of `group`, keyed by (topic,
/// partition). A checkpoint that does not parse is an error: resuming from
/// a guess could count records twice.
pub async fn load(
    client: &::clickhouse::Client,
    group: &str,
) -> Result<HashMap<(String, i32), Saved>, SinkError> {
    let rows = client
        .query(
            "SELECT consumer_group, topic, partition, metric, campaign_id, content_id, channel, \
                    max(seq), argMax(body, seq), max(updated_at) \
             FROM partition_state WHERE consumer_group = ? AND metric = '' \
             GROUP BY consumer_group, topic, partition, metric, campaign_id, content_id, channel",
        )
        .bind(group)
        .fetch_all::<StateRow>()
        .await?;
    rows.into_iter()
        .map(|row| {
            let checkpoint =
                serde_json::from_str(&row.body).map_err(|source| SinkError::CorruptState {
                    topic: row.topic.clone(),
                    partition: row.partition,
                    source,
                })?;
            Ok((
                (row.topic, row.partition),
                Saved {
                    checkpoint,
                    seq: row.seq,
                },
            ))
        })
        .collect()
}

/// [`load`], retrying while ClickHouse is unreachable, for up to `patience`.
pub async fn load_retrying(
    client: &::clickhouse::Client,
    group: &str,
    patience: Duration,
) -> Result<HashMap<(String, i32), Saved>, SinkError> {
    let deadline = Instant::now() + patience;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match load(client, group).await {
            Ok(saved) => return Ok(saved),
            Err(e) if e.disposition() == Disposition::Retry => {
                let delay = backoff.next_delay();
                if Instant::now() + delay >= deadline {
                    return Err(e);
                }
                warn!(error = %crate::error::Chain(&e), retry_in = ?delay, "reading checkpoints failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

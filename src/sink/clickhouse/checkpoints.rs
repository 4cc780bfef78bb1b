//! Reading the checkpoints partitions resume from.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::warn;

use super::rows::CheckpointRow;
use crate::error::{Classified, Disposition};
use crate::pipeline::Checkpoint;
use crate::retry::Backoff;
use crate::sink::SinkError;

/// The newest checkpoint of every partition of `group`, keyed by (topic, partition).
pub async fn load(
    client: &::clickhouse::Client,
    group: &str,
) -> Result<HashMap<(String, i32), Checkpoint>, SinkError> {
    let rows = client
        .query(
            "SELECT consumer_group, topic, partition, \
                    argMax(offset, version), argMax(watermark, version), argMax(has_watermark, version), \
                    max(updated_at), max(version) \
             FROM checkpoints WHERE consumer_group = ? GROUP BY consumer_group, topic, partition",
        )
        .bind(group)
        .fetch_all::<CheckpointRow>()
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| ((row.topic.clone(), row.partition), row.checkpoint()))
        .collect())
}

/// [`load`], retrying while ClickHouse is unreachable, for up to `patience`.
pub async fn load_retrying(
    client: &::clickhouse::Client,
    group: &str,
    patience: Duration,
) -> Result<HashMap<(String, i32), Checkpoint>, SinkError> {
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

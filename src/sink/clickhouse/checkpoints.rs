//! Reading the checkpoints partitions resume from.

use std::collections::HashMap;

use super::rows::CheckpointRow;
use crate::pipeline::Checkpoint;
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

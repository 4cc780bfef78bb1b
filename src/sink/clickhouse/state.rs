//! Reading the state a partition resumes from (`partition_state`): its
//! checkpoint and epoch, and the newest history of each of its series.

use std::time::Duration;

use super::rows::{CheckpointBody, SeriesRow, StateRow};
use crate::pipeline::{Checkpoint, SeriesSnapshot};
use crate::rollup::{Dimensions, Metric};
use crate::sink::SinkError;

/// What the newest state write of a partition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The newest epoch a start of the partition claimed; the next start
    /// claims one more before writing anything (row versions order by it).
    pub epoch: u32,
    /// Where and how to resume; `None` before the first checkpoint.
    pub checkpoint: Option<Checkpoint>,
    /// Sequence of the write (the next write uses a higher one).
    pub seq: u64,
}

impl Saved {
    /// The claim of a start that loaded `saved`: the next epoch, resuming
    /// from the same checkpoint. Its sequence is above that of every write
    /// of earlier epochs, however late one lands (a write queued by the
    /// partition's previous start, inserted after this claim): sequences
    /// count within an epoch, in the low 32 bits.
    pub fn claim(saved: Option<&Saved>) -> Saved {
        let epoch = saved.map_or(0, |s| s.epoch).saturating_add(1);
        Saved {
            epoch,
            checkpoint: saved.and_then(|s| s.checkpoint.clone()),
            seq: (u64::from(epoch) << 32).max(saved.map_or(0, |s| s.seq) + 1),
        }
    }
}

/// A partition's saved state: its checkpoint row, if any, and the series
/// histories saved with it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The checkpoint row.
    pub saved: Option<Saved>,
    /// The newest history of every series not forgotten.
    pub series: Vec<SeriesSnapshot>,
}

/// Reads the state of `topic`/`partition` for `group`, each query bounded by
/// `timeout`. A row that does not parse is an error: resuming from a guess
/// could count records twice. Series rows newer than the checkpoint (a
/// write whose checkpoint row did not land, or one landing between the two
/// queries) are not its state and are left out.
pub async fn load_partition(
    client: &::clickhouse::Client,
    group: &str,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<Loaded, SinkError> {
    let corrupt = |source| SinkError::CorruptState {
        topic: topic.to_owned(),
        partition,
        source,
    };
    let saved = load_checkpoint(client, group, topic, partition, timeout).await?;
    let series = client
        .query(
            "SELECT metric, campaign_id, content_id, channel, argMax(body, seq) AS newest \
             FROM partition_state \
             WHERE consumer_group = ? AND topic = ? AND partition = ? AND metric != '' \
                   AND seq <= ? \
             GROUP BY metric, campaign_id, content_id, channel \
             HAVING newest != ''",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .bind(saved.as_ref().map_or(0, |s| s.seq))
        .fetch_all::<SeriesRow>();
    let series = tokio::time::timeout(timeout, series)
        .await
        .map_err(|_| SinkError::TimedOut("reading series histories"))??;
    let series = series
        .into_iter()
        .map(|row| snapshot(row).map_err(corrupt))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Loaded { saved, series })
}

/// The checkpoint row of `topic`/`partition` for `group`, if any (see
/// [`load_partition`], which also reads the series histories).
pub async fn load_checkpoint(
    client: &::clickhouse::Client,
    group: &str,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<Option<Saved>, SinkError> {
    let corrupt = |source| SinkError::CorruptState {
        topic: topic.to_owned(),
        partition,
        source,
    };
    let checkpoint = client
        .query(
            "SELECT consumer_group, topic, partition, metric, campaign_id, content_id, channel, \
                    max(seq), argMax(body, seq), max(updated_at) \
             FROM partition_state \
             WHERE consumer_group = ? AND topic = ? AND partition = ? AND metric = '' \
             GROUP BY consumer_group, topic, partition, metric, campaign_id, content_id, channel",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .fetch_optional::<StateRow>();
    let checkpoint = tokio::time::timeout(timeout, checkpoint)
        .await
        .map_err(|_| SinkError::TimedOut("reading the checkpoint"))??;
    match checkpoint {
        Some(row) => {
            let body: CheckpointBody = serde_json::from_str(&row.body).map_err(corrupt)?;
            Ok(Some(Saved {
                epoch: body.epoch,
                checkpoint: body.checkpoint,
                seq: row.seq,
            }))
        }
        None => Ok(None),
    }
}

fn snapshot(row: SeriesRow) -> Result<SeriesSnapshot, serde_json::Error> {
    let metric: Metric = row
        .metric
        .parse()
        .map_err(<serde_json::Error as serde::de::Error>::custom)?;
    Ok(SeriesSnapshot {
        metric,
        dimensions: Dimensions {
            campaign_id: row.campaign_id,
            content_id: row.content_id,
            channel: row.channel,
        },
        history: Some(serde_json::from_str(&row.body)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_outranks_every_write_of_earlier_starts_however_late() {
        let first = Saved::claim(None);
        assert_eq!((first.epoch, first.checkpoint.clone()), (1, None));
        // The previous start's writes, one of them inserted after the claim.
        let previous = Saved {
            epoch: 4,
            checkpoint: Some(Checkpoint::at(120)),
            seq: (4 << 32) + 7,
        };
        let claim = Saved::claim(Some(&previous));
        assert_eq!(
            (claim.epoch, claim.checkpoint),
            (5, Some(Checkpoint::at(120)))
        );
        let late = Saved {
            seq: previous.seq + 1,
            ..previous.clone()
        };
        assert!(claim.seq > late.seq && claim.seq > first.seq);
        // State saved before sequences counted within epochs.
        let legacy = Saved {
            epoch: 9,
            checkpoint: None,
            seq: 1_000,
        };
        assert_eq!(Saved::claim(Some(&legacy)).seq, 10 << 32);
    }
}

//! Series histories (trend, anomaly baseline) saved with each checkpoint
//! and restored when a partition starts, so a restarted or moved partition
//! goes on exactly as if it had never stopped.
//!
//! Closing a window snapshots the history of each of its series into the
//! batch (and a tombstone for each series forgotten after the retention);
//! once the batch is durable, with every earlier one, its snapshots belong
//! to the checkpoint and wait in `unsaved` until the next checkpoint write
//! takes them. A checkpoint and the snapshots taken with it describe the
//! same moment, and are written in one INSERT; the newest snapshot of each
//! series is its state as of the newest checkpoint.

use super::{PartitionPipeline, SeriesId};
use crate::aggregate::SeriesHistory;
use crate::rollup::{Dimensions, Metric};

/// A series' cross-window history as of a closed window: what a partition
/// saves with its checkpoint and restores when it starts, so trend and
/// anomaly go on exactly as if it had never stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSnapshot {
    /// What is measured.
    pub metric: Metric,
    /// For which campaign, content and channel.
    pub dimensions: Dimensions,
    /// Trend and anomaly state after the window; `None`: the series was
    /// forgotten (quiet for longer than the retention).
    pub history: Option<SeriesHistory>,
}

impl PartitionPipeline {
    /// Restores the histories saved with the checkpoint this pipeline
    /// resumes from (the newest snapshot of each series, tombstones
    /// included or not), before any record is processed.
    pub fn restore(&mut self, snapshots: impl IntoIterator<Item = SeriesSnapshot>) {
        for snapshot in snapshots {
            let Some(history) = snapshot.history else {
                continue;
            };
            let Some(position) = history.last_position() else {
                continue;
            };
            let id = self
                .dimensions
                .intern(snapshot.dimensions.as_ref(), position);
            let key = SeriesId {
                metric: snapshot.metric,
                dimensions: id,
            };
            let _previous = self.histories.insert(key, history);
        }
    }

    /// The histories written since the last call, as of the checkpoint
    /// [`Self::checkpoint`] returns now: save them with it, in one write.
    pub fn take_snapshots(&mut self) -> Vec<SeriesSnapshot> {
        self.unsaved
            .drain()
            .map(|((metric, dimensions), history)| SeriesSnapshot {
                metric,
                dimensions,
                history,
            })
            .collect()
    }

    /// Moves the snapshots of every batch now durable (in order, up to the
    /// first still pending) to those the next checkpoint saves.
    pub(super) fn snapshots_durable(&mut self) {
        let first_pending = self.ledger.first_pending();
        while self
            .pending_snapshots
            .front()
            .is_some_and(|(batch, _)| first_pending.is_none_or(|first| *batch < first))
        {
            if let Some((_, snapshots)) = self.pending_snapshots.pop_front() {
                for s in snapshots {
                    let _older = self.unsaved.insert((s.metric, s.dimensions), s.history);
                }
            }
        }
    }
}

//! The checkpoint ledger: which offset of a partition is safe to resume
//! from, and the watermark that goes with it. Pure bookkeeping, no I/O.
//!
//! Delivery is at-least-once with idempotent writes: a partition may only
//! resume after records whose effects are durable. An open window is not
//! durable, nor is a rollup batch ClickHouse has not acknowledged, nor a
//! dead letter the broker has not acknowledged. Each of these *holds* the
//! offset of its oldest record; the resume offset is the lowest hold, or just
//! past the last record seen when nothing is held.

use std::collections::{BTreeMap, VecDeque};

use crate::event::EventTime;

/// Identifies one batch of rollups handed to the sinks.
pub type BatchId = u64;

/// Where a partition resumes after a restart or a rebalance, and the
/// watermark it had when that offset was the resume point. Both are written
/// together, so a restarted partition rebuilds exactly the windows that were
/// still open and treats the ones already written as closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// First offset to read.
    pub offset: i64,
    /// Watermark at that point, if any event had been seen.
    pub watermark: Option<EventTime>,
}

/// Tracks the offsets still needed to rebuild unwritten results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetTracker {
    /// One past the highest offset seen (or where the partition started).
    next: Option<i64>,
    /// Held offsets, with how many holders each has.
    holds: BTreeMap<i64, u32>,
}

impl OffsetTracker {
    /// A tracker for a partition starting at `start` (the checkpoint it
    /// resumed from), if known.
    pub fn new(start: Option<i64>) -> Self {
        OffsetTracker {
            next: start,
            holds: BTreeMap::new(),
        }
    }

    /// Notes that the record at `offset` was read.
    pub fn observe(&mut self, offset: i64) {
        let after = offset.saturating_add(1);
        if self.next.is_none_or(|next| after > next) {
            self.next = Some(after);
        }
    }

    /// Adds a holder for `offset`: it must be re-read if the process stops
    /// before the holder releases it.
    pub fn hold(&mut self, offset: i64) {
        *self.holds.entry(offset).or_insert(0) += 1;
    }

    /// Removes one holder of `offset`. Releasing an offset nobody holds is a
    /// bug in the caller; it is ignored and reported as `false`.
    pub fn release(&mut self, offset: i64) -> bool {
        match self.holds.get_mut(&offset) {
            Some(count) if *count > 1 => {
                *count -= 1;
                true
            }
            Some(_) => self.holds.remove(&offset).is_some(),
            None => false,
        }
    }

    /// The offset to resume from: the oldest held offset, or one past the
    /// last record seen. `None` before anything is known.
    pub fn resume_offset(&self) -> Option<i64> {
        self.holds.keys().next().copied().or(self.next)
    }

    /// Number of outstanding holds.
    pub fn held(&self) -> usize {
        self.holds.values().map(|&n| n as usize).sum()
    }
}

/// A rollup batch not yet acknowledged, and the checkpoint that becomes
/// valid once it and every earlier batch are.
#[derive(Debug, Clone)]
struct PendingBatch {
    id: BatchId,
    held_offsets: Vec<i64>,
    checkpoint: Option<Checkpoint>,
    written: bool,
}

/// What a partition has read, what of it is durable, and so which
/// [`Checkpoint`] is safe to resume from.
#[derive(Debug, Clone)]
pub struct CheckpointLedger {
    offsets: OffsetTracker,
    /// The offset the partition resumed from: records before it were
    /// already accounted for by the previous owner.
    start_offset: Option<i64>,
    next_batch: BatchId,
    pending: VecDeque<PendingBatch>,
    /// The newest checkpoint known to be valid while batches are pending.
    stable: Option<Checkpoint>,
    /// Dead letters and late records not yet acknowledged.
    forwards_in_flight: usize,
}

impl CheckpointLedger {
    /// The ledger of a partition resuming from `start`, if it has a
    /// checkpoint.
    pub fn new(start: Option<Checkpoint>) -> Self {
        CheckpointLedger {
            offsets: OffsetTracker::new(start.map(|c| c.offset)),
            start_offset: start.map(|c| c.offset),
            next_batch: 0,
            pending: VecDeque::new(),
            stable: start,
            forwards_in_flight: 0,
        }
    }

    /// Whether the record at `offset` precedes the resume point (re-read
    /// because the broker delivers from an earlier offset): skip it.
    pub fn is_before_start(&self, offset: i64) -> bool {
        self.start_offset.is_some_and(|start| offset < start)
    }

    /// The record at `offset` is being processed.
    pub fn observe(&mut self, offset: i64) {
        if self.stable.is_none() {
            // Nothing has been written yet: resuming here with no
            // watermark rebuilds everything from the first record.
            self.stable = Some(Checkpoint {
                offset,
                watermark: None,
            });
        }
        self.offsets.observe(offset);
    }

    /// A window whose first record is at `offset` was opened.
    pub fn window_opened(&mut self, offset: i64) {
        self.offsets.hold(offset);
    }

    /// The record at `offset` goes to a side topic (dead letter or late):
    /// held until [`Self::forwarded`].
    pub fn forwarding(&mut self, offset: i64) {
        self.offsets.hold(offset);
        self.forwards_in_flight += 1;
    }

    /// The broker has the record at `offset` that was being forwarded.
    pub fn forwarded(&mut self, offset: i64) {
        if self.offsets.release(offset) {
            self.forwards_in_flight = self.forwards_in_flight.saturating_sub(1);
        }
    }

    /// Windows whose first records are at `first_offsets` closed at
    /// `watermark` into a new batch; returns its id. Once this batch and
    /// all before it are written, every window that watermark closed is
    /// durable, and every window still open starts at or after the resume
    /// offset: a valid checkpoint.
    pub fn batch_closed(
        &mut self,
        first_offsets: Vec<i64>,
        watermark: Option<EventTime>,
    ) -> BatchId {
        let id = self.next_batch;
        self.next_batch += 1;
        self.pending.push_back(PendingBatch {
            id,
            held_offsets: first_offsets,
            checkpoint: self.current(watermark),
            written: false,
        });
        id
    }

    /// The sinks have durably written batch `id`.
    pub fn rollups_written(&mut self, id: BatchId) {
        if let Some(batch) = self.pending.iter_mut().find(|b| b.id == id) {
            batch.written = true;
            for offset in std::mem::take(&mut batch.held_offsets) {
                let _held = self.offsets.release(offset);
            }
        }
        while self.pending.front().is_some_and(|b| b.written) {
            if let Some(checkpoint) = self.pending.pop_front().and_then(|b| b.checkpoint) {
                self.stable = Some(checkpoint);
            }
        }
    }

    fn current(&self, watermark: Option<EventTime>) -> Option<Checkpoint> {
        self.offsets
            .resume_offset()
            .map(|offset| Checkpoint { offset, watermark })
    }

    /// The newest checkpoint that is safe to resume from, given the
    /// partition's current `watermark`: everything before its offset is
    /// durable or re-derivable, and every window its watermark closes is
    /// written.
    pub fn checkpoint(&self, watermark: Option<EventTime>) -> Option<Checkpoint> {
        if self.pending.is_empty() {
            self.current(watermark).or(self.stable)
        } else {
            self.stable
        }
    }

    /// Whether rollups or forwarded records await acknowledgement.
    pub fn has_unacknowledged_output(&self) -> bool {
        !self.pending.is_empty() || self.forwards_in_flight > 0
    }

    /// Rollup batches awaiting acknowledgement.
    pub fn batches_in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Offsets held (open windows, unwritten rows, forwarded records).
    pub fn offsets_held(&self) -> usize {
        self.offsets.held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_after_the_last_record_when_nothing_is_held() {
        let mut t = OffsetTracker::new(None);
        assert_eq!(t.resume_offset(), None);
        t.observe(5);
        t.observe(6);
        assert_eq!(t.resume_offset(), Some(7));
        t.observe(3); // never goes back
        assert_eq!(t.resume_offset(), Some(7));
    }

    #[test]
    fn the_oldest_hold_wins_and_holds_are_counted() {
        let mut t = OffsetTracker::new(Some(10));
        assert_eq!(t.resume_offset(), Some(10));
        for o in 10..20 {
            t.observe(o);
        }
        t.hold(12);
        t.hold(15);
        t.hold(12);
        assert_eq!(t.resume_offset(), Some(12));
        assert!(t.release(12));
        assert_eq!(t.resume_offset(), Some(12));
        assert!(t.release(12));
        assert_eq!(t.resume_offset(), Some(15));
        assert!(!t.release(99));
        assert!(t.release(15));
        assert_eq!(t.resume_offset(), Some(20));
        assert_eq!(t.held(), 0);
    }
}

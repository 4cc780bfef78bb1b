//! The checkpoint ledger: which offset of a partition is safe to resume
//! from, and what it takes to decide every re-read record exactly as the
//! first read did. Pure bookkeeping, no I/O.
//!
//! Delivery is at-least-once with idempotent writes: a partition may only
//! resume after records whose effects are durable. An open window is not
//! durable, nor is a rollup batch ClickHouse has not acknowledged, nor a
//! dead letter the broker has not acknowledged, nor a record the clock guard
//! holds. Each of these *holds* an offset (its record's, or its streak's
//! first); the resume offset is the lowest hold, or just past the last record
//! seen when nothing is held.
//!
//! Re-reading from there must give every record the decision it got the
//! first time (counted, late, dead-lettered), so a [`Checkpoint`] carries
//! the watermark as it was when the record at its offset arrived, which
//! windows are already written (`closed_through`: re-read records for them
//! are skipped, not counted twice and not called late), and when idle
//! closing, a wall-clock decision, happened after that offset.

use std::collections::{BTreeMap, VecDeque};

use crate::event::EventTime;

/// Identifies one batch of rollups handed to the sinks.
pub type BatchId = u64;

/// Where a partition resumes after a restart or a rebalance, and what it
/// needs to decide every re-read record as the first read did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// First offset to read.
    pub offset: i64,
    /// The watermark when the record at `offset` arrived (`None`: the
    /// partition had none yet).
    pub watermark: Option<EventTime>,
    /// Every window ending at or before this is written: re-read records
    /// skip them.
    pub closed_through: Option<EventTime>,
    /// Offsets before which the partition went idle and closed its windows,
    /// after `offset`: a re-read closes them at the same points.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle_closes: Vec<i64>,
    /// Positions (window start / slide) of the windows idle closes closed
    /// before they were complete, within the history retention: they raise
    /// no anomaly alarm, also when a series' next row folds them in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial_windows: Vec<i64>,
}

/// Versions of rows written by this release start here: above the
/// wall-clock millisecond versions of earlier releases, so a rewrite
/// always replaces a row they wrote.
pub const VERSION_BASE: u64 = 1 << 62;

/// The version of the rows of batch `batch` written in `epoch` (a start of
/// the partition): increasing within a start, and above every version of
/// earlier starts, whatever the hosts' clocks say.
pub fn version(epoch: u32, batch: BatchId) -> u64 {
    VERSION_BASE | (u64::from(epoch) << 32) | (batch & 0xffff_ffff)
}

impl Checkpoint {
    /// A checkpoint at `offset` of a partition with nothing decided yet.
    pub fn at(offset: i64) -> Self {
        Checkpoint {
            offset,
            ..Checkpoint::default()
        }
    }

    /// This checkpoint, moved to where its partition can resume when the
    /// partition, holding offsets `earliest..end` now, no longer holds its
    /// offset:
    ///
    /// - before `earliest` (records deleted unread, by retention or by
    ///   hand): resume at `earliest`, deciding the rest as before;
    /// - past `end` (the topic was deleted and created again, or the broker
    ///   lost records it had acknowledged): the offsets are another log's,
    ///   so none of them may be skipped as read already. Resume at
    ///   `earliest` with the watermark and the written windows kept: records
    ///   of written windows are not counted again, later ones are, and
    ///   records too old for the watermark are late. The idle closes, at
    ///   the other log's offsets, are dropped.
    pub fn placed(self, earliest: i64, end: i64) -> (Checkpoint, Placement) {
        if self.offset < earliest {
            let unread = earliest - self.offset;
            let moved = Checkpoint {
                offset: earliest,
                ..self
            };
            (moved, Placement::Deleted { unread })
        } else if self.offset > end {
            let moved = Checkpoint {
                offset: earliest,
                idle_closes: Vec::new(),
                ..self
            };
            (moved, Placement::PastEnd)
        } else {
            (self, Placement::Within)
        }
    }
}

/// Where a checkpoint's offset lay in its partition ([`Checkpoint::placed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Between the earliest offset and the end: the partition resumes there.
    Within,
    /// Before the earliest offset: `unread` records were deleted before
    /// they were read.
    Deleted {
        /// Records between the checkpoint and the earliest offset.
        unread: i64,
    },
    /// Past the end of the partition.
    PastEnd,
}

/// One held offset: how many holders, and the watermark when its record
/// arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    holders: u32,
    watermark: Option<EventTime>,
}

/// Tracks the offsets still needed to rebuild unwritten results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetTracker {
    /// One past the highest offset seen (or where the partition started).
    next: Option<i64>,
    /// Held offsets.
    holds: BTreeMap<i64, Hold>,
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

    /// Whether the record at `offset` was read already.
    pub fn seen(&self, offset: i64) -> bool {
        self.next.is_some_and(|next| offset < next)
    }

    /// Adds a holder for `offset`, whose record arrived when the watermark
    /// was `watermark`: it must be re-read if the process stops before the
    /// holder releases it.
    pub fn hold(&mut self, offset: i64, watermark: Option<EventTime>) {
        self.holds
            .entry(offset)
            .or_insert(Hold {
                holders: 0,
                watermark,
            })
            .holders += 1;
    }

    /// Removes one holder of `offset`. Releasing an offset nobody holds is a
    /// bug in the caller; it is ignored and reported as `false`.
    pub fn release(&mut self, offset: i64) -> bool {
        match self.holds.get_mut(&offset) {
            Some(hold) if hold.holders > 1 => {
                hold.holders -= 1;
                true
            }
            Some(_) => self.holds.remove(&offset).is_some(),
            None => false,
        }
    }

    /// The offset to resume from, and the watermark its record arrived with
    /// (`now` when nothing is held: the next record has not arrived yet):
    /// the oldest held offset, or one past the last record seen. `None`
    /// before anything is known.
    pub fn resume_point(&self, now: Option<EventTime>) -> Option<(i64, Option<EventTime>)> {
        match self.holds.first_key_value() {
            Some((&offset, hold)) => Some((offset, hold.watermark)),
            None => self.next.map(|next| (next, now)),
        }
    }

    /// The offset to resume from.
    pub fn resume_offset(&self) -> Option<i64> {
        self.resume_point(None).map(|(offset, _)| offset)
    }

    /// Number of outstanding holds.
    pub fn held(&self) -> usize {
        self.holds.values().map(|h| h.holders as usize).sum()
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
    /// This start's epoch (see [`version`]).
    epoch: u32,
    offsets: OffsetTracker,
    next_batch: BatchId,
    pending: VecDeque<PendingBatch>,
    /// The newest checkpoint known to be valid while batches are pending.
    stable: Option<Checkpoint>,
    /// Windows ending at or before this are closed (written or pending).
    closed_through: Option<EventTime>,
    /// Idle closes not yet behind the resume offset.
    idle_closes: Vec<i64>,
    /// Idle closes of the checkpoint this partition resumed from, not yet
    /// replayed.
    to_replay: VecDeque<i64>,
    /// Dead letters and late records not yet acknowledged.
    forwards_in_flight: usize,
}

impl CheckpointLedger {
    /// The ledger of a partition resuming from `start`, if it has a
    /// checkpoint, in `epoch`: a number no earlier start of the partition
    /// used, claimed durably before any row is written.
    pub fn new(start: Option<&Checkpoint>, epoch: u32) -> Self {
        CheckpointLedger {
            epoch,
            offsets: OffsetTracker::new(start.map(|c| c.offset)),
            next_batch: 0,
            pending: VecDeque::new(),
            stable: start.cloned(),
            closed_through: start.and_then(|c| c.closed_through),
            idle_closes: start.map(|c| c.idle_closes.clone()).unwrap_or_default(),
            to_replay: start
                .map(|c| c.idle_closes.iter().copied().collect())
                .unwrap_or_default(),
            forwards_in_flight: 0,
        }
    }

    /// Whether the record at `offset` was processed already (it precedes
    /// the resume point, or the broker delivered it again): skip it, or it
    /// would be counted twice.
    pub fn is_duplicate(&self, offset: i64) -> bool {
        self.offsets.seen(offset)
    }

    /// The record at `offset` arrived (with the watermark `watermark`).
    pub fn arrive(&mut self, offset: i64, watermark: Option<EventTime>) {
        if self.stable.is_none() {
            // Nothing has been written yet: resuming here with no
            // watermark rebuilds everything from the first record.
            self.stable = Some(Checkpoint {
                watermark,
                ..Checkpoint::at(offset)
            });
        }
        self.offsets.observe(offset);
    }

    /// Something the record anchored at `anchor` left (an open window, a
    /// held record, a record to forward) must survive a restart: re-read
    /// from `anchor`, which arrived when the watermark was `watermark`.
    pub fn hold(&mut self, anchor: i64, watermark: Option<EventTime>) {
        self.offsets.hold(anchor, watermark);
    }

    /// Releases one [`Self::hold`] of `anchor`.
    pub fn release(&mut self, anchor: i64) {
        let _held = self.offsets.release(anchor);
    }

    /// A record anchored at `anchor` goes to a side topic (dead letter or
    /// late): held until [`Self::forwarded`].
    pub fn forwarding(&mut self, anchor: i64, watermark: Option<EventTime>) {
        self.offsets.hold(anchor, watermark);
        self.forwards_in_flight += 1;
    }

    /// The broker has the record anchored at `anchor` that was being
    /// forwarded.
    pub fn forwarded(&mut self, anchor: i64) {
        if self.offsets.release(anchor) {
            self.forwards_in_flight = self.forwards_in_flight.saturating_sub(1);
        }
    }

    /// The partition went idle and closed its windows before the next
    /// record: a re-read must do the same at the same point.
    pub fn idle_closed(&mut self) {
        if let Some(next) = self.offsets.next {
            if self.idle_closes.last() != Some(&next) {
                self.idle_closes.push(next);
            }
        }
    }

    /// Whether a re-read must close idle windows, as the first read did,
    /// before the record at `offset` (answered once per recorded close).
    pub fn idle_close_due(&mut self, offset: i64) -> bool {
        if self.to_replay.front().is_some_and(|&at| at <= offset) {
            let _due = self.to_replay.pop_front();
            return true;
        }
        false
    }

    /// The watermark closed every window ending at or before `through`.
    pub fn closed(&mut self, through: EventTime) {
        if self.closed_through.is_none_or(|c| through > c) {
            self.closed_through = Some(through);
        }
    }

    /// Whether the window ending at `end` was closed (written, or pending).
    pub fn is_closed(&self, end: EventTime) -> bool {
        self.closed_through.is_some_and(|c| end <= c)
    }

    /// Windows whose first records are at `anchors` closed into a new
    /// batch, with the watermark now `watermark`; returns its id. Once this
    /// batch and all before it are written, every window closed so far is
    /// durable, and every window still open is re-read from at or after the
    /// resume offset: a valid checkpoint.
    pub fn batch_closed(&mut self, anchors: Vec<i64>, watermark: Option<EventTime>) -> BatchId {
        let id = self.next_batch;
        self.next_batch += 1;
        self.pending.push_back(PendingBatch {
            id,
            held_offsets: anchors,
            checkpoint: self.current(watermark),
            written: false,
        });
        id
    }

    /// The version of the rows of batch `id` (see [`version`]).
    pub fn version(&self, id: BatchId) -> u64 {
        version(self.epoch, id)
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
                self.idle_closes.retain(|&at| at > checkpoint.offset);
                self.stable = Some(checkpoint);
            }
        }
    }

    fn current(&self, watermark: Option<EventTime>) -> Option<Checkpoint> {
        self.offsets
            .resume_point(watermark)
            .map(|(offset, watermark)| Checkpoint {
                watermark,
                closed_through: self.closed_through,
                ..Checkpoint::at(offset)
            })
    }

    /// The newest checkpoint that is safe to resume from, given the
    /// partition's current `watermark`. It lists every idle close known
    /// after its offset, including those of batches not written yet: they
    /// are facts about the records, and a re-read must repeat them.
    pub fn checkpoint(&self, watermark: Option<EventTime>) -> Option<Checkpoint> {
        let checkpoint = if self.pending.is_empty() {
            self.current(watermark).or_else(|| self.stable.clone())
        } else {
            self.stable.clone()
        };
        checkpoint.map(|c| Checkpoint {
            idle_closes: self
                .idle_closes
                .iter()
                .copied()
                .filter(|&at| at > c.offset)
                .collect(),
            ..c
        })
    }

    /// Whether rollups or forwarded records await acknowledgement.
    pub fn has_unacknowledged_output(&self) -> bool {
        !self.pending.is_empty() || self.forwards_in_flight > 0
    }

    /// The oldest batch not yet durable (with every earlier one), if any.
    pub fn first_pending(&self) -> Option<BatchId> {
        self.pending.front().map(|b| b.id)
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
        t.hold(12, None);
        t.hold(15, None);
        t.hold(12, None);
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

    #[test]
    fn a_checkpoint_the_partition_no_longer_holds_is_moved_to_its_start() {
        let checkpoint = Checkpoint {
            offset: 100,
            watermark: Some(EventTime::from_millis(5_000)),
            closed_through: Some(EventTime::from_millis(4_000)),
            idle_closes: vec![120],
            partial_windows: vec![70],
        };
        let within = checkpoint.clone().placed(50, 100);
        assert_eq!(within, (checkpoint.clone(), Placement::Within));
        assert_eq!(checkpoint.clone().placed(100, 300).1, Placement::Within);

        // Deleted unread: resume at the earliest, deciding as before.
        assert_eq!(
            checkpoint.clone().placed(130, 300),
            (
                Checkpoint {
                    offset: 130,
                    ..checkpoint.clone()
                },
                Placement::Deleted { unread: 30 }
            )
        );
        // Past the end: another log from its start; the watermark and the
        // written windows kept, the other log's idle closes dropped.
        assert_eq!(
            checkpoint.clone().placed(0, 40),
            (
                Checkpoint {
                    offset: 0,
                    idle_closes: Vec::new(),
                    ..checkpoint
                },
                Placement::PastEnd
            )
        );
    }
}

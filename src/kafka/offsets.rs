//! Which offset of a partition is safe to resume from.
//!
//! Delivery is at-least-once with idempotent writes: a partition may only
//! resume after records whose effects are durable. An open window is not
//! durable, nor is a rollup batch ClickHouse has not acknowledged, nor a
//! dead letter the broker has not acknowledged. Each of these *holds* the
//! offset of its oldest record; the resume offset is the lowest hold, or just
//! past the last record seen when nothing is held.

use std::collections::BTreeMap;

use crate::event::EventTime;

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

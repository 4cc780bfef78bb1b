//! The clock guard: no single record, nor a few, can move a partition's
//! watermark further than `windows.max_future_skew`, the first records of a
//! partition included.
//!
//! - **First watermark.** A fresh partition (no watermark yet) holds its
//!   first records until `windows.first_watermark_records` of them have
//!   arrived (or the partition goes idle). Records more than
//!   `max_future_skew` from their median event time are outliers; the
//!   watermark starts where the earliest of the others puts it. One record
//!   from 2099 or from 2001 among them is then dead-lettered as
//!   `future_timestamp`, or late, instead of defining the watermark.
//! - **Jumps.** Once a watermark exists, a record more than `max_future_skew`
//!   ahead of it is held, and so is every record after it that is too.
//!   `windows.jump_records` consecutive such records are a stream that
//!   really jumped ahead (it was silent, then resumed): the watermark moves
//!   as for a fresh partition, and they are processed. A record
//!   within the skew arriving first ends the streak: the held records were
//!   outliers (a producer with a wrong clock) and are dead-lettered. A
//!   partition that goes idle with a streak held accepts it (the stream
//!   resumed, then went quiet).
//!
//! Decisions depend only on the records and their order, so a replay decides
//! exactly as live did. Every record of a streak is anchored at the streak's
//! first offset: whatever a streak member leaves to be written holds that
//! offset, so a resumed partition re-reads the whole streak.

use std::collections::VecDeque;

use crate::event::{EventTime, Record};

/// A held record and its event time.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Held {
    /// The record, decoded again when released.
    pub(super) record: Record,
    /// Its event time.
    pub(super) time: EventTime,
}

/// How a streak ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Settled {
    /// The streak is real: move the watermark to `watermark`, then process
    /// the records in order.
    Established {
        /// The new watermark (median event time minus the lateness).
        watermark: EventTime,
        /// The streak, in offset order.
        records: Vec<Held>,
    },
    /// The streak was outliers: dead-letter the records.
    Rejected(Vec<Held>),
}

/// What the guard says about an arriving record.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Admission {
    /// Process it now (and first settle `before`, a broken streak).
    Now {
        /// The record.
        record: Record,
        /// A streak this record ended, to dead-letter first.
        before: Option<Settled>,
    },
    /// Held in a streak; `settled` is set when this record completed it.
    Held {
        /// The completed streak, if this record completed it.
        settled: Option<Settled>,
    },
}

/// See the module docs.
#[derive(Debug, Clone)]
pub(super) struct ClockGuard {
    first_quorum: usize,
    jump_quorum: usize,
    max_skew_ms: i64,
    lateness_ms: i64,
    streak: VecDeque<Held>,
}

/// How many records the clock guard wants before it trusts a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockQuorum {
    /// Records whose median starts a fresh partition's watermark.
    pub first_watermark: usize,
    /// Consecutive records that confirm a jump beyond `max_future_skew`.
    pub jump: usize,
}

impl ClockGuard {
    /// A guard wanting `quorum` records, with `max_skew_ms` and
    /// `lateness_ms`.
    pub(super) fn new(quorum: ClockQuorum, max_skew_ms: i64, lateness_ms: i64) -> Self {
        ClockGuard {
            first_quorum: quorum.first_watermark.max(1),
            jump_quorum: quorum.jump.max(1),
            max_skew_ms,
            lateness_ms,
            streak: VecDeque::new(),
        }
    }

    /// Records held.
    pub(super) fn held(&self) -> usize {
        self.streak.len()
    }

    /// Judges a record with event time `time` against the `watermark`.
    pub(super) fn admit(
        &mut self,
        record: Record,
        time: EventTime,
        watermark: Option<EventTime>,
    ) -> Admission {
        let ahead =
            watermark.is_none_or(|w| watermark_move(time, w, self.lateness_ms) > self.max_skew_ms);
        if !ahead {
            let before = (!self.streak.is_empty())
                .then(|| Settled::Rejected(self.streak.drain(..).collect()));
            return Admission::Now { record, before };
        }
        self.streak.push_back(Held { record, time });
        let quorum = if watermark.is_some() {
            self.jump_quorum
        } else {
            self.first_quorum
        };
        let settled = (self.streak.len() >= quorum).then(|| self.establish());
        Admission::Held { settled }
    }

    /// The partition went idle: a held streak is accepted (a fresh partition
    /// starts its watermark from what it has; a stream that jumped ahead and
    /// went quiet keeps its jump).
    pub(super) fn on_idle(&mut self) -> Option<Settled> {
        (!self.streak.is_empty()).then(|| self.establish())
    }

    /// The streak's time: its median tells the consistent records (within
    /// `max_future_skew` of it) from outliers, and the watermark starts
    /// where the earliest consistent record puts it, as if that record had
    /// arrived first, so a sparse stream's first records are not late.
    fn establish(&mut self) -> Settled {
        let records: Vec<Held> = self.streak.drain(..).collect();
        let mut times: Vec<i64> = records.iter().map(|h| h.time.as_millis()).collect();
        times.sort_unstable();
        // The lower median: with an even count, the earlier of the two.
        let median = times[(times.len() - 1) / 2];
        let earliest = times
            .iter()
            .copied()
            .find(|&t| median.saturating_sub(t) <= self.max_skew_ms)
            .unwrap_or(median);
        Settled::Established {
            watermark: EventTime::from_millis(earliest.saturating_sub(self.lateness_ms)),
            records,
        }
    }
}

/// How far a record at `time` would move a partition's `watermark`: the
/// watermark trails the newest event time by `lateness_ms`, so this is how
/// far the record lies ahead of the newest event time the watermark stands
/// for. Measured from the watermark itself, an `allowed_lateness` as long
/// as `max_future_skew` would put every in-order record "too far ahead".
pub(super) fn watermark_move(time: EventTime, watermark: EventTime, lateness_ms: i64) -> i64 {
    time.as_millis()
        .saturating_sub(lateness_ms)
        .saturating_sub(watermark.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKEW: i64 = 3_600_000;

    fn record(offset: i64) -> Record {
        Record {
            offset,
            key: None,
            payload: None,
        }
    }

    fn quorum(n: usize) -> ClockQuorum {
        ClockQuorum {
            first_watermark: n,
            jump: n,
        }
    }

    fn t(ms: i64) -> EventTime {
        EventTime::from_millis(ms)
    }

    fn offsets(records: &[Held]) -> Vec<i64> {
        records.iter().map(|h| h.record.offset).collect()
    }

    #[test]
    fn the_first_watermark_is_the_median_of_the_first_quorum_records() {
        let mut guard = ClockGuard::new(quorum(3), SKEW, 1_000);
        let year_2099 = 4_084_000_000_000;
        assert_eq!(
            guard.admit(record(0), t(year_2099), None),
            Admission::Held { settled: None }
        );
        assert_eq!(guard.held(), 1);
        assert!(matches!(
            guard.admit(record(1), t(100_000), None),
            Admission::Held { settled: None }
        ));
        let Admission::Held {
            settled: Some(Settled::Established { watermark, records }),
        } = guard.admit(record(2), t(101_000), None)
        else {
            panic!("the quorum did not establish a watermark")
        };
        // The earliest record consistent with the median (100s) puts it at
        // 100s minus the lateness; the one from 2099 is an outlier.
        assert_eq!(watermark, t(99_000));
        assert_eq!(offsets(&records), [0, 1, 2]);
        assert_eq!(guard.held(), 0);
    }

    #[test]
    fn a_record_within_the_skew_ends_a_streak_of_outliers() {
        let mut guard = ClockGuard::new(quorum(3), SKEW, 0);
        let w = Some(t(1_000_000));
        let far = t(1_000_000 + SKEW + 1);
        assert!(matches!(
            guard.admit(record(5), far, w),
            Admission::Held { settled: None }
        ));
        assert!(matches!(
            guard.admit(record(6), far, w),
            Admission::Held { settled: None }
        ));
        let Admission::Now {
            record: normal,
            before: Some(Settled::Rejected(outliers)),
        } = guard.admit(record(7), t(1_000_000 + SKEW), w)
        else {
            panic!("the streak was not ended")
        };
        assert_eq!(normal.offset, 7);
        assert_eq!(offsets(&outliers), [5, 6]);
        assert_eq!(
            guard.admit(record(8), t(999_000), w),
            Admission::Now {
                record: record(8),
                before: None
            }
        );
    }

    #[test]
    fn a_quorum_of_consecutive_records_ahead_is_a_jump() {
        let mut guard = ClockGuard::new(quorum(3), SKEW, 500);
        let w = Some(t(0));
        let jump = 10 * SKEW;
        for offset in 0..2 {
            assert!(matches!(
                guard.admit(record(offset), t(jump + offset * 10), w),
                Admission::Held { settled: None }
            ));
        }
        let Admission::Held {
            settled: Some(Settled::Established { watermark, .. }),
        } = guard.admit(record(2), t(jump + 20), w)
        else {
            panic!("no jump")
        };
        assert_eq!(watermark, t(jump - 500));
        // Idle: a short streak is accepted too.
        let _held = guard.admit(record(3), t(3 * jump), Some(watermark));
        assert!(matches!(guard.on_idle(), Some(Settled::Established { .. })));
        assert_eq!(guard.on_idle(), None);
    }
}

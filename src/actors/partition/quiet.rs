//! Whether a partition's source is known to be quiet: the evidence idle
//! closing rests on. Pure bookkeeping, no I/O: the actor asks the broker
//! for the end of the partition (its high watermark) while the reader is at
//! it, and hands the answers here.
//!
//! Reaching the end of a partition says the source had nothing new *then*;
//! silence afterwards may be a quiet source or a broker that cannot be
//! reached, and closing windows during an outage would make every record
//! produced meanwhile late. So a partition counts as quiet only for as long
//! as the broker has answered, without a failed or slow answer in between,
//! that the end has not moved, while the reader read nothing. An outage
//! breaks the run; once the broker answers again a new run starts, and by
//! the time it is `idle_timeout` long, what producers buffered through the
//! outage has arrived.

use std::time::{Duration, Instant};

/// A run of answers that all gave the same end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// The reader's read count when the run began: a run holds only while
    /// the reader has read nothing.
    reads: u64,
    /// The end of the partition every answer of the run gave.
    end: i64,
    /// When the first query of the run was sent.
    since: Instant,
    /// When the last query of the run was sent: the end had not moved from
    /// `since` until at least then.
    confirmed: Instant,
}

/// The answers about the end of one partition, for one reader.
#[derive(Debug, Default)]
pub(super) struct Quiet {
    run: Option<Run>,
    querying: bool,
    last_query: Option<Instant>,
}

/// One answer to a query for the end of the partition.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answer {
    /// The reader's read count when the query was sent.
    pub(super) reads: u64,
    /// When the query was sent.
    pub(super) sent: Instant,
    /// When the answer came.
    pub(super) answered: Instant,
    /// The end of the partition (its high watermark); `None`: no answer in
    /// time, or an error.
    pub(super) end: Option<i64>,
}

impl Quiet {
    /// Whether to send a query at `now`: none is in flight and the last one
    /// was sent at least `every` ago. If so, one is counted as in flight
    /// until [`Self::answered`], or until it is so old (a minute, or ten
    /// times `every`) that its answer can only have been lost.
    pub(super) fn due(&mut self, now: Instant, every: Duration) -> bool {
        let since_last = self
            .last_query
            .map(|last| now.saturating_duration_since(last));
        let lost = since_last.is_some_and(|d| d >= (every * 10).max(Duration::from_secs(60)));
        let due = (!self.querying || lost) && since_last.is_none_or(|d| d >= every);
        if due {
            self.querying = true;
            self.last_query = Some(now);
        }
        due
    }

    /// Takes `answer`; `reads` is the reader's read count now. An answer that
    /// failed, or took longer than `slow` (the broker was unreachable for a
    /// while), ends the run; so does anything read since the query was sent.
    pub(super) fn answered(&mut self, answer: Answer, reads: u64, slow: Duration) {
        self.querying = false;
        let fast = answer.answered.saturating_duration_since(answer.sent) <= slow;
        let Some(end) = answer.end.filter(|_| fast && answer.reads == reads) else {
            self.run = None;
            return;
        };
        match &mut self.run {
            Some(run) if run.reads == reads && run.end == end => {
                run.confirmed = run.confirmed.max(answer.sent);
            }
            _ => {
                self.run = Some(Run {
                    reads,
                    end,
                    since: answer.sent,
                    confirmed: answer.sent,
                });
            }
        }
    }

    /// How long the source is known to have had nothing new, if the reader
    /// (whose read count is `reads`) has read nothing during the run.
    pub(super) fn quiet_for(&self, reads: u64) -> Option<Duration> {
        self.run
            .filter(|run| run.reads == reads)
            .map(|run| run.confirmed.saturating_duration_since(run.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_millis(500);
    const SLOW: Duration = Duration::from_secs(1);

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Sends a query at `sent_ms` answered `took_ms` later with `end`.
    fn ask(q: &mut Quiet, t0: Instant, sent_ms: u64, took_ms: u64, end: Option<i64>, reads: u64) {
        assert!(q.due(at(t0, sent_ms), EVERY), "a query is due at {sent_ms}");
        let answer = Answer {
            reads,
            sent: at(t0, sent_ms),
            answered: at(t0, sent_ms + took_ms),
            end,
        };
        q.answered(answer, reads, SLOW);
    }

    #[test]
    fn the_same_end_answered_again_and_again_is_a_quiet_source() {
        let t0 = Instant::now();
        let mut q = Quiet::default();
        assert_eq!(q.quiet_for(0), None, "nothing known yet");
        ask(&mut q, t0, 0, 5, Some(100), 0);
        assert_eq!(q.quiet_for(0), Some(Duration::ZERO));
        ask(&mut q, t0, 500, 5, Some(100), 0);
        ask(&mut q, t0, 1_000, 5, Some(100), 0);
        assert_eq!(q.quiet_for(0), Some(Duration::from_millis(1_000)));
    }

    #[test]
    fn a_moved_end_or_a_read_starts_again() {
        let t0 = Instant::now();
        let mut q = Quiet::default();
        ask(&mut q, t0, 0, 5, Some(100), 0);
        ask(&mut q, t0, 500, 5, Some(101), 0);
        assert_eq!(
            q.quiet_for(0),
            Some(Duration::ZERO),
            "new records: from now"
        );
        ask(&mut q, t0, 1_000, 5, Some(101), 0);
        assert_eq!(q.quiet_for(0), Some(Duration::from_millis(500)));
        assert_eq!(q.quiet_for(1), None, "the reader read something");
        // An answer to a query sent before that read says nothing.
        assert!(q.due(at(t0, 1_500), EVERY));
        let stale = Answer {
            reads: 0,
            sent: at(t0, 1_500),
            answered: at(t0, 1_505),
            end: Some(101),
        };
        q.answered(stale, 1, SLOW);
        assert_eq!(q.quiet_for(1), None);
        ask(&mut q, t0, 2_000, 5, Some(101), 1);
        assert_eq!(q.quiet_for(1), Some(Duration::ZERO));
    }

    #[test]
    fn an_outage_breaks_the_run_even_if_the_end_did_not_move() {
        let t0 = Instant::now();
        let mut q = Quiet::default();
        ask(&mut q, t0, 0, 5, Some(100), 0);
        ask(&mut q, t0, 500, 5, Some(100), 0);
        // The broker does not answer...
        ask(&mut q, t0, 1_000, 5_000, None, 0);
        assert_eq!(q.quiet_for(0), None);
        // ...or answers late: unreachable for a while, so still no run.
        ask(&mut q, t0, 6_000, 4_000, Some(100), 0);
        assert_eq!(q.quiet_for(0), None);
        // Back: the run starts over, whatever it was before.
        ask(&mut q, t0, 10_000, 5, Some(100), 0);
        ask(&mut q, t0, 10_500, 5, Some(100), 0);
        assert_eq!(q.quiet_for(0), Some(Duration::from_millis(500)));
    }

    #[test]
    fn one_query_at_a_time_and_not_more_often_than_asked() {
        let t0 = Instant::now();
        let mut q = Quiet::default();
        assert!(q.due(t0, EVERY));
        assert!(!q.due(at(t0, 600), EVERY), "one in flight");
        let answer = Answer {
            reads: 0,
            sent: t0,
            answered: at(t0, 10),
            end: Some(1),
        };
        q.answered(answer, 0, SLOW);
        assert!(!q.due(at(t0, 400), EVERY), "too soon");
        assert!(q.due(at(t0, 500), EVERY));
        // An answer that never comes does not stop the questions for good.
        assert!(!q.due(at(t0, 30_000), EVERY));
        assert!(q.due(at(t0, 60_500), EVERY));
    }
}

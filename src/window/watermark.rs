//! The per-partition event-time watermark.

use std::time::Duration;

use crate::event::EventTime;

/// The event time up to which a partition's windows are complete: the newest
/// event time seen minus the allowed lateness. It never moves backwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    lateness_ms: i64,
    current: Option<EventTime>,
}

impl Watermark {
    /// A watermark allowing `lateness`, starting from `restored` (the value
    /// saved in a checkpoint) or from nothing.
    pub fn new(lateness: Duration, restored: Option<EventTime>) -> Self {
        Watermark {
            lateness_ms: i64::try_from(lateness.as_millis()).unwrap_or(i64::MAX),
            current: restored,
        }
    }

    /// The current watermark, if any event has been seen.
    pub fn current(&self) -> Option<EventTime> {
        self.current
    }

    /// Takes an event time into account.
    pub fn observe(&mut self, time: EventTime) {
        self.advance_to(EventTime::from_millis(
            time.as_millis().saturating_sub(self.lateness_ms),
        ));
    }

    /// Moves the watermark forward to `time` (never backwards).
    pub fn advance_to(&mut self, time: EventTime) {
        if self.current.is_none_or(|current| time > current) {
            self.current = Some(time);
        }
    }

    /// Whether a window ending (exclusively) at `end` is complete.
    pub fn has_passed(&self, end: EventTime) -> bool {
        self.current.is_some_and(|current| current >= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trails_the_newest_event_by_the_lateness_and_never_goes_back() {
        let mut wm = Watermark::new(Duration::from_secs(10), None);
        assert_eq!(wm.current(), None);
        assert!(!wm.has_passed(EventTime::from_millis(i64::MIN + 1)));
        wm.observe(EventTime::from_millis(100_000));
        assert_eq!(wm.current(), Some(EventTime::from_millis(90_000)));
        wm.observe(EventTime::from_millis(50_000)); // out of order: no effect
        assert_eq!(wm.current(), Some(EventTime::from_millis(90_000)));
        assert!(wm.has_passed(EventTime::from_millis(90_000)));
        assert!(!wm.has_passed(EventTime::from_millis(90_001)));
    }

    #[test]
    fn restored_value_is_kept_until_overtaken() {
        let mut wm = Watermark::new(Duration::ZERO, Some(EventTime::from_millis(500)));
        wm.observe(EventTime::from_millis(400));
        assert_eq!(wm.current(), Some(EventTime::from_millis(500)));
        wm.observe(EventTime::from_millis(600));
        assert_eq!(wm.current(), Some(EventTime::from_millis(600)));
    }
}

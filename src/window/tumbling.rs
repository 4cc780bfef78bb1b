//! Fixed-size, non-overlapping event-time windows.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::event::EventTime;

/// An open window: its state and the offset of the first record that
/// contributed to it (the oldest offset that must be re-read to rebuild it).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenWindow<S> {
    /// Offset of the first record in this window.
    pub first_offset: i64,
    /// Whatever is aggregated per window.
    pub state: S,
}

/// A window the watermark has passed, handed out for flushing.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow<S> {
    /// Inclusive start.
    pub start: EventTime,
    /// Exclusive end.
    pub end: EventTime,
    /// Offset of the first record in this window.
    pub first_offset: i64,
    /// The aggregated state.
    pub state: S,
}

/// Tumbling windows `[k * size, (k + 1) * size)` in epoch milliseconds, kept in
/// start order so that closing is a pop from the front.
#[derive(Debug, Clone)]
pub struct TumblingWindows<S> {
    size_ms: i64,
    open: BTreeMap<EventTime, OpenWindow<S>>,
}

impl<S: Default> TumblingWindows<S> {
    /// Windows of `size` (at least 1 ms).
    pub fn new(size: Duration) -> Self {
        TumblingWindows {
            size_ms: i64::try_from(size.as_millis()).unwrap_or(i64::MAX).max(1),
            open: BTreeMap::new(),
        }
    }

    /// Start of the window holding `time`.
    pub fn start_of(&self, time: EventTime) -> EventTime {
        EventTime::from_millis(time.as_millis().div_euclid(self.size_ms) * self.size_ms)
    }

    /// End (exclusive) of the window starting at `start`.
    pub fn end_of(&self, start: EventTime) -> EventTime {
        EventTime::from_millis(start.as_millis().saturating_add(self.size_ms))
    }

    /// The state of the window starting at `start`, created (remembering
    /// `offset` as its first) if it is not open yet. The flag says whether it
    /// was created by this call.
    pub fn get_or_open(&mut self, start: EventTime, offset: i64) -> (&mut S, bool) {
        let mut created = false;
        let window = self.open.entry(start).or_insert_with(|| {
            created = true;
            OpenWindow {
                first_offset: offset,
                state: S::default(),
            }
        });
        (&mut window.state, created)
    }

    /// Removes and returns, oldest first, every window whose end is at or
    /// before `watermark`.
    pub fn close_through(&mut self, watermark: EventTime) -> Vec<ClosedWindow<S>> {
        let mut closed = Vec::new();
        let size_ms = self.size_ms;
        while let Some(entry) = self.open.first_entry() {
            let start = *entry.key();
            let end = EventTime::from_millis(start.as_millis().saturating_add(size_ms));
            if end > watermark {
                break;
            }
            let OpenWindow {
                first_offset,
                state,
            } = entry.remove();
            closed.push(ClosedWindow {
                start,
                end,
                first_offset,
                state,
            });
        }
        closed
    }

    /// End of the newest open window, if any.
    pub fn last_end(&self) -> Option<EventTime> {
        self.open
            .last_key_value()
            .map(|(start, _)| self.end_of(*start))
    }

    /// Open windows, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (EventTime, &OpenWindow<S>)> {
        self.open.iter().map(|(start, window)| (*start, window))
    }

    /// Number of open windows.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no window is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> EventTime {
        EventTime::from_millis(ms)
    }

    #[test]
    fn assigns_by_floor_including_before_the_epoch() {
        let w = TumblingWindows::<()>::new(Duration::from_secs(60));
        assert_eq!(w.start_of(t(0)), t(0));
        assert_eq!(w.start_of(t(59_999)), t(0));
        assert_eq!(w.start_of(t(60_000)), t(60_000));
        assert_eq!(w.start_of(t(-1)), t(-60_000));
        assert_eq!(w.end_of(t(60_000)), t(120_000));
    }

    #[test]
    fn remembers_the_first_offset_and_closes_in_start_order() {
        let mut w = TumblingWindows::<u32>::new(Duration::from_secs(60));
        let (count, created) = w.get_or_open(t(60_000), 10);
        *count += 1;
        assert!(created);
        let (count, created) = w.get_or_open(t(0), 11);
        *count += 1;
        assert!(created);
        let (count, created) = w.get_or_open(t(60_000), 12);
        *count += 1;
        assert!(!created);
        assert_eq!(w.last_end(), Some(t(120_000)));

        assert!(w.close_through(t(59_999)).is_empty());
        let closed = w.close_through(t(60_000));
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (
                closed[0].start,
                closed[0].end,
                closed[0].first_offset,
                closed[0].state
            ),
            (t(0), t(60_000), 11, 1)
        );
        let closed = w.close_through(t(1_000_000));
        assert_eq!((closed[0].first_offset, closed[0].state), (10, 2));
        assert!(w.is_empty());
    }
}

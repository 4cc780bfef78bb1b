//! Event-time windows: tumbling (fixed size, non-overlapping) or hopping
//! (fixed size, starting every `slide`, so each event falls in `size / slide`
//! windows).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::event::EventTime;

/// Size and slide of a window family. Tumbling when they are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Length of each window.
    pub size: Duration,
    /// Distance between consecutive window starts; divides `size`.
    pub slide: Duration,
}

impl WindowSpec {
    /// Tumbling windows of `size`.
    pub fn tumbling(size: Duration) -> Self {
        WindowSpec { size, slide: size }
    }
}

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

/// The open windows `[k * slide, k * slide + size)` (epoch milliseconds) of
/// one partition, kept in start order so that closing is a pop from the
/// front. Each window is independent: an event is added to every window that
/// holds it, so a window is complete, and can be written, on its own.
#[derive(Debug, Clone)]
pub struct Windows<S> {
    size_ms: i64,
    slide_ms: i64,
    open: BTreeMap<EventTime, OpenWindow<S>>,
}

impl<S: Default> Windows<S> {
    /// Windows of `spec` (at least 1 ms; a slide that does not divide the
    /// size is rounded down to one that does).
    pub fn new(spec: WindowSpec) -> Self {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1);
        let size_ms = millis(spec.size);
        let mut slide_ms = millis(spec.slide).min(size_ms);
        while size_ms % slide_ms != 0 {
            slide_ms -= 1;
        }
        Windows {
            size_ms,
            slide_ms,
            open: BTreeMap::new(),
        }
    }

    /// Window size in milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// Slide in milliseconds.
    pub fn slide_ms(&self) -> i64 {
        self.slide_ms
    }

    /// Starts of the windows holding `time`, newest first.
    pub fn starts_of(&self, time: EventTime) -> impl Iterator<Item = EventTime> {
        let t = time.as_millis();
        let newest = t.div_euclid(self.slide_ms) * self.slide_ms;
        let (size, slide) = (self.size_ms, self.slide_ms);
        (0..size / slide)
            .map(move |k| newest - k * slide)
            .filter(move |start| start + size > t)
            .map(EventTime::from_millis)
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

    fn tumbling(secs: u64) -> WindowSpec {
        WindowSpec::tumbling(Duration::from_secs(secs))
    }

    #[test]
    fn assigns_by_floor_including_before_the_epoch() {
        let w = Windows::<()>::new(tumbling(60));
        let start = |ms| w.starts_of(t(ms)).collect::<Vec<_>>();
        assert_eq!(start(0), [t(0)]);
        assert_eq!(start(59_999), [t(0)]);
        assert_eq!(start(60_000), [t(60_000)]);
        assert_eq!(start(-1), [t(-60_000)]);
        assert_eq!(w.end_of(t(60_000)), t(120_000));
    }

    #[test]
    fn hopping_windows_hold_each_event_size_over_slide_times() {
        let w = Windows::<()>::new(WindowSpec {
            size: Duration::from_secs(300),
            slide: Duration::from_secs(60),
        });
        let starts: Vec<_> = w.starts_of(t(600_000)).collect();
        assert_eq!(starts, [600_000, 540_000, 480_000, 420_000, 360_000].map(t));
        let starts: Vec<_> = w.starts_of(t(659_999)).collect();
        assert_eq!(starts.len(), 5);
        assert!(starts
            .iter()
            .all(|s| *s <= t(659_999) && w.end_of(*s) > t(659_999)));
        let odd = Windows::<()>::new(WindowSpec {
            size: Duration::from_secs(300),
            slide: Duration::from_secs(70),
        });
        assert_eq!(odd.slide_ms(), 60_000);
    }

    #[test]
    fn remembers_the_first_offset_and_closes_in_start_order() {
        let mut w = Windows::<u32>::new(tumbling(60));
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

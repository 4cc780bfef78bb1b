//! Which windows a replay writes, and the versions its rows carry. Pure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::derived::DerivedEvent;
use crate::event::EventTime;
use crate::window::WindowSpec;

/// A replay's time range, aligned to the windows: `from` rounded up and `to`
/// rounded down to window starts (multiples of the slide), so only windows
/// the range covers completely are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayRange {
    /// First window start written.
    pub from: EventTime,
    /// No window written ends after this.
    pub to: EventTime,
    spec: WindowSpec,
}

/// A range that holds no whole window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--from {from} to --to {to} holds no whole {size} window (windows start every {slide}); widen the range")]
pub struct EmptyRange {
    from: String,
    to: String,
    size: String,
    slide: String,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ReplayRange {
    /// The windows of `spec` inside [`from`, `to`).
    pub fn new(from: EventTime, to: EventTime, spec: WindowSpec) -> Result<Self, EmptyRange> {
        let slide = millis(spec.slide).max(1);
        let from_aligned = EventTime::from_millis(-(-from.as_millis()).div_euclid(slide) * slide);
        let to_aligned = EventTime::from_millis(to.as_millis().div_euclid(slide) * slide);
        if from_aligned.as_millis() + millis(spec.size) > to_aligned.as_millis() {
            return Err(EmptyRange {
                from: from.to_rfc3339(),
                to: to.to_rfc3339(),
                size: humantime::format_duration(spec.size).to_string(),
                slide: humantime::format_duration(spec.slide).to_string(),
            });
        }
        Ok(ReplayRange {
            from: from_aligned,
            to: to_aligned,
            spec,
        })
    }

    /// Whether the window [`start`, `end`) is written by the replay.
    pub fn covers(&self, start: EventTime, end: EventTime) -> bool {
        start >= self.from && end <= self.to
    }

    /// Whether the window starting at `start` is written by the replay.
    pub fn covers_start(&self, start: EventTime) -> bool {
        self.covers(
            start,
            EventTime::from_millis(start.as_millis() + millis(self.spec.size)),
        )
    }

    /// Whether the replay publishes `event`: it is about a window the
    /// replay writes.
    pub fn covers_event(&self, event: &DerivedEvent) -> bool {
        self.covers(
            EventTime::from_millis(event.window_start_ms()),
            EventTime::from_millis(event.window_end_ms()),
        )
    }

    /// Every window starting before the range ends at or before this: the
    /// replay treats them as written (their records are read, not counted,
    /// and they do not move the series histories loaded as of `from`).
    pub fn closed_through(&self) -> EventTime {
        EventTime::from_millis(
            self.from.as_millis() + millis(self.spec.size) - millis(self.spec.slide),
        )
    }

    /// Where reading may start: records before this cannot fall in a
    /// written window nor move the watermark of one.
    pub fn read_from(&self, allowed_lateness: Duration) -> EventTime {
        EventTime::from_millis(
            self.from.as_millis() - millis(self.spec.size) - millis(allowed_lateness),
        )
    }
}

/// The epoch of a replay's rows (see [`crate::pipeline::version`]): above
/// every epoch a live partition reaches (they count starts from 1), and
/// later replays above earlier ones: minutes since 2026-01-01, top bit set.
pub fn replay_epoch(now: SystemTime) -> u32 {
    const BASE: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let minutes = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().saturating_sub(BASE) / 60);
    0x8000_0000 | u32::try_from(minutes.min(0x7fff_ffff)).unwrap_or(0x7fff_ffff)
}

/// `clock` (a [`replay_epoch`]), or one above the replay epoch of
/// `newest` (the newest version among the range's rows) if that is not
/// below it: a replay outranks every earlier one on the rows it rewrites,
/// in the same minute or from a host whose clock is behind.
pub fn replay_epoch_above(clock: u32, newest: Option<u64>) -> u32 {
    let Some(newest) = newest else {
        return clock;
    };
    // Versions are VERSION_BASE (bit 62) | epoch << 32 | batch: the epoch
    // without the bit VERSION_BASE sets.
    let epoch = u32::try_from((newest & !crate::pipeline::VERSION_BASE) >> 32).unwrap_or(0);
    if epoch & 0x8000_0000 == 0 || epoch < clock {
        clock
    } else {
        epoch.saturating_add(1).max(0x8000_0000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn at(minutes: i64, seconds: i64) -> EventTime {
        EventTime::from_millis(minutes * MINUTE + seconds * 1000)
    }

    #[test]
    fn aligns_to_whole_windows() {
        let spec = WindowSpec::tumbling(Duration::from_secs(60));
        let range = ReplayRange::new(at(10, 30), at(20, 30), spec).unwrap();
        assert_eq!((range.from, range.to), (at(11, 0), at(20, 0)));
        assert!(range.covers(at(11, 0), at(12, 0)));
        assert!(range.covers(at(19, 0), at(20, 0)));
        assert!(!range.covers(at(10, 0), at(11, 0)));
        assert!(!range.covers(at(20, 0), at(21, 0)));
        assert_eq!(range.closed_through(), at(11, 0));
        assert_eq!(range.read_from(Duration::from_secs(10)), at(9, 50));
        assert!(ReplayRange::new(at(10, 30), at(11, 30), spec).is_err());
    }

    #[test]
    fn hopping_windows_straddling_from_are_left_alone() {
        let spec = WindowSpec {
            size: Duration::from_secs(120),
            slide: Duration::from_secs(60),
        };
        let range = ReplayRange::new(at(10, 0), at(15, 0), spec).unwrap();
        // [9, 11) straddles `from`: treated as written, not replayed.
        assert!(!range.covers(at(9, 0), at(11, 0)));
        assert_eq!(range.closed_through(), at(11, 0));
        assert!(range.covers(at(13, 0), at(15, 0)));
        // [14, 16) straddles `to`: neither its row nor its events.
        assert!(!range.covers(at(14, 0), at(16, 0)));
        let trend = |start: EventTime| {
            DerivedEvent::Trend(crate::derived::TrendEvent {
                id: String::new(),
                metric: "engagement.click".into(),
                campaign_id: "c".into(),
                content_id: String::new(),
                channel: String::new(),
                window_start: start.as_millis(),
                window_end: start.as_millis() + 120_000,
                window_size_ms: 120_000,
                slope: 1.0,
                previous_slope: -1.0,
                change: "sign_change".into(),
                threshold: 0.0,
            })
        };
        assert!(range.covers_event(&trend(at(13, 0))));
        assert!(!range.covers_event(&trend(at(14, 0))));
        assert!(!range.covers_event(&trend(at(9, 0))));
    }

    #[test]
    fn a_replay_outranks_the_replay_before_it_whatever_the_clock() {
        let version = |epoch| crate::pipeline::version(epoch, 3);
        let clock = 0x8000_0100;
        assert_eq!(replay_epoch_above(clock, None), clock);
        // Live rows: the clock's epoch.
        assert_eq!(replay_epoch_above(clock, Some(version(7))), clock);
        // An earlier replay, older: the clock's.
        assert_eq!(replay_epoch_above(clock, Some(version(0x8000_00ff))), clock);
        // One in the same minute, or from a clock ahead: one above it.
        assert_eq!(replay_epoch_above(clock, Some(version(clock))), clock + 1);
        assert_eq!(
            replay_epoch_above(clock, Some(version(0x8000_0200))),
            0x8000_0201
        );
        assert!(version(replay_epoch_above(clock, Some(version(clock)))) > version(clock));
    }

    #[test]
    fn replay_epochs_outrank_live_ones_and_grow() {
        let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let later = day + Duration::from_secs(120);
        assert!(replay_epoch(day) > 0x8000_0000);
        assert_eq!(replay_epoch(later), replay_epoch(day) + 2);
    }
}

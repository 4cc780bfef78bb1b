//! Event-time windows and the watermark that closes them.
//!
//! A partition keeps its open windows in [`Windows`] (tumbling or hopping), keyed by start
//! time, and a [`Watermark`]: the newest event time seen minus the allowed
//! lateness. A window `[start, end)` closes once the watermark reaches `end`;
//! an event whose windows have all closed is late. Both are plain data driven by
//! the event times passed in, so the same input always closes the same
//! windows, however it is batched and whenever it is processed.

mod watermark;
mod windows;

pub use watermark::Watermark;
pub use windows::{ClosedWindow, OpenWindow, WindowSpec, Windows};

/// What happens to an event whose windows have all closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatePolicy {
    /// Counted (`reactor_late_events_total`) and dropped.
    Drop,
    /// Counted and sent to the late-events topic with the reason.
    SideTopic,
}

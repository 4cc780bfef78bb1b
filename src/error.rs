//! How failures are classified across the crate: what to do with an error
//! ([`Disposition`]) and why an actor stopped ([`ExitReason`]).

use std::fmt;

/// What the caller should do with an error.
///
/// Every boundary error enum (`DecodeError`, `SinkError`, …) maps each of its
/// variants to one of these, so retry policy is decided in one place per
/// boundary instead of at every call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A bad record: count it, dead-letter it, and move on.
    Skip,
    /// A transient failure: back off and try again in place.
    Retry,
    /// Nothing will fix this by retrying: stop the actor and let its supervisor decide.
    Fatal,
}

/// Why a partition actor stopped, reported to its supervisor from `stopped()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Drained on request (revocation or shutdown); do not restart.
    Drained,
    /// Failed with an error that retrying in place cannot fix; restart it from its checkpoint.
    Failed(String),
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Drained => f.write_str("drained"),
            ExitReason::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

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

/// Displays an error followed by its causes, `outer: cause: root cause`.
///
/// For logs: many client errors name only what failed (hyper's "client error
/// (Connect)") and keep why in their sources ("certificate verify failed").
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Wrappers often repeat their cause's text; print it once.
            if !text.is_empty() && !self.0.to_string().ends_with(&text) {
                write!(f, ": {text}")?;
            }
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_shows_the_root_cause() {
        let e = Outer(std::io::Error::other("certificate verify failed"));
        assert_eq!(
            Chain(&e).to_string(),
            "client error (Connect): certificate verify failed"
        );
    }
}

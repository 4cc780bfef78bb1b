//! How failures are classified across the crate: what to do with an error
//! ([`Disposition`]), the errors that know it ([`Classified`]), the typed
//! [`Failure`] that crosses actor boundaries, and why an actor stopped
//! ([`ExitReason`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// What the caller should do with an error.
///
/// Every boundary error enum (`DecodeError`, `SinkError`, …) maps each of its
/// variants to one of these, so retry policy is decided in one place per
/// boundary instead of at every call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A bad record: count it, dead-letter it, and move on.
    Skip,
    /// A transient failure: back off and try again (in place, or by
    /// restarting the actor from its checkpoint).
    Retry,
    /// Nothing will fix this by retrying: stop, say why and what to do.
    Fatal,
}

/// An error that knows its [`Disposition`], and what an operator can do
/// about it when that is something they can fix.
pub trait Classified: std::error::Error + Send + Sync + 'static {
    /// Retry, skip or give up.
    fn disposition(&self) -> Disposition;

    /// What to do about it, for the person reading the log; `None` when
    /// there is nothing to add to the message.
    fn remedy(&self) -> Option<Cow<'static, str>> {
        None
    }
}

/// A failure that stops an actor or the process, carried across actor
/// boundaries (exit reasons, acknowledgements, the supervisor's fatal
/// channel) with its type intact: what was being done, the cause with its
/// chain, whether a restart can help, and what to do.
#[derive(Clone)]
pub struct Failure {
    action: Cow<'static, str>,
    disposition: Disposition,
    remedy: Option<Cow<'static, str>>,
    cause: Arc<dyn std::error::Error + Send + Sync>,
}

impl Failure {
    /// `cause` stopped `action` (e.g. "writing rollups to ClickHouse").
    pub fn new<E: Classified>(action: impl Into<Cow<'static, str>>, cause: E) -> Self {
        Self::shared(action, Arc::new(cause))
    }

    /// [`Self::new`] for a cause shared by several failures (one ClickHouse
    /// error failing every request of a batch).
    pub fn shared<E: Classified>(action: impl Into<Cow<'static, str>>, cause: Arc<E>) -> Self {
        Failure {
            action: action.into(),
            disposition: cause.disposition(),
            remedy: cause.remedy(),
            cause,
        }
    }

    /// Whether restarting the actor from its checkpoint may help; if not,
    /// the process stops.
    pub fn is_retryable(&self) -> bool {
        self.disposition != Disposition::Fatal
    }

    /// Retry or fatal.
    pub fn disposition(&self) -> Disposition {
        self.disposition
    }

    /// What an operator can do about it.
    pub fn remedy(&self) -> Option<&str> {
        self.remedy.as_deref()
    }

    /// The same failure, as a step of a larger one (`action` first).
    pub fn within(self, action: impl Into<Cow<'static, str>>) -> Self {
        let remedy = self.remedy.clone();
        let disposition = self.disposition;
        Failure {
            action: action.into(),
            disposition,
            remedy,
            cause: Arc::new(self),
        }
    }

    /// The same failure, fatal whatever its cause says (a restart budget
    /// spent, for example).
    pub fn fatal(mut self) -> Self {
        self.disposition = Disposition::Fatal;
        self
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("action", &self.action)
            .field("disposition", &self.disposition)
            .field("cause", &Chain(&*self.cause).to_string())
            .field("remedy", &self.remedy)
            .finish()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.action, Chain(&*self.cause))
    }
}

impl std::error::Error for Failure {}

/// A partition actor stopped without draining or reporting a failure: a
/// bug (a panic in one of its handlers, in the log). Its partition is
/// restarted from its checkpoint, within the restart budget, rather than
/// left unread while the process looks healthy.
#[derive(Debug, thiserror::Error)]
#[error("the partition stopped without draining or reporting a failure (a bug; the log shows the panic)")]
pub struct StoppedUnexpectedly;

impl Classified for StoppedUnexpectedly {
    fn disposition(&self) -> Disposition {
        Disposition::Retry
    }
}

/// Why a partition actor stopped, reported to its supervisor from `stopped()`.
#[derive(Debug, Clone)]
pub enum ExitReason {
    /// Drained on request (revocation or shutdown); do not restart.
    Drained,
    /// Failed: restart it from its checkpoint if the failure is retryable,
    /// stop the process if not.
    Failed(Failure),
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Drained => {
                f.write_str("released on request (revoked, or the process is stopping)")
            }
            ExitReason::Failed(failure) => write!(f, "failed: {failure}"),
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
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Wrappers often repeat their cause's text; print it once.
            if !text.is_empty() && !shown.ends_with(&text) {
                write!(f, ": {text}")?;
                shown = text;
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

    impl Classified for Outer {
        fn disposition(&self) -> Disposition {
            Disposition::Retry
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("table x.rollups doesn't exist")]
    struct NoTable;

    impl Classified for NoTable {
        fn disposition(&self) -> Disposition {
            Disposition::Fatal
        }
        fn remedy(&self) -> Option<Cow<'static, str>> {
            Some("create it".into())
        }
    }

    #[test]
    fn chain_shows_the_root_cause() {
        let e = Outer(std::io::Error::other("certificate verify failed"));
        assert_eq!(
            Chain(&e).to_string(),
            "client error (Connect): certificate verify failed"
        );
    }

    #[test]
    fn a_failure_keeps_its_cause_disposition_and_remedy_across_layers() {
        let retry = Failure::new(
            "writing rollups",
            Outer(std::io::Error::other("connection reset")),
        );
        assert!(retry.is_retryable());
        assert_eq!(
            retry.to_string(),
            "writing rollups: client error (Connect): connection reset"
        );
        let fatal = Failure::new("writing rollups", NoTable).within("partition t/0");
        assert!(!fatal.is_retryable());
        assert_eq!(fatal.remedy(), Some("create it"));
        assert_eq!(
            fatal.to_string(),
            "partition t/0: writing rollups: table x.rollups doesn't exist"
        );
        assert!(!retry.fatal().is_retryable());
    }
}

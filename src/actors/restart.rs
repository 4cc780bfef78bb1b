//! When to restart a failed partition actor, and after how long: a pure
//! decision, tested without a runtime.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::Failure;
use crate::retry::Backoff;

/// At most `max_restarts` restarts within `window`, each after a growing,
/// jittered back-off ([`Backoff`]); beyond that, give up (the process exits
/// and its orchestrator restarts it). Failures retrying cannot fix are not
/// restarted at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`.
    pub max_restarts: usize,
    /// The sliding window restarts are counted in.
    pub window: Duration,
    /// Back-off before the first restart.
    pub base_backoff: Duration,
    /// Longest back-off (before jitter).
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(600),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Recent restarts of one partition.
#[derive(Debug, Clone, Default)]
pub struct RestartHistory {
    recent: VecDeque<Instant>,
}

/// What to do about a failed partition.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Restart it from its checkpoint after this delay.
    Restart(Duration),
    /// Stop the process with this failure: it is not retryable, or the
    /// restart budget is spent.
    Stop(Failure),
}

impl RestartPolicy {
    /// What to do about `failure` of the partition `name`, failing at `now`
    /// with restart history `history`.
    pub fn decide(
        &self,
        name: &str,
        failure: Failure,
        history: &mut RestartHistory,
        now: Instant,
    ) -> Decision {
        if !failure.is_retryable() {
            return Decision::Stop(failure.within(format!("partition {name}")));
        }
        while history
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.window)
        {
            let _expired = history.recent.pop_front();
        }
        if history.recent.len() >= self.max_restarts {
            let spent = format!(
                "partition {name} failed {} times within {}",
                self.max_restarts + 1,
                humantime::format_duration(self.window)
            );
            return Decision::Stop(failure.within(spent).fatal());
        }
        let delay = Backoff::nth_delay(self.base_backoff, self.max_backoff, history.recent.len());
        history.recent.push_back(now);
        Decision::Restart(delay)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::error::{Classified, Disposition};

    #[derive(Debug, thiserror::Error)]
    #[error("{0:?} failure")]
    struct Fails(Disposition);

    impl Classified for Fails {
        fn disposition(&self) -> Disposition {
            self.0
        }
        fn remedy(&self) -> Option<Cow<'static, str>> {
            Some("fix it".into())
        }
    }

    const POLICY: RestartPolicy = RestartPolicy {
        max_restarts: 3,
        window: Duration::from_secs(60),
        base_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(3),
    };

    fn failure(disposition: Disposition) -> Failure {
        Failure::new("writing rollups", Fails(disposition))
    }

    fn delay(decision: Decision) -> Duration {
        match decision {
            Decision::Restart(delay) => delay,
            Decision::Stop(f) => panic!("stopped: {f}"),
        }
    }

    #[test]
    fn retryable_failures_restart_with_growing_jittered_back_off_until_the_budget_is_spent() {
        let mut history = RestartHistory::default();
        let t0 = Instant::now();
        let mut decide = |at| POLICY.decide("t/0", failure(Disposition::Retry), &mut history, at);
        let first = delay(decide(t0));
        assert!(first >= Duration::from_secs(1) && first < Duration::from_secs(2));
        let second = delay(decide(t0));
        assert!(second >= Duration::from_secs(2) && second < Duration::from_secs(4));
        let third = delay(decide(t0));
        assert!(third >= Duration::from_secs(3) && third < Duration::from_secs(6));
        let Decision::Stop(spent) = decide(t0) else {
            panic!("a fourth restart within the window")
        };
        assert!(!spent.is_retryable());
        assert_eq!(
            spent.to_string(),
            "partition t/0 failed 4 times within 1m: writing rollups: Retry failure"
        );
        // Restarts older than the window are forgotten.
        let later = delay(decide(t0 + Duration::from_secs(61)));
        assert!(later < Duration::from_secs(2));
    }

    #[test]
    fn a_fatal_failure_stops_at_once_with_its_cause_and_remedy() {
        let mut history = RestartHistory::default();
        let decision = POLICY.decide(
            "t/1",
            failure(Disposition::Fatal),
            &mut history,
            Instant::now(),
        );
        let Decision::Stop(failure) = decision else {
            panic!("a fatal failure was restarted")
        };
        assert_eq!(
            failure.to_string(),
            "partition t/1: writing rollups: Fatal failure"
        );
        assert_eq!(failure.remedy(), Some("fix it"));
        assert!(history.recent.is_empty());
    }
}

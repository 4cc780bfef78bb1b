//! When to restart a failed partition actor, and after how long.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most `max_restarts` restarts within `window`, each after an
/// exponentially growing back-off; beyond that, give up (the process exits
/// and its orchestrator restarts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`.
    pub max_restarts: usize,
    /// The sliding window restarts are counted in.
    pub window: Duration,
    /// Back-off before the first restart.
    pub base_backoff: Duration,
    /// Longest back-off.
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

impl RestartPolicy {
    /// Whether to restart after a failure at `now`, and after what delay.
    /// `None` means the budget is spent.
    pub fn decide(&self, history: &mut RestartHistory, now: Instant) -> Option<Duration> {
        while history
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.window)
        {
            let _expired = history.recent.pop_front();
        }
        if history.recent.len() >= self.max_restarts {
            return None;
        }
        let exponent = u32::try_from(history.recent.len())
            .unwrap_or(u32::MAX)
            .min(16);
        history.recent.push_back(now);
        Some(
            self.base_backoff
                .saturating_mul(1 << exponent)
                .min(self.max_backoff),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_then_gives_up_and_forgets_old_restarts() {
        let policy = RestartPolicy {
            max_restarts: 3,
            window: Duration::from_secs(60),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
        };
        let mut history = RestartHistory::default();
        let t0 = Instant::now();
        assert_eq!(
            policy.decide(&mut history, t0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            policy.decide(&mut history, t0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.decide(&mut history, t0),
            Some(Duration::from_secs(3))
        );
        assert_eq!(policy.decide(&mut history, t0), None);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            policy.decide(&mut history, later),
            Some(Duration::from_secs(1))
        );
    }
}

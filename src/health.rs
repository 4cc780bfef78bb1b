//! Liveness and readiness, shared between the partition actors (which report
//! progress) and the HTTP server (which answers `/readyz`).
//!
//! Ready means: startup checks passed, and every partition assigned to this
//! process has made progress within the stall timeout. A partition whose
//! actor is blocked (ClickHouse down, the registry unreachable) stops
//! reporting and turns the process unready, without killing it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shared health state.
#[derive(Debug)]
pub struct Health {
    started: AtomicBool,
    stall_timeout: Duration,
    partitions: Mutex<BTreeMap<(Arc<str>, i32), Instant>>,
}

impl Health {
    /// Health with the given stall timeout; not started yet.
    pub fn new(stall_timeout: Duration) -> Self {
        Health {
            started: AtomicBool::new(false),
            stall_timeout,
            partitions: Mutex::new(BTreeMap::new()),
        }
    }

    /// Startup checks passed and the consumer is running.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// A partition made progress at `now` (or was just assigned).
    pub fn progress(&self, topic: &Arc<str>, partition: i32, now: Instant) {
        let _previous = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((Arc::clone(topic), partition), now);
    }

    /// A partition is no longer assigned here.
    pub fn forget(&self, topic: &Arc<str>, partition: i32) {
        let _removed = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(Arc::clone(topic), partition));
    }

    /// `Ok` when ready; otherwise the reasons, one per problem.
    pub fn readiness(&self, now: Instant) -> Result<(), Vec<String>> {
        if !self.started.load(Ordering::Acquire) {
            return Err(vec!["starting: startup checks have not finished".into()]);
        }
        let stalled: Vec<String> = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, last)| now.saturating_duration_since(**last) > self.stall_timeout)
            .map(|((topic, partition), last)| {
                format!(
                    "{topic}/{partition}: no progress for {}s",
                    now.saturating_duration_since(*last).as_secs()
                )
            })
            .collect();
        if stalled.is_empty() {
            Ok(())
        } else {
            Err(stalled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_started_and_while_partitions_progress() {
        let health = Health::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(health.readiness(t0).is_err());
        health.set_started();
        assert!(health.readiness(t0).is_ok());
        let topic: Arc<str> = Arc::from("t");
        health.progress(&topic, 0, t0);
        assert!(health.readiness(t0 + Duration::from_secs(10)).is_ok());
        let err = health.readiness(t0 + Duration::from_secs(11)).unwrap_err();
        assert_eq!(err, vec!["t/0: no progress for 11s".to_owned()]);
        health.forget(&topic, 0);
        assert!(health.readiness(t0 + Duration::from_secs(11)).is_ok());
    }
}

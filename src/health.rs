//! Liveness and readiness, shared between the partition actors (which report
//! progress), the supervisor (which releases partitions) and the HTTP server
//! (which answers `/readyz`).
//!
//! Ready means: startup checks passed, and every partition assigned to this
//! process is running and has made progress within the stall timeout:
//! it processed records, or it has nothing to do (it reached the end of its
//! input and nothing it wrote is waiting for a sink). A partition still
//! loading its state (ClickHouse unreachable, say), or whose reading is
//! stopped by outputs that do not get through, turns the process unready
//! without killing it.
//!
//! Entries are per generation (one start of a partition in this process),
//! so a stopping generation can never remove its successor's entry, and a
//! generation's report that arrives after it was released (an actor still
//! finishing a message) is ignored rather than bringing its entry back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where one partition is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PartitionHealth {
    /// Loading its state since then; what keeps it waiting, if anything.
    Loading {
        since: Instant,
        problem: Option<String>,
    },
    /// Running; last progress then.
    Running { progress: Instant },
}

/// Shared health state.
#[derive(Debug)]
pub struct Health {
    started: AtomicBool,
    stall_timeout: Duration,
    partitions: Mutex<Partitions>,
}

/// Each partition's generation and health, and the newest generation of
/// each that was released.
#[derive(Debug, Default)]
struct Partitions {
    health: BTreeMap<(Arc<str>, i32), (u64, PartitionHealth)>,
    released: BTreeMap<(Arc<str>, i32), u64>,
}

impl Health {
    /// Health with the given stall timeout; not started yet.
    pub fn new(stall_timeout: Duration) -> Self {
        Health {
            started: AtomicBool::new(false),
            stall_timeout,
            partitions: Mutex::new(Partitions::default()),
        }
    }

    /// Startup checks passed and the consumer is running.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    fn set(&self, topic: &Arc<str>, partition: i32, generation: u64, health: PartitionHealth) {
        let mut partitions = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (Arc::clone(topic), partition);
        if partitions
            .released
            .get(&key)
            .is_some_and(|&released| generation <= released)
        {
            return; // a late report of a generation already gone
        }
        let entry = partitions
            .health
            .entry(key)
            .or_insert((generation, health.clone()));
        if entry.0 <= generation {
            *entry = (generation, health);
        }
    }

    /// Generation `generation` of a partition is loading its state since
    /// `since`; `problem` says what keeps it waiting, if anything.
    pub fn loading(
        &self,
        topic: &Arc<str>,
        partition: i32,
        generation: u64,
        since: Instant,
        problem: Option<String>,
    ) {
        let since = match self.get(topic, partition, generation) {
            Some(PartitionHealth::Loading { since, .. }) => since,
            _ => since,
        };
        self.set(
            topic,
            partition,
            generation,
            PartitionHealth::Loading { since, problem },
        );
    }

    /// Generation `generation` of a partition made progress at `now`.
    pub fn progress(&self, topic: &Arc<str>, partition: i32, generation: u64, now: Instant) {
        self.set(
            topic,
            partition,
            generation,
            PartitionHealth::Running { progress: now },
        );
    }

    fn get(&self, topic: &Arc<str>, partition: i32, generation: u64) -> Option<PartitionHealth> {
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .health
            .get(&(Arc::clone(topic), partition))
            .filter(|(g, _)| *g == generation)
            .map(|(_, h)| h.clone())
    }

    /// Generation `generation` of a partition is gone from this process;
    /// a newer generation's entry stays.
    pub fn forget(&self, topic: &Arc<str>, partition: i32, generation: u64) {
        let mut partitions = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (Arc::clone(topic), partition);
        if partitions
            .health
            .get(&key)
            .is_some_and(|(g, _)| *g <= generation)
        {
            let _removed = partitions.health.remove(&key);
        }
        let released = partitions.released.entry(key).or_insert(generation);
        *released = (*released).max(generation);
    }

    /// `Ok` when ready; otherwise the reasons, one per problem.
    pub fn readiness(&self, now: Instant) -> Result<(), Vec<String>> {
        if !self.started.load(Ordering::Acquire) {
            return Err(vec!["starting: startup checks have not finished".into()]);
        }
        let problems: Vec<String> = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .health
            .iter()
            .filter_map(|((topic, partition), (_, health))| match health {
                PartitionHealth::Loading { since, problem } => Some(format!(
                    "{topic}/{partition}: loading its state for {}s{}",
                    now.saturating_duration_since(*since).as_secs(),
                    problem
                        .as_ref()
                        .map_or(String::new(), |p| format!(" ({p})"))
                )),
                PartitionHealth::Running { progress }
                    if now.saturating_duration_since(*progress) > self.stall_timeout =>
                {
                    Some(format!(
                        "{topic}/{partition}: no progress for {}s (its input is not read: its outputs are not getting through to ClickHouse or the broker, or it waits for the schema registry; the log names which)",
                        now.saturating_duration_since(*progress).as_secs()
                    ))
                }
                PartitionHealth::Running { .. } => None,
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
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
        health.progress(&topic, 0, 1, t0);
        assert!(health.readiness(t0 + Duration::from_secs(10)).is_ok());
        let err = health.readiness(t0 + Duration::from_secs(11)).unwrap_err();
        assert!(err[0].starts_with("t/0: no progress for 11s"), "{err:?}");
        health.forget(&topic, 0, 1);
        assert!(health.readiness(t0 + Duration::from_secs(11)).is_ok());
    }

    #[test]
    fn loading_is_not_ready_and_says_why() {
        let health = Health::new(Duration::from_secs(10));
        health.set_started();
        let topic: Arc<str> = Arc::from("t");
        let t0 = Instant::now();
        health.loading(&topic, 3, 1, t0, None);
        health.loading(
            &topic,
            3,
            1,
            t0 + Duration::from_secs(5),
            Some("ClickHouse: refused".into()),
        );
        let err = health.readiness(t0 + Duration::from_secs(7)).unwrap_err();
        assert_eq!(
            err,
            vec!["t/3: loading its state for 7s (ClickHouse: refused)".to_owned()]
        );
        health.progress(&topic, 3, 1, t0 + Duration::from_secs(8));
        assert!(health.readiness(t0 + Duration::from_secs(9)).is_ok());
    }

    #[test]
    fn an_old_generation_cannot_touch_a_new_one() {
        let health = Health::new(Duration::from_secs(10));
        health.set_started();
        let topic: Arc<str> = Arc::from("t");
        let t0 = Instant::now();
        health.loading(&topic, 0, 2, t0, None);
        // The previous generation's late reports change nothing.
        health.progress(&topic, 0, 1, t0);
        health.forget(&topic, 0, 1);
        assert!(
            health.readiness(t0).is_err(),
            "generation 2 is still loading"
        );
        health.progress(&topic, 0, 2, t0);
        assert!(health.readiness(t0).is_ok());
    }

    #[test]
    fn a_report_after_the_release_does_not_bring_a_generation_back() {
        let health = Health::new(Duration::from_secs(10));
        health.set_started();
        let topic: Arc<str> = Arc::from("t");
        let t0 = Instant::now();
        health.loading(&topic, 0, 1, t0, None);
        health.forget(&topic, 0, 1);
        // The actor was still handling a message when it was released.
        health.progress(&topic, 0, 1, t0);
        health.loading(&topic, 0, 1, t0, Some("late".into()));
        assert!(health.readiness(t0 + Duration::from_secs(60)).is_ok());
        // The partition comes back to this process: a new generation.
        health.loading(&topic, 0, 2, t0, None);
        assert!(health.readiness(t0).is_err());
        health.progress(&topic, 0, 2, t0);
        assert!(health.readiness(t0).is_ok());
    }
}

//! One back-off policy for every retry loop in Reactor: exponential from a
//! minimum to a maximum delay, with jitter (so replicas retrying against
//! the same recovering service spread out), never giving up by itself.
//! Callers decide when to stop: on a fatal error, or on cancellation
//! ([`pause`]).

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Delays between attempts: `min`, then doubling up to `max`, each plus a
/// random jitter of up to itself (backon's exponential back-off).
#[derive(Debug)]
pub struct Backoff {
    delays: backon::ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    /// Delays from `min` doubling up to `max` (before jitter).
    pub fn new(min: Duration, max: Duration) -> Self {
        let delays = ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(min)
            .with_max_delay(max)
            .without_max_times()
            .build();
        Backoff { delays, max }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }

    /// The `n`th delay (0-based) of a fresh back-off: for counting restarts.
    pub fn nth_delay(min: Duration, max: Duration, n: usize) -> Duration {
        let mut backoff = Backoff::new(min, max);
        (0..n).for_each(|_| {
            let _skipped = backoff.next_delay();
        });
        backoff.next_delay()
    }
}

/// Sleeps for `delay` unless `stop` resolves first; `false` means stopped.
pub async fn pause<S: Future<Output = ()>>(delay: Duration, stop: std::pin::Pin<&mut S>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = stop => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_min_to_max_with_jitter_below_the_delay() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(800));
        let mut backoff = Backoff::new(min, max);
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        for (i, delay) in delays.iter().enumerate() {
            let base = (min * 2u32.pow(u32::try_from(i).unwrap_or(31).min(3))).min(max);
            assert!(
                *delay >= base && *delay < base * 2,
                "attempt {i}: {delay:?} not in [{base:?}, {:?})",
                base * 2
            );
        }
        let n = Backoff::nth_delay(min, max, 2);
        assert!(n >= min * 4 && n < min * 8, "{n:?}");
    }
}

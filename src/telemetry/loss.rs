//! Loss is loud: a partition that sends more than a configured share of its
//! input to the late or dead-letter path over a minute logs a warning (at
//! most one a minute), besides counting every such record. Pure: the caller
//! passes the time and does the logging.

use std::time::{Duration, Instant};

/// How much of a partition's input went where, over one period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossReport {
    /// Records read.
    pub records: u64,
    /// Records late.
    pub late: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// Of the dead letters, those refused because the partition tracks
    /// `limits.max_keys_per_partition` keys already.
    pub over_key_limit: u64,
}

impl LossReport {
    /// The share of the input that is not in the rollups.
    pub fn share(&self) -> f64 {
        (self.late + self.dead_letters) as f64 / self.records.max(1) as f64
    }
}

/// Counts a partition's input and losses over periods of a minute.
#[derive(Debug, Clone)]
pub struct LossWatch {
    threshold: f64,
    period: Duration,
    started: Option<Instant>,
    counts: LossReport,
}

impl LossWatch {
    /// Warns above `threshold` (a share in (0, 1]).
    pub fn new(threshold: f64) -> Self {
        LossWatch {
            threshold,
            period: Duration::from_secs(60),
            started: None,
            counts: LossReport::default(),
        }
    }

    /// Adds one batch's counts at `now`; at the end of a period over the
    /// threshold, returns what to warn about.
    pub fn count(&mut self, now: Instant, batch: LossReport) -> Option<LossReport> {
        let started = *self.started.get_or_insert(now);
        self.counts.records += batch.records;
        self.counts.late += batch.late;
        self.counts.dead_letters += batch.dead_letters;
        self.counts.over_key_limit += batch.over_key_limit;
        if now.saturating_duration_since(started) < self.period {
            return None;
        }
        let period = std::mem::take(&mut self.counts);
        self.started = Some(now);
        let over = period.share() > self.threshold || period.over_key_limit > 0;
        over.then_some(period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: u64, late: u64, dead_letters: u64) -> LossReport {
        LossReport {
            records,
            late,
            dead_letters,
            over_key_limit: 0,
        }
    }

    #[test]
    fn warns_once_a_period_above_the_share_and_on_any_key_limit() {
        let mut watch = LossWatch::new(0.01);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(watch.count(t0, batch(1_000, 5, 4)), None);
        assert_eq!(watch.count(at(30), batch(1_000, 1, 0)), None);
        // End of the period: 10 of 2,000 is 0.5 %, quiet.
        assert_eq!(watch.count(at(60), batch(0, 0, 0)), None);
        assert_eq!(watch.count(at(70), batch(1_000, 30, 0)), None);
        let report = watch.count(at(120), batch(0, 0, 0));
        assert_eq!(report, Some(batch(1_000, 30, 0)));
        assert!((report.map_or(0.0, |r| r.share()) - 0.03).abs() < 1e-12);
        let keys = LossReport {
            over_key_limit: 1,
            ..batch(10_000, 0, 1)
        };
        assert_eq!(watch.count(at(150), keys), None);
        assert_eq!(watch.count(at(180), batch(0, 0, 0)), Some(keys));
    }
}

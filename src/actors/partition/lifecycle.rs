//! The decisions of a partition actor's life, without the actor: when to
//! write the checkpoint, and when a drain is finished. Pure, so every path
//! is unit-tested without a runtime.
//!
//! A partition is *loading* (reading its state from ClickHouse, claiming an
//! epoch) until its state is in; then *running*; then, once asked to stop,
//! *draining*: it reads nothing more, waits for the outputs already handed
//! over (each shipment reports once), writes a final checkpoint if the last
//! one is behind, and finishes. A drain also finishes at its deadline,
//! whatever is still in flight: the next owner re-reads what was not
//! checkpointed.

use std::time::{Duration, Instant};

use crate::pipeline::Checkpoint;
use crate::sink::clickhouse::state::Saved;

/// Where a partition is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading its state; not reading records yet.
    Loading,
    /// Reading and processing records.
    Running,
    /// Asked to stop: reads nothing more, finishes what is in flight.
    Draining,
}

/// What a draining partition does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainStep {
    /// Outputs or a state write are still in flight.
    Wait,
    /// Write this checkpoint, then ask again.
    WriteCheckpoint(Checkpoint),
    /// Done: stop, reporting the last state written.
    Finish,
}

/// See the module docs.
#[derive(Debug)]
pub struct Lifecycle {
    phase: Phase,
    /// The newest state written (`None` while loading).
    written: Option<Saved>,
    /// A state write in flight.
    writing: Option<Saved>,
    last_write_at: Instant,
    interval: Duration,
    /// Shipments (a batch's outputs) handed off and not yet reported.
    shipments: usize,
}

impl Lifecycle {
    /// A partition that has just started loading, writing checkpoints every
    /// `interval` while there is progress.
    pub fn new(now: Instant, interval: Duration) -> Self {
        Lifecycle {
            phase: Phase::Loading,
            written: None,
            writing: None,
            last_write_at: now,
            interval,
            shipments: 0,
        }
    }

    /// Where the partition is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The state is in, and `claimed` (the loaded checkpoint under this
    /// start's epoch) is written: start running. Ignored unless loading.
    pub fn loaded(&mut self, claimed: Saved, now: Instant) {
        if self.phase == Phase::Loading {
            self.phase = Phase::Running;
            self.written = Some(claimed);
            self.last_write_at = now;
        }
    }

    /// Asked to stop.
    pub fn drain(&mut self) {
        self.phase = Phase::Draining;
    }

    /// The newest state written, which is where the next owner resumes.
    pub fn written(&self) -> Option<&Saved> {
        self.written.as_ref()
    }

    /// This start's epoch, once loaded.
    pub fn epoch(&self) -> Option<u32> {
        self.written.as_ref().map(|s| s.epoch)
    }

    /// A batch's outputs were handed to a shipment.
    pub fn shipped(&mut self) {
        self.shipments += 1;
    }

    /// A shipment reported (written, abandoned or failed).
    pub fn shipment_done(&mut self) {
        self.shipments = self.shipments.saturating_sub(1);
    }

    /// Shipments not yet reported.
    pub fn shipments(&self) -> usize {
        self.shipments
    }

    /// Whether anything handed to a sink is still waiting: a shipment or a
    /// state write.
    pub fn in_flight(&self) -> bool {
        self.shipments > 0 || self.writing.is_some()
    }

    /// Whether `candidate` (the pipeline's checkpoint now) should be written
    /// at `now`: running, nothing being written, the interval passed, and
    /// it differs from the last one written.
    pub fn checkpoint_due(&self, candidate: Option<&Checkpoint>, now: Instant) -> bool {
        self.phase == Phase::Running
            && self.writing.is_none()
            && now.saturating_duration_since(self.last_write_at) >= self.interval
            && self.is_new(candidate)
    }

    fn is_new(&self, candidate: Option<&Checkpoint>) -> bool {
        match (candidate, &self.written) {
            (None, _) | (_, None) => false,
            (Some(c), Some(written)) => written.checkpoint.as_ref() != Some(c),
        }
    }

    /// Starts writing `checkpoint`; returns the state row to write (the
    /// next sequence number, this start's epoch). `None` if a write is in
    /// flight or nothing was loaded.
    pub fn start_write(&mut self, checkpoint: Checkpoint, now: Instant) -> Option<Saved> {
        let written = self.written.as_ref()?;
        if self.writing.is_some() {
            return None;
        }
        let next = Saved {
            epoch: written.epoch,
            checkpoint: Some(checkpoint),
            seq: written.seq + 1,
        };
        self.writing = Some(next.clone());
        self.last_write_at = now;
        Some(next)
    }

    /// The state write of sequence `seq` is durable.
    pub fn write_done(&mut self, seq: u64) {
        if self.writing.as_ref().is_some_and(|w| w.seq == seq) {
            self.written = self.writing.take();
        }
    }

    /// What a draining partition does next, given whether the pipeline has
    /// outputs not yet acknowledged and its `candidate` checkpoint. Outputs
    /// that no shipment will report any more (abandoned when the drain
    /// began) are not waited for.
    pub fn drain_step(&self, candidate: Option<&Checkpoint>) -> DrainStep {
        if self.phase != Phase::Draining || self.in_flight() {
            return DrainStep::Wait;
        }
        match candidate {
            Some(c) if self.is_new(Some(c)) => DrainStep::WriteCheckpoint(c.clone()),
            _ => DrainStep::Finish,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn at(offset: i64) -> Checkpoint {
        Checkpoint::at(offset)
    }

    fn claimed() -> Saved {
        Saved {
            epoch: 4,
            checkpoint: Some(at(10)),
            seq: 7,
        }
    }

    #[test]
    fn writes_nothing_while_loading_and_then_every_interval_when_it_moved() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(t0, 5 * SECOND);
        assert_eq!(life.phase(), Phase::Loading);
        assert!(!life.checkpoint_due(Some(&at(11)), t0 + 60 * SECOND));
        assert_eq!(life.start_write(at(11), t0), None);

        life.loaded(claimed(), t0);
        assert_eq!(life.phase(), Phase::Running);
        assert_eq!(life.epoch(), Some(4));
        // Not before the interval, not when it did not move.
        assert!(!life.checkpoint_due(Some(&at(11)), t0 + 4 * SECOND));
        assert!(!life.checkpoint_due(Some(&at(10)), t0 + 6 * SECOND));
        assert!(!life.checkpoint_due(None, t0 + 6 * SECOND));
        assert!(life.checkpoint_due(Some(&at(11)), t0 + 5 * SECOND));

        let write = life.start_write(at(11), t0 + 5 * SECOND).unwrap();
        assert_eq!((write.epoch, write.seq), (4, 8));
        // One write at a time.
        assert!(!life.checkpoint_due(Some(&at(12)), t0 + 20 * SECOND));
        assert_eq!(life.start_write(at(12), t0 + 20 * SECOND), None);
        life.write_done(99); // not the write in flight
        assert_eq!(life.written().unwrap().seq, 7);
        life.write_done(8);
        assert_eq!(life.written(), Some(&write));
        assert!(life.checkpoint_due(Some(&at(12)), t0 + 10 * SECOND));
    }

    #[test]
    fn a_drain_waits_for_shipments_and_the_write_then_saves_once_more() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(t0, 5 * SECOND);
        life.loaded(claimed(), t0);
        life.shipped();
        life.shipped();
        assert_eq!(life.drain_step(Some(&at(20))), DrainStep::Wait); // not draining
        life.drain();
        assert_eq!(life.phase(), Phase::Draining);
        assert!(!life.checkpoint_due(Some(&at(20)), t0 + 60 * SECOND));
        assert_eq!(life.drain_step(Some(&at(20))), DrainStep::Wait);
        life.shipment_done();
        life.shipment_done();
        // Every shipment reported: the final checkpoint, at once.
        assert_eq!(
            life.drain_step(Some(&at(20))),
            DrainStep::WriteCheckpoint(at(20))
        );
        let write = life.start_write(at(20), t0).unwrap();
        assert_eq!(life.drain_step(Some(&at(20))), DrainStep::Wait);
        life.write_done(write.seq);
        assert_eq!(life.drain_step(Some(&at(20))), DrainStep::Finish);
        assert_eq!(life.written().unwrap().checkpoint, Some(at(20)));
    }

    #[test]
    fn a_drain_while_loading_finishes_at_once_with_nothing_saved() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(t0, 5 * SECOND);
        life.drain();
        assert_eq!(life.drain_step(None), DrainStep::Finish);
        assert_eq!(life.written(), None);
        // The state arriving afterwards changes nothing.
        life.loaded(claimed(), t0);
        assert_eq!(life.phase(), Phase::Draining);
        assert_eq!(life.written(), None);
    }
}

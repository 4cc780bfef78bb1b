//! The per-partition processing core: decode → assign to windows →
//! aggregate → close windows the watermark has passed → rollup rows, with
//! each series' trend and anomaly score, and the derived events they raise.
//!
//! [`PartitionPipeline`] is synchronous and does no I/O. It is driven by the
//! partition actor, which feeds it batches of records and the wall-clock
//! ticks used for idle closing, ships what it emits, and reports back when
//! rollups, derived events, dead letters and late records are durable. From
//! those reports its [`CheckpointLedger`] derives the [`Checkpoint`] that is
//! safe to resume from.
//!
//! - `admit`: one record's way in: decode, the clock guard, windows.
//! - [`checkpoint`]: the ledger of held offsets and pending batches.
//! - `close`: closing windows into rows, trend and anomaly verdicts.
//! - `guard`: the clock guard, which no single record can fool.
//! - [`rejection`]: why a record is not aggregated.
//! - `snapshots`: series histories saved with checkpoints, and restored.
//! - `interner`: each partition's dimensions, stored once.
//!
//! Every decision about a record (counted, late, dead-lettered, held)
//! depends only on the records before it and the checkpoint the partition
//! resumed from, never on wall-clock time or on batching, with one
//! documented exception: idle closing, which the ledger records so that a
//! re-read repeats it at the same point.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::aggregate::{Aggregator, Average, HistorySettings, Percentiles, SeriesHistory};
use crate::derived::DerivedEvent;
use crate::event::decode::{DecodeError, Decoder};
use crate::event::validate::Limits;
use crate::event::{EventTime, Record};
use crate::rollup::{Dimensions, Metric, Rollup};
use crate::window::{LatePolicy, Watermark, WindowSpec, Windows};

mod admit;
pub mod checkpoint;
mod close;
mod guard;
mod interner;
pub mod rejection;
mod snapshots;

pub use checkpoint::{
    version, BatchId, Checkpoint, CheckpointLedger, OffsetTracker, Placement, VERSION_BASE,
};
use guard::ClockGuard;
pub use guard::ClockQuorum;
pub use interner::DimensionsId;
use interner::Interner;
pub use rejection::{Rejected, Rejection};
pub use snapshots::SeriesSnapshot;

/// What is aggregated per series in a window: the average always,
/// percentiles for measured metrics.
#[derive(Debug, Clone, Default)]
pub struct SeriesState {
    average: Average,
    percentiles: Option<Percentiles>,
}

impl SeriesState {
    fn new(percentiles: bool) -> Self {
        SeriesState {
            average: Average::default(),
            percentiles: percentiles.then(Percentiles::default),
        }
    }

    #[inline]
    fn record(&mut self, value: f64) {
        self.average.record(value);
        if let Some(p) = &mut self.percentiles {
            p.record(value);
        }
    }

    fn finish(&self, rollup: &mut Rollup) {
        self.average.finish(rollup);
        if let Some(p) = &self.percentiles {
            p.finish(rollup);
        }
    }
}

/// One series within a partition: a metric and its dimensions, named by
/// their id in the partition's interner (so a key holds no strings).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesId {
    /// What is measured.
    pub metric: Metric,
    /// For which campaign, content and channel.
    pub dimensions: DimensionsId,
}

/// Everything aggregated in one window of one partition.
pub type WindowState = FxHashMap<SeriesId, SeriesState>;

/// Windowing settings of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSettings {
    /// Window size and slide.
    pub spec: WindowSpec,
    /// How far behind the newest event an event may still count.
    pub allowed_lateness: Duration,
    /// Wall-clock silence after which open windows are closed.
    pub idle_timeout: Duration,
    /// Events further than this ahead of the watermark are held by the
    /// clock guard, and dead-lettered unless enough agree.
    pub max_future_skew: Duration,
    /// How many records the clock guard wants before it trusts a time.
    pub clock_quorum: ClockQuorum,
    /// What to do with late events.
    pub late_policy: LatePolicy,
}

/// All settings of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineSettings {
    /// Windows, lateness, skew.
    pub windows: WindowSettings,
    /// Trend and anomaly.
    pub history: HistorySettings,
    /// Cross-window state of a series not seen for this long (event time) is
    /// forgotten.
    pub history_retention: Duration,
    /// What one event may carry.
    pub limits: Limits,
    /// Most (campaign, content, channel) keys a partition tracks at once;
    /// records of further keys are dead-lettered.
    pub max_keys: usize,
}

/// Closed-window rows to write and derived events to publish; report
/// [`PartitionPipeline::rollups_written`] with its id once both are durable.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupBatch {
    /// Batch id, increasing per pipeline.
    pub id: BatchId,
    /// Version of its rows in ClickHouse (ReplacingMergeTree): higher than
    /// any version an earlier start of the partition wrote.
    pub version: u64,
    /// One row per series per closed window.
    pub rows: Vec<Rollup>,
    /// Trend and anomaly events (each row is also published as a rollup
    /// event, built by the sink).
    pub events: Vec<DerivedEvent>,
}

/// Counts for one call, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records taken in.
    pub records: u64,
    /// Records decoded from JSON.
    pub json: u64,
    /// Records decoded from Avro.
    pub avro: u64,
    /// Records for windows already closed.
    pub late: u64,
    /// Records dead-lettered for a timestamp too far in the future.
    pub future: u64,
    /// Records dead-lettered because the partition tracks
    /// `limits.max_keys_per_partition` keys already.
    pub over_key_limit: u64,
    /// Records skipped because they were processed already (before the
    /// resume offset, or delivered again).
    pub duplicates: u64,
    /// Records whose windows were all written already (before a restart,
    /// or before a replay's range): read, not counted again.
    pub already_written: u64,
    /// Windows closed.
    pub windows_closed: u64,
}

/// What one call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Rows of windows that closed, if any.
    pub rollups: Option<RollupBatch>,
    /// Records for the dead-letter topic.
    pub dead_letters: Vec<Rejected>,
    /// Records for the late-events topic (policy `side-topic`).
    pub late: Vec<Rejected>,
    /// Counts.
    pub stats: Stats,
}

/// A snapshot of a pipeline's state, for `/state` and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PipelineState {
    /// Open windows: start (ms) and number of series.
    pub open_windows: Vec<(i64, usize)>,
    /// Current watermark (ms).
    pub watermark: Option<i64>,
    /// Rollup batches awaiting acknowledgement.
    pub batches_in_flight: usize,
    /// Offsets held (open windows, unwritten rows, dead letters, late records).
    pub offsets_held: usize,
    /// Records the clock guard holds.
    pub records_held: usize,
    /// Series with trend and anomaly history.
    pub series_tracked: usize,
    /// The checkpoint that is safe to resume from now.
    pub checkpoint_offset: Option<i64>,
}

/// All state of one input partition.
#[derive(Debug, Clone)]
pub struct PartitionPipeline {
    topic: Arc<str>,
    partition: i32,
    decoder: Decoder,
    settings: PipelineSettings,
    windows: Windows<WindowState>,
    watermark: Watermark,
    guard: ClockGuard,
    /// Where the guard's current streak starts, and the watermark then.
    streak_anchor: Option<Anchor>,
    ledger: CheckpointLedger,
    histories: FxHashMap<SeriesId, SeriesHistory>,
    /// The dimensions of every open series and every kept history.
    dimensions: Interner,
    /// Series in the last window closed: a new window is sized for as many,
    /// rather than growing (and rehashing) its map step by step.
    series_hint: usize,
    /// The last event decoded, whose buffers the next one reuses.
    scratch: Option<crate::event::Event>,
    /// Histories as of each unacknowledged batch, in batch order.
    pending_snapshots: VecDeque<(BatchId, Vec<SeriesSnapshot>)>,
    /// Histories of written batches not saved with a checkpoint yet.
    unsaved: FxHashMap<(Metric, Dimensions), Option<SeriesHistory>>,
    /// Sorted positions of the windows idle closes closed partial, within
    /// the history retention ([`Checkpoint::partial_windows`]).
    partial_windows: Vec<i64>,
}

/// Where a record is re-read from after a restart (its own offset, or its
/// clock-guard streak's first), and the watermark when that record arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    offset: i64,
    watermark: Option<EventTime>,
}

/// Why the partition is, or is not, idle (for [`PartitionPipeline::tick`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Source {
    /// How long the source is known to have had nothing new: the reader is
    /// at the end of the partition, and the broker has confirmed for this
    /// long, without a gap, that the end has not moved. `None`: not known
    /// (records are arriving, or the broker cannot be reached).
    pub quiet_for: Option<Duration>,
    /// The partition is draining (revoked, or the process is stopping).
    pub draining: bool,
}

impl PartitionPipeline {
    /// A pipeline for `topic`/`partition`, resuming from `start` if a
    /// checkpoint exists: the watermark the record at its offset arrived
    /// with is restored, and windows it says are written are skipped. Its
    /// rows are versioned in `epoch`, a number no earlier start of the
    /// partition used (see [`checkpoint::version`]); series histories saved
    /// with the checkpoint are put back with [`Self::restore`].
    pub fn new(
        topic: Arc<str>,
        partition: i32,
        decoder: Decoder,
        settings: PipelineSettings,
        start: Option<&Checkpoint>,
        epoch: u32,
    ) -> Self {
        let w = settings.windows;
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        PartitionPipeline {
            topic,
            partition,
            decoder,
            settings,
            windows: Windows::new(w.spec),
            watermark: Watermark::new(w.allowed_lateness, start.and_then(|c| c.watermark)),
            guard: ClockGuard::new(
                w.clock_quorum,
                millis(w.max_future_skew),
                millis(w.allowed_lateness),
            ),
            streak_anchor: None,
            ledger: CheckpointLedger::new(start, epoch),
            histories: FxHashMap::default(),
            dimensions: Interner::default(),
            series_hint: 0,
            scratch: None,
            pending_snapshots: VecDeque::new(),
            unsaved: FxHashMap::default(),
            partial_windows: start.map_or_else(Vec::new, |c| c.partial_windows.clone()),
        }
    }

    /// The partition's decoder.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Schema ids used by `records` that must be fetched before
    /// [`Self::process`], each once.
    pub fn missing_schemas(&self, records: &[Record]) -> Vec<u32> {
        let mut seen = HashSet::new();
        records
            .iter()
            .filter_map(|r| self.decoder.missing_schema(r.payload.as_deref()))
            .filter(|id| seen.insert(*id))
            .collect()
    }

    /// Records the registry's answers for the schema ids
    /// [`Self::missing_schemas`] named (`None`: not found).
    pub fn add_writer_schemas<'t>(
        &mut self,
        answers: impl IntoIterator<Item = (u32, Option<&'t str>)>,
    ) {
        self.decoder.add_writer_schemas(answers);
    }

    /// Processes a batch of records, in offset order. Fails only on a bug
    /// (a schema id not fetched first); bad records become dead letters.
    pub fn process(&mut self, records: Vec<Record>) -> Result<Output, DecodeError> {
        let mut out = Output::default();
        for record in records {
            out.stats.records += 1;
            if self.ledger.is_duplicate(record.offset) {
                out.stats.duplicates += 1;
                continue;
            }
            if self.ledger.idle_close_due(record.offset) {
                self.idle_close(&mut out)?;
            }
            self.arrive(record, &mut out)?;
        }
        self.close_passed(&mut out);
        Ok(out)
    }

    /// Periodic tick: once the source has been known quiet for the idle
    /// timeout ([`Source::quiet_for`], the one input measured in
    /// wall-clock time), with nothing of the partition waiting on a sink and
    /// not draining, closes every open window, so the tail of a stream is
    /// written without waiting for newer events. Events for those windows
    /// arriving later are late. A partition blocked on a sink, backlogged,
    /// draining, or whose broker cannot confirm it is quiet is never idle.
    pub fn tick(&mut self, source: Source) -> Result<Output, DecodeError> {
        let mut out = Output::default();
        let idle = !source.draining
            && !self.ledger.has_unacknowledged_output()
            && source
                .quiet_for
                .is_some_and(|quiet| quiet >= self.settings.windows.idle_timeout);
        if idle && (self.windows.last_end().is_some() || self.guard.held() > 0) {
            self.ledger.idle_closed();
            self.idle_close(&mut out)?;
        }
        Ok(out)
    }

    /// Closes everything: a held streak is accepted, then every open window
    /// is closed.
    fn idle_close(&mut self, out: &mut Output) -> Result<(), DecodeError> {
        if let Some(settled) = self.guard.on_idle() {
            self.settle(settled, out)?;
        }
        // Windows ending after the newest event time seen (the watermark
        // plus the allowed lateness) are closed partial: the stream stopped
        // inside them. One that ended before it, and waited only for the
        // lateness, is complete: nothing more is coming.
        let lateness_ms =
            i64::try_from(self.settings.windows.allowed_lateness.as_millis()).unwrap_or(i64::MAX);
        let complete_through = self
            .watermark
            .current()
            .map(|w| EventTime::from_millis(w.as_millis().saturating_add(lateness_ms)));
        if let Some(end) = self.windows.last_end() {
            self.watermark.advance_to(end);
        }
        if let Some(watermark) = self.watermark.current() {
            self.close(watermark, complete_through, out);
        }
        Ok(())
    }

    /// Closes the windows the watermark has passed.
    fn close_passed(&mut self, out: &mut Output) {
        if let Some(watermark) = self.watermark.current() {
            self.close(watermark, Some(watermark), out);
        }
    }

    /// The sinks have durably written batch `id`.
    pub fn rollups_written(&mut self, id: BatchId) {
        self.ledger.rollups_written(id);
        self.snapshots_durable();
    }

    /// The broker has the [`Rejected`] record at `offset` (dead letter or
    /// late record).
    pub fn forwarded(&mut self, offset: i64) {
        self.ledger.forwarded(offset);
    }

    /// The newest checkpoint that is safe to resume from: everything before
    /// its offset is durable or re-derivable, and every window its watermark
    /// closes is written.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let checkpoint = self.ledger.checkpoint(self.watermark.current())?;
        Some(Checkpoint {
            partial_windows: self.partial_windows.clone(),
            ..checkpoint
        })
    }

    /// Whether the clock guard holds records (which wait for more records,
    /// or for the partition to go idle).
    pub fn holds_records(&self) -> bool {
        self.guard.held() > 0
    }

    /// Whether rollups or dead letters are awaiting acknowledgement.
    pub fn has_unacknowledged_output(&self) -> bool {
        self.ledger.has_unacknowledged_output()
    }

    /// The settings this pipeline runs with.
    pub fn settings(&self) -> &PipelineSettings {
        &self.settings
    }

    /// The topic this pipeline reads.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// The partition this pipeline reads.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// A snapshot for `/state` and tests.
    pub fn state(&self) -> PipelineState {
        PipelineState {
            open_windows: self
                .windows
                .iter()
                .map(|(start, w)| (start.as_millis(), w.state.len()))
                .collect(),
            watermark: self.watermark.current().map(EventTime::as_millis),
            batches_in_flight: self.ledger.batches_in_flight(),
            offsets_held: self.ledger.offsets_held(),
            records_held: self.guard.held(),
            series_tracked: self.histories.len(),
            checkpoint_offset: self.checkpoint().map(|c| c.offset),
        }
    }
}

#[cfg(test)]
mod tests;

//! The per-partition processing core: decode → assign to a window →
//! aggregate → close windows the watermark has passed → rollup rows.
//!
//! [`PartitionPipeline`] is synchronous and does no I/O. It is driven by the
//! partition actor, which feeds it batches of records and the wall-clock
//! ticks used for idle closing, ships what it emits, and reports back when
//! rollups and dead letters are durable. From those reports it derives the
//! [`Checkpoint`] that is safe to resume from.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aggregate::{Aggregator, Average};
use crate::event::decode::{DecodeError, Decoder, Format};
use crate::event::{EventTime, Record};
use crate::kafka::offsets::{Checkpoint, OffsetTracker};
use crate::rollup::{observations, Dimensions, Rollup, SeriesKey};
use crate::window::{ClosedWindow, TumblingWindows, Watermark};

/// What is aggregated per series in a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesState {
    average: Average,
}

impl SeriesState {
    fn record(&mut self, value: f64) {
        self.average.record(value);
    }

    fn finish(&self, rollup: &mut Rollup) {
        self.average.finish(rollup);
    }
}

/// Everything aggregated in one window of one partition.
pub type WindowState = HashMap<SeriesKey, SeriesState>;

/// Windowing settings of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSettings {
    /// Tumbling window length.
    pub size: Duration,
    /// How far behind the newest event an event may still count.
    pub allowed_lateness: Duration,
    /// Wall-clock silence after which open windows are closed.
    pub idle_timeout: Duration,
}

/// Identifies one batch of rollups handed to the sink.
pub type BatchId = u64;

/// Closed-window rows to write; report [`PartitionPipeline::rollups_written`]
/// with its id once they are durable.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupBatch {
    /// Batch id, increasing per pipeline.
    pub id: BatchId,
    /// One row per series per closed window.
    pub rows: Vec<Rollup>,
}

/// A record that could not be used, to be sent to the dead-letter topic.
/// Report [`PartitionPipeline::dead_letter_written`] once the broker has it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Offset of the record.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its payload.
    pub payload: Option<Vec<u8>>,
    /// Why it was rejected.
    pub error: DecodeError,
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
    /// Records skipped because they precede the resume offset.
    pub stale: u64,
    /// Windows closed.
    pub windows_closed: u64,
}

/// What one call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Rows of windows that closed, if any.
    pub rollups: Option<RollupBatch>,
    /// Records to dead-letter.
    pub dead_letters: Vec<DeadLetter>,
    /// Counts.
    pub stats: Stats,
}

/// A rollup batch not yet acknowledged, and the checkpoint that becomes
/// valid once it and every earlier batch are.
#[derive(Debug, Clone)]
struct PendingBatch {
    id: BatchId,
    held_offsets: Vec<i64>,
    checkpoint: Option<Checkpoint>,
    written: bool,
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
    /// Offsets held (open windows, unwritten rows and dead letters).
    pub offsets_held: usize,
    /// The checkpoint that is safe to resume from now.
    pub checkpoint_offset: Option<i64>,
}

/// All state of one input partition.
#[derive(Debug)]
pub struct PartitionPipeline {
    topic: Arc<str>,
    partition: i32,
    decoder: Decoder,
    windows: TumblingWindows<WindowState>,
    watermark: Watermark,
    offsets: OffsetTracker,
    idle_timeout: Duration,
    start_offset: Option<i64>,
    last_input: Option<Instant>,
    next_batch: BatchId,
    pending: VecDeque<PendingBatch>,
    /// The newest checkpoint known to be valid while batches are pending.
    stable: Option<Checkpoint>,
    dead_letters_in_flight: usize,
}

impl PartitionPipeline {
    /// A pipeline for `topic`/`partition`, resuming from `start` if a
    /// checkpoint exists: its watermark is restored, so windows that were
    /// already written are treated as closed.
    pub fn new(
        topic: Arc<str>,
        partition: i32,
        decoder: Decoder,
        settings: WindowSettings,
        start: Option<Checkpoint>,
    ) -> Self {
        PartitionPipeline {
            topic,
            partition,
            decoder,
            windows: TumblingWindows::new(settings.size),
            watermark: Watermark::new(settings.allowed_lateness, start.and_then(|c| c.watermark)),
            offsets: OffsetTracker::new(start.map(|c| c.offset)),
            idle_timeout: settings.idle_timeout,
            start_offset: start.map(|c| c.offset),
            last_input: None,
            next_batch: 0,
            pending: VecDeque::new(),
            stable: start,
            dead_letters_in_flight: 0,
        }
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

    /// Records the registry's answer for a schema id (`None`: not found).
    pub fn add_writer_schema(&mut self, schema_id: u32, schema: Option<&str>) {
        self.decoder.add_writer_schema(schema_id, schema);
    }

    /// Processes a batch read at `now`. Fails only on a bug (a schema id not
    /// fetched first); bad records become dead letters.
    pub fn process(&mut self, records: Vec<Record>, now: Instant) -> Result<Output, DecodeError> {
        let mut out = Output::default();
        for record in records {
            out.stats.records += 1;
            if self.start_offset.is_some_and(|start| record.offset < start) {
                out.stats.stale += 1;
                continue;
            }
            if self.stable.is_none() {
                // Nothing has been written yet: resuming here with no
                // watermark rebuilds everything from the first record.
                self.stable = Some(Checkpoint {
                    offset: record.offset,
                    watermark: None,
                });
            }
            self.offsets.observe(record.offset);
            let (event, format) = match self.decoder.decode(record.payload.as_deref()) {
                Ok(decoded) => decoded,
                Err(error) if error.disposition() == crate::error::Disposition::Skip => {
                    self.offsets.hold(record.offset);
                    self.dead_letters_in_flight += 1;
                    out.dead_letters.push(DeadLetter {
                        offset: record.offset,
                        key: record.key,
                        payload: record.payload,
                        error,
                    });
                    continue;
                }
                Err(error) => return Err(error),
            };
            match format {
                Format::Json => out.stats.json += 1,
                Format::Avro => out.stats.avro += 1,
            }
            let time = event.occurred_at();
            let start = self.windows.start_of(time);
            if self.watermark.has_passed(self.windows.end_of(start)) {
                out.stats.late += 1;
                continue;
            }
            let (state, created) = self.windows.get_or_open(start, record.offset);
            if created {
                self.offsets.hold(record.offset);
            }
            let dimensions = Dimensions::of(&event);
            for (metric, value) in observations(&event) {
                let key = SeriesKey {
                    metric,
                    dimensions: dimensions.clone(),
                };
                state.entry(key).or_default().record(value);
            }
            self.watermark.observe(time);
        }
        if out.stats.records > 0 {
            self.last_input = Some(now);
        }
        if let Some(watermark) = self.watermark.current() {
            self.close(watermark, &mut out);
        }
        Ok(out)
    }

    /// Records that input was seen at `at` even though no batch was
    /// processed then (records read but still queued, or the reader blocked
    /// by backpressure): a backlogged partition is not idle.
    pub fn note_input(&mut self, at: Instant) {
        if let Some(last) = self.last_input {
            self.last_input = Some(last.max(at));
        }
    }

    /// Wall-clock tick: once the partition has been silent for the idle
    /// timeout, closes every open window, so the tail of a stream is written
    /// without waiting for newer events. Events for those windows arriving
    /// later are late.
    pub fn tick(&mut self, now: Instant) -> Output {
        let mut out = Output::default();
        let idle = self
            .last_input
            .is_some_and(|last| now.saturating_duration_since(last) >= self.idle_timeout);
        if idle {
            if let Some(end) = self.windows.last_end() {
                self.watermark.advance_to(end);
                self.close(end, &mut out);
            }
        }
        out
    }

    fn close(&mut self, watermark: EventTime, out: &mut Output) {
        let closed = self.windows.close_through(watermark);
        if closed.is_empty() {
            return;
        }
        out.stats.windows_closed += closed.len() as u64;
        let mut rows = Vec::with_capacity(closed.iter().map(|w| w.state.len()).sum());
        let mut held_offsets = Vec::with_capacity(closed.len());
        for ClosedWindow {
            start,
            end,
            first_offset,
            state,
        } in closed
        {
            held_offsets.push(first_offset);
            let mut series: Vec<_> = state.into_iter().collect();
            series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (key, series_state) in series {
                let mut row = Rollup {
                    metric: key.metric.name().into_owned(),
                    dimensions: key.dimensions,
                    window_start: start,
                    window_end: end,
                    source_topic: Arc::clone(&self.topic),
                    source_partition: self.partition,
                    ..Rollup::default()
                };
                series_state.finish(&mut row);
                rows.push(row);
            }
        }
        let id = self.next_batch;
        self.next_batch += 1;
        // Once this batch and all before it are written, every window that
        // this watermark has closed is durable, and every window still open
        // starts at or after the resume offset: a valid checkpoint.
        self.pending.push_back(PendingBatch {
            id,
            held_offsets,
            checkpoint: self.current_checkpoint(),
            written: false,
        });
        out.rollups = Some(RollupBatch { id, rows });
    }

    /// The sink has durably written batch `id`.
    pub fn rollups_written(&mut self, id: BatchId) {
        if let Some(batch) = self.pending.iter_mut().find(|b| b.id == id) {
            batch.written = true;
            for offset in std::mem::take(&mut batch.held_offsets) {
                let _held = self.offsets.release(offset);
            }
        }
        while self.pending.front().is_some_and(|b| b.written) {
            if let Some(checkpoint) = self.pending.pop_front().and_then(|b| b.checkpoint) {
                self.stable = Some(checkpoint);
            }
        }
    }

    /// The broker has the dead letter for `offset`.
    pub fn dead_letter_written(&mut self, offset: i64) {
        if self.offsets.release(offset) {
            self.dead_letters_in_flight = self.dead_letters_in_flight.saturating_sub(1);
        }
    }

    fn current_checkpoint(&self) -> Option<Checkpoint> {
        self.offsets.resume_offset().map(|offset| Checkpoint {
            offset,
            watermark: self.watermark.current(),
        })
    }

    /// The newest checkpoint that is safe to resume from: everything before
    /// its offset is durable or re-derivable, and every window its watermark
    /// closes is written.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        if self.pending.is_empty() {
            self.current_checkpoint().or(self.stable)
        } else {
            self.stable
        }
    }

    /// Whether rollups or dead letters are awaiting acknowledgement.
    pub fn has_unacknowledged_output(&self) -> bool {
        !self.pending.is_empty() || self.dead_letters_in_flight > 0
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
            batches_in_flight: self.pending.len(),
            offsets_held: self.offsets.held(),
            checkpoint_offset: self.checkpoint().map(|c| c.offset),
        }
    }
}

#[cfg(test)]
mod tests;

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
//! - [`checkpoint`]: the ledger of held offsets and pending batches.
//! - `close`: closing windows into rows, trend and anomaly verdicts.
//! - [`rejection`]: why a record is not aggregated.
//! - `interner`: each partition's dimensions, stored once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::aggregate::{Aggregator, Average, HistorySettings, Percentiles, SeriesHistory};
use crate::derived::DerivedEvent;
use crate::error::{Classified, Disposition};
use crate::event::decode::{DecodeError, Decoder, Format};
use crate::event::{EventTime, Record};
use crate::rollup::{observations, DimensionsRef, Metric, Rollup};
use crate::window::{LatePolicy, Watermark, WindowSpec, Windows};

pub mod checkpoint;
mod close;
mod interner;
pub mod rejection;

pub use checkpoint::{BatchId, Checkpoint, CheckpointLedger, OffsetTracker};
pub use interner::DimensionsId;
use interner::Interner;
pub use rejection::{Rejected, Rejection};

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
    /// Events further than this ahead of the watermark are dead-lettered.
    pub max_future_skew: Duration,
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
}

/// Closed-window rows to write and derived events to publish; report
/// [`PartitionPipeline::rollups_written`] with its id once both are durable.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupBatch {
    /// Batch id, increasing per pipeline.
    pub id: BatchId,
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
    /// Series with trend and anomaly history.
    pub series_tracked: usize,
    /// The checkpoint that is safe to resume from now.
    pub checkpoint_offset: Option<i64>,
}

/// All state of one input partition.
#[derive(Debug)]
pub struct PartitionPipeline {
    topic: Arc<str>,
    partition: i32,
    decoder: Decoder,
    settings: PipelineSettings,
    windows: Windows<WindowState>,
    watermark: Watermark,
    ledger: CheckpointLedger,
    histories: FxHashMap<SeriesId, SeriesHistory>,
    /// The dimensions of every open series and every kept history.
    dimensions: Interner,
    /// Series in the last window closed: a new window is sized for as many,
    /// rather than growing (and rehashing) its map step by step.
    series_hint: usize,
    /// The last event decoded, whose buffers the next one reuses.
    scratch: Option<crate::event::Event>,
    last_input: Option<Instant>,
}

impl PartitionPipeline {
    /// A pipeline for `topic`/`partition`, resuming from `start` if a
    /// checkpoint exists: its watermark is restored, so windows that were
    /// already written are treated as closed.
    pub fn new(
        topic: Arc<str>,
        partition: i32,
        decoder: Decoder,
        settings: PipelineSettings,
        start: Option<Checkpoint>,
    ) -> Self {
        let w = settings.windows;
        PartitionPipeline {
            topic,
            partition,
            decoder,
            settings,
            windows: Windows::new(w.spec),
            watermark: Watermark::new(w.allowed_lateness, start.and_then(|c| c.watermark)),
            ledger: CheckpointLedger::new(start),
            histories: FxHashMap::default(),
            dimensions: Interner::default(),
            series_hint: 0,
            scratch: None,
            last_input: None,
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
        let mut scratch = self.scratch.take();
        for record in records {
            out.stats.records += 1;
            if self.ledger.is_before_start(record.offset) {
                out.stats.stale += 1;
                continue;
            }
            self.ledger.observe(record.offset);
            let decoded = self
                .decoder
                .decode_reusing(record.payload.as_deref(), &mut scratch);
            let (event, format) = match decoded {
                Ok(decoded) => decoded,
                Err(error) if error.disposition() == Disposition::Skip => {
                    self.dead_letter(record, error.into(), &mut out);
                    continue;
                }
                Err(error) => return Err(error),
            };
            match format {
                Format::Json => out.stats.json += 1,
                Format::Avro => out.stats.avro += 1,
            }
            let time = event.occurred_at();
            if let Some(error) = self.too_far_ahead(time) {
                out.stats.future += 1;
                self.dead_letter(record, error, &mut out);
                continue;
            }
            let dimensions = DimensionsRef::of(event);
            let slide_ms = self.windows.slide_ms();
            let mut counted = false;
            for start in self.windows.starts_of(time) {
                if self.watermark.has_passed(self.windows.end_of(start)) {
                    continue;
                }
                counted = true;
                let position = start.as_millis().div_euclid(slide_ms);
                let id = self.dimensions.intern(dimensions, position);
                let (state, created) = self.windows.get_or_open(start, record.offset);
                if created {
                    self.ledger.window_opened(record.offset);
                    state.reserve(self.series_hint);
                }
                for (metric, value) in observations(event) {
                    let percentiles = metric.has_percentiles();
                    let key = SeriesId {
                        metric,
                        dimensions: id,
                    };
                    state
                        .entry(key)
                        .or_insert_with(|| SeriesState::new(percentiles))
                        .record(value);
                }
            }
            if !counted {
                out.stats.late += 1;
                if self.settings.windows.late_policy == LatePolicy::SideTopic {
                    let late = self.reject(record, self.late(time));
                    out.late.push(late);
                }
                continue;
            }
            self.watermark.observe(time);
        }
        self.scratch = scratch;
        if out.stats.records > 0 {
            self.last_input = Some(now);
        }
        if let Some(watermark) = self.watermark.current() {
            self.close(watermark, &mut out);
        }
        Ok(out)
    }

    fn dead_letter(&mut self, record: Record, why: Rejection, out: &mut Output) {
        let letter = self.reject(record, why);
        out.dead_letters.push(letter);
    }

    /// Holds the record's offset until it is forwarded.
    fn reject(&mut self, record: Record, why: Rejection) -> Rejected {
        self.ledger.forwarding(record.offset);
        Rejected {
            offset: record.offset,
            key: record.key,
            payload: record.payload,
            reason: why.to_string(),
            kind: why.kind(),
        }
    }

    /// The clock-skew guard: an event further than `max_future_skew` ahead
    /// of the watermark would close every open window; it is rejected and
    /// does not move the watermark.
    fn too_far_ahead(&self, time: EventTime) -> Option<Rejection> {
        let watermark = self.watermark.current()?;
        let max_skew_ms =
            i64::try_from(self.settings.windows.max_future_skew.as_millis()).unwrap_or(i64::MAX);
        let ahead_ms = time.as_millis().saturating_sub(watermark.as_millis());
        (ahead_ms > max_skew_ms).then(|| Rejection::FutureTimestamp {
            time: time.to_rfc3339(),
            watermark: watermark.to_rfc3339(),
            ahead_ms,
            max_skew_ms,
        })
    }

    fn late(&self, time: EventTime) -> Rejection {
        let newest = self.windows.starts_of(time).next().unwrap_or(time);
        Rejection::Late {
            time: time.to_rfc3339(),
            newest_end: self.windows.end_of(newest).to_rfc3339(),
            watermark: self
                .watermark
                .current()
                .map_or_else(|| "none".to_owned(), EventTime::to_rfc3339),
            lateness: humantime::format_duration(self.settings.windows.allowed_lateness)
                .to_string(),
        }
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
        let idle = self.last_input.is_some_and(|last| {
            now.saturating_duration_since(last) >= self.settings.windows.idle_timeout
        });
        if idle {
            if let Some(end) = self.windows.last_end() {
                self.watermark.advance_to(end);
                self.close(end, &mut out);
            }
        }
        out
    }

    /// The sinks have durably written batch `id`.
    pub fn rollups_written(&mut self, id: BatchId) {
        self.ledger.rollups_written(id);
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
        self.ledger.checkpoint(self.watermark.current())
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
            series_tracked: self.histories.len(),
            checkpoint_offset: self.checkpoint().map(|c| c.offset),
        }
    }
}

#[cfg(test)]
mod tests;

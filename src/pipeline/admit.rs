//! One record's way in: decoded (or dead-lettered), judged by the clock
//! guard (processed, or held until enough records agree on the time), then
//! counted in every open window that holds its event time, or called late.

use super::guard::{watermark_move, Admission, Settled};
use super::{Anchor, Output, PartitionPipeline, Rejected, Rejection, SeriesId, SeriesState};
use crate::error::{Classified, Disposition};
use crate::event::decode::{DecodeError, Format};
use crate::event::{Event, EventTime, Record};
use crate::rollup::{observations, DimensionsRef};
use crate::window::LatePolicy;

impl PartitionPipeline {
    /// The record at the next offset arrives.
    pub(super) fn arrive(&mut self, record: Record, out: &mut Output) -> Result<(), DecodeError> {
        let watermark = self.watermark.current();
        self.ledger.arrive(record.offset, watermark);
        let own = Anchor {
            offset: record.offset,
            watermark,
        };
        let mut scratch = self.scratch.take();
        let decoded = self.decode(&record, &mut scratch, out);
        let result = match decoded {
            Ok(Ok(time)) => self.admit(record, time, own, scratch.as_ref(), out),
            Ok(Err(rejection)) => {
                let anchor = self.streak_anchor.unwrap_or(own);
                self.dead_letter(record, anchor, rejection, out);
                Ok(())
            }
            Err(bug) => Err(bug),
        };
        self.scratch = scratch;
        result
    }

    /// Decodes `record` into `slot`: its event time, or why it is unusable.
    fn decode(
        &self,
        record: &Record,
        slot: &mut Option<Event>,
        out: &mut Output,
    ) -> Result<Result<EventTime, Rejection>, DecodeError> {
        match self.decoder.decode_reusing(record.payload.as_deref(), slot) {
            Ok((event, format)) => {
                match format {
                    Format::Json => out.stats.json += 1,
                    Format::Avro => out.stats.avro += 1,
                }
                Ok(Ok(event.occurred_at()))
            }
            Err(error) if error.disposition() == Disposition::Skip => Ok(Err(error.into())),
            Err(bug) => Err(bug),
        }
    }

    fn admit(
        &mut self,
        record: Record,
        time: EventTime,
        own: Anchor,
        event: Option<&Event>,
        out: &mut Output,
    ) -> Result<(), DecodeError> {
        match self.guard.admit(record, time, own.watermark) {
            Admission::Now { record, before } => {
                if let Some(settled) = before {
                    self.settle(settled, out)?;
                }
                if let Some(event) = event {
                    self.accept(record, event, own, out);
                }
            }
            Admission::Held { settled } => {
                if self.streak_anchor.is_none() {
                    self.streak_anchor = Some(own);
                    self.ledger.hold(own.offset, own.watermark);
                }
                if let Some(settled) = settled {
                    self.settle(settled, out)?;
                }
            }
        }
        Ok(())
    }

    /// Acts on a streak the clock guard has decided: dead-letters its
    /// records, or moves the watermark and processes them, in order.
    pub(super) fn settle(&mut self, settled: Settled, out: &mut Output) -> Result<(), DecodeError> {
        let Some(anchor) = self.streak_anchor.take() else {
            return Ok(());
        };
        match settled {
            Settled::Rejected(held) => {
                for h in held {
                    let why =
                        self.too_far_ahead(h.time)
                            .unwrap_or_else(|| Rejection::FutureTimestamp {
                                time: h.time.to_rfc3339(),
                                watermark: "none".to_owned(),
                                ahead_ms: 0,
                                max_skew_ms: 0,
                            });
                    out.stats.future += 1;
                    self.dead_letter(h.record, anchor, why, out);
                }
            }
            Settled::Established { watermark, records } => {
                self.watermark.advance_to(watermark);
                let mut slot = None;
                for h in records {
                    match self
                        .decoder
                        .decode_reusing(h.record.payload.as_deref(), &mut slot)
                    {
                        Ok(_) => {
                            if let Some(event) = slot.take() {
                                self.accept(h.record, &event, anchor, out);
                                slot = Some(event);
                            }
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        self.ledger.release(anchor.offset);
        Ok(())
    }

    /// Counts `event` in every open window that holds its time; a record no
    /// open window holds is late.
    fn accept(&mut self, record: Record, event: &Event, anchor: Anchor, out: &mut Output) {
        let time = event.occurred_at();
        if let Some(why) = self.too_far_ahead(time) {
            out.stats.future += 1;
            self.dead_letter(record, anchor, why, out);
            return;
        }
        let dimensions = DimensionsRef::of(event);
        if self.over_key_limit(dimensions) {
            out.stats.over_key_limit += 1;
            let why = Rejection::KeyLimit {
                max: self.settings.max_keys,
            };
            self.dead_letter(record, anchor, why, out);
            return;
        }
        let slide_ms = self.windows.slide_ms();
        let (mut counted, mut written) = (false, true);
        for start in self.windows.starts_of(time) {
            let end = self.windows.end_of(start);
            if self.watermark.has_passed(end) {
                continue;
            }
            counted = true;
            // Interned even if not recounted: the record brings its
            // dimensions, as it did in the run before the restart.
            let position = start.as_millis().div_euclid(slide_ms);
            let id = self.dimensions.intern(dimensions, position);
            if self.ledger.is_closed(end) {
                continue; // written before a restart: re-read, not recounted
            }
            written = false;
            let (state, created) = self.windows.get_or_open(start, anchor.offset);
            if created {
                self.ledger.hold(anchor.offset, anchor.watermark);
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
        if counted && written {
            out.stats.already_written += 1;
        }
        if !counted {
            out.stats.late += 1;
            if self.settings.windows.late_policy == LatePolicy::SideTopic {
                let late = self.reject(record, anchor, self.late(time));
                out.late.push(late);
            }
            return;
        }
        self.watermark.observe(time);
    }

    /// Whether `dimensions` are a new key beyond `limits.max_keys_per_partition`.
    /// Keys count as a close at the current watermark would leave them
    /// (windows close at the end of a batch), so the answer does not
    /// depend on where batches fell.
    fn over_key_limit(&mut self, dimensions: DimensionsRef<'_>) -> bool {
        let max = self.settings.max_keys;
        if self.dimensions.len() < max {
            return false; // however they are counted, fewer than max
        }
        let oldest_kept = self
            .watermark
            .current()
            .map_or(i64::MIN, |w| self.oldest_kept(w));
        !self.dimensions.holds_since(dimensions, oldest_kept)
            && self.dimensions.held_since(oldest_kept) >= max
    }

    fn dead_letter(&mut self, record: Record, anchor: Anchor, why: Rejection, out: &mut Output) {
        let letter = self.reject(record, anchor, why);
        out.dead_letters.push(letter);
    }

    /// Holds the record's anchor until the record is forwarded.
    fn reject(&mut self, record: Record, anchor: Anchor, why: Rejection) -> Rejected {
        self.ledger.forwarding(anchor.offset, anchor.watermark);
        Rejected {
            offset: record.offset,
            anchor: anchor.offset,
            key: record.key,
            payload: record.payload,
            reason: why.to_string(),
            kind: why.kind(),
        }
    }

    /// An event that would move the watermark further than
    /// `max_future_skew` would close every open window: it is rejected and
    /// does not move the watermark.
    fn too_far_ahead(&self, time: EventTime) -> Option<Rejection> {
        let watermark = self.watermark.current()?;
        let windows = &self.settings.windows;
        let max_skew_ms = i64::try_from(windows.max_future_skew.as_millis()).unwrap_or(i64::MAX);
        let lateness_ms = i64::try_from(windows.allowed_lateness.as_millis()).unwrap_or(i64::MAX);
        let ahead_ms = watermark_move(time, watermark, lateness_ms);
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
}

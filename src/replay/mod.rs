//! `reactor replay`: recomputes the windows of a time range from the input
//! topics and writes exactly the rows live processing would have written.
//!
//! - [`range`]: which windows a replay writes, and its rows' versions.
//! - [`history`]: trend and anomaly histories as of the range's start,
//!   rebuilt from the rows already in ClickHouse.
//! - [`diff`]: what the replay changes in ClickHouse.
//! - [`live`]: what the live run has written, which the replay follows.
//! - `input`: reading the partitions (assignment, start, end, polling).
//!
//! The replay reads the partitions by direct assignment (no group, no
//! commits: it runs beside the live service), from a start found with
//! `offsets_for_times` (a hint: a broker answering 0 only costs reading
//! more) up to the end offsets captured at start, through the same
//! [`PartitionPipeline`] as `run`. Windows before the range are treated as
//! written (their records are read for the watermark, not counted); the
//! histories are loaded as of the range's start; a partition stops once its
//! watermark has passed the range's end. Rows of windows the range covers
//! completely are written with versions above the live ones.
//!
//! With `include_late`, records that arrived after their window closed
//! (events published after the fact, to correct a range) are counted too:
//! each partition's records in the range are read to the end and ordered by
//! event time first, so no record is late.

pub mod diff;
pub mod history;
mod input;
pub mod live;
pub mod range;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::config::Config;
use crate::derived::DerivedEvent;
use crate::event::decode::Decoder;
use crate::event::{EventTime, Record, TopicKind};
use crate::kafka::consumer::ToolContext;
use crate::pipeline::{Checkpoint, Output, PartitionPipeline, PipelineSettings, Source};
use crate::registry::SchemaRegistry;
use crate::sink::clickhouse::rows::RollupRow;
use crate::sink::clickhouse::{self as ch, schema, RollupWriter, When, WriterSettings};
use crate::sink::derived::{DerivedSink, Turn};
use diff::{Diff, RowKey};
use history::{histories_as_of, Rebuild, StoredValue};
use input::{
    pause, plan_topic, poll_batch, position, replay_consumer, Polled, Timestamped, PAST_END,
};
use live::Live;
use range::{replay_epoch, replay_epoch_above, ReplayRange};

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Start of the range (rounded up to a window start).
    pub from: EventTime,
    /// End of the range (rounded down to a window start).
    pub to: EventTime,
    /// Input topics to replay.
    pub topics: Vec<TopicKind>,
    /// Only these partitions (of every topic); all when `None`.
    pub partitions: Option<Vec<i32>>,
    /// Compute and compare, write nothing.
    pub dry_run: bool,
    /// Publish derived events of the replayed windows.
    pub publish_derived: bool,
    /// Prefix of the derived-event topics (with `publish_derived`); the
    /// configured topics when `None`.
    pub derived_topic_prefix: Option<String>,
    /// Count records that arrived after their window closed.
    pub include_late: bool,
    /// Show progress bars (on a terminal).
    pub progress: bool,
    /// Close the windows open at the end of the input of partitions the
    /// live run has no state for (no live run will write them).
    pub close_at_end: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Records read.
    pub records: u64,
    /// Records before the range (read for the watermark, not counted).
    pub before_range: u64,
    /// Records dead-lettered (not forwarded again: live did).
    pub dead_letters: u64,
    /// Records late (not counted).
    pub late: u64,
    /// Rows written (or, in a dry run, computed).
    pub rows: u64,
    /// How the rows compare with ClickHouse's.
    pub diff: Diff,
    /// Rows in ClickHouse for windows the replay wrote that it did not
    /// produce (a series with no records in the range now, such as one
    /// only late corrections made): left as they are.
    pub stale: u64,
    /// Derived events published.
    pub derived_events: u64,
    /// Partitions whose input ended with windows of the range still open,
    /// left to the live run, and the start of the first of them.
    pub incomplete: Vec<(String, i32, EventTime)>,
    /// Partitions whose input ended with windows open that the live run had
    /// closed (or, with no live state, that nothing else would write):
    /// closed as a partition going idle closes them, as live did.
    pub closed_at_end: Vec<(String, i32)>,
    /// Stopped by the user before the end.
    pub interrupted: bool,
    /// Wall time.
    pub took: Duration,
}

/// One partition being replayed.
struct Replayed {
    topic: String,
    partition: i32,
    range: ReplayRange,
    pipeline: PartitionPipeline,
    /// One past the last offset when the replay started.
    end: i64,
    /// One past the last offset read.
    next: i64,
    /// Rows of the range in ClickHouse now.
    existing: HashMap<RowKey, RollupRow>,
    /// With `include_late`: the range's records, to order by event time.
    buffered: Vec<Record>,
    /// What live has written of the partition.
    live: Live,
    done: bool,
}

/// Runs a replay (see the module docs) until done or `stop` resolves.
pub async fn run(
    config: &Config,
    options: &ReplayOptions,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Summary> {
    let began = Instant::now();
    tokio::pin!(stop);
    let (clickhouse, tables) = connect_clickhouse(config, options.dry_run).await?;
    let registry = match config.schema_registry.url.as_str() {
        "" => None,
        url => Some(
            SchemaRegistry::with_config(url, &config.schema_registry)
                .with_context(|| format!("cannot set up the schema registry client for {url}"))?,
        ),
    };
    let writer = (!options.dry_run).then(|| {
        RollupWriter::spawn(
            clickhouse.clone(),
            &format!("{}-replay", config.kafka.group_id),
            WriterSettings {
                batch_max_rows: config.clickhouse.batch_max_rows,
                flush_interval: config.clickhouse.flush_interval,
                request_timeout: config.clickhouse.request_timeout,
            },
        )
    });
    let derived = match (options.publish_derived, options.dry_run) {
        (true, false) => Some(derived_sink(config, options, registry.as_ref()).await?),
        _ => None,
    };
    let now = SystemTime::now();
    // The epoch of the pipelines (their own batch versions, which the
    // replay does not write); the rows' version is set once the range's
    // rows in ClickHouse are known.
    let epoch = replay_epoch(now);
    let started_ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));

    // One consumer per topic: the end of a partition is reported by
    // partition number only.
    let mut consumers: BTreeMap<String, Arc<BaseConsumer<ToolContext>>> = BTreeMap::new();
    let mut partitions: BTreeMap<(String, i32), Replayed> = BTreeMap::new();
    let progress = MultiProgress::with_draw_target(if options.progress {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    });
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    for &kind in &options.topics {
        let topic = config
            .input_topics()
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, name)| (*name).to_owned())
            .context("unknown topic kind")?;
        let settings = crate::app::pipeline_settings(config, kind);
        let range = ReplayRange::new(options.from, options.to, settings.windows.spec)?;
        let consumer = Arc::new(replay_consumer(config)?);
        let starts = plan_topic(&consumer, &topic, options, &range, &settings).await?;
        let mut assignment = TopicPartitionList::new();
        let bar = progress.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {human_pos}/{human_len} records {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(kind.as_str());
        for (partition, start, end) in starts {
            bar.inc_length(u64::try_from(end - start).unwrap_or(0));
            let stored = tables.then_some(&clickhouse);
            let live_checkpoint = match stored {
                Some(clickhouse) => live::checkpoint(clickhouse, config, &topic, partition).await?,
                None => None,
            };
            let pipeline = pipeline_for(
                stored,
                kind,
                &topic,
                partition,
                start,
                &range,
                &settings,
                epoch,
                registry.is_some(),
                live_checkpoint.as_ref(),
            )
            .await?;
            let (existing, live) = match stored {
                Some(clickhouse) => (
                    existing_rows(clickhouse, &topic, partition, &range).await?,
                    Live::of(live_checkpoint.as_ref()),
                ),
                None => (HashMap::new(), Live::Absent),
            };
            assignment.add_partition_offset(&topic, partition, Offset::Offset(start))?;
            let _new = partitions.insert(
                (topic.clone(), partition),
                Replayed {
                    topic: topic.clone(),
                    partition,
                    range,
                    pipeline,
                    end,
                    next: start,
                    existing,
                    buffered: Vec::new(),
                    live,
                    done: false,
                },
            );
        }
        if assignment.count() > 0 {
            consumer
                .assign(&assignment)
                .with_context(|| format!("cannot assign the partitions of {topic} to replay"))?;
            let _previous = consumers.insert(topic.clone(), consumer);
        }
        let _previous = bars.insert(topic, bar);
    }
    if partitions.is_empty() {
        bail!("nothing to replay: the selected partitions hold no records in the range");
    }
    let newest = partitions
        .values()
        .flat_map(|p| p.existing.values())
        .map(|row| row.version)
        .max();
    let epoch = replay_epoch_above(epoch, newest);
    let version = crate::pipeline::version(epoch, 0);
    info!(partitions = partitions.len(), epoch, "replaying");

    let mut summary = Summary::default();
    let sinks = Sinks {
        writer: writer.as_ref().map(|(w, _)| w.clone()),
        derived: derived.as_ref(),
        registry: registry.as_ref(),
        version,
    };
    let mut acks = Vec::new();
    let total: u64 = bars.values().map(|b| b.length().unwrap_or(0)).sum();
    let mut reported = Instant::now();
    'reading: while partitions.values().any(|p| !p.done) {
        if !options.progress && reported.elapsed() >= PROGRESS_EVERY {
            reported = Instant::now();
            let read: u64 = bars.values().map(ProgressBar::position).sum();
            let left = partitions.values().filter(|p| !p.done).count();
            info!(read, of = total, partitions_left = left, "replaying");
        }
        let polled = {
            let consumers: Vec<_> = consumers
                .iter()
                .map(|(t, c)| (t.clone(), Arc::clone(c)))
                .collect();
            tokio::task::spawn_blocking(move || poll_batch(&consumers, 2_000))
        };
        let batch = tokio::select! {
            batch = polled => batch??,
            () = &mut stop => {
                summary.interrupted = true;
                break 'reading;
            }
        };
        let mut by_partition: BTreeMap<(String, i32), Vec<Timestamped>> = BTreeMap::new();
        let mut at_end = Vec::new();
        for polled in batch {
            match polled {
                Polled::Record(topic, partition, record, timestamp) => {
                    by_partition
                        .entry((topic, partition))
                        .or_default()
                        .push((record, timestamp));
                }
                Polled::End(topic, partition) => at_end.push((topic, partition)),
            }
        }
        for (tp, records) in by_partition {
            let Some(replayed) = partitions.get_mut(&tp) else {
                continue;
            };
            if replayed.done {
                continue;
            }
            // The input as of the start: past the end offset captured then
            // (which a broker may report short of its last batch), a record
            // produced after the replay started ends the partition.
            let end = replayed.end;
            let newer = records.iter().position(|(record, timestamp)| {
                record.offset >= end && timestamp.is_none_or(|t| t >= started_ms)
            });
            let records: Vec<Record> = match newer {
                Some(at) => {
                    replayed.done = true;
                    records.into_iter().take(at).map(|(r, _)| r).collect()
                }
                None => records.into_iter().map(|(r, _)| r).collect(),
            };
            replayed.next = records.last().map_or(replayed.next, |r| r.offset + 1);
            if let Some(bar) = bars.get(&tp.0) {
                bar.inc(records.len() as u64);
            }
            if options.include_late {
                replayed.buffered.extend(records);
            } else {
                let out = sinks.process(replayed, records).await?;
                summary.count(&out);
                sinks.ship(replayed, out, &mut summary, &mut acks).await?;
                let passed = replayed
                    .pipeline
                    .state()
                    .watermark
                    .is_some_and(|w| w >= replayed.range.to.as_millis());
                if passed {
                    replayed.done = true;
                }
            }
            if replayed.next >= replayed.end.saturating_add(PAST_END) {
                replayed.done = true;
            }
            if replayed.done {
                pause(&consumers, &tp.0, tp.1);
            }
        }
        // The end of a partition counts once the offsets captured at start
        // are read: a broker may report an end offset short of its last
        // record batch (Tansu reports the batch's first offset). Past the
        // last record there may be offsets no record is delivered for (a
        // transaction's commit marker, aborted records): the consumer's
        // position steps over them.
        for tp in at_end {
            if let Some(replayed) = partitions.get_mut(&tp) {
                let read_to = replayed
                    .next
                    .max(position(&consumers, &tp.0, tp.1).unwrap_or(0));
                if !replayed.done && read_to >= replayed.end {
                    replayed.done = true;
                    pause(&consumers, &tp.0, tp.1);
                }
            }
        }
    }
    if !summary.interrupted {
        for replayed in partitions.values_mut() {
            if options.include_late {
                let records = std::mem::take(&mut replayed.buffered);
                let ordered = sinks.order_by_event_time(replayed, records).await?;
                // Windows the watermark has not passed stay open, as they
                // are in the live run: records may still come for them, and
                // a replayed row would outrank live's complete one.
                for chunk in ordered.chunks(2_000) {
                    let out = sinks.process(replayed, chunk.to_vec()).await?;
                    summary.count(&out);
                    sinks.ship(replayed, out, &mut summary, &mut acks).await?;
                }
            }
            if let Some(out) = close_at_end(replayed, options, config.windows.idle_timeout)? {
                summary.count(&out);
                sinks.ship(replayed, out, &mut summary, &mut acks).await?;
                summary
                    .closed_at_end
                    .push((replayed.topic.clone(), replayed.partition));
            }
            let range = replayed.range;
            let left_open = replayed
                .pipeline
                .state()
                .open_windows
                .iter()
                .map(|(start, _)| EventTime::from_millis(*start))
                .find(|start| range.covers_start(*start));
            if let Some(start) = left_open {
                summary
                    .incomplete
                    .push((replayed.topic.clone(), replayed.partition, start));
            }
            // Rows of windows the replay wrote (not those left open) that
            // it did not produce.
            let written_before = left_open.map_or(i64::MAX, EventTime::as_millis);
            summary.stale += replayed
                .existing
                .values()
                .filter(|row| {
                    let start = EventTime::from_millis(i64::from(row.window_start) * 1000);
                    range.covers_start(start) && start.as_millis() < written_before
                })
                .count() as u64;
        }
    }
    for bar in bars.values() {
        bar.finish();
    }
    // Nothing more comes: with its last sender gone, the writer inserts
    // what it holds now instead of after `flush_interval`, then ends.
    drop(sinks);
    let task = writer.map(|(writer, task)| {
        drop(writer);
        task
    });
    // Every window handed to the writer is written whole before returning,
    // also when interrupted.
    for ack in acks {
        match ack.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("writing replayed rows to ClickHouse: {e}"),
            Err(_) => bail!("the ClickHouse writer stopped"),
        }
    }
    if let Some(task) = task {
        let _finished = task.await;
    }
    summary.took = began.elapsed();
    Ok(summary)
}

impl Summary {
    fn count(&mut self, out: &Output) {
        self.records += out.stats.records;
        self.before_range += out.stats.already_written;
        self.dead_letters += out.dead_letters.len() as u64;
        self.late += out.stats.late;
    }
}

/// Where a replay's outputs go.
struct Sinks<'a> {
    writer: Option<RollupWriter>,
    derived: Option<&'a DerivedSink>,
    registry: Option<&'a SchemaRegistry>,
    version: u64,
}

impl Sinks<'_> {
    /// Runs `records` through the partition's pipeline (fetching Avro
    /// schemas first), acknowledging everything at once: a replay keeps no
    /// checkpoint.
    async fn process(
        &self,
        replayed: &mut Replayed,
        records: Vec<Record>,
    ) -> anyhow::Result<Output> {
        self.fetch_schemas(replayed, &records).await;
        let out = replayed.pipeline.process(records)?;
        acknowledge(&mut replayed.pipeline, &out);
        Ok(out)
    }

    async fn fetch_schemas(&self, replayed: &mut Replayed, records: &[Record]) {
        let Some(registry) = self.registry else {
            return;
        };
        let mut answers = Vec::new();
        for id in replayed.pipeline.missing_schemas(records) {
            let answer = registry
                .schema_retrying(id, std::future::pending::<()>())
                .await
                .flatten();
            answers.push((id, answer));
        }
        replayed
            .pipeline
            .add_writer_schemas(answers.iter().map(|(id, s)| (*id, s.as_deref())));
    }

    /// Writes (or compares) the rows of `out` the range covers, and
    /// publishes their derived events if asked to.
    async fn ship(
        &self,
        replayed: &mut Replayed,
        out: Output,
        summary: &mut Summary,
        acks: &mut Vec<crate::sink::clickhouse::writer::Ack>,
    ) -> anyhow::Result<()> {
        let Some(batch) = out.rollups else {
            return Ok(());
        };
        let range = replayed.range;
        let rows: Vec<_> = batch
            .rows
            .into_iter()
            .filter(|r| range.covers(r.window_start, r.window_end))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        replayed
            .live
            .check_written_before(range.closed_through())
            .with_context(|| format!("{}/{}", replayed.topic, replayed.partition))?;
        let mut diff = Diff::default();
        for row in &rows {
            diff.add(
                &RollupRow::new(row.clone(), self.version),
                &mut replayed.existing,
            );
        }
        summary.diff.merge(diff);
        summary.rows += rows.len() as u64;
        if let Some(derived) = self.derived {
            let in_range: Vec<DerivedEvent> = batch
                .events
                .into_iter()
                .filter(|e| range.covers_event(e))
                .collect();
            let events = derived
                .encode_batch(&rows, &in_range)
                .context("encoding derived events")?;
            summary.derived_events += events.len() as u64;
            let _published = derived
                .publish(&events, Turn::default(), std::future::pending::<()>())
                .await
                .context("publishing derived events")?;
        }
        if let Some(writer) = &self.writer {
            acks.push(
                writer
                    .write_rollups(rows, self.version, When::Batched)
                    .await?,
            );
        }
        Ok(())
    }

    /// `records` in event-time order (undecodable ones first, as they are),
    /// renumbered in that order, so none is late.
    async fn order_by_event_time(
        &self,
        replayed: &mut Replayed,
        records: Vec<Record>,
    ) -> anyhow::Result<Vec<Record>> {
        self.fetch_schemas(replayed, &records).await;
        let decoder = replayed.pipeline.decoder();
        let mut slot = None;
        let mut timed: Vec<(i64, i64, Record)> = records
            .into_iter()
            .map(|record| {
                let time = decoder
                    .decode_reusing(record.payload.as_deref(), &mut slot)
                    .map_or(i64::MIN, |(event, _)| event.occurred_at().as_millis());
                (time, record.offset, record)
            })
            .collect();
        timed.sort_by_key(|(time, offset, _)| (*time, *offset));
        let first = timed.iter().map(|(_, o, _)| *o).min().unwrap_or(0);
        Ok(timed
            .into_iter()
            .enumerate()
            .map(|(i, (_, _, record))| Record {
                offset: first + i as i64,
                ..record
            })
            .collect())
    }
}

/// The ClickHouse client, and whether Reactor's tables exist. A replay
/// creates them (with `clickhouse.create_schema`); a dry run writes
/// nothing, so without them it compares against no rows.
async fn connect_clickhouse(
    config: &Config,
    dry_run: bool,
) -> anyhow::Result<(::clickhouse::Client, bool)> {
    let settings = &config.clickhouse;
    let admin = ch::client(settings, None)?;
    if settings.create_schema && !dry_run {
        schema::apply(&admin, &settings.database)
            .await
            .with_context(|| {
                format!("cannot create Reactor's tables in {:?}", settings.database)
            })?;
    }
    let tables: u64 = admin
        .query(
            "SELECT count() FROM system.tables \
             WHERE database = ? AND name IN ('rollups', 'partition_state')",
        )
        .bind(&settings.database)
        .fetch_one()
        .await
        .with_context(|| format!("cannot reach ClickHouse at {}", settings.url))?;
    if tables < 2 && dry_run {
        warn!(database = %settings.database, "Reactor's tables do not exist: the dry run compares against no rows");
    }
    Ok((ch::client(settings, Some(&settings.database))?, tables == 2))
}

/// Marks everything `out` produced as handed over: a replay keeps no
/// checkpoint.
fn acknowledge(pipeline: &mut PartitionPipeline, out: &Output) {
    if let Some(batch) = &out.rollups {
        pipeline.rollups_written(batch.id);
    }
    for rejected in out.dead_letters.iter().chain(&out.late) {
        pipeline.forwarded(rejected.anchor);
    }
}

/// At the end of its input, a partition's open windows and held records
/// are closed as live closes them when the partition goes idle, if live
/// did so (every window closed ends at or before live's `closed_through`),
/// or, with `close_at_end`, if there is no live state. Otherwise they stay
/// open, left to the live run: records may still come for them, and a
/// replayed row would outrank live's complete one.
fn close_at_end(
    replayed: &mut Replayed,
    options: &ReplayOptions,
    idle_timeout: Duration,
) -> anyhow::Result<Option<Output>> {
    // Nothing it could close: no trial.
    if !replayed
        .live
        .closes(EventTime::from_millis(i64::MIN), options.close_at_end)
    {
        return Ok(None);
    }
    let mut trial = replayed.pipeline.clone();
    let out = trial.tick(Source {
        quiet_for: Some(idle_timeout),
        draining: false,
    })?;
    let Some(batch) = &out.rollups else {
        return Ok(None);
    };
    let Some(last_end) = batch.rows.iter().map(|r| r.window_end).max() else {
        return Ok(None);
    };
    if !replayed.live.closes(last_end, options.close_at_end) {
        return Ok(None);
    }
    acknowledge(&mut trial, &out);
    replayed.pipeline = trial;
    Ok(Some(out))
}

async fn derived_sink(
    config: &Config,
    options: &ReplayOptions,
    registry: Option<&SchemaRegistry>,
) -> anyhow::Result<DerivedSink> {
    let mut topics = config.topics.clone();
    if let Some(prefix) = &options.derived_topic_prefix {
        for topic in [
            &mut topics.rollups,
            &mut topics.trends,
            &mut topics.anomalies,
        ] {
            *topic = format!("{prefix}{topic}");
        }
    }
    let producer = crate::kafka::producer::create(&config.kafka)?;
    Ok(DerivedSink::new(producer, &topics, &config.derived, registry).await?)
}

/// The pipeline of one replayed partition: windows before the range
/// treated as written, histories as of its start. The windows the live run
/// (its checkpoint: `live`) closed partial are not part of any history, in
/// the rebuild and in the range, as live kept them out.
#[allow(clippy::too_many_arguments)]
async fn pipeline_for(
    clickhouse: Option<&::clickhouse::Client>,
    kind: TopicKind,
    topic: &str,
    partition: i32,
    start: i64,
    range: &ReplayRange,
    settings: &PipelineSettings,
    epoch: u32,
    with_registry: bool,
    live: Option<&Checkpoint>,
) -> anyhow::Result<PartitionPipeline> {
    let decoder = Decoder::new(kind, with_registry, settings.limits)?;
    let partial_windows = live.map_or_else(Vec::new, |c| c.partial_windows.clone());
    let checkpoint = Checkpoint {
        watermark: None,
        closed_through: Some(range.closed_through()),
        partial_windows: partial_windows.clone(),
        ..Checkpoint::at(start)
    };
    let mut pipeline = PartitionPipeline::new(
        Arc::from(topic),
        partition,
        decoder,
        *settings,
        Some(&checkpoint),
        epoch,
    );
    let Some(clickhouse) = clickhouse else {
        warn!(%topic, partition, "no rows before the range (no tables): trend and anomaly start afresh at its start");
        return Ok(pipeline);
    };
    let rows = clickhouse
        .query(
            "SELECT metric, campaign_id, content_id, channel, toUInt32(window_start), count, sum, avg \
             FROM rollups FINAL \
             WHERE source_topic = ? AND source_partition = ? AND window_start < toDateTime(?) \
             ORDER BY metric, campaign_id, content_id, channel, window_start",
        )
        .bind(topic)
        .bind(partition)
        .bind(range.from.as_millis().div_euclid(1000))
        .fetch_all::<StoredValue>()
        .await
        .with_context(|| format!("reading the rows of {topic}/{partition} before the range"))?;
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let rebuild = Rebuild {
        history: settings.history,
        slide_ms: millis(settings.windows.spec.slide),
        retention_ms: millis(settings.history_retention),
        from: range.from,
    };
    let histories = histories_as_of(rows, &rebuild, &partial_windows)?;
    if histories.is_empty() {
        warn!(%topic, partition, "no rows before the range: trend and anomaly start afresh at its start");
    }
    pipeline.restore(histories);
    Ok(pipeline)
}

/// The rows of the range ClickHouse holds for the partition.
async fn existing_rows(
    clickhouse: &::clickhouse::Client,
    topic: &str,
    partition: i32,
    range: &ReplayRange,
) -> anyhow::Result<HashMap<RowKey, RollupRow>> {
    let rows = clickhouse
        .query(
            "SELECT ?fields FROM rollups FINAL \
             WHERE source_topic = ? AND source_partition = ? \
               AND window_start >= toDateTime(?) AND window_start < toDateTime(?)",
        )
        .bind(topic)
        .bind(partition)
        .bind(range.from.as_millis().div_euclid(1000))
        .bind(range.to.as_millis().div_euclid(1000))
        .fetch_all::<RollupRow>()
        .await
        .with_context(|| format!("reading the rows of {topic}/{partition} in the range"))?;
    Ok(rows.into_iter().map(|r| (diff::key(&r), r)).collect())
}

/// How often a replay without progress bars (not on a terminal) logs how
/// far it is.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use rand::{Rng, SeedableRng};

use super::*;
use crate::derived;
use crate::event::encode::to_json;
use crate::event::{EngagementEvent, EngagementKind, Event, TopicKind};

const MINUTE: i64 = 60_000;
const BASE: i64 = 1_763_856_000_000; // 2025-11-23T00:00:00Z, a window boundary

fn settings(lateness_ms: u64) -> PipelineSettings {
    PipelineSettings {
        windows: WindowSettings {
            spec: WindowSpec::tumbling(Duration::from_secs(60)),
            allowed_lateness: Duration::from_millis(lateness_ms),
            idle_timeout: Duration::from_secs(30),
            max_future_skew: Duration::from_secs(3600),
            clock_quorum: ClockQuorum {
                first_watermark: 1,
                jump: 3,
            },
            late_policy: LatePolicy::Drop,
        },
        history: HistorySettings {
            trend: crate::aggregate::TrendSettings {
                windows: 10,
                threshold: 5.0,
            },
            anomaly: crate::aggregate::AnomalySettings {
                alpha: 0.05,
                warm_up: 5,
                threshold: 3.0,
                quiet_windows: 50,
                escalation: 4.0,
            },
        },
        history_retention: Duration::from_secs(24 * 3600),
        limits: Limits::default(),
        max_keys: 1_000,
    }
}

fn pipeline_with(settings: PipelineSettings, start: Option<&Checkpoint>) -> PartitionPipeline {
    PartitionPipeline::new(
        Arc::from("engagement.events"),
        3,
        Decoder::new(TopicKind::Engagement, false, Limits::default()).unwrap(),
        settings,
        start,
        1,
    )
}

fn pipeline(lateness_ms: u64, start: Option<&Checkpoint>) -> PartitionPipeline {
    pipeline_with(settings(lateness_ms), start)
}

/// The source has been confirmed quiet for `seconds`.
fn quiet_for(seconds: u64) -> Source {
    Source {
        quiet_for: Some(Duration::from_secs(seconds)),
        draining: false,
    }
}

fn hopping(lateness_ms: u64, size_s: u64, slide_s: u64) -> PipelineSettings {
    let mut s = settings(lateness_ms);
    s.windows.spec = WindowSpec {
        size: Duration::from_secs(size_s),
        slide: Duration::from_secs(slide_s),
    };
    s
}

/// An engagement event `ms` after BASE for one of a few contents.
fn record(offset: i64, ms: i64, content: u8, dwell: i64) -> Record {
    let event = Event::Engagement(EngagementEvent {
        event_id: format!("e{offset}"),
        occurred_at: EventTime::from_millis(BASE + ms),
        content_id: format!("content-{content}"),
        campaign_id: "campaign-1".into(),
        channel: "web".into(),
        user_id: "u".into(),
        kind: if dwell % 2 == 0 {
            EngagementKind::View
        } else {
            EngagementKind::Click
        },
        dwell_ms: Some(dwell),
    });
    Record {
        offset,
        key: Some(b"campaign-1".to_vec()),
        payload: Some(to_json(&event).unwrap()),
    }
}

/// Rows keyed by what ReplacingMergeTree keys on; later writes replace.
type Table = BTreeMap<(String, String, i64), Rollup>;

fn write(table: &mut Table, rows: &[Rollup]) {
    for row in rows {
        let key = (
            row.metric.to_string(),
            row.dimensions.content_id.clone(),
            row.window_start.as_millis(),
        );
        let _replaced = table.insert(key, row.clone());
    }
}

/// Runs records through a pipeline in the given batch sizes, acknowledging
/// everything at once, then idles it out. Returns the final table.
fn run_with(records: &[Record], batch_sizes: &[usize], settings: PipelineSettings) -> Table {
    let mut p = pipeline_with(settings, None);
    let mut table = Table::new();
    let mut rest = records;
    let mut sizes = batch_sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        let out = p.process(batch.to_vec()).unwrap();
        if let Some(batch) = out.rollups {
            write(&mut table, &batch.rows);
            p.rollups_written(batch.id);
        }
    }
    if let Some(batch) = p.tick(quiet_for(31)).unwrap().rollups {
        write(&mut table, &batch.rows);
        p.rollups_written(batch.id);
    }
    table
}

#[test]
fn aggregates_are_exact_and_late_events_are_counted() {
    let records = vec![
        record(0, 1_000, 1, 10),
        record(1, 2_000, 1, 30),
        record(2, 61_000, 1, 20), // next window; watermark 61s - 0 closes the first
        record(3, 59_000, 1, 99), // late: its window closed
    ];
    let mut p = pipeline(0, None);
    let out = p.process(records).unwrap();
    assert_eq!(out.stats.late, 1);
    assert_eq!(out.stats.json, 4);
    assert_eq!(out.stats.windows_closed, 1);
    let rows = out.rollups.unwrap().rows;
    let dwell = rows
        .iter()
        .find(|r| r.metric == "engagement.dwell_ms")
        .unwrap();
    assert_eq!(
        (dwell.count, dwell.sum, dwell.min, dwell.max, dwell.avg),
        (2, 40.0, 10.0, 30.0, 20.0)
    );
    assert_eq!(dwell.window_start.as_millis(), BASE);
    assert_eq!(dwell.window_end.as_millis(), BASE + MINUTE);
    assert_eq!(&*dwell.source_topic, "engagement.events");
    assert_eq!(dwell.source_partition, 3);
    let views = rows.iter().find(|r| r.metric == "engagement.view").unwrap();
    assert_eq!((views.count, views.sum), (2, 2.0));
}

#[test]
fn lateness_boundary_is_inclusive_of_the_window_end() {
    // Lateness 5s: an event at 65s puts the watermark at 60s = end of window 0.
    let mut p = pipeline(5_000, None);
    let out = p
        .process(vec![record(0, 1_000, 1, 2), record(1, 64_999, 1, 2)])
        .unwrap();
    assert!(
        out.rollups.is_none(),
        "watermark 59.999s must not close [0, 60s)"
    );
    let out = p.process(vec![record(2, 59_999, 1, 2)]).unwrap();
    assert_eq!(out.stats.late, 0, "still open");
    let out = p
        .process(vec![record(3, 65_000, 1, 2), record(4, 59_999, 1, 2)])
        .unwrap();
    assert_eq!(out.stats.late, 1, "closed once the watermark reaches 60s");
    let rows = out.rollups.unwrap().rows;
    assert_eq!(
        rows.iter()
            .find(|r| r.metric == "engagement.view")
            .unwrap()
            .count,
        2
    );
}

#[test]
fn idle_partitions_close_their_windows_once_quiet_for_the_timeout() {
    let mut p = pipeline(10_000, None);
    assert!(p
        .process(vec![record(0, 1_000, 1, 2)])
        .unwrap()
        .rollups
        .is_none());
    assert!(p.tick(quiet_for(29)).unwrap().rollups.is_none());
    // Not known to be quiet (backlogged, blocked behind a full sink, or the
    // broker not answering): never idle.
    let backlogged = Source::default();
    assert!(p.tick(backlogged).unwrap().rollups.is_none());
    let draining = Source {
        draining: true,
        ..quiet_for(300)
    };
    assert!(p.tick(draining).unwrap().rollups.is_none());
    let out = p.tick(quiet_for(30)).unwrap();
    assert_eq!(out.stats.windows_closed, 1);
    assert_eq!(out.rollups.unwrap().rows.len(), 2);
    // The window is closed now: a straggler is late.
    let out = p.process(vec![record(1, 2_000, 1, 2)]).unwrap();
    assert_eq!(out.stats.late, 1);
}

#[test]
fn a_partition_waiting_on_a_sink_is_never_idle() {
    let mut p = pipeline(0, None);
    let out = p
        .process(vec![record(0, 1_000, 1, 2), record(1, 61_000, 1, 2)])
        .unwrap();
    let batch = out.rollups.unwrap();
    // The first window's rows are not acknowledged (ClickHouse stalled):
    // the second window stays open however long the reader has been idle.
    assert!(p.tick(quiet_for(3600)).unwrap().rollups.is_none());
    p.rollups_written(batch.id);
    assert!(p.tick(quiet_for(3600)).unwrap().rollups.is_some());
}

#[test]
fn bad_records_become_dead_letters_holding_their_offset() {
    let mut p = pipeline(0, None);
    let bad = Record {
        offset: 1,
        key: None,
        payload: Some(b"nonsense".to_vec()),
    };
    let out = p
        .process(vec![record(0, 1_000, 1, 2), bad, record(2, 70_000, 1, 2)])
        .unwrap();
    assert_eq!(out.dead_letters.len(), 1);
    assert_eq!(out.dead_letters[0].offset, 1);
    assert_eq!(out.dead_letters[0].kind, "unrecognised_format");
    p.rollups_written(out.rollups.unwrap().id);
    // Window 2 (first offset 2) is open; the dead letter at 1 is unacknowledged.
    assert_eq!(p.checkpoint().unwrap().offset, 1);
    assert!(p.has_unacknowledged_output());
    p.forwarded(1);
    assert_eq!(p.checkpoint().unwrap().offset, 2);
    assert!(!p.has_unacknowledged_output());
}

#[test]
fn checkpoint_waits_for_the_rollups_of_closed_windows() {
    let mut p = pipeline(0, None);
    let out = p
        .process(vec![record(0, 1_000, 1, 2), record(1, 2_000, 2, 2)])
        .unwrap();
    assert!(out.rollups.is_none());
    // Offset 0 holds the open window; its record arrived before any watermark.
    assert_eq!(p.checkpoint(), Some(Checkpoint::at(0)));
    let first = p
        .process(vec![record(2, 61_000, 1, 2)])
        .unwrap()
        .rollups
        .unwrap();
    // Window 0 closed but is not written: resuming must still rebuild it,
    // with a watermark that does not consider it closed.
    assert_eq!(p.checkpoint(), Some(Checkpoint::at(0)));
    let second = p
        .process(vec![record(3, 121_000, 1, 2)])
        .unwrap()
        .rollups
        .unwrap();
    p.rollups_written(second.id); // out of order: not enough on its own
    assert_eq!(p.checkpoint().unwrap().offset, 0);
    p.rollups_written(first.id);
    // Window [1m, 2m) is open from offset 2, whose record arrived when the
    // watermark was 2s; everything through 2m is written.
    assert_eq!(
        p.checkpoint(),
        Some(Checkpoint {
            offset: 3,
            watermark: Some(EventTime::from_millis(BASE + 61_000)),
            closed_through: Some(EventTime::from_millis(BASE + 121_000)),
            idle_closes: Vec::new(),
            partial_windows: Vec::new(),
        })
    );
}

#[test]
fn records_before_the_resume_offset_are_skipped() {
    let start = Checkpoint::at(10);
    let mut p = pipeline(0, Some(&start));
    assert_eq!(p.checkpoint(), Some(Checkpoint::at(10)));
    let out = p
        .process(vec![record(9, 1_000, 1, 2), record(10, 1_000, 1, 2)])
        .unwrap();
    assert_eq!((out.stats.duplicates, out.stats.json), (1, 1));
    // A broker delivering offsets again (after an offset reset) does not
    // get them counted twice.
    let again = p
        .process(vec![record(10, 1_000, 1, 2), record(11, 2_000, 1, 2)])
        .unwrap();
    assert_eq!((again.stats.duplicates, again.stats.json), (1, 1));
}

/// A checkpoint past the end of its partition (the topic was created
/// again) is placed at the partition's start: no record of the new log is
/// skipped as read already; windows the checkpoint had written are not
/// counted again, and later windows are.
#[test]
fn a_checkpoint_past_the_end_resumes_at_the_start_of_the_new_log() {
    let mut first = pipeline(0, None);
    let out = first
        .process(vec![record(0, 1_000, 1, 2), record(1, 61_000, 1, 2)])
        .unwrap();
    first.rollups_written(out.rollups.unwrap().id);
    let written = first.checkpoint().unwrap();
    assert!(written.closed_through.is_some(), "{written:?}");
    let old_end = Checkpoint {
        offset: 5_000,
        ..written
    };
    let (start, placement) = old_end.placed(0, 3);
    assert_eq!(placement, Placement::PastEnd);
    let mut p = pipeline(0, Some(&start));
    let out = p
        .process(vec![
            record(0, 2_000, 1, 2),   // a window written before: not recounted
            record(1, 62_000, 1, 2),  // the open window
            record(2, 125_000, 1, 2), // a later one
        ])
        .unwrap();
    assert_eq!(out.stats.duplicates, 0);
    assert_eq!(out.stats.already_written, 1);
    assert_eq!(out.stats.json, 3);
    let rows: Vec<_> = out
        .rollups
        .unwrap()
        .rows
        .iter()
        .filter(|r| r.metric == "engagement.view")
        .map(|r| (r.window_start.as_millis() - BASE, r.count))
        .collect();
    assert_eq!(rows, vec![(MINUTE, 1)]);
}

#[test]
fn late_events_go_to_the_side_topic_with_a_reason_and_hold_their_offset() {
    let mut s = settings(0);
    s.windows.late_policy = LatePolicy::SideTopic;
    let mut p = pipeline_with(s, None);
    let out = p
        .process(vec![
            record(0, 10_000, 1, 2),
            record(1, 2 * MINUTE, 1, 2),
            record(2, 20_000, 1, 2),
        ])
        .unwrap();
    assert_eq!(out.stats.late, 1);
    assert_eq!(out.late.len(), 1);
    assert_eq!(out.late[0].offset, 2);
    assert!(
        out.late[0].reason.contains("late: occurred_at"),
        "{}",
        out.late[0].reason
    );
    let batch = out.rollups.unwrap();
    p.rollups_written(batch.id);
    assert_eq!(
        p.checkpoint().map(|c| c.offset),
        Some(1),
        "the late record's offset 2 is held, and window 2m holds 1"
    );
    p.forwarded(2);
    assert!(!p.has_unacknowledged_output());

    let mut dropping = pipeline(0, None);
    let out = dropping
        .process(vec![
            record(0, 10_000, 1, 2),
            record(1, 2 * MINUTE, 1, 2),
            record(2, 20_000, 1, 2),
        ])
        .unwrap();
    assert_eq!((out.stats.late, out.late.len()), (1, 0));
}

#[test]
fn hopping_windows_count_an_event_in_each_window_that_holds_it() {
    let mut p = pipeline_with(hopping(0, 60, 20), None);
    let out = p
        .process(vec![record(0, 30_000, 1, 4), record(1, 10 * MINUTE, 1, 2)])
        .unwrap();
    let rows = out.rollups.unwrap().rows;
    let dwell: Vec<(i64, u64)> = rows
        .iter()
        .filter(|r| r.metric == "engagement.dwell_ms")
        .map(|r| ((r.window_start.as_millis() - BASE) / 1000, r.count))
        .collect();
    // 30s is in [-20s, 40s), [0s, 60s) and [20s, 80s).
    assert_eq!(dwell, vec![(-20, 1), (0, 1), (20, 1)]);
}

#[test]
fn an_event_too_far_ahead_of_the_watermark_is_dead_lettered_and_does_not_move_it() {
    let mut p = pipeline(0, None);
    let out = p
        .process(vec![
            record(0, 10_000, 1, 2),
            record(1, 10_000 + 2 * 3_600_000, 1, 2),
            record(2, 20_000, 1, 2),
        ])
        .unwrap();
    assert_eq!(out.stats.future, 1);
    assert_eq!(out.dead_letters.len(), 1);
    assert_eq!(out.dead_letters[0].kind, "future_timestamp");
    assert!(out.dead_letters[0].reason.contains("max_future_skew"));
    assert_eq!(p.state().watermark, Some(BASE + 20_000));
    assert!(out.rollups.is_none(), "no window closed");
}

/// A count series that stops (its tracking broke) while the partition
/// goes on is flagged in its first empty window, though that window has no
/// row; once it comes back, its history holds the empty windows and the
/// alarm, so the quiet period holds and nothing is raised twice.
#[test]
fn a_count_series_that_stops_is_flagged_while_it_is_silent() {
    let mut p = pipeline(0, None);
    let mut records = Vec::new();
    let mut offset = 0;
    for minute in 0..70 {
        // content-1: 20 views a minute, none in minutes 40 to 49.
        let views = if (40..50).contains(&minute) { 0 } else { 20 };
        for i in 0..views {
            records.push(record(offset, minute * MINUTE + i * 100, 1, 2));
            offset += 1;
        }
        // content-2 goes on, so the windows close.
        for i in 0..5 {
            records.push(record(offset, minute * MINUTE + 30_000 + i, 2, 2));
            offset += 1;
        }
    }
    // In two batches, split inside the outage: the same events.
    let (first, second) = records.split_at(records.len() * 45 / 70);
    let mut events = Vec::new();
    for part in [first, second] {
        let out = p.process(part.to_vec()).unwrap();
        let batch = out.rollups.unwrap();
        p.rollups_written(batch.id);
        events.extend(batch.events);
    }
    let alarms: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DerivedEvent::Anomaly(a) if a.content_id == "content-1" => Some(a),
            _ => None,
        })
        .collect();
    // The first empty window, then an escalation with the outage's full
    // strength, naming the first.
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    let (outage, stronger) = (alarms[0], alarms[1]);
    assert_eq!(outage.window_start, BASE + 40 * MINUTE);
    assert_eq!(outage.observed, 0.0);
    assert!(outage.expected > 15.0 && outage.score <= -3.0, "{outage:?}");
    assert_eq!(outage.escalates, None);
    assert!(stronger.window_start < BASE + 50 * MINUTE);
    assert!(stronger.score <= 4.0 * outage.score, "{stronger:?}");
    assert_eq!(stronger.escalates.as_deref(), Some(outage.id.as_str()));
    let others = events
        .iter()
        .filter(|e| matches!(e, DerivedEvent::Anomaly(a) if a.content_id == "content-2"))
        .count();
    assert_eq!(others, 0);
}

/// A partition that goes quiet closes its last windows partial: a series
/// with no record in the last seconds of the stream is not flagged as an
/// outage.
#[test]
fn windows_closed_partial_by_idleness_flag_no_empty_series() {
    let mut p = pipeline(0, None);
    let mut records = Vec::new();
    let mut offset = 0;
    for minute in 0..30 {
        for content in [1, 2] {
            for i in 0..20 {
                records.push(record(
                    offset,
                    minute * MINUTE + i * 2_000 + i64::from(content),
                    content,
                    2,
                ));
                offset += 1;
            }
        }
    }
    // Minute 30: the stream stops after a record of content-2 only.
    records.push(record(offset, 30 * MINUTE + 500, 2, 2));
    let mut events = Vec::new();
    let out = p.process(records).unwrap();
    let batch = out.rollups.unwrap();
    p.rollups_written(batch.id);
    events.extend(batch.events);
    let idle = p.tick(quiet_for(60)).unwrap();
    let batch = idle.rollups.expect("the idle close writes minute 30");
    assert!(batch
        .rows
        .iter()
        .any(|r| r.window_start.as_millis() == BASE + 30 * MINUTE));
    events.extend(batch.events);
    let flagged: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, DerivedEvent::Anomaly(_)))
        .collect();
    assert!(flagged.is_empty(), "{flagged:?}");
}

/// Clicks of content-1: `steady` a minute for 30 minutes, then `last` in
/// minute 30, 290 ms apart from the start of each minute.
fn clicks_then(steady: i64, last: i64) -> Vec<Record> {
    let mut records = Vec::new();
    for minute in 0..31 {
        let clicks = if minute == 30 { last } else { steady };
        for i in 0..clicks {
            let offset = i64::try_from(records.len()).unwrap_or(i64::MAX);
            records.push(record(offset, minute * MINUTE + i * 290, 1, 1));
        }
    }
    records
}

/// A window an idle close closes partial holds only the time before the
/// stream stopped: its row keeps its score, but raises no alarm, and the
/// checkpoint remembers the window so that a restart decides alike.
#[test]
fn a_window_closed_partial_by_idleness_raises_no_alarm() {
    let mut p = pipeline(0, None);
    // 200 clicks a minute, then 20 in the first 6 s of minute 30, and the
    // stream stops.
    let out = p.process(clicks_then(200, 20)).unwrap();
    let batch = out.rollups.unwrap();
    p.rollups_written(batch.id);
    let mut events = batch.events;
    let idle = p.tick(quiet_for(60)).unwrap();
    let batch = idle.rollups.expect("the idle close writes minute 30");
    let partial = batch
        .rows
        .iter()
        .find(|r| {
            r.metric == "engagement.click" && r.window_start.as_millis() == BASE + 30 * MINUTE
        })
        .expect("a row for minute 30");
    assert_eq!(partial.count, 20);
    assert!(
        partial.anomaly_score.is_some_and(|s| s < -3.0),
        "the score is still written: {:?}",
        partial.anomaly_score
    );
    events.extend(batch.events);
    let flagged: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, DerivedEvent::Anomaly(_)))
        .collect();
    assert!(flagged.is_empty(), "{flagged:?}");
    p.rollups_written(batch.id);
    let position = (BASE + 30 * MINUTE) / MINUTE;
    assert_eq!(
        p.checkpoint().map(|c| c.partial_windows),
        Some(vec![position])
    );
}

/// The last window that ended before the stream stopped is complete, even
/// if only the idle close closes it (the watermark waited for the
/// lateness): a spike there raises its event.
#[test]
fn the_last_complete_window_before_an_idle_close_can_alarm() {
    let mut p = pipeline(30_000, None);
    // 20 clicks a minute, 200 in minute 30, and one more record at
    // 31:00.5; then the stream stops.
    let mut records = clicks_then(20, 200);
    let offset = i64::try_from(records.len()).unwrap_or(i64::MAX);
    records.push(record(offset, 31 * MINUTE + 500, 1, 1));
    let out = p.process(records).unwrap();
    let mut events = Vec::new();
    if let Some(batch) = out.rollups {
        p.rollups_written(batch.id);
        events.extend(batch.events);
    }
    let idle = p.tick(quiet_for(60)).unwrap();
    let batch = idle
        .rollups
        .expect("the idle close writes minutes 30 and 31");
    events.extend(batch.events);
    let spikes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DerivedEvent::Anomaly(a) if a.metric == "engagement.click" => Some(a.window_start),
            _ => None,
        })
        .collect();
    assert_eq!(spikes, vec![BASE + 30 * MINUTE]);
    p.rollups_written(batch.id);
    assert_eq!(
        p.checkpoint().map(|c| c.partial_windows),
        Some(vec![(BASE + 31 * MINUTE) / MINUTE])
    );
}

#[test]
fn a_spike_after_a_steady_baseline_raises_an_anomaly_event_with_a_deterministic_id() {
    let mut p = pipeline(0, None);
    let mut events = Vec::new();
    let mut offset = 0;
    // Ten clicks a minute for 30 minutes, then 100 in minute 30.
    for minute in 0..32 {
        let clicks = if minute == 30 { 100 } else { 10 };
        for i in 0..clicks {
            events.push(record(offset, minute * MINUTE + i, 1, 1));
            offset += 1;
        }
    }
    let out = p.process(events).unwrap();
    let batch = out.rollups.unwrap();
    let anomalies: Vec<_> = batch
        .events
        .iter()
        .filter_map(|e| match e {
            DerivedEvent::Anomaly(a) => Some(a),
            _ => None,
        })
        .collect();
    let clicks: Vec<_> = anomalies
        .iter()
        .filter(|a| a.metric == "engagement.click")
        .collect();
    assert_eq!(clicks.len(), 1, "{anomalies:?}");
    let spike = clicks[0];
    assert_eq!(spike.window_start, BASE + 30 * MINUTE);
    assert_eq!((spike.observed, spike.expected), (100.0, 10.0));
    assert!(spike.score > 4.0);
    let dims = crate::rollup::Dimensions {
        campaign_id: "campaign-1".into(),
        content_id: "content-1".into(),
        channel: "web".into(),
    };
    assert_eq!(
        spike.id,
        derived::event_id(
            derived::DerivedKind::Anomaly,
            "engagement.click",
            &dims,
            BASE + 30 * MINUTE,
            MINUTE
        )
    );
    assert!(
        batch
            .events
            .iter()
            .all(|e| !matches!(e, DerivedEvent::Rollup(_))),
        "rollup events are built by the sink, from the rows"
    );
    let spike_row = batch.rows.iter().find(|r| {
        r.metric == "engagement.click" && r.window_start.as_millis() == BASE + 30 * MINUTE
    });
    assert_eq!(spike_row.and_then(|r| r.anomaly_score), Some(spike.score));
    let dwell = batch
        .rows
        .iter()
        .find(|r| r.metric == "engagement.dwell_ms");
    assert_eq!(dwell.and_then(|r| r.p50), Some(1.0));
    assert!(batch
        .rows
        .iter()
        .filter(|r| r.metric == "engagement.click")
        .all(|r| r.p50.is_none()));
}

/// What happened to each record that was not simply counted: offset → kind
/// (`late`, or the dead-letter reason).
type Decisions = BTreeMap<i64, &'static str>;

/// Like [`events`], with about one record in 30 each undecodable, two hours
/// ahead of the stream, or ten minutes behind it.
fn noisy_events(disorder: i64) -> impl Strategy<Value = Vec<Record>> {
    prop::collection::vec(
        (0i64..3_000, 0..=disorder, 0u8..4, 0i64..1_000, 0u8..30),
        1..300,
    )
    .prop_map(|steps| {
        let mut t = 0;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (step, jitter, content, dwell, noise))| {
                t += step;
                let offset = i as i64;
                match noise {
                    0 => Record {
                        offset,
                        key: None,
                        payload: Some(b"garbage".to_vec()),
                    },
                    1 => record(offset, t + 2 * 3_600_000, content, dwell),
                    2 => record(offset, t - 10 * MINUTE, content, dwell),
                    _ => record(offset, t - jitter, content, dwell),
                }
            })
            .collect()
    })
}

/// Events with bounded disorder: times increase by 0..3s with up to `disorder` ms jitter.
fn events(disorder: i64) -> impl Strategy<Value = Vec<Record>> {
    prop::collection::vec((0i64..3_000, 0..=disorder, 0u8..4, 0i64..1_000), 1..300).prop_map(
        |steps| {
            let mut t = 0;
            steps
                .into_iter()
                .enumerate()
                .map(|(i, (step, jitter, content, dwell))| {
                    t += step;
                    record(i as i64, t - jitter, content, dwell)
                })
                .collect()
        },
    )
}

/// 256 cases unless `PROPTEST_CASES` asks for more (long runs outside CI,
/// RELIABILITY.md).
fn pipeline_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(pipeline_cases()))]

    /// Results never depend on how messages are batched, at the key limit
    /// too, and with series forgotten and coming back.
    #[test]
    fn batching_does_not_change_results(
        records in events(5_000),
        sizes in prop::collection::vec(1usize..50, 1..10),
        lateness in prop_oneof![Just(0u64), Just(2_000), Just(10_000)],
        slide in prop_oneof![Just(60u64), Just(30), Just(20)],
        retention_minutes in prop_oneof![Just(24 * 60u64), Just(2)],
        max_keys in prop_oneof![Just(1_000usize), Just(2), Just(3)],
    ) {
        let mut settings = hopping(lateness, 60, slide);
        settings.history_retention = Duration::from_secs(60 * retention_minutes);
        settings.max_keys = max_keys;
        let whole = run_with(&records, &[records.len()], settings);
        let batched = run_with(&records, &sizes, settings);
        prop_assert_eq!(whole, batched);
    }

    /// Crash anywhere, with any subset of the in-flight rollups and
    /// forwarded records acknowledged, and resume from the last checkpoint
    /// written (with the series histories saved with every checkpoint so
    /// far): every record gets the decision it got in an uninterrupted run
    /// (counted, late, dead-lettered, and why), and the table ends up
    /// exactly as after it, every column, trend and anomaly included. The
    /// stream has bad records, records far in the future and far behind, so
    /// the clock guard, the dead-letter path and the late path are all
    /// crossed; a short retention makes series be forgotten and come back.
    #[test]
    fn resuming_from_any_checkpoint_decides_and_writes_as_an_uninterrupted_run(
        records in noisy_events(20_000),
        crash_at in 0usize..300,
        ack_lag in 0usize..4,
        lateness in prop_oneof![Just(0u64), Just(5_000), Just(30_000)],
        slide in prop_oneof![Just(60u64), Just(20)],
        quorum in 1usize..4,
        save_every in 1usize..6,
        retention_minutes in prop_oneof![Just(24 * 60u64), Just(3)],
    ) {
        let mut settings = hopping(lateness, 60, slide);
        settings.windows.late_policy = LatePolicy::SideTopic;
        settings.windows.clock_quorum = ClockQuorum { first_watermark: quorum, jump: quorum + 1 };
        settings.history_retention = Duration::from_secs(60 * retention_minutes);
        let decide = |decisions: &mut Decisions, out: &Output| {
            for r in out.dead_letters.iter().chain(&out.late) {
                let _previous = decisions.insert(r.offset, r.kind);
            }
        };
        let end = |p: &mut PartitionPipeline| p.tick(quiet_for(31)).unwrap();

        // The uninterrupted run.
        let (mut expected, mut want) = (Table::new(), Decisions::new());
        let mut p = pipeline_with(settings, None);
        for chunk in records.chunks(7) {
            let out = p.process(chunk.to_vec()).unwrap();
            decide(&mut want, &out);
            if let Some(batch) = &out.rollups {
                write(&mut expected, &batch.rows);
                p.rollups_written(batch.id);
            }
            out.dead_letters.iter().chain(&out.late).for_each(|r| p.forwarded(r.anchor));
        }
        let out = end(&mut p);
        decide(&mut want, &out);
        if let Some(batch) = &out.rollups {
            write(&mut expected, &batch.rows);
        }

        // First life: acknowledges batches and forwards `ack_lag` batches
        // late, saves its checkpoint with the series histories every
        // `save_every` chunks, then dies.
        let crash_at = crash_at.min(records.len());
        let (mut table, mut first) = (Table::new(), Decisions::new());
        let mut p = pipeline_with(settings, None);
        let mut unacked: VecDeque<(Option<RollupBatch>, Vec<i64>)> = VecDeque::new();
        let mut saved: Option<Checkpoint> = None;
        let mut state: BTreeMap<(Metric, Dimensions), Option<SeriesHistory>> = BTreeMap::new();
        for (i, chunk) in records[..crash_at].chunks(7).enumerate() {
            if i % save_every == 0 {
                if let Some(checkpoint) = p.checkpoint() {
                    saved = Some(checkpoint);
                    for s in p.take_snapshots() {
                        let _newer = state.insert((s.metric, s.dimensions), s.history);
                    }
                }
            }
            let out = p.process(chunk.to_vec()).unwrap();
            decide(&mut first, &out);
            let forwards = out.dead_letters.iter().chain(&out.late).map(|r| r.anchor).collect();
            unacked.push_back((out.rollups, forwards));
            while unacked.len() > ack_lag {
                let (batch, forwards) = unacked.pop_front().unwrap();
                if let Some(batch) = batch {
                    write(&mut table, &batch.rows);
                    p.rollups_written(batch.id);
                }
                forwards.into_iter().for_each(|anchor| p.forwarded(anchor));
            }
        }
        // Some in-flight rows may have reached the table without the ack.
        if let Some((Some(batch), _)) = unacked.front() {
            write(&mut table, &batch.rows);
        }
        // Second life: resume from the saved checkpoint, re-reading from
        // its offset, with the saved histories.
        let from = saved.as_ref().map_or(0, |c| c.offset);
        let mut decided: Decisions = first.into_iter().filter(|(offset, _)| *offset < from).collect();
        let resumed: Vec<Record> = records.iter().filter(|r| r.offset >= from).cloned().collect();
        let mut p = PartitionPipeline::new(
            Arc::from("engagement.events"),
            3,
            Decoder::new(TopicKind::Engagement, false, Limits::default()).unwrap(),
            settings,
            saved.as_ref(),
            2,
        );
        p.restore(state.into_iter().map(|((metric, dimensions), history)| SeriesSnapshot { metric, dimensions, history }));
        for chunk in resumed.chunks(5) {
            let out = p.process(chunk.to_vec()).unwrap();
            decide(&mut decided, &out);
            if let Some(batch) = &out.rollups {
                write(&mut table, &batch.rows);
                p.rollups_written(batch.id);
            }
            out.dead_letters.iter().chain(&out.late).for_each(|r| p.forwarded(r.anchor));
        }
        let out = end(&mut p);
        decide(&mut decided, &out);
        if let Some(batch) = out.rollups {
            write(&mut table, &batch.rows);
        }
        let times: Vec<(i64, Option<String>)> = records.iter().map(|r| (r.offset, serde_json::from_slice::<serde_json::Value>(r.payload.as_deref().unwrap_or_default()).ok().map(|v| v["occurred_at"].to_string()))).collect();
        prop_assert_eq!(&decided, &want, "{:?} checkpoint {:?} crash {}", times, saved, crash_at);
        prop_assert_eq!(&table, &expected, "{:?} checkpoint {:?} crash {}", times, saved, crash_at);
    }
}

/// Settings with the default clock quorum (5 records for a fresh
/// partition's watermark, `jump` to confirm a jump).
fn guarded(jump: usize) -> PipelineSettings {
    let mut s = settings(10_000);
    s.windows.clock_quorum = ClockQuorum {
        first_watermark: 5,
        jump,
    };
    s
}

fn kinds(out: &Output) -> Vec<(i64, &'static str)> {
    out.dead_letters
        .iter()
        .chain(&out.late)
        .map(|r| (r.offset, r.kind))
        .collect()
}

const YEAR_2099: i64 = 4_084_000_000_000 - BASE;
const YEAR_2001: i64 = 980_000_000_000 - BASE;

#[test]
fn a_hostile_first_record_cannot_set_the_watermark() {
    for (hostile, kind) in [(YEAR_2099, "future_timestamp"), (YEAR_2001, "late")] {
        let mut s = guarded(100);
        s.windows.late_policy = LatePolicy::SideTopic;
        let mut p = pipeline_with(s, None);
        let mut records = vec![record(0, hostile, 1, 4)];
        records.extend((1..40).map(|i| record(i, i * 3_000, 1, 4)));
        let out = p.process(records).unwrap();
        assert_eq!(kinds(&out), vec![(0, kind)], "hostile at {hostile}");
        assert_eq!(out.stats.late + out.stats.future, 1);
        // Every other record counts: 19 of them in the first window.
        let rows = out.rollups.unwrap().rows;
        let views = rows.iter().filter(|r| r.metric == "engagement.view");
        assert_eq!(views.map(|r| r.count).sum::<u64>(), 19);
        assert_eq!(p.state().watermark, Some(BASE + 39 * 3_000 - 10_000));
    }
}

#[test]
fn a_record_ahead_of_the_stream_is_dead_lettered_and_a_real_jump_is_followed() {
    let mut p = pipeline_with(guarded(3), None);
    let mut records: Vec<Record> = (0..10).map(|i| record(i, i * 1_000, 1, 5)).collect();
    records.push(record(10, 5 * 3_600_000, 1, 5)); // a wrong clock
    records.push(record(11, 11_000, 1, 5));
    let out = p.process(records).unwrap();
    assert_eq!(kinds(&out), vec![(10, "future_timestamp")]);
    assert!(out.dead_letters[0].reason.contains("max_future_skew"));
    assert_eq!(p.state().watermark, Some(BASE + 1_000));
    // Silent for three hours, then a steady stream: after three records the
    // watermark follows, and the three are counted too.
    let resumed: Vec<Record> = (12..20)
        .map(|i| record(i, 3 * 3_600_000 + i * 1_000, 1, 5))
        .collect();
    let out = p.process(resumed).unwrap();
    assert!(kinds(&out).is_empty(), "{:?}", kinds(&out));
    assert_eq!(out.stats.windows_closed, 1, "the old window closed");
    assert_eq!(p.state().watermark, Some(BASE + 3 * 3_600_000 + 9_000));
    assert_eq!(p.state().open_windows, vec![(BASE + 3 * 3_600_000, 2)]);
}

#[test]
fn a_lateness_longer_than_the_skew_still_admits_an_in_order_stream() {
    // The skew is how far a record would move the watermark, which trails
    // the newest event time by the lateness: measured from the watermark
    // itself, every record of this stream would be "too far ahead".
    let mut s = guarded(3);
    s.windows.allowed_lateness = Duration::from_secs(2 * 3600);
    let mut p = pipeline_with(s, None);
    let mut records: Vec<Record> = (0..200).map(|i| record(i, i * 15_000, 1, 5)).collect();
    let newest = 199 * 15_000;
    records.push(record(200, newest + 2 * 3_600_000, 1, 5)); // a wrong clock
    records.push(record(201, newest + 1_000, 1, 5));
    let out = p.process(records).unwrap();
    assert_eq!(kinds(&out), vec![(200, "future_timestamp")]);
    assert!(out.dead_letters[0].reason.contains("ahead by 7200000 ms"));
    assert_eq!(
        p.state().watermark,
        Some(BASE + newest + 1_000 - 2 * 3_600_000)
    );
}

#[test]
fn records_held_by_the_guard_are_released_when_the_partition_goes_idle() {
    let mut p = pipeline_with(guarded(100), None);
    let out = p
        .process(vec![record(0, 1_000, 1, 4), record(1, 2_000, 1, 4)])
        .unwrap();
    assert!(out.rollups.is_none());
    assert!(p.holds_records(), "two records are not a quorum of five");
    let out = p.tick(quiet_for(30)).unwrap();
    let rows = out.rollups.unwrap().rows;
    let views = rows.iter().find(|r| r.metric == "engagement.view").unwrap();
    assert_eq!(views.count, 2);
}

#[test]
fn where_idle_closing_happened_is_repeated_by_a_re_read() {
    let straggler = record(1, 3_000, 1, 4);
    let mut first = pipeline(10_000, None);
    let _open = first.process(vec![record(0, 1_000, 1, 4)]).unwrap();
    let idle = first.tick(quiet_for(30)).unwrap();
    let idle_batch = idle.rollups.unwrap();
    let out = first.process(vec![straggler.clone()]).unwrap();
    assert_eq!(out.stats.late, 1, "its window was closed by idleness");
    // The idle close's rows are not acknowledged: the partition resumes
    // from offset 0, and must close the window before offset 1 again.
    let checkpoint = first.checkpoint().unwrap();
    assert_eq!(
        (checkpoint.offset, checkpoint.idle_closes.clone()),
        (0, vec![1])
    );

    let mut second = pipeline(10_000, Some(&checkpoint));
    let out = second
        .process(vec![record(0, 1_000, 1, 4), straggler])
        .unwrap();
    assert_eq!(out.stats.late, 1);
    assert_eq!(out.rollups.map(|b| b.rows), Some(idle_batch.rows));
}

/// The sketch: records at 0 s, 1 h + 40 s, 50 s, 75 s and 95 s; the
/// first window's rows are written, the dead letter is not acknowledged;
/// the partition resumes from its checkpoint and decides every re-read
/// record as the first run did.
#[test]
fn a_resumed_partition_decides_every_record_as_the_first_run_did() {
    let records = vec![
        record(0, 0, 1, 5),
        record(1, 3_600_000 + 40_000, 1, 5),
        record(2, 50_000, 1, 5),
        record(3, 75_000, 1, 5),
        record(4, 95_000, 1, 5),
    ];
    let mut s = settings(10_000);
    s.windows.clock_quorum = ClockQuorum {
        first_watermark: 1,
        jump: 3,
    };
    let mut first = pipeline_with(s, None);
    let out = first.process(records.clone()).unwrap();
    assert_eq!(kinds(&out), vec![(1, "future_timestamp")]);
    let batch = out.rollups.unwrap();
    first.rollups_written(batch.id); // the dead letter is never acknowledged
    let checkpoint = first.checkpoint().unwrap();
    assert_eq!(checkpoint.offset, 1);

    let mut second = pipeline_with(s, Some(&checkpoint));
    let resumed: Vec<Record> = records.into_iter().skip(1).collect();
    let out = second.process(resumed).unwrap();
    assert_eq!(kinds(&out), vec![(1, "future_timestamp")]);
    assert_eq!(out.stats.late, 0);
    assert!(out.rollups.is_none(), "the written window is not rewritten");
    assert_eq!(second.state().watermark, first.state().watermark);
    assert_eq!(second.state().open_windows, first.state().open_windows);
}

#[test]
fn a_partition_tracks_at_most_max_keys_keys() {
    let mut s = settings(0);
    s.max_keys = 2;
    let mut p = pipeline_with(s, None);
    let out = p
        .process(vec![
            record(0, 1_000, 1, 5),
            record(1, 2_000, 2, 5),
            record(2, 3_000, 3, 5),
            record(3, 4_000, 1, 5),
        ])
        .unwrap();
    assert_eq!(kinds(&out), vec![(2, "key_limit")]);
    assert_eq!(out.stats.over_key_limit, 1);
    assert!(out.dead_letters[0]
        .reason
        .contains("limits.max_keys_per_partition"));
}

#[test]
fn the_key_limit_counts_keys_as_a_close_would_leave_them_however_records_are_batched() {
    // Two keys at most, histories kept two minutes. Content 1 goes quiet
    // at 0s; by the time content 3 arrives at 10m, a close would have
    // forgotten it, whether or not a batch ended in between.
    let mut s = settings(0);
    s.max_keys = 2;
    s.history_retention = Duration::from_secs(120);
    let records = [
        record(0, 0, 1, 5),
        record(1, 0, 2, 5),
        record(2, 10 * MINUTE, 2, 5),
        record(3, 10 * MINUTE, 3, 5),
        record(4, 10 * MINUTE + 1, 4, 5), // a third key: over the limit
    ];
    for sizes in [vec![5], vec![3, 2], vec![1]] {
        let mut p = pipeline_with(s, None);
        let mut rejected = Vec::new();
        let mut rest = &records[..];
        for &n in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            rejected.extend(kinds(&p.process(batch.to_vec()).unwrap()));
        }
        assert_eq!(rejected, vec![(4, "key_limit")], "batches of {sizes:?}");
    }
    // The rows (without the rejected record, whose dead letter this
    // harness never acknowledges, which would keep the last window open).
    let counted = &records[..4];
    let whole = run_with(counted, &[4], s);
    assert_eq!(whole, run_with(counted, &[3, 1], s));
    assert_eq!(whole, run_with(counted, &[1], s));
    let contents: BTreeSet<&str> = whole.keys().map(|(_, c, _)| c.as_str()).collect();
    assert_eq!(
        contents,
        BTreeSet::from(["content-1", "content-2", "content-3"])
    );
}

/// `reactor anomaly backtest` scores a series exactly as the pipeline does:
/// the clicks per window of one content, through both, give the same score
/// for every window; the backtest is given the pipeline's rows only (none
/// for the windows with no click), as exported from ClickHouse.
#[test]
fn backtest_gives_the_scores_the_pipeline_gives() {
    let mut p = pipeline(0, None);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut offset = 0;
    let mut counts = Vec::new();
    let mut records = Vec::new();
    for minute in 0..80 {
        let clicks = if minute == 60 {
            40
        } else {
            rng.random_range(0..5)
        };
        counts.push(clicks);
        for i in 0..clicks {
            records.push(record(offset, minute * MINUTE + i * 100, 1, 1));
            offset += 1;
        }
    }
    records.push(record(offset, 90 * MINUTE, 2, 1)); // closes minute 79
    let mut table = Table::new();
    for chunk in records.chunks(50) {
        if let Some(batch) = p.process(chunk.to_vec()).unwrap().rollups {
            write(&mut table, &batch.rows);
        }
    }
    let from_pipeline: Vec<Option<f64>> = (0..80)
        .map(|minute| {
            let key = (
                "engagement.click".to_owned(),
                "content-1".to_owned(),
                BASE + minute * MINUTE,
            );
            table.get(&key).and_then(|row| row.anomaly_score)
        })
        .collect();

    let mut csv = String::from("timestamp,value\n");
    for (minute, clicks) in counts.iter().enumerate() {
        if *clicks > 0 {
            csv.push_str(&format!("{},{clicks}\n", BASE + minute as i64 * MINUTE));
        }
    }
    assert!(counts.contains(&0), "no empty window to fill");
    let mut out = Vec::new();
    let settings = p.settings().history.anomaly;
    let summary = crate::anomaly_eval::backtest::backtest(
        csv.as_bytes(),
        &mut out,
        Some(crate::aggregate::SeriesKind::Count),
        &settings,
        crate::anomaly_eval::backtest::RowWindow::Configured(MINUTE),
    )
    .unwrap();
    // Every window from the first row to the last, filled ones included;
    // compared where the pipeline has a row.
    let from_backtest: BTreeMap<i64, Option<f64>> = String::from_utf8(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.split(',');
            let at: f64 = fields.next().unwrap().parse().unwrap();
            (at as i64, fields.nth(1).and_then(|s| s.parse().ok()))
        })
        .collect();
    let first = counts.iter().position(|c| *c > 0).unwrap();
    let last = counts.iter().rposition(|c| *c > 0).unwrap();
    assert_eq!(from_backtest.len(), last - first + 1);
    for (minute, clicks) in counts.iter().enumerate() {
        if *clicks > 0 {
            let at = BASE + minute as i64 * MINUTE;
            assert_eq!(from_backtest[&at], from_pipeline[minute], "minute {minute}");
        }
    }
    assert_eq!(summary.anomalies, 1, "the burst at minute 60");
}

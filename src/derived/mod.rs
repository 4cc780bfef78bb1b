//! Derived events: what Reactor publishes back to Kafka about closed windows.
//!
//! - [`RollupEvent`] on `topics.rollups`: every closed window's rollup row.
//! - [`TrendEvent`] on `topics.trends`: a series' slope changed sign or its
//!   magnitude crossed `trend.threshold`.
//! - [`AnomalyEvent`] on `topics.anomalies`: a window scored at or beyond
//!   `anomaly.threshold` against its series' baseline.
//!
//! Each is keyed by `campaign_id` and carries a deterministic [`event_id`]
//! computed from (kind, metric, dimensions, window start, window size), so a
//! consumer can deduplicate the copies a restart or a replay publishes again.
//! Schemas: `schemas/avro/{rollup,trend,anomaly}.avsc`; field names are the
//! same in JSON. Times are epoch milliseconds.

mod selection;

use serde::{Deserialize, Serialize};
use sha1::{Digest as _, Sha1};
use uuid::Uuid;

pub use selection::RollupSelection;

use crate::aggregate::{Score, TrendUpdate};
use crate::rollup::{Dimensions, Rollup};

/// Namespace of the version-5 UUIDs used as event ids. Never change it: ids
/// must stay stable across releases for deduplication to work.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5ea0_c7a1_0b5e_4d6e_9c1d_2e0f_7a11_d00d);

/// The three kinds of derived event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DerivedKind {
    /// A closed window's rollup.
    Rollup,
    /// A trend change.
    Trend,
    /// An anomaly.
    Anomaly,
}

impl DerivedKind {
    /// All kinds.
    pub const ALL: [DerivedKind; 3] = [
        DerivedKind::Rollup,
        DerivedKind::Trend,
        DerivedKind::Anomaly,
    ];

    /// Lower-case name, used in ids, metrics and schema file names.
    pub fn as_str(self) -> &'static str {
        match self {
            DerivedKind::Rollup => "rollup",
            DerivedKind::Trend => "trend",
            DerivedKind::Anomaly => "anomaly",
        }
    }
}

/// The deterministic id of a derived event: the version-5 UUID (in
/// [`ID_NAMESPACE`]) of the JSON array
/// `[kind, metric, campaign_id, content_id, channel, window_start_ms, window_size_ms]`.
pub fn event_id(
    kind: DerivedKind,
    metric: &str,
    dimensions: &Dimensions,
    window_start_ms: i64,
    window_size_ms: i64,
) -> String {
    let mut id = [0; ID_LENGTH];
    write_event_id(
        kind,
        metric,
        dimensions,
        window_start_ms,
        window_size_ms,
        &mut id,
    )
    .to_owned()
}

/// Length of an event id (a hyphenated UUID).
pub const ID_LENGTH: usize = uuid::fmt::Hyphenated::LENGTH;

/// [`event_id`], written into `buffer` instead of a new string.
pub fn write_event_id<'b>(
    kind: DerivedKind,
    metric: &str,
    dimensions: &Dimensions,
    window_start_ms: i64,
    window_size_ms: i64,
    buffer: &'b mut [u8; ID_LENGTH],
) -> &'b str {
    // A tuple serialises to the same compact JSON array as
    // `json!([...]).to_string()` (strings escaped alike), without building
    // a `Value` of owned strings first: this runs for every closed row.
    let parts = (
        kind.as_str(),
        metric,
        dimensions.campaign_id.as_str(),
        dimensions.content_id.as_str(),
        dimensions.channel.as_str(),
        window_start_ms,
        window_size_ms,
    );
    // The version-5 UUID of the array, as `Uuid::new_v5` computes it (a
    // test compares them), hashed as it is written. The `sha1` crate uses
    // the CPU's SHA instructions where there are some: uuid's own SHA-1 is
    // portable code, and this runs for every closed row.
    let mut hasher = Sha1::new();
    hasher.update(ID_NAMESPACE.as_bytes());
    #[allow(clippy::expect_used)]
    serde_json::to_writer(&mut hasher, &parts)
        .expect("strings and integers always serialise, and hashing cannot fail");
    let digest = hasher.finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(buffer)
}

/// A closed window's rollup, as published on `topics.rollups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupEvent {
    /// Deterministic id.
    pub id: String,
    /// Metric name.
    pub metric: String,
    /// Campaign (also the message key).
    pub campaign_id: String,
    /// Content item, or empty.
    pub content_id: String,
    /// Channel, or empty.
    pub channel: String,
    /// Window start, epoch ms (inclusive).
    pub window_start: i64,
    /// Window end, epoch ms (exclusive).
    pub window_end: i64,
    /// Window size, ms.
    pub window_size_ms: i64,
    /// Observations.
    pub count: i64,
    /// Exact sum.
    pub sum: f64,
    /// Smallest observation.
    pub min: f64,
    /// Largest observation.
    pub max: f64,
    /// Mean.
    pub avg: f64,
    /// Median, for measured metrics.
    pub p50: Option<f64>,
    /// 90th percentile, for measured metrics.
    pub p90: Option<f64>,
    /// 95th percentile, for measured metrics.
    pub p95: Option<f64>,
    /// 99th percentile, for measured metrics.
    pub p99: Option<f64>,
    /// Slope over the last windows, once there are two.
    pub trend_slope: Option<f64>,
    /// Score against the baseline, once warmed up.
    pub anomaly_score: Option<f64>,
    /// Input topic.
    pub source_topic: String,
    /// Input partition.
    pub source_partition: i32,
}

/// A trend change, as published on `topics.trends`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendEvent {
    /// Deterministic id.
    pub id: String,
    /// Metric name.
    pub metric: String,
    /// Campaign (also the message key).
    pub campaign_id: String,
    /// Content item, or empty.
    pub content_id: String,
    /// Channel, or empty.
    pub channel: String,
    /// Start of the window that changed the trend, epoch ms.
    pub window_start: i64,
    /// Its end, epoch ms.
    pub window_end: i64,
    /// Window size, ms.
    pub window_size_ms: i64,
    /// Slope now (change of the tracked value per window).
    pub slope: f64,
    /// Slope before this window.
    pub previous_slope: f64,
    /// `sign_change`, `above_threshold` or `below_threshold`.
    pub change: String,
    /// The threshold in force.
    pub threshold: f64,
}

/// An anomaly, as published on `topics.anomalies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEvent {
    /// Deterministic id.
    pub id: String,
    /// Metric name.
    pub metric: String,
    /// Campaign (also the message key).
    pub campaign_id: String,
    /// Content item, or empty.
    pub content_id: String,
    /// Channel, or empty.
    pub channel: String,
    /// Window start, epoch ms.
    pub window_start: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Window size, ms.
    pub window_size_ms: i64,
    /// The window's tracked value.
    pub observed: f64,
    /// The baseline's expectation.
    pub expected: f64,
    /// Signed surprise, `-log10 p` of the last ~10 windows of the series
    /// under its own history (negative: below the baseline); see
    /// [`crate::aggregate::Detector`].
    pub score: f64,
    /// The threshold in force.
    pub threshold: f64,
    /// The id of the earlier event of the same series and incident that
    /// this one escalates (raised within that one's quiet period because it
    /// scored at least `anomaly.escalation` times as high); `None` for an
    /// incident's first event.
    #[serde(default)]
    pub escalates: Option<String>,
}

/// Any derived event.
#[derive(Debug, Clone, PartialEq)]
pub enum DerivedEvent {
    /// See [`RollupEvent`].
    Rollup(RollupEvent),
    /// See [`TrendEvent`].
    Trend(TrendEvent),
    /// See [`AnomalyEvent`].
    Anomaly(AnomalyEvent),
}

impl DerivedEvent {
    /// Which kind it is.
    pub fn kind(&self) -> DerivedKind {
        match self {
            DerivedEvent::Rollup(_) => DerivedKind::Rollup,
            DerivedEvent::Trend(_) => DerivedKind::Trend,
            DerivedEvent::Anomaly(_) => DerivedKind::Anomaly,
        }
    }

    /// Start of the window it is about, ms since the epoch.
    pub fn window_start_ms(&self) -> i64 {
        match self {
            DerivedEvent::Rollup(e) => e.window_start,
            DerivedEvent::Trend(e) => e.window_start,
            DerivedEvent::Anomaly(e) => e.window_start,
        }
    }

    /// The end of the window it is about, epoch ms.
    pub fn window_end_ms(&self) -> i64 {
        match self {
            DerivedEvent::Rollup(e) => e.window_end,
            DerivedEvent::Trend(e) => e.window_end,
            DerivedEvent::Anomaly(e) => e.window_end,
        }
    }

    /// The key it is published with (the campaign).
    pub fn key(&self) -> &str {
        match self {
            DerivedEvent::Rollup(e) => &e.campaign_id,
            DerivedEvent::Trend(e) => &e.campaign_id,
            DerivedEvent::Anomaly(e) => &e.campaign_id,
        }
    }

    /// The deterministic id.
    pub fn id(&self) -> &str {
        match self {
            DerivedEvent::Rollup(e) => &e.id,
            DerivedEvent::Trend(e) => &e.id,
            DerivedEvent::Anomaly(e) => &e.id,
        }
    }
}

/// A [`RollupEvent`] borrowing its row's strings: what is encoded when
/// publishing, without copying them. Same fields in the same order, so it
/// encodes to the same bytes (JSON and Avro).
#[derive(Debug, Clone, Serialize)]
pub struct RollupEventView<'a> {
    id: &'a str,
    metric: &'a str,
    campaign_id: &'a str,
    content_id: &'a str,
    channel: &'a str,
    window_start: i64,
    window_end: i64,
    window_size_ms: i64,
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    avg: f64,
    p50: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    trend_slope: Option<f64>,
    anomaly_score: Option<f64>,
    source_topic: &'a str,
    source_partition: i32,
}

impl<'a> RollupEventView<'a> {
    /// The event of `row`, its id written into `id`.
    pub fn of(row: &'a Rollup, id: &'a mut [u8; ID_LENGTH]) -> Self {
        let (start, end) = (row.window_start.as_millis(), row.window_end.as_millis());
        let dims = &row.dimensions;
        RollupEventView {
            id: write_event_id(
                DerivedKind::Rollup,
                &row.metric,
                dims,
                start,
                end - start,
                id,
            ),
            metric: &row.metric,
            campaign_id: &dims.campaign_id,
            content_id: &dims.content_id,
            channel: &dims.channel,
            window_start: start,
            window_end: end,
            window_size_ms: end - start,
            count: i64::try_from(row.count).unwrap_or(i64::MAX),
            sum: row.sum,
            min: row.min,
            max: row.max,
            avg: row.avg,
            p50: row.p50,
            p90: row.p90,
            p95: row.p95,
            p99: row.p99,
            trend_slope: row.trend_slope,
            anomaly_score: row.anomaly_score,
            source_topic: &row.source_topic,
            source_partition: row.source_partition,
        }
    }

    /// The key it is published with (the campaign).
    pub fn key(&self) -> &'a str {
        self.campaign_id
    }
}

impl From<&RollupEventView<'_>> for RollupEvent {
    fn from(view: &RollupEventView<'_>) -> Self {
        RollupEvent {
            id: view.id.to_owned(),
            metric: view.metric.to_owned(),
            campaign_id: view.campaign_id.to_owned(),
            content_id: view.content_id.to_owned(),
            channel: view.channel.to_owned(),
            window_start: view.window_start,
            window_end: view.window_end,
            window_size_ms: view.window_size_ms,
            count: view.count,
            sum: view.sum,
            min: view.min,
            max: view.max,
            avg: view.avg,
            p50: view.p50,
            p90: view.p90,
            p95: view.p95,
            p99: view.p99,
            trend_slope: view.trend_slope,
            anomaly_score: view.anomaly_score,
            source_topic: view.source_topic.to_owned(),
            source_partition: view.source_partition,
        }
    }
}

/// The rollup event of a finished row (published for every row).
pub fn rollup_event(row: &Rollup) -> RollupEvent {
    let mut id = [0; ID_LENGTH];
    RollupEvent::from(&RollupEventView::of(row, &mut id))
}

/// One derived event of a batch, before encoding.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// The rollup event of a row.
    Rollup(&'a Rollup),
    /// A trend or anomaly event.
    Signal(&'a DerivedEvent),
}

/// A batch's derived events in the order they are published: a rollup
/// event per row that `rollups` selects (`derived.rollup_events`,
/// `derived.rollup_metrics`), then `signals` (the batch's trend and anomaly
/// events), which are always published.
pub fn outgoing<'a>(
    rows: &'a [Rollup],
    signals: &'a [DerivedEvent],
    rollups: &'a RollupSelection,
) -> impl Iterator<Item = Outgoing<'a>> + 'a {
    rows.iter()
        .filter(|row| rollups.includes(&row.metric))
        .map(Outgoing::Rollup)
        .chain(signals.iter().map(Outgoing::Signal))
}

/// The trend and anomaly events a finished row warrants, if any. (Its
/// rollup event is [`rollup_event`], built when publishing.)
/// `escalates`: the start of the window whose anomaly event this row's
/// escalates, if it does and that is known.
pub fn signals_of_row(
    row: &Rollup,
    trend: Option<&TrendUpdate>,
    score: Option<&Score>,
    escalates: Option<i64>,
    observed: f64,
    thresholds: (f64, f64),
) -> impl Iterator<Item = DerivedEvent> {
    let (start, end) = (row.window_start.as_millis(), row.window_end.as_millis());
    let size = end - start;
    let id = |kind| event_id(kind, &row.metric, &row.dimensions, start, size);
    let dims = &row.dimensions;
    let trend =
        trend
            .and_then(|t| Some((t, t.change?, t.previous?)))
            .map(|(t, change, previous)| {
                DerivedEvent::Trend(TrendEvent {
                    id: id(DerivedKind::Trend),
                    metric: row.metric.to_string(),
                    campaign_id: dims.campaign_id.clone(),
                    content_id: dims.content_id.clone(),
                    channel: dims.channel.clone(),
                    window_start: start,
                    window_end: end,
                    window_size_ms: size,
                    slope: t.slope,
                    previous_slope: previous,
                    change: change.as_str().to_owned(),
                    threshold: thresholds.0,
                })
            });
    let anomaly = score.filter(|s| s.anomalous).map(|s| {
        DerivedEvent::Anomaly(AnomalyEvent {
            id: id(DerivedKind::Anomaly),
            metric: row.metric.to_string(),
            campaign_id: dims.campaign_id.clone(),
            content_id: dims.content_id.clone(),
            channel: dims.channel.clone(),
            window_start: start,
            window_end: end,
            window_size_ms: size,
            observed,
            expected: s.expected,
            score: s.score,
            threshold: thresholds.1,
            escalates: escalates
                .map(|earlier| event_id(DerivedKind::Anomaly, &row.metric, dims, earlier, size)),
        })
    });
    [trend, anomaly].into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_events_can_be_left_out_or_chosen_by_metric_but_signals_never_are() {
        let row = Rollup {
            metric: "engagement.click".into(),
            dimensions: Dimensions {
                campaign_id: "c".into(),
                content_id: String::new(),
                channel: String::new(),
            },
            window_start: crate::event::EventTime::from_millis(60_000),
            window_end: crate::event::EventTime::from_millis(120_000),
            count: 3,
            ..Rollup::default()
        };
        let score = Score {
            score: 9.0,
            expected: 1.0,
            own: 9.0,
            anomalous: true,
            escalation: false,
        };
        let signals: Vec<DerivedEvent> =
            signals_of_row(&row, None, Some(&score), None, 3.0, (0.1, 4.0)).collect();
        let kinds = |enabled: bool, metrics: &[String]| -> Vec<DerivedKind> {
            let selection = RollupSelection::new(enabled, metrics).unwrap();
            outgoing(std::slice::from_ref(&row), &signals, &selection)
                .map(|e| match e {
                    Outgoing::Rollup(_) => DerivedKind::Rollup,
                    Outgoing::Signal(signal) => signal.kind(),
                })
                .collect()
        };
        let (click, view) = (["engagement.click".into()], ["engagement.view".into()]);
        assert_eq!(
            kinds(true, &[]),
            [DerivedKind::Rollup, DerivedKind::Anomaly]
        );
        assert_eq!(
            kinds(true, &click),
            [DerivedKind::Rollup, DerivedKind::Anomaly]
        );
        assert_eq!(kinds(true, &view), [DerivedKind::Anomaly]);
        assert_eq!(kinds(false, &[]), [DerivedKind::Anomaly]);
    }

    proptest::proptest! {
        /// The id is the UUID of exactly the documented JSON array, whatever
        /// the strings hold (quotes, escapes, control characters, non-ASCII).
        #[test]
        fn ids_hash_the_documented_json_array(
            metric in ".{0,12}",
            campaign in ".{0,12}",
            content in "[\\\\\"\\x00-\\x1f a-zé☃]{0,12}",
            channel in ".{0,6}",
            start in proptest::num::i64::ANY,
            size in proptest::num::i64::ANY,
        ) {
            let dims = Dimensions {
                campaign_id: campaign.clone(),
                content_id: content.clone(),
                channel: channel.clone(),
            };
            let documented = serde_json::json!(["trend", metric, campaign, content, channel, start, size]);
            let expected = Uuid::new_v5(&ID_NAMESPACE, documented.to_string().as_bytes()).to_string();
            proptest::prop_assert_eq!(event_id(DerivedKind::Trend, &metric, &dims, start, size), expected);
        }
    }

    #[test]
    fn ids_are_stable_and_depend_on_every_part() {
        let dims = Dimensions {
            campaign_id: "campaign-001".into(),
            content_id: "content-001-002".into(),
            channel: "web".into(),
        };
        let id = event_id(
            DerivedKind::Anomaly,
            "engagement.click",
            &dims,
            1_700_000_040_000,
            60_000,
        );
        // Pinned (computed independently with Python's uuid.uuid5 over the
        // documented JSON array): changing how ids are computed breaks
        // consumers' deduplication.
        assert_eq!(id, "2a1f6e0e-362f-5bbe-9c5f-0f1cf952d794");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "5", "version-5 UUID: {id}");
        let others = [
            event_id(
                DerivedKind::Trend,
                "engagement.click",
                &dims,
                1_700_000_040_000,
                60_000,
            ),
            event_id(
                DerivedKind::Anomaly,
                "engagement.view",
                &dims,
                1_700_000_040_000,
                60_000,
            ),
            event_id(
                DerivedKind::Anomaly,
                "engagement.click",
                &Dimensions::default(),
                1_700_000_040_000,
                60_000,
            ),
            event_id(
                DerivedKind::Anomaly,
                "engagement.click",
                &dims,
                1_700_000_100_000,
                60_000,
            ),
            event_id(
                DerivedKind::Anomaly,
                "engagement.click",
                &dims,
                1_700_000_040_000,
                300_000,
            ),
        ];
        assert!(others.iter().all(|other| *other != id));
        // Separators inside values cannot make two keys collide.
        let a = Dimensions {
            campaign_id: "a,b".into(),
            ..Dimensions::default()
        };
        let b = Dimensions {
            campaign_id: "a".into(),
            content_id: "b".into(),
            ..Dimensions::default()
        };
        assert_ne!(
            event_id(DerivedKind::Rollup, "m", &a, 0, 1),
            event_id(DerivedKind::Rollup, "m", &b, 0, 1)
        );
    }
}

//! What Reactor computes: metrics observed from events, the series they
//! belong to, and the rollup row written for each series and closed window.
//!
//! Every event yields a few [`Observation`]s, each a value of a [`Metric`]
//! for the event's [`Dimensions`]. Counts are observations of `1.0`, so one
//! set of aggregators serves counts and measurements alike. Ratios (CTR,
//! conversion rate, ROI) are not stored: they are computed from these sums at
//! query time, which keeps them right at any time granularity.

use std::borrow::Cow;
use std::sync::Arc;

use crate::event::{EngagementKind, Event, EventTime};

/// A named measure. The name is `<topic kind>.<what>`, e.g. `engagement.click`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// `engagement.<kind>`: count of engagements of that kind.
    Engagement(EngagementKind),
    /// `engagement.dwell_ms`: time spent, where measured.
    DwellMs,
    /// `conversion.<kind>`: count of conversions of that kind.
    Conversion(Box<str>),
    /// `conversion.revenue`: revenue, where given.
    Revenue,
    /// `conversion.cost`: cost, where given.
    Cost,
    /// `content.published`: count of content published.
    ContentPublished,
    /// `content.sentiment`: sentiment score, where given.
    Sentiment,
    /// `content.seo_score`: SEO score, where given.
    SeoScore,
}

impl Metric {
    /// Whether rollups of this metric carry p50..p99. Counts do not (every
    /// observation is 1).
    pub fn has_percentiles(&self) -> bool {
        matches!(
            self,
            Metric::DwellMs | Metric::Revenue | Metric::Sentiment | Metric::SeoScore
        )
    }

    /// Whether this metric counts events (each observation is 1).
    pub fn is_count(&self) -> bool {
        matches!(
            self,
            Metric::Engagement(_) | Metric::Conversion(_) | Metric::ContentPublished
        )
    }

    /// The value of a closed window that trend and anomaly follow: the count
    /// for counts, the total for money (revenue, cost), the mean for other
    /// measurements (dwell time, scores).
    pub fn tracked_value(&self, row: &Rollup) -> f64 {
        match self {
            _ if self.is_count() => row.count as f64,
            Metric::Revenue | Metric::Cost => row.sum,
            _ => row.avg,
        }
    }

    /// The metric's name as stored in the `metric` column.
    pub fn name(&self) -> Cow<'static, str> {
        match self {
            Metric::Engagement(kind) => Cow::Borrowed(match kind {
                EngagementKind::Impression => "engagement.impression",
                EngagementKind::View => "engagement.view",
                EngagementKind::Click => "engagement.click",
                EngagementKind::Like => "engagement.like",
                EngagementKind::Share => "engagement.share",
                EngagementKind::Comment => "engagement.comment",
            }),
            Metric::DwellMs => Cow::Borrowed("engagement.dwell_ms"),
            Metric::Conversion(kind) => Cow::Owned(format!("conversion.{kind}")),
            Metric::Revenue => Cow::Borrowed("conversion.revenue"),
            Metric::Cost => Cow::Borrowed("conversion.cost"),
            Metric::ContentPublished => Cow::Borrowed("content.published"),
            Metric::Sentiment => Cow::Borrowed("content.sentiment"),
            Metric::SeoScore => Cow::Borrowed("content.seo_score"),
        }
    }
}

impl std::str::FromStr for Metric {
    type Err = UnknownMetric;

    /// The metric stored as `name` (the inverse of [`Metric::name`]).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownMetric(name.to_owned());
        Ok(match name {
            "engagement.dwell_ms" => Metric::DwellMs,
            "conversion.revenue" => Metric::Revenue,
            "conversion.cost" => Metric::Cost,
            "content.published" => Metric::ContentPublished,
            "content.sentiment" => Metric::Sentiment,
            "content.seo_score" => Metric::SeoScore,
            _ => {
                if let Some(kind) = name.strip_prefix("engagement.") {
                    let kind = EngagementKind::ALL
                        .into_iter()
                        .find(|k| k.as_str() == kind)
                        .ok_or_else(unknown)?;
                    Metric::Engagement(kind)
                } else if let Some(kind) = name.strip_prefix("conversion.") {
                    if kind.is_empty() {
                        return Err(unknown());
                    }
                    Metric::Conversion(kind.into())
                } else {
                    return Err(unknown());
                }
            }
        })
    }
}

/// A metric name no [`Metric`] has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric {0:?}")]
pub struct UnknownMetric(pub String);

/// The dimensions every rollup is grouped by. Missing optional dimensions
/// (a conversion without content or channel) are empty strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Dimensions {
    /// Campaign.
    pub campaign_id: String,
    /// Content item, or empty.
    pub content_id: String,
    /// Channel, or empty.
    pub channel: String,
}

impl Dimensions {
    /// The dimensions of an event (an owned [`DimensionsRef::of`]).
    pub fn of(event: &Event) -> Self {
        DimensionsRef::of(event).to_owned()
    }

    /// Borrowed.
    pub fn as_ref(&self) -> DimensionsRef<'_> {
        DimensionsRef {
            campaign_id: &self.campaign_id,
            content_id: &self.content_id,
            channel: &self.channel,
        }
    }
}

/// [`Dimensions`] borrowed from an event, to find a series without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimensionsRef<'a> {
    /// Campaign.
    pub campaign_id: &'a str,
    /// Content item, or empty.
    pub content_id: &'a str,
    /// Channel, or empty.
    pub channel: &'a str,
}

impl<'a> DimensionsRef<'a> {
    /// The dimensions of an event, borrowed.
    pub fn of(event: &'a Event) -> Self {
        match event {
            Event::Content(e) => DimensionsRef {
                campaign_id: &e.campaign_id,
                content_id: &e.content_id,
                channel: &e.channel,
            },
            Event::Engagement(e) => DimensionsRef {
                campaign_id: &e.campaign_id,
                content_id: &e.content_id,
                channel: &e.channel,
            },
            Event::Conversion(e) => DimensionsRef {
                campaign_id: &e.campaign_id,
                content_id: e.content_id.as_deref().unwrap_or_default(),
                channel: e.channel.as_deref().unwrap_or_default(),
            },
        }
    }

    /// An owned copy.
    pub fn to_owned(self) -> Dimensions {
        Dimensions {
            campaign_id: self.campaign_id.to_owned(),
            content_id: self.content_id.to_owned(),
            channel: self.channel.to_owned(),
        }
    }
}

/// One value of one metric.
pub type Observation = (Metric, f64);

/// The observations an event contributes (one to three).
pub fn observations(event: &Event) -> impl Iterator<Item = Observation> {
    let [a, b, c]: [Option<Observation>; 3] = match event {
        Event::Content(e) => [
            Some((Metric::ContentPublished, 1.0)),
            e.sentiment.map(|v| (Metric::Sentiment, v)),
            e.seo_score.map(|v| (Metric::SeoScore, v)),
        ],
        Event::Engagement(e) => [
            Some((Metric::Engagement(e.kind), 1.0)),
            e.dwell_ms.map(|v| (Metric::DwellMs, v as f64)),
            None,
        ],
        Event::Conversion(e) => [
            Some((Metric::Conversion(e.kind.as_str().into()), 1.0)),
            e.revenue.map(|v| (Metric::Revenue, v)),
            e.cost.map(|v| (Metric::Cost, v)),
        ],
    };
    [a, b, c].into_iter().flatten()
}

/// The result for one series and one closed window: a row of
/// `reactor.rollups` without its version, which the sink stamps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rollup {
    /// Metric name ([`Metric::name`]: static but for conversion kinds).
    pub metric: Cow<'static, str>,
    /// Dimensions.
    pub dimensions: Dimensions,
    /// Window start (inclusive).
    pub window_start: EventTime,
    /// Window end (exclusive).
    pub window_end: EventTime,
    /// Observations.
    pub count: u64,
    /// Exact sum, correctly rounded.
    pub sum: f64,
    /// Smallest observation.
    pub min: f64,
    /// Largest observation.
    pub max: f64,
    /// Mean.
    pub avg: f64,
    /// Median, where computed.
    pub p50: Option<f64>,
    /// 90th percentile, where computed.
    pub p90: Option<f64>,
    /// 95th percentile, where computed.
    pub p95: Option<f64>,
    /// 99th percentile, where computed.
    pub p99: Option<f64>,
    /// Slope over recent windows, where computed.
    pub trend_slope: Option<f64>,
    /// Anomaly score against the series' baseline, where computed.
    pub anomaly_score: Option<f64>,
    /// Input topic the events came from.
    pub source_topic: Arc<str>,
    /// Input partition the events came from.
    pub source_partition: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConversionEvent, EngagementEvent};

    #[test]
    fn an_engagement_counts_its_kind_and_measures_dwell() {
        let event = Event::Engagement(EngagementEvent {
            event_id: "e".into(),
            occurred_at: EventTime::from_millis(0),
            content_id: "x".into(),
            campaign_id: "c".into(),
            channel: "web".into(),
            user_id: "u".into(),
            kind: EngagementKind::Share,
            dwell_ms: Some(250),
        });
        let obs: Vec<_> = observations(&event).collect();
        assert_eq!(
            obs,
            vec![
                (Metric::Engagement(EngagementKind::Share), 1.0),
                (Metric::DwellMs, 250.0)
            ]
        );
        assert_eq!(obs[0].0.name(), "engagement.share");
    }

    #[test]
    fn a_conversion_without_content_or_channel_has_empty_dimensions() {
        let event = Event::Conversion(ConversionEvent {
            event_id: "e".into(),
            occurred_at: EventTime::from_millis(0),
            campaign_id: "c".into(),
            content_id: None,
            channel: None,
            user_id: "u".into(),
            kind: "signup".into(),
            revenue: None,
            cost: Some(2.5),
            currency: None,
        });
        let dims = Dimensions::of(&event);
        assert_eq!((dims.content_id.as_str(), dims.channel.as_str()), ("", ""));
        let names: Vec<_> = observations(&event)
            .map(|(m, v)| (m.name().into_owned(), v))
            .collect();
        assert_eq!(
            names,
            vec![
                ("conversion.signup".to_owned(), 1.0),
                ("conversion.cost".to_owned(), 2.5)
            ]
        );
    }

    #[test]
    fn every_metric_name_parses_back() {
        let mut metrics: Vec<Metric> = EngagementKind::ALL
            .into_iter()
            .map(Metric::Engagement)
            .collect();
        metrics.extend([
            Metric::DwellMs,
            Metric::Conversion("purchase".into()),
            Metric::Conversion("trial.started".into()),
            Metric::Revenue,
            Metric::Cost,
            Metric::ContentPublished,
            Metric::Sentiment,
            Metric::SeoScore,
        ]);
        for metric in metrics {
            assert_eq!(metric.name().parse::<Metric>(), Ok(metric));
        }
        for bad in ["", "engagement.dance", "conversion.", "weather.rain"] {
            assert_eq!(bad.parse::<Metric>(), Err(UnknownMetric(bad.into())));
        }
    }
}

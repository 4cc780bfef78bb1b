//! A seeded generator of realistic marketing events, for the demo, the
//! benchmarks and the tests. The same settings and seed always give the same
//! events, so a test can publish them and compute the expected rollups itself.
//!
//! Event time advances evenly from `start` over `span` across `count` events,
//! and each event is moved back by up to `disorder` (bounded out-of-order
//! arrival). Campaign popularity is skewed (campaign k is chosen with weight
//! 1/(k+1)); engagement follows a funnel (impressions ≫ views ≫ clicks).

pub mod publish;

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::event::{
    ContentEvent, ConversionEvent, EngagementEvent, EngagementKind, Event, EventTime,
};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorSettings {
    /// Seed; equal seeds give equal events.
    pub seed: u64,
    /// How many events.
    pub count: u64,
    /// Event time of the first event.
    pub start: EventTime,
    /// Event time covered by all events together.
    pub span: Duration,
    /// Largest backwards jitter of an event's time.
    pub disorder: Duration,
    /// Number of campaigns.
    pub campaigns: usize,
    /// Content items per campaign.
    pub contents_per_campaign: usize,
    /// Channel names.
    pub channels: Vec<String>,
    /// Relative weights of content, engagement and conversion events.
    pub mix: [u32; 3],
    /// A burst of clicks on one content, for the anomaly detector to find.
    pub incident: Option<Incident>,
}

/// A burst of clicks on campaign-000's first content on its first channel:
/// while it lasts, `share` of all events become clicks there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Incident {
    /// When it starts, as a fraction of the span (0 to 1).
    pub at: f64,
    /// How long it lasts (event time).
    pub duration: Duration,
    /// Share of the events in that time that are the burst's clicks.
    pub share: f64,
}

impl Incident {
    /// A 3-minute burst at 70 % of the span, 2 % of the traffic.
    pub const DEMO: Incident = Incident {
        at: 0.7,
        duration: Duration::from_secs(180),
        share: 0.02,
    };

    /// The dimensions it hits: campaign, content, channel.
    pub fn dimensions(channels: &[String]) -> (String, String, String) {
        (
            "campaign-000".into(),
            "content-000-000".into(),
            channels.first().cloned().unwrap_or_else(|| "web".into()),
        )
    }
}

impl Default for GeneratorSettings {
    fn default() -> Self {
        GeneratorSettings {
            seed: 1,
            count: 10_000,
            start: EventTime::from_millis(1_767_225_600_000), // 2026-01-01T00:00:00Z
            span: Duration::from_secs(600),
            disorder: Duration::from_secs(5),
            campaigns: 10,
            contents_per_campaign: 20,
            channels: ["web", "email", "social", "search", "display"]
                .map(String::from)
                .to_vec(),
            mix: [1, 50, 3],
            incident: None,
        }
    }
}

/// Iterator over generated events.
#[derive(Debug, Clone)]
pub struct EventGenerator {
    settings: GeneratorSettings,
    rng: ChaCha8Rng,
    index: u64,
    campaign_weights: Vec<f64>,
}

const ENGAGEMENT_FUNNEL: [(EngagementKind, u32); 6] = [
    (EngagementKind::Impression, 600),
    (EngagementKind::View, 200),
    (EngagementKind::Click, 100),
    (EngagementKind::Like, 50),
    (EngagementKind::Share, 20),
    (EngagementKind::Comment, 30),
];
const CONVERSIONS: [(&str, u32); 3] = [("signup", 60), ("purchase", 35), ("subscribe", 5)];
const CONTENT_TYPES: [&str; 4] = ["article", "video", "newsletter", "post"];

impl EventGenerator {
    /// A generator for `settings`.
    pub fn new(settings: GeneratorSettings) -> Self {
        let total: f64 = (0..settings.campaigns.max(1))
            .map(|k| 1.0 / (k as f64 + 1.0))
            .sum();
        let campaign_weights = (0..settings.campaigns.max(1))
            .scan(0.0, |acc, k| {
                *acc += 1.0 / (k as f64 + 1.0) / total;
                Some(*acc)
            })
            .collect();
        EventGenerator {
            rng: ChaCha8Rng::seed_from_u64(settings.seed),
            settings,
            index: 0,
            campaign_weights,
        }
    }

    fn pick<T: Copy>(&mut self, weighted: &[(T, u32)]) -> T {
        let total: u32 = weighted.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total.max(1));
        for (item, weight) in weighted {
            if roll < *weight {
                return *item;
            }
            roll -= weight;
        }
        weighted[0].0
    }

    /// A log-normal sample, `exp(N(mu, sigma))`.
    fn log_normal(&mut self, mu: f64, sigma: f64) -> f64 {
        let (u1, u2): (f64, f64) = (self.rng.random_range(f64::EPSILON..1.0), self.rng.random());
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (mu + sigma * normal).exp()
    }

    fn round(value: f64, decimals: i32) -> f64 {
        let scale = 10f64.powi(decimals);
        (value * scale).round() / scale
    }
}

impl Iterator for EventGenerator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let s = &self.settings;
        if self.index >= s.count {
            return None;
        }
        let i = self.index;
        self.index += 1;
        let span_ms = s.span.as_millis() as f64;
        let base = s.start.as_millis() + (span_ms * i as f64 / s.count.max(1) as f64) as i64;
        let disorder_ms = i64::try_from(s.disorder.as_millis()).unwrap_or(0);
        let jitter = if disorder_ms > 0 {
            self.rng.random_range(0..=disorder_ms)
        } else {
            0
        };
        let occurred_at = EventTime::from_millis(base - jitter);
        if let Some(incident) = s.incident {
            let from = s.start.as_millis() + (incident.at * span_ms) as i64;
            let to = from + i64::try_from(incident.duration.as_millis()).unwrap_or(0);
            if (from..to).contains(&occurred_at.as_millis())
                && self.rng.random_bool(incident.share.clamp(0.0, 1.0))
            {
                let (campaign_id, content_id, channel) = Incident::dimensions(&s.channels);
                return Some(Event::Engagement(EngagementEvent {
                    event_id: format!("{:016x}-{i}", s.seed),
                    occurred_at,
                    content_id,
                    campaign_id,
                    channel,
                    user_id: format!("user-{}", self.rng.random_range(0..100_000)),
                    kind: EngagementKind::Click,
                    dwell_ms: Some(self.log_normal(8.0, 1.0).round() as i64),
                }));
            }
        }
        let roll: f64 = self.rng.random();
        let campaign = self
            .campaign_weights
            .iter()
            .position(|&c| roll < c)
            .unwrap_or(0);
        let content = self.rng.random_range(0..s.contents_per_campaign.max(1));
        let channel = s.channels[self
            .rng
            .random_range(0..s.channels.len().max(1))
            .min(s.channels.len().saturating_sub(1))]
        .clone();
        let campaign_id = format!("campaign-{campaign:03}");
        let content_id = format!("content-{campaign:03}-{content:03}");
        let event_id = format!("{:016x}-{i}", self.settings.seed);
        let user_id = format!("user-{}", self.rng.random_range(0..100_000));
        let kind = self.pick(&[(0u8, s.mix[0]), (1, s.mix[1]), (2, s.mix[2])]);
        Some(match kind {
            0 => Event::Content(ContentEvent {
                event_id,
                occurred_at,
                content_id,
                campaign_id,
                channel,
                content_type: CONTENT_TYPES[self.rng.random_range(0..CONTENT_TYPES.len())].into(),
                sentiment: Some(Self::round(self.rng.random_range(-1.0..1.0), 3)),
                seo_score: self
                    .rng
                    .random_bool(0.7)
                    .then(|| Self::round(self.rng.random_range(0.0..100.0), 1)),
            }),
            1 => {
                let kind = self.pick(&ENGAGEMENT_FUNNEL);
                let dwell_ms = match kind {
                    EngagementKind::View | EngagementKind::Click => {
                        Some(self.log_normal(8.0, 1.0).round() as i64)
                    }
                    _ => None,
                };
                Event::Engagement(EngagementEvent {
                    event_id,
                    occurred_at,
                    content_id,
                    campaign_id,
                    channel,
                    user_id,
                    kind,
                    dwell_ms,
                })
            }
            _ => {
                let kind = self.pick(&CONVERSIONS);
                let revenue =
                    (kind == "purchase").then(|| Self::round(self.log_normal(3.5, 0.8), 2));
                let cost = self
                    .rng
                    .random_bool(0.3)
                    .then(|| Self::round(self.rng.random_range(0.1..20.0), 2));
                Event::Conversion(ConversionEvent {
                    event_id,
                    occurred_at,
                    campaign_id,
                    content_id: self.rng.random_bool(0.8).then_some(content_id),
                    channel: self.rng.random_bool(0.9).then_some(channel),
                    user_id,
                    kind: kind.into(),
                    revenue,
                    cost,
                    currency: Some("USD".into()),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_bounded_and_valid() {
        let settings = GeneratorSettings {
            count: 2_000,
            ..GeneratorSettings::default()
        };
        let a: Vec<Event> = EventGenerator::new(settings.clone()).collect();
        let b: Vec<Event> = EventGenerator::new(settings.clone()).collect();
        assert_eq!(a.len(), 2_000);
        assert_eq!(a, b);
        let end = settings.start.as_millis() + settings.span.as_millis() as i64;
        let lowest = settings.start.as_millis() - settings.disorder.as_millis() as i64;
        for event in &a {
            let t = event.occurred_at().as_millis();
            assert!((lowest..end).contains(&t));
            // Every generated event passes Reactor's own validation.
            let json = crate::event::encode::to_json(event).unwrap();
            crate::event::decode::Decoder::new(event.topic_kind(), false, Default::default())
                .unwrap()
                .decode(Some(&json))
                .unwrap();
        }
        let kinds = |k| a.iter().filter(|e| e.topic_kind() == k).count();
        use crate::event::TopicKind::*;
        assert!(
            kinds(Engagement) > kinds(Conversion) && kinds(Conversion) > 0 && kinds(Content) > 0
        );
    }
}

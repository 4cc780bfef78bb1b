//! Domain events as producers publish them, independent of wire format, and
//! the [`Record`] a partition hands to the pipeline. Pure: no I/O.
//!
//! The same structs are read from JSON and from Avro (through serde), so the
//! two formats cannot drift apart; [`decode`] picks the format per message
//! ([`framing`]) and checks what the schemas cannot ([`validate`]).

pub mod decode;
pub mod encode;
pub mod framing;
mod time;
pub mod validate;

use serde::{Deserialize, Serialize};

pub use time::EventTime;

/// Which input topic a partition belongs to, and so which event it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicKind {
    /// Content published (posts, videos, emails...).
    Content,
    /// Users engaging with content.
    Engagement,
    /// Users converting (signups, purchases...).
    Conversion,
}

impl TopicKind {
    /// All kinds, in a fixed order.
    pub const ALL: [TopicKind; 3] = [
        TopicKind::Content,
        TopicKind::Engagement,
        TopicKind::Conversion,
    ];

    /// The lower-case name used in metric names, schema file names and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicKind::Content => "content",
            TopicKind::Engagement => "engagement",
            TopicKind::Conversion => "conversion",
        }
    }
}

/// One Kafka message as the pipeline sees it: no broker types, owned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset within its partition.
    pub offset: i64,
    /// Message key, if any.
    pub key: Option<Vec<u8>>,
    /// Message value, if any.
    pub payload: Option<Vec<u8>>,
}

/// A piece of content was published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentEvent {
    /// Producer-assigned unique id.
    pub event_id: String,
    /// When it happened (event time).
    pub occurred_at: EventTime,
    /// The content item.
    pub content_id: String,
    /// The campaign it belongs to.
    pub campaign_id: String,
    /// Where it was published (web, email, social...).
    pub channel: String,
    /// What it is (article, video...).
    pub content_type: String,
    /// Sentiment score, typically -1..1.
    #[serde(default)]
    pub sentiment: Option<f64>,
    /// SEO score, typically 0..100.
    #[serde(default)]
    pub seo_score: Option<f64>,
}

/// A user engaged with a piece of content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngagementEvent {
    /// Producer-assigned unique id.
    pub event_id: String,
    /// When it happened (event time).
    pub occurred_at: EventTime,
    /// The content engaged with.
    pub content_id: String,
    /// Its campaign.
    pub campaign_id: String,
    /// The channel it happened on.
    pub channel: String,
    /// The (pseudonymous) user.
    pub user_id: String,
    /// What the user did.
    pub kind: EngagementKind,
    /// Time spent, in milliseconds, when measured.
    #[serde(default)]
    pub dwell_ms: Option<i64>,
}

/// The kinds of engagement, in funnel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngagementKind {
    /// Shown to the user.
    Impression,
    /// Viewed or opened.
    View,
    /// Clicked through.
    Click,
    /// Liked.
    Like,
    /// Shared.
    Share,
    /// Commented on.
    Comment,
}

impl EngagementKind {
    /// All kinds.
    pub const ALL: [EngagementKind; 6] = [
        EngagementKind::Impression,
        EngagementKind::View,
        EngagementKind::Click,
        EngagementKind::Like,
        EngagementKind::Share,
        EngagementKind::Comment,
    ];

    /// Lower-case name as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EngagementKind::Impression => "impression",
            EngagementKind::View => "view",
            EngagementKind::Click => "click",
            EngagementKind::Like => "like",
            EngagementKind::Share => "share",
            EngagementKind::Comment => "comment",
        }
    }
}

/// A user converted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversionEvent {
    /// Producer-assigned unique id.
    pub event_id: String,
    /// When it happened (event time).
    pub occurred_at: EventTime,
    /// The campaign credited.
    pub campaign_id: String,
    /// The content credited, when known.
    #[serde(default)]
    pub content_id: Option<String>,
    /// The channel credited, when known.
    #[serde(default)]
    pub channel: Option<String>,
    /// The (pseudonymous) user.
    pub user_id: String,
    /// What kind of conversion: `signup`, `purchase`, ... (lower-case
    /// letters, digits and `_`, at most 32 characters).
    pub kind: String,
    /// Revenue attributed, in the reporting currency.
    #[serde(default)]
    pub revenue: Option<f64>,
    /// Cost attributed, in the reporting currency.
    #[serde(default)]
    pub cost: Option<f64>,
    /// ISO 4217 currency code of revenue and cost.
    #[serde(default)]
    pub currency: Option<String>,
}

/// Any input event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// From the content topic.
    Content(ContentEvent),
    /// From the engagement topic.
    Engagement(EngagementEvent),
    /// From the conversion topic.
    Conversion(ConversionEvent),
}

impl ConversionEvent {
    /// Conversion kinds that would collide with a measured metric's name
    /// (`conversion.revenue`, `conversion.cost`).
    pub const RESERVED_KINDS: [&'static str; 2] = ["revenue", "cost"];

    /// Whether `kind` is a conversion kind events may carry: 1 - 32
    /// lower-case letters, digits or `_`, starting with a letter (reserved
    /// kinds included; [`Self::RESERVED_KINDS`] are refused separately).
    pub fn is_valid_kind(kind: &str) -> bool {
        !kind.is_empty()
            && kind.len() <= 32
            && kind.starts_with(|c: char| c.is_ascii_lowercase())
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }
}

impl Event {
    /// An empty event of a kind, to decode into.
    pub fn blank(kind: TopicKind) -> Event {
        match kind {
            TopicKind::Content => Event::Content(ContentEvent {
                event_id: String::new(),
                occurred_at: EventTime::default(),
                content_id: String::new(),
                campaign_id: String::new(),
                channel: String::new(),
                content_type: String::new(),
                sentiment: None,
                seo_score: None,
            }),
            TopicKind::Engagement => Event::Engagement(EngagementEvent {
                event_id: String::new(),
                occurred_at: EventTime::default(),
                content_id: String::new(),
                campaign_id: String::new(),
                channel: String::new(),
                user_id: String::new(),
                kind: EngagementKind::Impression,
                dwell_ms: None,
            }),
            TopicKind::Conversion => Event::Conversion(ConversionEvent {
                event_id: String::new(),
                occurred_at: EventTime::default(),
                campaign_id: String::new(),
                content_id: None,
                channel: None,
                user_id: String::new(),
                kind: String::new(),
                revenue: None,
                cost: None,
                currency: None,
            }),
        }
    }

    /// The event's time.
    pub fn occurred_at(&self) -> EventTime {
        match self {
            Event::Content(e) => e.occurred_at,
            Event::Engagement(e) => e.occurred_at,
            Event::Conversion(e) => e.occurred_at,
        }
    }

    /// The campaign, which producers use as the message key.
    pub fn campaign_id(&self) -> &str {
        match self {
            Event::Content(e) => &e.campaign_id,
            Event::Engagement(e) => &e.campaign_id,
            Event::Conversion(e) => &e.campaign_id,
        }
    }

    /// Which topic this kind of event belongs on.
    pub fn topic_kind(&self) -> TopicKind {
        match self {
            Event::Content(_) => TopicKind::Content,
            Event::Engagement(_) => TopicKind::Engagement,
            Event::Conversion(_) => TopicKind::Conversion,
        }
    }
}

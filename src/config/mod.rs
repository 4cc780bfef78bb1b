//! The configuration tree. It mirrors `config/default.toml` section by
//! section; every field is documented there too. Loading and validation live
//! in [`load`].

mod load;
mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

pub use load::{load, validate, ConfigError, DEFAULT_TOML};
pub use secret::Secret;

/// Everything Reactor reads from configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Brokers and consumer-group settings.
    pub kafka: KafkaConfig,
    /// Topic names.
    pub topics: TopicsConfig,
    /// Schema registry for Avro input.
    pub schema_registry: SchemaRegistryConfig,
    /// Event-time windowing.
    pub windows: WindowConfig,
    /// Trend (slope over recent windows).
    pub trend: TrendConfig,
    /// Anomaly scoring.
    pub anomaly: AnomalyConfig,
    /// Cross-window state per series.
    pub history: HistoryConfig,
    /// Derived events published to Kafka.
    pub derived: DerivedConfig,
    /// Partition actors, checkpoints, draining.
    pub pipeline: PipelineConfig,
    /// Where rollups and checkpoints are written.
    pub clickhouse: ClickHouseConfig,
    /// The HTTP server.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
}

/// `[kafka]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Consumer group shared by all replicas.
    pub group_id: String,
    /// Where a partition without any checkpoint or committed offset starts.
    pub start_from: StartFrom,
    /// Consumer session timeout.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Most messages per batch handed to a partition actor.
    pub batch_max_messages: usize,
    /// TLS to the brokers.
    pub tls: KafkaTlsConfig,
    /// SASL authentication to the brokers.
    pub sasl: KafkaSaslConfig,
    /// Extra librdkafka properties, passed through as-is.
    #[serde(default)]
    pub properties: KafkaProperties,
}

/// `[kafka.tls]`. File paths are empty when unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTlsConfig {
    /// Connect to the brokers over TLS.
    pub enabled: bool,
    /// PEM file of the CA certificates to trust; empty means the system's.
    pub ca_file: String,
    /// PEM client certificate, for brokers that authenticate clients by
    /// certificate (mutual TLS).
    pub cert_file: String,
    /// PEM private key of `cert_file`.
    pub key_file: String,
    /// Password of `key_file`, if it is encrypted.
    pub key_password: Secret,
    /// File holding `key_password`.
    pub key_password_file: String,
}

/// `[kafka.sasl]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSaslConfig {
    /// SASL mechanism; `None` (empty in TOML) means no SASL.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password; never logged.
    pub password: Secret,
    /// File holding `password`.
    pub password_file: String,
}

/// A SASL mechanism librdkafka implements without extra libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// No SASL.
    #[serde(rename = "")]
    None,
    /// User name and password in clear (use it with TLS).
    #[serde(rename = "PLAIN", alias = "plain")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[serde(rename = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name for it (`sasl.mechanisms`); `None` for no SASL.
    pub fn as_librdkafka(self) -> Option<&'static str> {
        match self {
            SaslMechanism::None => None,
            SaslMechanism::Plain => Some("PLAIN"),
            SaslMechanism::ScramSha256 => Some("SCRAM-SHA-256"),
            SaslMechanism::ScramSha512 => Some("SCRAM-SHA-512"),
        }
    }
}

/// Pass-through librdkafka properties. `Debug` masks the values of keys that
/// hold credentials (passwords, keys, tokens), so `check-config --print` and
/// logs never show them.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct KafkaProperties(pub BTreeMap<String, String>);

impl KafkaProperties {
    /// Whether librdkafka treats `key` as a credential.
    pub fn is_sensitive(key: &str) -> bool {
        ["password", "secret", "pem", "token", "oauthbearer.config"]
            .iter()
            .any(|needle| key.contains(needle))
    }

    /// The properties, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if Self::is_sensitive(k) { "***" } else { v };
                (k, shown)
            }))
            .finish()
    }
}

/// Where a partition starts when nothing says where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The oldest retained message.
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

/// `[topics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Content events (input).
    pub content: String,
    /// Engagement events (input).
    pub engagement: String,
    /// Conversion events (input).
    pub conversion: String,
    /// Closed-window rollups (output).
    pub rollups: String,
    /// Anomaly events (output).
    pub anomalies: String,
    /// Trend-change events (output).
    pub trends: String,
    /// Late events, with `windows.late_policy = "side-topic"` (output).
    pub late: String,
    /// Dead-lettered input (output).
    pub dead_letter: String,
}

/// `[schema_registry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL; empty means no registry.
    pub url: String,
    /// Timeout of one request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// User name for HTTP basic authentication; empty means none.
    pub username: String,
    /// Password for basic authentication; never logged.
    pub password: Secret,
    /// File holding `password`.
    pub password_file: String,
    /// TLS, for `https://` URLs.
    pub tls: HttpTlsConfig,
}

/// `[*.tls]` of an HTTP client (ClickHouse, the schema registry): used when
/// the URL is `https://`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTlsConfig {
    /// PEM file of extra CA certificates to trust besides the system's;
    /// empty means the system's only.
    pub ca_file: String,
}

/// `[windows]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Window length (whole seconds).
    #[serde(with = "humantime_serde")]
    pub size: Duration,
    /// Distance between window starts; absent means `size` (tumbling).
    #[serde(default, with = "humantime_serde")]
    pub slide: Option<Duration>,
    /// How far behind the partition's newest event an event may still count.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// Wall-clock silence after which a partition closes its open windows.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Events further than this ahead of the watermark are dead-lettered.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// What happens to late events.
    pub late_policy: crate::pipeline::LatePolicy,
    /// Window size and slide for content metrics, if not the default.
    #[serde(default)]
    pub content: Option<FamilyWindowConfig>,
    /// Window size and slide for engagement metrics, if not the default.
    #[serde(default)]
    pub engagement: Option<FamilyWindowConfig>,
    /// Window size and slide for conversion metrics, if not the default.
    #[serde(default)]
    pub conversion: Option<FamilyWindowConfig>,
}

/// `[windows.<family>]`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyWindowConfig {
    /// Window length (whole seconds).
    #[serde(with = "humantime_serde")]
    pub size: Duration,
    /// Distance between window starts; absent means `size` (tumbling).
    #[serde(default, with = "humantime_serde")]
    pub slide: Option<Duration>,
}

impl WindowConfig {
    /// The window size and slide of a metric family (input topic kind).
    pub fn spec(&self, kind: crate::event::TopicKind) -> crate::window::WindowSpec {
        use crate::event::TopicKind;
        let family = match kind {
            TopicKind::Content => self.content,
            TopicKind::Engagement => self.engagement,
            TopicKind::Conversion => self.conversion,
        };
        let (size, slide) = family.map_or((self.size, self.slide), |f| (f.size, f.slide));
        crate::window::WindowSpec {
            size,
            slide: slide.unwrap_or(size),
        }
    }
}

/// `[trend]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendConfig {
    /// Closed windows the slope is fitted over.
    pub windows: usize,
    /// Slope magnitude whose crossing publishes a trend event.
    pub threshold: f64,
}

/// `[anomaly]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// EWMA weight of the newest window.
    pub alpha: f64,
    /// Windows before a series is scored.
    pub warm_up: u32,
    /// |score| that makes a window an anomaly.
    pub threshold: f64,
}

/// `[history]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// A series not seen for this long (event time) loses its trend and
    /// baseline.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

/// `[derived]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedConfig {
    /// Encoding of derived events.
    pub format: DerivedFormat,
}

/// Encoding of derived events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DerivedFormat {
    /// JSON objects.
    Json,
    /// Confluent-framed Avro, schemas registered in the schema registry.
    Avro,
}

impl Config {
    /// Pipeline settings for partitions of `kind`.
    pub fn pipeline_settings(
        &self,
        kind: crate::event::TopicKind,
    ) -> crate::pipeline::PipelineSettings {
        use crate::aggregate::{AnomalySettings, HistorySettings, TrendSettings};
        crate::pipeline::PipelineSettings {
            windows: crate::pipeline::WindowSettings {
                spec: self.windows.spec(kind),
                allowed_lateness: self.windows.allowed_lateness,
                idle_timeout: self.windows.idle_timeout,
                max_future_skew: self.windows.max_future_skew,
                late_policy: self.windows.late_policy,
            },
            history: HistorySettings {
                trend: TrendSettings {
                    windows: self.trend.windows,
                    threshold: self.trend.threshold,
                },
                anomaly: AnomalySettings {
                    alpha: self.anomaly.alpha,
                    warm_up: self.anomaly.warm_up,
                    threshold: self.anomaly.threshold,
                },
            },
            history_retention: self.history.retention,
        }
    }
}

/// `[pipeline]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Worker threads for partition actors; 0 = one per core.
    pub workers: usize,
    /// How often checkpoints are written and offsets committed.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Longest wait for in-flight writes when a partition stops.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Silence after which /readyz reports a partition actor as stuck.
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
}

/// `[clickhouse]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP(S) endpoint.
    pub url: String,
    /// Database holding `rollups` and `checkpoints`.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password; never logged.
    pub password: Secret,
    /// File holding `password`.
    pub password_file: String,
    /// TLS, for `https://` URLs.
    pub tls: HttpTlsConfig,
    /// Create missing database and tables at start.
    pub create_schema: bool,
    /// Most rows per INSERT.
    pub batch_max_rows: usize,
    /// Longest time a row waits before its INSERT starts.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Timeout of one request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address, `ip:port`; port 0 picks a free port.
    pub listen: SocketAddr,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `EnvFilter` directives.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// The input topics with the kind of event each carries.
    pub fn input_topics(&self) -> [(crate::event::TopicKind, &str); 3] {
        use crate::event::TopicKind;
        [
            (TopicKind::Content, self.topics.content.as_str()),
            (TopicKind::Engagement, self.topics.engagement.as_str()),
            (TopicKind::Conversion, self.topics.conversion.as_str()),
        ]
    }

    /// The number of partition-actor worker threads to start.
    pub fn worker_threads(&self) -> usize {
        match self.pipeline.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

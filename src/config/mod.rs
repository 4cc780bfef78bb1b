//! The configuration tree. It mirrors `config/default.toml` section by
//! section, one file per group of sections, each with its own
//! `validate(&self, &mut Problems)` next to its fields; every field is
//! documented there too. Loading lives in [`load()`]. Configuration is a
//! leaf: it knows the event kinds and the late policy, nothing above them.

mod analytics;
mod kafka;
mod load;
mod problems;
mod registry;
mod secret;
mod service;
mod topics;
mod windows;

use serde::Deserialize;

pub use analytics::{
    AnomalyConfig, DerivedConfig, DerivedFormat, HistoryConfig, LimitsConfig, TrendConfig,
};
pub use kafka::{
    Assignment, KafkaConfig, KafkaProperties, KafkaSaslConfig, KafkaTlsConfig, SaslMechanism,
    StartFrom,
};
pub use load::{load, ConfigError, DEFAULT_TOML};
pub use problems::Problems;
pub use registry::{HttpTlsConfig, SchemaRegistryConfig};
pub use secret::Secret;
pub use service::{ClickHouseConfig, HttpConfig, LogConfig, LogFormat, PipelineConfig};
pub use topics::TopicsConfig;
pub use windows::{FamilyWindowConfig, WindowConfig};

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
    /// Bounds on input, and when loss is loud.
    pub limits: LimitsConfig,
    /// Partition actors, checkpoints, draining.
    pub pipeline: PipelineConfig,
    /// Where rollups and checkpoints are written.
    pub clickhouse: ClickHouseConfig,
    /// The HTTP server.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Config {
    /// Checks values that parse but cannot work, every section and the
    /// settings that depend on each other. Pure: no I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        self.check(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// [`Self::validate`], adding to `problems`.
    pub(super) fn check(&self, problems: &mut Problems) {
        self.kafka.validate(problems);
        self.topics.validate(problems);
        self.schema_registry.validate(problems);
        self.windows.validate(problems);
        self.trend.validate(problems);
        self.anomaly.validate(problems);
        self.derived.validate(problems);
        self.limits.validate(problems);
        self.pipeline.validate(problems);
        self.clickhouse.validate(problems);
        if self.history.retention < self.windows.size {
            problems.push("history.retention", "must be at least windows.size");
        }
        if self.derived.format == DerivedFormat::Avro && self.schema_registry.url.is_empty() {
            problems.push(
                "derived.format",
                "\"avro\" needs schema_registry.url to register the derived-event schemas; set it, or use \"json\"",
            );
        }
    }
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

    /// The kind of event each input topic carries, by topic name (how the
    /// supervisor knows what a newly assigned partition decodes).
    pub fn topic_kinds(&self) -> std::collections::HashMap<String, crate::event::TopicKind> {
        self.input_topics()
            .iter()
            .map(|(kind, name)| ((*name).to_owned(), *kind))
            .collect()
    }

    /// The number of partition-actor worker threads to start.
    pub fn worker_threads(&self) -> usize {
        match self.pipeline.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests;

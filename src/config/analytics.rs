//! `[trend]`, `[anomaly]`, `[history]` and `[derived]`: what is computed
//! across windows and published about it.

use std::time::Duration;

use serde::Deserialize;

use super::Problems;

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
    /// Score (`-log10 p`) at or above which a window is an anomaly.
    pub threshold: f64,
    /// Windows after an anomaly during which no new one is raised, unless
    /// it escalates.
    pub quiet_windows: u32,
    /// Within the quiet period, a window whose |score| is at least this
    /// multiple of the last anomaly's raises another; 0: never.
    pub escalation: f64,
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
    /// Whether rollup rows are also published to `topics.rollups`.
    pub rollup_events: bool,
    /// The metrics whose rows are published there; empty: every metric.
    /// Names as stored (`engagement.click`) or sections (`conversion.*`),
    /// checked when the sink starts and by `check-config`.
    pub rollup_metrics: Vec<String>,
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

impl DerivedConfig {
    /// Checks `[derived]` (the metric names themselves are checked against
    /// the metrics Reactor has, above this leaf, when the sink starts and
    /// by `check-config`).
    pub(super) fn validate(&self, problems: &mut Problems) {
        if !self.rollup_events && !self.rollup_metrics.is_empty() {
            problems.push(
                "derived.rollup_metrics",
                "names metrics, but derived.rollup_events = false publishes none; set rollup_events = true, or leave rollup_metrics empty",
            );
        }
    }
}

impl TrendConfig {
    /// Checks `[trend]`.
    pub(super) fn validate(&self, problems: &mut Problems) {
        if !(2..=1000).contains(&self.windows) {
            problems.push(
                "trend.windows",
                format_args!("{} must be between 2 and 1000", self.windows),
            );
        }
        problems.positive("trend.threshold", self.threshold);
    }
}

impl AnomalyConfig {
    /// Checks `[anomaly]`.
    pub(super) fn validate(&self, problems: &mut Problems) {
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            problems.push(
                "anomaly.alpha",
                format_args!("{} must be in (0, 1]", self.alpha),
            );
        }
        if self.warm_up == 0 {
            problems.push("anomaly.warm_up", "must be at least 1");
        }
        if self.quiet_windows > 100_000 {
            problems.push(
                "anomaly.quiet_windows",
                format_args!("{} must be at most 100000", self.quiet_windows),
            );
        }
        problems.positive("anomaly.threshold", self.threshold);
        if !(self.escalation == 0.0 || (self.escalation > 1.0 && self.escalation <= 1_000.0)) {
            problems.push(
                "anomaly.escalation",
                format_args!(
                    "{} must be 0 (no escalations) or in (1, 1000]: a multiple of the last anomaly's score",
                    self.escalation
                ),
            );
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longest campaign, content or channel id, in bytes.
    pub max_dimension_bytes: usize,
    /// Largest magnitude of a measured value.
    pub max_abs_value: f64,
    /// Most (campaign, content, channel) keys one partition tracks at once.
    pub max_keys_per_partition: usize,
    /// Share of a partition's input that, once late or dead-lettered over a
    /// minute, is logged as a warning.
    pub warn_rejected_share: f64,
}

impl LimitsConfig {
    /// Checks `[limits]`.
    pub(super) fn validate(&self, problems: &mut Problems) {
        if !(1..=65_536).contains(&self.max_dimension_bytes) {
            problems.push(
                "limits.max_dimension_bytes",
                format_args!("{} must be between 1 and 65536", self.max_dimension_bytes),
            );
        }
        problems.positive("limits.max_abs_value", self.max_abs_value);
        if !(1..=1_000_000).contains(&self.max_keys_per_partition) {
            problems.push(
                "limits.max_keys_per_partition",
                format_args!(
                    "{} must be between 1 and 1000000 (a partition's state is written in one block of at most a million rows)",
                    self.max_keys_per_partition
                ),
            );
        }
        if !(self.warn_rejected_share > 0.0 && self.warn_rejected_share <= 1.0) {
            problems.push(
                "limits.warn_rejected_share",
                format_args!("{} must be in (0, 1]", self.warn_rejected_share),
            );
        }
    }
}

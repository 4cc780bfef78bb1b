//! `[pipeline]`, `[clickhouse]`, `[http]` and `[log]`: how the service runs
//! its partitions, where it writes, and how it is observed.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::problems::is_http_url;
use super::registry::HttpTlsConfig;
use super::{Problems, Secret};

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

impl PipelineConfig {
    /// Checks `[pipeline]`.
    pub(super) fn validate(&self, problems: &mut Problems) {
        problems.at_least(
            "pipeline.checkpoint_interval",
            self.checkpoint_interval,
            Duration::from_millis(100),
        );
        if self.stall_timeout < self.checkpoint_interval {
            problems.push(
                "pipeline.stall_timeout",
                "must be at least pipeline.checkpoint_interval",
            );
        }
    }
}

impl ClickHouseConfig {
    /// Checks `[clickhouse]`.
    pub(super) fn validate(&self, problems: &mut Problems) {
        if !is_http_url(&self.url) {
            problems.push(
                "clickhouse.url",
                format_args!(
                    "{:?} must start with http:// or https:// (the HTTP interface, usually port 8123)",
                    self.url
                ),
            );
        }
        if !is_identifier(&self.database) {
            problems.push(
                "clickhouse.database",
                format_args!(
                    "{:?} must be a plain identifier: letters, digits and _, not starting with a digit",
                    self.database
                ),
            );
        }
        if self.batch_max_rows == 0 {
            problems.push("clickhouse.batch_max_rows", "must be at least 1");
        }
    }
}

/// Whether `s` is usable unquoted as a ClickHouse database name.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

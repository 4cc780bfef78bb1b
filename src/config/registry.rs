//! `[schema_registry]`, and the `tls` subsection every HTTP client has.

use std::time::Duration;

use serde::Deserialize;

use super::problems::is_http_url;
use super::{Problems, Secret};

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

impl SchemaRegistryConfig {
    /// Checks `[schema_registry]`.
    pub(super) fn validate(&self, problems: &mut Problems) {
        if !self.url.is_empty() && !is_http_url(&self.url) {
            problems.push(
                "schema_registry.url",
                format_args!(
                    "{:?} must start with http:// or https://, or be empty",
                    self.url
                ),
            );
        }
        if self.username.is_empty() && !self.password.is_empty() {
            problems.push(
                "schema_registry.username",
                "must be set when schema_registry.password is",
            );
        }
    }
}

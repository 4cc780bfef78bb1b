//! The schema registry client (shell, HTTP): resolves the writer schema of
//! Confluent-framed Avro messages by id for the decoder, which asks for the
//! ids it is missing and is handed the answers; and registers schemas (for
//! derived events and the load generator).
//!
//! Any Confluent-compatible registry works: Confluent Schema Registry,
//! Karapace, Redpanda, Apicurio (in its Confluent-compatible mode).

use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::{
    get_schema_by_id, post_schema, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use tracing::warn;

use crate::config::SchemaRegistryConfig;
use crate::error::{Classified, Disposition};
use crate::retry::{pause, Backoff};
use crate::telemetry::metrics;

/// A failed registry request, or a client that could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The request failed (or the client could not be built).
    #[error("schema registry: {0}")]
    Request(#[from] SRCError),
    /// `schema_registry.tls.ca_file` could not be used.
    #[error("schema registry TLS (schema_registry.tls.ca_file): {0}")]
    Tls(#[from] crate::tls::TlsError),
}

impl Classified for RegistryError {
    /// Requests are retried unless the registry says they cannot succeed;
    /// TLS set-up errors are configuration.
    fn disposition(&self) -> Disposition {
        match self {
            RegistryError::Request(e) if e.retriable => Disposition::Retry,
            RegistryError::Request(_) | RegistryError::Tls(_) => Disposition::Fatal,
        }
    }
}

/// A schema registry at a base URL.
#[derive(Clone)]
pub struct SchemaRegistry {
    settings: SrSettings,
    url: String,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl SchemaRegistry {
    /// A client for the registry at `url`, without authentication.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RegistryError> {
        let mut builder = SrSettings::new_builder(url.trim_end_matches('/').to_owned());
        let settings = builder.set_timeout(timeout).build()?;
        Ok(SchemaRegistry {
            settings,
            url: url.to_owned(),
        })
    }

    /// A client for the registry at `url` with the authentication and TLS
    /// settings of `config` (whose own `url` is not used, so a command-line
    /// override can be passed).
    pub fn with_config(url: &str, config: &SchemaRegistryConfig) -> Result<Self, RegistryError> {
        let mut builder = SrSettings::new_builder(url.trim_end_matches('/').to_owned());
        builder.set_timeout(config.timeout);
        if !config.username.is_empty() {
            let password = (!config.password.is_empty()).then(|| config.password.expose());
            builder.set_basic_authorization(&config.username, password);
        }
        let settings = builder.build_with(crate::tls::reqwest_builder(&config.tls.ca_file)?)?;
        Ok(SchemaRegistry {
            settings,
            url: url.to_owned(),
        })
    }

    /// The schema text registered under `id`; `Ok(None)` if the registry
    /// does not have it. Other failures are errors worth retrying.
    pub async fn schema(&self, id: u32) -> Result<Option<String>, RegistryError> {
        match get_schema_by_id(id, &self.settings).await {
            Ok(registered) => Ok(Some(registered.schema)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Like [`Self::schema`], retrying failures with back-off until the
    /// registry answers or `stop` resolves (then `None` is returned).
    pub async fn schema_retrying(
        &self,
        id: u32,
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<Option<String>> {
        tokio::pin!(stop);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            tokio::select! {
                result = self.schema(id) => match result {
                    Ok(answer) => return Some(answer),
                    Err(e) => {
                        metrics::schema_registry_error();
                        let delay = backoff.next_delay();
                        warn!(url = %self.url, schema_id = id, error = %crate::error::Chain(&e), retry_in = ?delay, "schema registry request failed; retrying");
                        if !pause(delay, stop.as_mut()).await {
                            return None;
                        }
                    }
                },
                () = &mut stop => return None,
            }
        }
    }

    /// Registers an Avro schema under `subject` and returns its id (the
    /// existing id if it is already registered).
    pub async fn register_avro(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        Ok(post_schema(&self.settings, subject.to_owned(), supplied)
            .await?
            .id)
    }
}

/// A 404 from the registry: the id does not exist. The crate reports it as
/// a non-retriable error whose text carries the status.
fn is_not_found(error: &SRCError) -> bool {
    !error.retriable
        && (error.error.contains("404")
            || error.cause.as_deref().is_some_and(|c| c.contains("40403")))
}

//! The ClickHouse sink: rollups and checkpoints, batched by a single writer
//! task shared by all partitions of the process.
//!
//! - [`schema`]: the DDL from `schemas/clickhouse/`, applied at start.
//! - [`rows`]: the row types, as ClickHouse stores them.
//! - [`writer`]: the batching writer and the handle partitions submit to.
//! - [`state`]: reading the state partitions resume from.

pub mod rows;
pub mod schema;
pub mod state;
pub mod writer;

use hyper_tls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::config::ClickHouseConfig;
use crate::tls::TlsError;

pub use writer::{RollupWriter, When, WriterSettings};

/// A ClickHouse client for `config`, without a default database (so it can
/// create it); pass `Some(database)` for one that has it.
///
/// Compression is off and row validation is off: both rely on features
/// ClickHouse 18.16 lacks. The HTTP connector sets `TCP_NODELAY`, which
/// removes a 13-35 ms Nagle stall seen on some insert sizes. `https://` URLs
/// use TLS, trusting the system's CAs and `clickhouse.tls.ca_file`.
pub fn client(
    config: &ClickHouseConfig,
    database: Option<&str>,
) -> Result<::clickhouse::Client, TlsError> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(std::time::Duration::from_secs(60)));
    connector.enforce_http(false);
    let tls = crate::tls::connector(&config.tls.ca_file)?;
    let http = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build(HttpsConnector::from((connector, tls.into())));
    let client = ::clickhouse::Client::with_http_client(http)
        .with_url(&config.url)
        .with_user(&config.user)
        .with_compression(::clickhouse::Compression::None)
        .with_validation(false);
    let client = if config.password.is_empty() {
        client
    } else {
        client.with_password(config.password.expose())
    };
    Ok(match database {
        Some(database) => client.with_database(database),
        None => client,
    })
}

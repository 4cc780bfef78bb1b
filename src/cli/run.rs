//! `reactor run`: the stream processor itself.

use std::path::Path;

use anyhow::Context as _;
use tracing::info;

use crate::{app, telemetry};

/// Loads configuration, sets up telemetry, and runs until SIGTERM or Ctrl-C.
pub(super) fn main(config: Option<&Path>) -> anyhow::Result<()> {
    let config = super::load_config(config)?;
    telemetry::init_tracing(&config.log).context("cannot set up logging")?;
    let prometheus = telemetry::metrics::install().context("cannot set up metrics")?;
    info!(
        version = env!("CARGO_PKG_VERSION"),
        brokers = ?config.kafka.brokers,
        group = %config.kafka.group_id,
        clickhouse = %config.clickhouse.url,
        database = %config.clickhouse.database,
        window = %humantime::format_duration(config.windows.size),
        lateness = %humantime::format_duration(config.windows.allowed_lateness),
        "starting Reactor"
    );
    actix_rt::System::new().block_on(app::run(config, prometheus, shutdown_signal()))
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => info!("Ctrl-C received"),
            }
        }
        Err(_) => {
            let _ignored = tokio::signal::ctrl_c().await;
        }
    }
}

//! `reactor run`: the stream processor itself.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use tracing::info;

use crate::{app, telemetry};

/// `reactor run` options: runtime knobs, not configuration.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Once the HTTP server listens, write its address (`ip:port`) to this
    /// file: for `http.listen` port 0, and for scripts that need the port.
    #[arg(long, env = "REACTOR_HTTP_ADDRESS_FILE", value_name = "FILE")]
    pub http_address_file: Option<PathBuf>,
}

/// Loads configuration, sets up telemetry, and runs until SIGTERM or Ctrl-C.
pub(super) fn main(config: Option<&Path>, args: &RunArgs) -> anyhow::Result<()> {
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
    let options = app::RunOptions {
        http_address_file: args.http_address_file.clone(),
    };
    actix_rt::System::new().block_on(app::run(config, options, prometheus, shutdown_signal()))
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

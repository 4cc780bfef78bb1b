//! `reactor run`: the stream processor itself.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use tracing::{info, warn};

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
    actix_rt::System::new().block_on(async move {
        let shutdown = shutdown_signal().context("cannot handle SIGTERM and SIGINT")?;
        app::run(config, options, prometheus, shutdown).await
    })
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C). The handlers are
/// installed now, so a signal during startup stops the process cleanly.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM received; draining (a second signal stops at once)"),
            _ = interrupt.recv() => info!("SIGINT received; draining (a second signal stops at once)"),
        }
        // A second signal: the operator does not want to wait for the
        // drain. Nothing is lost: the next start resumes from the last
        // checkpoint.
        let _abort = tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            warn!("second signal: stopping now, without waiting for in-flight writes; the next start resumes from the last checkpoint");
            std::process::exit(130);
        });
    })
}

//! The command line: one subcommand per file.

mod anomaly;
mod check_config;
mod create_topics;
mod generate;
mod replay;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use anomaly::AnomalyArgs;
pub use check_config::CheckConfigArgs;
pub use create_topics::CreateTopicsArgs;
pub use generate::GenerateArgs;
pub use replay::ReplayArgs;
pub use run::RunArgs;

/// Reactor: a stream processor for marketing analytics. Consumes content,
/// engagement and conversion events from Kafka, rolls them up in event-time
/// windows, and writes the rollups to ClickHouse.
#[derive(Debug, Parser)]
#[command(name = "reactor", version, about, long_about = None)]
pub struct Cli {
    /// A TOML file layered over the built-in defaults (config/default.toml);
    /// REACTOR__SECTION__KEY environment variables override both.
    #[arg(
        long,
        short,
        global = true,
        env = "REACTOR_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume the input topics and write rollups until SIGTERM or Ctrl-C.
    Run(RunArgs),
    /// Validate the configuration without connecting to anything.
    CheckConfig(CheckConfigArgs),
    /// Create the topics named in the configuration that do not exist yet.
    CreateTopics(CreateTopicsArgs),
    /// Publish seeded, realistic events to the input topics.
    Generate(GenerateArgs),
    /// The anomaly detector's tools: backtest a series, print anomaly events.
    Anomaly(AnomalyArgs),
    /// Recompute the windows of a time range from the input topics and
    /// write the rows live processing would have written (a backfill).
    Replay(ReplayArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        let config = self.config.as_deref();
        match self.command {
            Command::Run(args) => run::main(config, &args),
            Command::CheckConfig(args) => check_config::main(config, &args),
            Command::CreateTopics(args) => create_topics::main(config, &args),
            Command::Generate(args) => generate::main(config, &args),
            Command::Anomaly(args) => anomaly::main(config, &args),
            Command::Replay(args) => replay::main(config, &args),
        }
    }
}

/// Loads the configuration for a subcommand.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<crate::config::Config> {
    Ok(crate::config::load(path, std::env::vars())?)
}

/// Logs of the short-lived subcommands: in `log.format` (a Job's logs
/// are collected like the service's), at `log.level` for Reactor's own
/// logs when it is a bare level, its libraries logging warnings only.
fn init_logging(config: &crate::config::Config) {
    let level = &config.log.level;
    let log = crate::config::LogConfig {
        format: config.log.format,
        level: if level.contains(['=', ',']) {
            level.clone()
        } else {
            format!("warn,reactor={level}")
        },
    };
    let _ignored = crate::telemetry::init_tracing(&log);
}

//! The `reactor` binary: parses the command line and runs the subcommand.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    reactor::cli::Cli::parse().run()
}

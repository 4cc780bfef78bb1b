//! `reactor check-config`: validate configuration without any I/O.

use std::path::Path;

use clap::Args;

/// Options of `check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Also print the effective configuration (secrets masked).
    #[arg(long)]
    pub print: bool,
}

pub(super) fn main(config: Option<&Path>, args: &CheckConfigArgs) -> anyhow::Result<()> {
    let loaded = super::load_config(config)?;
    if args.print {
        println!("{loaded:#?}");
    }
    println!(
        "configuration is valid{}",
        config
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

//! `reactor check-config`: validate configuration without any I/O.

use std::path::Path;

use clap::Args;

use crate::derived::RollupSelection;
use crate::sink::derived::DerivedError;

/// Options of `check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Also print the effective configuration (secrets masked).
    #[arg(long)]
    pub print: bool,
}

pub(super) fn main(config: Option<&Path>, args: &CheckConfigArgs) -> anyhow::Result<()> {
    let loaded = super::load_config(config)?;
    // Checked here too, not only when the sink starts.
    let derived = &loaded.derived;
    let _selection = RollupSelection::new(derived.rollup_events, &derived.rollup_metrics)
        .map_err(DerivedError::from)?;
    let refused = crate::kafka::consumer::refused_properties(&loaded.kafka);
    anyhow::ensure!(
        refused.is_empty(),
        "invalid configuration:\n  - {}",
        refused.join("\n  - ")
    );
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

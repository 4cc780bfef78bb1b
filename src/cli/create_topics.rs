//! `reactor create-topics`: create the configured topics that are missing.

use std::path::Path;

use anyhow::Context as _;
use clap::Args;

use crate::kafka::admin;

/// Options of `create-topics`.
#[derive(Debug, Args)]
pub struct CreateTopicsArgs {
    /// Partitions of each new topic (at least 1).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Replication factor of each new topic; by default the brokers'
    /// `default.replication.factor` (Kafka 2.4 or later; give it for older
    /// brokers).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication: Option<i32>,
}

pub(super) fn main(config: Option<&Path>, args: &CreateTopicsArgs) -> anyhow::Result<()> {
    let config = super::load_config(config)?;
    super::init_logging(&config);
    let t = &config.topics;
    let names = [
        t.content.as_str(),
        t.engagement.as_str(),
        t.conversion.as_str(),
        t.rollups.as_str(),
        t.anomalies.as_str(),
        t.trends.as_str(),
        t.dead_letter.as_str(),
        t.late.as_str(),
    ];
    let runtime = tokio::runtime::Runtime::new()?;
    let created = runtime
        .block_on(admin::create_topics(
            &config.kafka,
            &names,
            args.partitions,
            // -1: the brokers' default (KIP-464).
            args.replication.unwrap_or(-1),
        ))
        .with_context(|| {
            format!(
                "cannot create topics on {} (are the brokers up, and do kafka.tls and kafka.sasl \
                 match their listener? Brokers before Kafka 2.4 need --replication)",
                config.kafka.brokers.join(",")
            )
        })?;
    // What the brokers hold now, to say how many partitions each has.
    let counts = admin::partition_counts(&config.kafka, &names, std::time::Duration::from_secs(10))
        .unwrap_or_default();
    for name in names {
        let state = if created.iter().any(|c| c == name) {
            "created"
        } else {
            "exists"
        };
        let partitions = counts
            .iter()
            .find(|(topic, _)| topic == name)
            .and_then(|(_, count)| *count);
        let note = match partitions {
            Some(n) if state == "exists" && i32::try_from(n).ok() != Some(args.partitions) => {
                format!(
                    "  ({n} partitions, not {}: existing topics are left as they are)",
                    args.partitions
                )
            }
            Some(n) => format!("  ({n} partitions)"),
            None => String::new(),
        };
        println!("{state:>8}  {name}{note}");
    }
    Ok(())
}

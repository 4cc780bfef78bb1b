//! `reactor replay`: recompute the windows of a time range (see
//! [`crate::replay`]).

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::Context as _;
use clap::Args;

use crate::event::{EventTime, TopicKind};
use crate::replay::{self, ReplayOptions, Summary};

/// Options of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Start of the range (RFC 3339); rounded up to a window start.
    #[arg(long)]
    pub from: String,
    /// End of the range (RFC 3339); rounded down to a window start. Only
    /// windows the range covers completely are written.
    #[arg(long)]
    pub to: String,
    /// Input topics to replay, by kind.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "content,engagement,conversion"
    )]
    pub topics: Vec<String>,
    /// Only these partitions (of every topic replayed), e.g. 0,3.
    #[arg(long, value_delimiter = ',')]
    pub partitions: Option<Vec<i32>>,
    /// Compute the rows and compare them with ClickHouse; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Publish the replayed windows' derived events (rollup, trend,
    /// anomaly); by default they are not published again.
    #[arg(long)]
    pub publish_derived: bool,
    /// With --publish-derived: publish to the configured derived-event
    /// topics prefixed with this (e.g. "replay.").
    #[arg(long, requires = "publish_derived")]
    pub derived_topic_prefix: Option<String>,
    /// Also count records that arrived after their window closed (events
    /// published after the fact to correct the range). Holds the range's
    /// records in memory to order them by event time.
    #[arg(long)]
    pub include_late: bool,
    /// Write the windows still open at the end of the input of partitions
    /// the live run has no state for, as a partition going idle closes
    /// them. Only for a rebuild no live run will follow: a live run would
    /// write those windows complete, and the replay's rows outrank its.
    #[arg(long)]
    pub close_at_end: bool,
}

fn time(flag: &str, text: &str) -> anyhow::Result<EventTime> {
    EventTime::parse_rfc3339(text).with_context(|| {
        format!("{flag} {text:?} is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
    })
}

fn kind(name: &str) -> anyhow::Result<TopicKind> {
    TopicKind::ALL
        .into_iter()
        .find(|k| k.as_str() == name.trim())
        .with_context(|| {
            format!("--topics: {name:?} is not one of content, engagement, conversion")
        })
}

pub(super) fn main(config: Option<&Path>, args: &ReplayArgs) -> anyhow::Result<()> {
    let config = super::load_config(config)?;
    super::init_logging(&config);
    let options = ReplayOptions {
        from: time("--from", &args.from)?,
        to: time("--to", &args.to)?,
        topics: args
            .topics
            .iter()
            .map(|t| kind(t))
            .collect::<anyhow::Result<_>>()?,
        partitions: args.partitions.clone(),
        dry_run: args.dry_run,
        publish_derived: args.publish_derived,
        derived_topic_prefix: args.derived_topic_prefix.clone(),
        include_late: args.include_late,
        progress: std::io::stderr().is_terminal(),
        close_at_end: args.close_at_end,
    };
    anyhow::ensure!(options.from < options.to, "--from must be before --to");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(async {
        let stop = async {
            let _ignored = tokio::signal::ctrl_c().await;
            eprintln!("stopping: finishing the windows already handed to ClickHouse (Ctrl-C again to abort)");
            let _abort = tokio::spawn(async {
                let _ignored = tokio::signal::ctrl_c().await;
                eprintln!("aborted: windows being written may be written in part; run the same command again");
                std::process::exit(130);
            });
        };
        replay::run(&config, &options, stop).await
    })?;
    print_summary(&summary, &options);
    if summary.interrupted {
        anyhow::bail!("interrupted: the windows written so far are whole; run the same command again to finish");
    }
    Ok(())
}

fn print_summary(summary: &Summary, options: &ReplayOptions) {
    let per_second = summary.records as f64 / summary.took.as_secs_f64().max(1e-3);
    println!(
        "replay {} {} .. {}: {} records read in {:.1?} ({per_second:.0}/s)",
        if options.dry_run { "(dry run)" } else { "" },
        options.from.to_rfc3339(),
        options.to.to_rfc3339(),
        summary.records,
        summary.took,
    );
    println!(
        "  before the range (read for the watermark, not counted): {}",
        summary.before_range
    );
    println!(
        "  of the records read, dead-lettered: {}   late: {}   (not forwarded again: live did)",
        summary.dead_letters, summary.late
    );
    let verb = if options.dry_run {
        "would be written"
    } else {
        "written"
    };
    let d = &summary.diff;
    println!(
        "  rows {verb}: {}  (new {}, changed {}, unchanged {})",
        summary.rows, d.new, d.changed, d.unchanged
    );
    if summary.stale > 0 {
        println!(
            "  rows in ClickHouse the replay did not produce, left as they are: {} (series with no records in the range now; a replay deletes nothing)",
            summary.stale
        );
    }
    for change in &d.largest {
        println!(
            "    {:?}: {} {:?} -> {:?} ({:.3}%)",
            change.key,
            change.column,
            change.before,
            change.after,
            100.0 * change.relative
        );
    }
    if options.publish_derived {
        println!("  derived events published: {}", summary.derived_events);
    }
    for (topic, partition) in &summary.closed_at_end {
        println!("  {topic}/{partition}: the input ends with windows open that the live run had closed (or, with --close-at-end, has no state for): closed as a partition going idle closes them");
    }
    for (topic, partition, start) in &summary.incomplete {
        println!(
            "  {topic}/{partition}: the input ends with the windows from {} on still open: left to the live run (--close-at-end writes them if no live run will)",
            start.to_rfc3339()
        );
    }
}

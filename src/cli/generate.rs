//! `reactor generate`: publish seeded, realistic events.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::event::EventTime;
use crate::generate::publish::{FormatMix, Publisher};
use crate::generate::{EventGenerator, GeneratorSettings, Incident};
use crate::registry::SchemaRegistry;

/// Options of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of events.
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Events per second; 0 publishes as fast as the broker takes them.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Seed: the same seed and options publish the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Wire format of the events.
    #[arg(long, value_enum, default_value_t = OutputFormat::Mixed)]
    pub format: OutputFormat,
    /// Share of Avro events with `--format mixed`.
    #[arg(long, default_value_t = 0.5)]
    pub avro_share: f64,
    /// Event time of the first event (RFC 3339); default: now minus the span.
    #[arg(long)]
    pub start: Option<String>,
    /// Event time covered by all events; default: count / rate (real time).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub span: Option<Duration>,
    /// Largest out-of-order delay of an event's time.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub disorder: Duration,
    /// Number of campaigns.
    #[arg(long, default_value_t = 10)]
    pub campaigns: usize,
    /// Content items per campaign.
    #[arg(long, default_value_t = 20)]
    pub contents_per_campaign: usize,
    /// Channels, comma-separated.
    #[arg(
        long,
        default_value = "web,email,social,search,display",
        value_delimiter = ','
    )]
    pub channels: Vec<String>,
    /// Relative weights of content, engagement and conversion events.
    #[arg(long, default_value = "1,50,3", value_delimiter = ',', num_args = 3)]
    pub mix: Vec<u32>,
    /// Also publish this many malformed messages (cycling through kinds of
    /// bad input) to the engagement topic, to see the dead-letter topic work.
    #[arg(long, default_value_t = 0)]
    pub malformed: u32,
    /// Add one incident for the anomaly detector to find: a 3-minute burst
    /// of clicks on campaign-000's first content, at 70 % of the span.
    #[arg(long)]
    pub incident: bool,
    /// Schema registry URL for Avro; default: schema_registry.url.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub schema_registry: Option<String>,
}

/// Wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// JSON objects.
    Json,
    /// Confluent-framed Avro.
    Avro,
    /// Both, per --avro-share.
    Mixed,
}

pub(super) fn main(config: Option<&Path>, args: &GenerateArgs) -> anyhow::Result<()> {
    let config = super::load_config(config)?;
    super::init_logging(&config);
    let span = args.span.unwrap_or_else(|| {
        if args.rate > 0.0 {
            Duration::from_secs_f64(args.count as f64 / args.rate)
        } else {
            Duration::from_secs(600)
        }
    });
    let start = match &args.start {
        Some(text) => EventTime::parse_rfc3339(text).with_context(|| {
            format!("--start {text:?} is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
        })?,
        None => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
            EventTime::from_millis(now - span.as_millis() as i64)
        }
    };
    let mix: [u32; 3] = args
        .mix
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--mix takes three weights"))?;
    let settings = GeneratorSettings {
        seed: args.seed,
        count: args.count,
        start,
        span,
        disorder: args.disorder,
        campaigns: args.campaigns,
        contents_per_campaign: args.contents_per_campaign,
        channels: args.channels.clone(),
        mix,
        incident: args.incident.then_some(Incident::DEMO),
    };
    let settings_incident = settings.incident;
    let formats = match args.format {
        OutputFormat::Json => FormatMix::Json,
        OutputFormat::Avro => FormatMix::Avro,
        OutputFormat::Mixed => FormatMix::Mixed {
            avro_share: args.avro_share,
            seed: args.seed,
        },
    };
    let registry_url = args
        .schema_registry
        .clone()
        .unwrap_or_else(|| config.schema_registry.url.clone());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let registry = match (registry_url.as_str(), args.format) {
            ("", OutputFormat::Json) => None,
            ("", _) => anyhow::bail!("Avro output needs a schema registry: pass --schema-registry URL or set schema_registry.url"),
            (url, _) => Some(SchemaRegistry::with_config(url, &config.schema_registry)?),
        };
        let publisher = Publisher::new(&config.kafka, &config.topics, registry.as_ref())
            .await
            .context("cannot set up publishing (are the brokers and the schema registry up?)")?;
        let bar = ProgressBar::new(args.count).with_style(ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} events, {per_sec}, ETA {eta}",
        )?);
        let rate = (args.rate > 0.0).then_some(args.rate);
        let report = publisher
            .publish(formats.assign(EventGenerator::new(settings)), rate, Some(&bar))
            .await
            .context("publishing failed")?;
        bar.finish_and_clear();
        println!(
            "published {} events in {:.1}s ({:.0} events/s)",
            report.messages,
            report.elapsed.as_secs_f64(),
            report.rate()
        );
        if let Some(incident) = settings_incident {
            let (campaign, content, channel) = Incident::dimensions(&args.channels);
            let from = start.as_millis() + (incident.at * span.as_millis() as f64) as i64;
            println!(
                "incident: {}% of the traffic from {} for {} is clicks on {campaign}/{content}/{channel}",
                incident.share * 100.0,
                EventTime::from_millis(from).to_rfc3339(),
                humantime::format_duration(incident.duration)
            );
        }
        const MALFORMED: [&[u8]; 4] = [
            b"\xff\xfe not an event",
            br#"{"event_id":"bad","occurred_at":"2026-01-01T00:00:00Z","kind":"view"}"#,
            br#"{"event_id":"bad","occurred_at":17,"content_id":"c","campaign_id":"c","channel":"web","user_id":"u","kind":"view"}"#,
            b"\x00\x3b\x9a\xc9\xff\x02",
        ];
        for i in 0..args.malformed as usize {
            let payload = MALFORMED[i % MALFORMED.len()];
            publisher.send_raw(&config.topics.engagement, None, Some(b"malformed".as_slice()), payload).await?;
        }
        if args.malformed > 0 {
            println!("published {} malformed messages to {}", args.malformed, config.topics.engagement);
        }
        Ok(())
    })
}

//! `reactor anomaly`: the anomaly detector's tools. `backtest` scores a
//! series of your own history with the configured `[anomaly]` settings;
//! `events` prints the anomaly events Reactor published.

use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use crate::aggregate::SeriesKind;
use crate::anomaly_eval::backtest::{backtest, RowWindow};
use crate::derived::{AnomalyEvent, DerivedKind};
use crate::event::framing::Framed;
use crate::kafka::consumer::ToolContext;
use crate::registry::SchemaRegistry;
use crate::sink::derived::DERIVED_SCHEMAS;

/// Options of `anomaly`.
#[derive(Debug, Args)]
pub struct AnomalyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AnomalyCommand,
}

/// `anomaly` subcommands.
#[derive(Debug, Subcommand)]
pub enum AnomalyCommand {
    /// Score one series read as CSV (`timestamp,value`, one row per closed
    /// window, in time order) with the configured [anomaly] settings; write
    /// `timestamp,value,score,anomalous` rows to standard output.
    Backtest(BacktestArgs),
    /// Print the anomaly events on topics.anomalies (JSON or Avro).
    Events(EventsArgs),
}

/// Options of `anomaly backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// CSV file to read; `-` (the default) for standard input.
    #[arg(long, default_value = "-")]
    pub input: PathBuf,
    /// What the values are: counts of events, or measured values (money,
    /// durations, scores). By default counts if every value is a whole
    /// number, zero or more, else measures.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// How long a window each row stands for (`1m`, `1h`). By default the
    /// configured windows' slide (`windows.slide`, else `windows.size`),
    /// unless the rows are plainly spaced otherwise (hourly rows against
    /// one-minute windows, row numbers): then their own spacing. Rows
    /// further apart than a window have windows without a row between
    /// them: zero counts for `--kind count`, and windows of the quiet
    /// period.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub window: Option<Duration>,
}

/// The kind of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Counts of events (clicks, signups...).
    Count,
    /// Measured values (revenue, dwell time, scores).
    Measure,
}

/// Options of `anomaly events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of this campaign.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Only events with |score| at least this.
    #[arg(long, default_value_t = 0.0)]
    pub min_score: f64,
    /// Give up once nothing has arrived for this long (the command stops by
    /// itself at the end of every partition).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub(super) fn main(config: Option<&Path>, args: &AnomalyArgs) -> anyhow::Result<()> {
    match &args.command {
        AnomalyCommand::Backtest(args) => backtest_main(config, args),
        AnomalyCommand::Events(args) => events_main(config, args),
    }
}

fn backtest_main(config: Option<&Path>, args: &BacktestArgs) -> anyhow::Result<()> {
    let config = super::load_config(config)?;
    let pipeline = crate::app::pipeline_settings(&config, crate::event::TopicKind::Engagement);
    let settings = pipeline.history.anomaly;
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let configured_ms = millis(pipeline.windows.spec.slide);
    let window = match args.window {
        Some(window) => {
            anyhow::ensure!(!window.is_zero(), "--window must be longer than zero");
            RowWindow::Given(millis(window))
        }
        None => RowWindow::Configured(configured_ms),
    };
    let kind = args.kind.map(|kind| match kind {
        Kind::Count => SeriesKind::Count,
        Kind::Measure => SeriesKind::Measure,
    });
    let stdout = std::io::stdout().lock();
    let summary = if args.input.as_os_str() == "-" {
        backtest(std::io::stdin().lock(), stdout, kind, &settings, window)
    } else {
        let file = std::fs::File::open(&args.input)
            .with_context(|| format!("cannot open {}", args.input.display()))?;
        backtest(BufReader::new(file), stdout, kind, &settings, window)
    }
    .with_context(|| {
        if args.input.as_os_str() == "-" {
            "backtesting standard input".to_string()
        } else {
            format!("backtesting {}", args.input.display())
        }
    })?;
    eprintln!(
        "{} windows of {} as {}{}, {} scored, {} anomalies (threshold {}, quiet {} windows, escalation {})",
        summary.windows,
        humantime::format_duration(Duration::from_millis(
            u64::try_from(summary.window_ms).unwrap_or_default()
        )),
        match summary.kind {
            SeriesKind::Count => "counts",
            SeriesKind::Measure => "measures",
        },
        match (kind, summary.kind) {
            (Some(_), _) => "",
            (None, SeriesKind::Count) => " (every value is a count; --kind measure for measured values)",
            (None, SeriesKind::Measure) => " (not every value is a count)",
        },
        summary.scored,
        summary.anomalies,
        settings.threshold,
        settings.quiet_windows,
        settings.escalation
    );
    for note in summary.notes(configured_ms) {
        eprintln!("note: {note}");
    }
    Ok(())
}

fn events_main(config: Option<&Path>, args: &EventsArgs) -> anyhow::Result<()> {
    let config = super::load_config(config)?;
    super::init_logging(&config);
    let topic = &config.topics.anomalies;
    // No consumer group: every partition is read from its beginning to the
    // end it had when we started (partition EOF), so nothing is missed and
    // no group join is waited for (librdkafka wants a group id all the same).
    let consumer: BaseConsumer<ToolContext> = crate::kafka::consumer::reading_config(&config.kafka)
        .set(
            "group.id",
            format!("reactor-anomaly-events-{}", std::process::id()),
        )
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create_with_context(ToolContext)
        .context("cannot create a Kafka consumer (kafka.brokers)")?;
    let metadata = consumer
        .fetch_metadata(Some(topic), args.timeout)
        .with_context(|| format!("cannot read the metadata of {topic} (kafka.brokers)"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic.as_str())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        anyhow::bail!(
            "topic {topic} does not exist (topics.anomalies); run `reactor create-topics`"
        );
    }
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("cannot read {topic}"))?;
    let mut open: HashSet<i32> = partitions.into_iter().collect();
    let mut avro = AvroEvents::new(&config)?;
    println!(
        "window_start\tmetric\tcampaign/content/channel\tobserved\texpected\tscore\tescalates"
    );
    let mut last = Instant::now();
    let (mut matching, mut shown) = (0u64, 0u64);
    while !open.is_empty() && last.elapsed() < args.timeout {
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
                continue;
            }
            Some(result) => result?,
        };
        last = Instant::now();
        let event = match Framed::of(message.payload()) {
            Ok(Framed::Json(json)) => serde_json::from_slice::<AnomalyEvent>(json).ok(),
            Ok(Framed::Avro { schema_id, body }) => avro.read(schema_id, body),
            Err(_) => None,
        };
        let Some(event) = event else {
            eprintln!("skipping a message of {topic} that is not an anomaly event");
            continue;
        };
        if args
            .campaign
            .as_ref()
            .is_some_and(|c| *c != event.campaign_id)
        {
            continue;
        }
        matching += 1;
        if event.score.abs() < args.min_score {
            continue;
        }
        shown += 1;
        println!(
            "{}\t{}\t{}/{}/{}\t{}\t{:.2}\t{:.1}\t{}",
            crate::event::EventTime::from_millis(event.window_start).to_rfc3339(),
            event.metric,
            event.campaign_id,
            event.content_id,
            event.channel,
            event.observed,
            event.expected,
            event.score,
            event.escalates.as_deref().unwrap_or("-")
        );
    }
    let campaign = args
        .campaign
        .as_ref()
        .map_or(String::new(), |c| format!(" of {c}"));
    eprintln!(
        "{matching} anomaly events{campaign} on {topic}, {shown} with |score| >= {}",
        args.min_score
    );
    if !open.is_empty() {
        let mut unfinished: Vec<i32> = open.into_iter().collect();
        unfinished.sort_unstable();
        anyhow::bail!(
            "partitions {unfinished:?} of {topic} did not reach their end with nothing read for {:?}: the list above is incomplete; try a longer --timeout",
            args.timeout
        );
    }
    Ok(())
}

/// Reads Avro anomaly events: each with the schema its id names, fetched
/// from the registry when one is configured (events written by an earlier
/// version of Reactor carry an earlier schema), resolved against this
/// version's; without a registry, as written with this version's.
struct AvroEvents {
    reader: apache_avro::Schema,
    registry: Option<(SchemaRegistry, tokio::runtime::Runtime)>,
    writers: HashMap<u32, Option<apache_avro::Schema>>,
}

impl AvroEvents {
    fn new(config: &crate::config::Config) -> anyhow::Result<Self> {
        let text = DERIVED_SCHEMAS
            .iter()
            .find(|(kind, _)| *kind == DerivedKind::Anomaly)
            .map_or("", |(_, text)| text);
        let registry = match config.schema_registry.url.as_str() {
            "" => None,
            url => Some((
                SchemaRegistry::with_config(url, &config.schema_registry)?,
                tokio::runtime::Runtime::new()?,
            )),
        };
        Ok(AvroEvents {
            reader: apache_avro::Schema::parse_str(text)?,
            registry,
            writers: HashMap::new(),
        })
    }

    /// The event in `body`, or `None` if it is not one.
    fn read(&mut self, schema_id: u32, body: &[u8]) -> Option<AnomalyEvent> {
        let registry = &self.registry;
        let writer = self.writers.entry(schema_id).or_insert_with(|| {
            let (registry, runtime) = registry.as_ref()?;
            match runtime.block_on(registry.schema(schema_id)) {
                Ok(Some(text)) => apache_avro::Schema::parse_str(&text).ok(),
                Ok(None) => None,
                Err(e) => {
                    eprintln!("cannot fetch schema id {schema_id} from the registry: {e}");
                    None
                }
            }
        });
        let value = match (writer.as_ref(), &self.registry) {
            (Some(writer), _) => {
                apache_avro::from_avro_datum(writer, &mut &body[..], Some(&self.reader))
            }
            (None, None) => apache_avro::from_avro_datum(&self.reader, &mut &body[..], None),
            (None, Some(_)) => return None,
        };
        apache_avro::from_value::<AnomalyEvent>(&value.ok()?).ok()
    }
}

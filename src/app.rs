//! The one place that wires everything together: startup checks, sinks, the
//! consumer and its driver thread, the supervisor, the HTTP server, and the
//! graceful shutdown in reverse order.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::{Actor, Arbiter};
use anyhow::{bail, Context as _};
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::consumer::Consumer;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::actors::messages::Shutdown;
use crate::actors::{
    IoRuntime, PartitionDeps, PartitionSettings, RestartPolicy, Supervisor, SupervisorSettings,
};
use crate::aggregate::{AnomalySettings, HistorySettings, TrendSettings};
use crate::config::Config;
use crate::error::{Classified as _, Disposition, Failure};
use crate::event::validate::Limits;
use crate::event::TopicKind;
use crate::health::Health;
use crate::kafka::{admin, consumer, producer};
use crate::pipeline::{ClockQuorum, PipelineSettings, WindowSettings};
use crate::registry::SchemaRegistry;
use crate::retry::Backoff;
use crate::sink::clickhouse::{self, schema, RollupWriter, WriterSettings};
use crate::sink::derived::DerivedSink;
use crate::sink::side_topic::{SideTopic, SideTopicSink};
use crate::window::WindowSpec;

/// How long startup waits for ClickHouse and the brokers to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The sinks every partition of the process shares.
#[derive(Debug)]
pub struct SharedSinks {
    /// The ClickHouse writer.
    pub writer: RollupWriter,
    /// Its task, which ends once every writer handle is dropped.
    pub writer_task: tokio::task::JoinHandle<()>,
    /// The dead-letter topic.
    pub dead_letters: SideTopicSink,
    /// The late-events topic.
    pub late: SideTopicSink,
    /// Derived events.
    pub derived: DerivedSink,
}

/// Starts the ClickHouse writer on `clickhouse` (a client with the
/// database) and creates the Kafka-side sinks (registering the derived
/// event schemas for Avro output).
pub async fn shared_sinks(
    config: &Config,
    clickhouse: ::clickhouse::Client,
    registry: Option<&SchemaRegistry>,
) -> anyhow::Result<SharedSinks> {
    let ch = &config.clickhouse;
    let (writer, writer_task) = RollupWriter::spawn(
        clickhouse,
        &config.kafka.group_id,
        WriterSettings {
            batch_max_rows: ch.batch_max_rows,
            flush_interval: ch.flush_interval,
            request_timeout: ch.request_timeout,
        },
    );
    let producer = producer::create(&config.kafka).context("cannot create the Kafka producer")?;
    let dead_letters = SideTopicSink::new(
        producer.clone(),
        &config.topics.dead_letter,
        SideTopic::DeadLetter,
    );
    let late = SideTopicSink::new(producer.clone(), &config.topics.late, SideTopic::Late);
    let derived = DerivedSink::new(producer, &config.topics, &config.derived, registry)
        .await
        .context("cannot set up derived events")?;
    Ok(SharedSinks {
        writer,
        writer_task,
        dead_letters,
        late,
        derived,
    })
}

/// What partition actors are configured with.
pub fn partition_settings(config: &Config) -> PartitionSettings {
    PartitionSettings {
        pipelines: TopicKind::ALL
            .into_iter()
            .map(|kind| (kind, pipeline_settings(config, kind)))
            .collect(),
        group_id: config.kafka.group_id.clone(),
        start_from: config.kafka.start_from,
        batch_max_messages: config.kafka.batch_max_messages,
        batches_in_flight: config.kafka.batches_in_flight,
        checkpoint_interval: config.pipeline.checkpoint_interval,
        drain_timeout: config.pipeline.drain_timeout,
        warn_rejected_share: config.limits.warn_rejected_share,
    }
}

/// Runtime options of `reactor run` (command-line flags, not configuration).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where to write the HTTP server's bound address once it listens.
    pub http_address_file: Option<PathBuf>,
}

/// Runs Reactor until `shutdown` resolves (then drains and returns `Ok`) or
/// something unrecoverable happens (then returns the error). Must run inside
/// an actix `System`.
pub async fn run(
    config: Config,
    options: RunOptions,
    prometheus: PrometheusHandle,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    tokio::pin!(shutdown);

    // HTTP first: `/healthz` and `/metrics` answer, and `/readyz` says
    // "starting", while startup waits for ClickHouse or the brokers; a port
    // already taken is reported before any waiting.
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
    let address = listener.local_addr()?;
    info!(%address, "HTTP server listening");
    if let Some(path) = &options.http_address_file {
        write_atomically(path, &address.to_string())
            .with_context(|| format!("cannot write the HTTP address to {}", path.display()))?;
    }
    let health = Arc::new(Health::new(config.pipeline.stall_timeout));
    let supervisor_slot = Arc::new(OnceLock::new());
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let http = tokio::spawn(crate::http::serve(
        listener,
        crate::http::HttpState {
            prometheus,
            health: Arc::clone(&health),
            supervisor: Arc::clone(&supervisor_slot),
        },
        async move {
            let _ignored = http_stopped.await;
        },
    ));

    // A stop asked for while starting (waiting for ClickHouse, say) is
    // honoured at once: nothing has been read yet.
    let started = tokio::select! {
        started = startup(&config) => Some(started),
        () = &mut shutdown => None,
    };
    let Some(Ok(Started {
        data_client,
        registry,
        sinks:
            SharedSinks {
                writer,
                writer_task,
                dead_letters,
                late,
                derived,
            },
    })) = started
    else {
        let _ignored = stop_http.send(());
        let _ignored = http.await;
        return match started {
            Some(Err(e)) => Err(e),
            _ => {
                info!("stopped while starting");
                Ok(())
            }
        };
    };

    // Consumer, supervisor, driver.
    let settings = partition_settings(&config);
    let reply_timeout = config.pipeline.drain_timeout + STARTUP_TIMEOUT + Duration::from_secs(60);
    let (group_consumer, events_tx, events) = consumer::create(&config.kafka, reply_timeout)
        .context("cannot create the Kafka consumer")?;
    let io = IoRuntime::new(config.worker_threads()).context("cannot start the I/O threads")?;
    let deps = PartitionDeps {
        consumer: Arc::clone(&group_consumer),
        clickhouse: data_client,
        writer,
        dead_letters,
        late,
        derived,
        registry,
        health: Arc::clone(&health),
        settings,
        io: io.handle(),
    };
    let workers: Vec<Arbiter> = (0..config.worker_threads())
        .map(|_| Arbiter::new())
        .collect();
    let (fatal_tx, mut fatal) = mpsc::unbounded_channel();
    let topics = config.topic_kinds();
    let supervisor = Supervisor::new(
        deps,
        SupervisorSettings {
            topics,
            restart: RestartPolicy::default(),
        },
        workers.iter().map(Arbiter::handle).collect(),
        events,
        fatal_tx,
    )
    .start();
    let (stop_driver, driver_stop) = watch::channel(false);
    let driver = consumer::spawn_driver(Arc::clone(&group_consumer), events_tx, driver_stop)
        .context("cannot start the Kafka driver thread")?;
    let inputs: Vec<&str> = config
        .input_topics()
        .iter()
        .map(|(_, name)| *name)
        .collect();
    group_consumer
        .subscribe(&inputs)
        .with_context(|| format!("cannot subscribe to {inputs:?}"))?;
    info!(group = %config.kafka.group_id, topics = ?inputs, workers = workers.len(), "consuming");
    let _set = supervisor_slot.set(supervisor.clone());
    health.set_started();

    // `None` from the channel: the supervisor is gone without saying why.
    let failure: Option<Option<Failure>> = tokio::select! {
        () = &mut shutdown => None,
        failure = fatal.recv() => Some(failure),
    };

    // Shutdown, in reverse order.
    let started = Instant::now();
    match &failure {
        None => info!("stopping: draining partitions"),
        Some(Some(failure)) => {
            error!(error = %failure, remedy = failure.remedy().unwrap_or(""), "stopping after an unrecoverable error")
        }
        Some(None) => error!("stopping: the supervisor stopped unexpectedly"),
    }
    let (done, drained) = oneshot::channel();
    supervisor.do_send(Shutdown { done });
    let drain_limit = config.pipeline.drain_timeout + Duration::from_secs(15);
    // How many partitions the drain deadline cut short; `None` if the
    // supervisor did not answer at all.
    let cut_short = tokio::time::timeout(drain_limit, drained)
        .await
        .ok()
        .and_then(Result::ok);
    if cut_short.is_none() {
        warn!("partitions did not drain in time; their next owner resumes from their checkpoints");
    }
    drop(supervisor);
    let _ignored = stop_http.send(());
    let _ignored = stop_driver.send(true);
    drop(group_consumer);
    let _ignored = tokio::task::spawn_blocking(move || driver.join()).await;
    for worker in &workers {
        let _ignored = worker.stop();
    }
    if tokio::time::timeout(Duration::from_secs(10), writer_task)
        .await
        .is_err()
    {
        warn!("the ClickHouse writer did not finish in time");
    }
    let _ignored = http.await;
    info!(took = ?started.elapsed(), "stopped");
    match failure {
        // Nothing is lost, but the stop was not the clean one asked for:
        // the exit status says so to whoever watches it.
        None if cut_short != Some(0) => bail!(
            "{} did not drain within pipeline.drain_timeout ({}): nothing is lost, the next \
             start resumes from the last checkpoints and writes those rows again; if this \
             repeats, look for a sink that does not answer (ClickHouse, the brokers) or raise \
             pipeline.drain_timeout",
            match cut_short {
                None => "the partitions".to_owned(),
                Some(1) => "1 partition".to_owned(),
                Some(n) => format!("{n} partitions"),
            },
            humantime::format_duration(config.pipeline.drain_timeout)
        ),
        None => Ok(()),
        Some(Some(failure)) => match failure.remedy() {
            Some(remedy) => bail!("{failure}\n  what to do: {remedy}"),
            None => bail!("{failure}"),
        },
        Some(None) => {
            bail!("the partition supervisor stopped unexpectedly (a bug); restart Reactor")
        }
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// reader never sees half of it.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// The pipeline settings of partitions of `kind`, from configuration.
pub fn pipeline_settings(config: &Config, kind: TopicKind) -> PipelineSettings {
    let (size, slide) = config.windows.size_and_slide(kind);
    PipelineSettings {
        windows: WindowSettings {
            spec: WindowSpec { size, slide },
            allowed_lateness: config.windows.allowed_lateness,
            idle_timeout: config.windows.idle_timeout,
            max_future_skew: config.windows.max_future_skew,
            clock_quorum: ClockQuorum {
                first_watermark: config.windows.first_watermark_records,
                jump: config.windows.jump_records,
            },
            late_policy: config.windows.late_policy,
        },
        history: HistorySettings {
            trend: TrendSettings {
                windows: config.trend.windows,
                threshold: config.trend.threshold,
            },
            anomaly: AnomalySettings {
                alpha: config.anomaly.alpha,
                warm_up: config.anomaly.warm_up,
                threshold: config.anomaly.threshold,
                quiet_windows: config.anomaly.quiet_windows,
                escalation: config.anomaly.escalation,
            },
        },
        history_retention: config.history.retention,
        limits: Limits {
            max_dimension_bytes: config.limits.max_dimension_bytes,
            max_abs_value: config.limits.max_abs_value,
        },
        max_keys: config.limits.max_keys_per_partition,
    }
}

/// What startup checks leave behind.
struct Started {
    data_client: ::clickhouse::Client,
    registry: Option<SchemaRegistry>,
    sinks: SharedSinks,
}

/// Startup checks (fail fast, with what to do, before joining the group)
/// and the sinks.
async fn startup(config: &Arc<Config>) -> anyhow::Result<Started> {
    let refused = consumer::refused_properties(&config.kafka);
    anyhow::ensure!(
        refused.is_empty(),
        "invalid configuration:\n  - {}",
        refused.join("\n  - ")
    );
    let ch = &config.clickhouse;
    let admin_client = clickhouse::client(ch, None)
        .context("cannot set up the ClickHouse client (clickhouse.tls.ca_file)")?;
    let version = wait_for_clickhouse(&admin_client, &ch.url).await?;
    info!(url = %ch.url, %version, "ClickHouse is reachable");
    if ch.create_schema {
        schema::apply(&admin_client, &ch.database)
            .await
            .with_context(|| {
                format!(
                    "cannot create Reactor's tables in ClickHouse database {:?}",
                    ch.database
                )
            })?;
    }
    let data_client = clickhouse::client(ch, Some(&ch.database))
        .context("cannot set up the ClickHouse client (clickhouse.tls.ca_file)")?;
    check_topics(config).await?;
    let registry = match config.schema_registry.url.as_str() {
        "" => None,
        url => Some(
            SchemaRegistry::with_config(url, &config.schema_registry)
                .with_context(|| format!("cannot set up the schema registry client for {url}"))?,
        ),
    };
    let sinks = shared_sinks(config, data_client.clone(), registry.as_ref()).await?;
    Ok(Started {
        data_client,
        registry,
        sinks,
    })
}

async fn wait_for_clickhouse(client: &::clickhouse::Client, url: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
    loop {
        match schema::server_version(client).await {
            Ok(version) => return Ok(version),
            // It answered, with what retrying cannot fix (refused
            // credentials): say so at once.
            Err(e) if e.disposition() == Disposition::Fatal => {
                let cause = crate::error::Chain(&e);
                match e.remedy() {
                    Some(remedy) => bail!(
                        "ClickHouse at {url} refused Reactor's first query: {cause}\n  what to do: {remedy}"
                    ),
                    None => bail!("ClickHouse at {url} refused Reactor's first query: {cause}"),
                }
            }
            Err(e) if Instant::now() < deadline => {
                let delay = backoff.next_delay();
                warn!(%url, error = %crate::error::Chain(&e), retry_in = ?delay, "ClickHouse is not answering yet");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                    "ClickHouse at {url} did not answer within {}s; check clickhouse.url and that \
                         ClickHouse is running and reachable from here",
                    STARTUP_TIMEOUT.as_secs()
                )
                })
            }
        }
    }
}

async fn check_topics(config: &Arc<Config>) -> anyhow::Result<()> {
    let config = Arc::clone(config);
    let counts = tokio::task::spawn_blocking(move || {
        let mut needed: Vec<&str> = config
            .input_topics()
            .iter()
            .map(|(_, name)| *name)
            .collect();
        let t = &config.topics;
        needed.extend([
            t.dead_letter.as_str(),
            t.rollups.as_str(),
            t.trends.as_str(),
            t.anomalies.as_str(),
        ]);
        if config.windows.late_policy == crate::window::LatePolicy::SideTopic {
            needed.push(&t.late);
        }
        admin::partition_counts(&config.kafka, &needed, STARTUP_TIMEOUT)
    })
    .await?
    .context("cannot read topic metadata from the Kafka brokers; check kafka.brokers")?;
    let missing: Vec<String> = counts
        .iter()
        .filter(|(_, count)| count.is_none())
        .map(|(name, _)| name.clone())
        .collect();
    if !missing.is_empty() {
        bail!(
            "these topics do not exist: {}. Create them (`reactor create-topics`) or point [topics] at existing ones",
            missing.join(", ")
        );
    }
    for (name, count) in counts {
        info!(topic = %name, partitions = count.unwrap_or(0), "topic found");
    }
    Ok(())
}

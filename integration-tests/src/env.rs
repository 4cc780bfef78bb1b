//! One test's environment: fresh topics, a fresh ClickHouse database and a
//! fresh consumer group, the config file naming them, and the Reactor
//! processes started with it. The database is dropped when the environment
//! is (kept, and named, when the test failed).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::Rng;
use reactor::config::{Config, KafkaConfig, TopicsConfig};
use reactor::generate::publish::Publisher;
use reactor::kafka::admin;
use reactor::registry::SchemaRegistry;

use crate::expected;
use crate::process::{reactor_binary, ReactorProcess};
use crate::services::Services;
use crate::wait::eventually;

/// A background publication: the publisher and its report once done.
pub type Publishing =
    tokio::task::JoinHandle<Result<(Publisher, reactor::generate::publish::PublishReport)>>;

/// Settings of one test's Reactor.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Partitions per input topic.
    pub partitions: i32,
    /// `windows.size`.
    pub window: &'static str,
    /// `windows.allowed_lateness`.
    pub lateness: &'static str,
    /// `windows.idle_timeout`.
    pub idle_timeout: &'static str,
    /// `windows.late_policy`.
    pub late_policy: &'static str,
    /// `derived.format`.
    pub derived_format: &'static str,
    /// Further TOML sections (not `[windows]`), appended as-is.
    pub extra: &'static str,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            partitions: 4,
            window: "1m",
            lateness: "10s",
            idle_timeout: "2s",
            late_policy: "drop",
            derived_format: "avro",
            extra: "",
        }
    }
}

/// One test's topics, database and group, and the config file naming them.
#[derive(Debug)]
pub struct TestEnv {
    /// The services.
    pub services: Services,
    /// The loaded configuration (same as the file).
    pub config: Config,
    /// The config file passed to `reactor --config`.
    pub config_path: PathBuf,
    dir: tempfile::TempDir,
}

impl TestEnv {
    /// Creates fresh topics and a config file for `scenario`.
    pub async fn new(name: &str, scenario: &Scenario) -> Result<Self> {
        Self::with_services(name, scenario, Services::from_env()).await
    }

    /// As [`Self::new`], with other services than the environment's (a
    /// broker of the test's own).
    pub async fn with_services(
        name: &str,
        scenario: &Scenario,
        services: Services,
    ) -> Result<Self> {
        let id: u32 = rand::rng().random();
        let prefix = format!("it-{name}-{id:08x}");
        let database = format!("it_{}_{id:08x}", name.replace('-', "_"));
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("reactor.toml");
        let toml = format!(
            r#"
[kafka]
brokers = ["{kafka}"]
group_id = "{prefix}"
session_timeout = "6s"
[topics]
content = "{prefix}.content"
engagement = "{prefix}.engagement"
conversion = "{prefix}.conversion"
rollups = "{prefix}.rollups"
anomalies = "{prefix}.anomalies"
trends = "{prefix}.trends"
dead_letter = "{prefix}.dead-letter"
late = "{prefix}.late"
[schema_registry]
url = "{registry}"
[windows]
size = "{window}"
allowed_lateness = "{lateness}"
idle_timeout = "{idle}"
late_policy = "{late_policy}"
[derived]
format = "{derived_format}"
[pipeline]
checkpoint_interval = "1s"
drain_timeout = "10s"
[clickhouse]
url = "{clickhouse}"
database = "{database}"
flush_interval = "200ms"
[http]
listen = "127.0.0.1:0"
{extra}
"#,
            kafka = services.kafka,
            registry = services.registry,
            clickhouse = services.clickhouse,
            window = scenario.window,
            lateness = scenario.lateness,
            idle = scenario.idle_timeout,
            late_policy = scenario.late_policy,
            derived_format = scenario.derived_format,
            extra = scenario.extra,
        );
        std::fs::write(&config_path, toml)?;
        let config = reactor::config::load(Some(&config_path), std::iter::empty())?;
        let t = &config.topics;
        let names = [
            &t.content,
            &t.engagement,
            &t.conversion,
            &t.rollups,
            &t.anomalies,
            &t.trends,
            &t.dead_letter,
            &t.late,
        ];
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        admin::create_topics(&config.kafka, &names, scenario.partitions, 1)
            .await
            .with_context(|| {
                format!(
                    "creating topics on {} (is scripts/services-start running?)",
                    services.kafka
                )
            })?;
        Ok(TestEnv {
            services,
            config,
            config_path,
            dir,
        })
    }

    /// Kafka settings.
    pub fn kafka(&self) -> &KafkaConfig {
        &self.config.kafka
    }

    /// Topic names.
    pub fn topics(&self) -> &TopicsConfig {
        &self.config.topics
    }

    /// A publisher to this test's input topics, with Avro registered.
    pub async fn publisher(&self) -> Result<Publisher> {
        let registry = SchemaRegistry::new(&self.services.registry, Duration::from_secs(10))?;
        Ok(Publisher::new(self.kafka(), self.topics(), Some(&registry)).await?)
    }

    /// Publishes `events` (half JSON, half Avro, by `seed`) at `rate` per
    /// second in the background; the bar counts acknowledged messages.
    pub async fn publish_in_background(
        &self,
        events: Vec<reactor::event::Event>,
        seed: u64,
        rate: f64,
    ) -> Result<(Publishing, indicatif::ProgressBar)> {
        let publisher = self.publisher().await?;
        let progress = indicatif::ProgressBar::hidden();
        let published = progress.clone();
        let task = tokio::spawn(async move {
            let mix = reactor::generate::publish::FormatMix::Mixed {
                avro_share: 0.5,
                seed,
            };
            let report = publisher
                .publish(mix.assign(events), Some(rate), Some(&published))
                .await?;
            Ok((publisher, report))
        });
        Ok((task, progress))
    }

    /// Publishes, to every partition of every input topic, a valid event
    /// ten minutes after `after`. It advances each partition's watermark
    /// past every earlier window, so they all close without depending on
    /// wall-clock idle detection; its own window stays open and unwritten.
    pub async fn close_windows_with_sentinels(
        &self,
        publisher: &Publisher,
        partitions: i32,
        after: reactor::event::EventTime,
    ) -> Result<()> {
        let at =
            reactor::event::EventTime::from_millis(after.as_millis() + 10 * 60_000).to_rfc3339();
        let sentinels = [
            (
                &self.topics().content,
                format!(
                    r#"{{"event_id":"sentinel","occurred_at":"{at}","content_id":"sentinel","campaign_id":"sentinel","channel":"none","content_type":"none"}}"#
                ),
            ),
            (
                &self.topics().engagement,
                format!(
                    r#"{{"event_id":"sentinel","occurred_at":"{at}","content_id":"sentinel","campaign_id":"sentinel","channel":"none","user_id":"none","kind":"impression"}}"#
                ),
            ),
            (
                &self.topics().conversion,
                format!(
                    r#"{{"event_id":"sentinel","occurred_at":"{at}","campaign_id":"sentinel","user_id":"none","kind":"signup"}}"#
                ),
            ),
        ];
        for (topic, payload) in &sentinels {
            for partition in 0..partitions {
                publisher
                    .send_raw(
                        topic,
                        Some(partition),
                        Some(b"sentinel".as_slice()),
                        payload.as_bytes(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// A ClickHouse client for this test's database.
    pub fn clickhouse(&self) -> clickhouse::Client {
        reactor::sink::clickhouse::client(
            &self.config.clickhouse,
            Some(&self.config.clickhouse.database),
        )
        .expect("plain-HTTP ClickHouse client")
    }

    /// Waits until `rollups` holds as many rows as `expected` (failing early
    /// if `reactor` exits), then checks every row exactly.
    pub async fn assert_rollups_exact(
        &self,
        reactor: &mut ReactorProcess,
        expected: &std::collections::BTreeMap<expected::Key, expected::Expected>,
        window_secs: u32,
        timeout: Duration,
    ) -> Result<()> {
        let client = self.clickhouse();
        let want = expected.len() as u64;
        let waited = eventually("every expected rollup row", timeout, || {
            let client = client.clone();
            let running = reactor.is_running();
            let log = reactor.log_tail(30);
            async move {
                anyhow::ensure!(running, "reactor exited:\n{log}");
                Ok((expected::stored_count(&client).await.unwrap_or(0) >= want).then_some(()))
            }
        })
        .await;
        if let Err(e) = waited {
            let late = reactor.metric("reactor_late_events_total").await;
            return Err(e.context(format!(
                "late events: {late:?}; log: {}",
                reactor.log_path().display()
            )));
        }
        // Rows of a batch arrive together; give a straggler insert a moment.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let history =
            reactor::app::pipeline_settings(&self.config, reactor::event::TopicKind::Engagement)
                .history;
        let signals = expected::signals(expected, &history, window_secs)?;
        expected::compare(
            expected,
            &expected::stored(&client).await?,
            window_secs,
            Some(&signals),
        )
    }

    /// Runs `reactor <args>` with this test's configuration and `vars`, to
    /// the end; its standard output, or an error with its output if it
    /// failed.
    pub async fn reactor_command(&self, args: &[&str], vars: &[(&str, &str)]) -> Result<String> {
        let output = tokio::process::Command::new(reactor_binary()?)
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env("NO_COLOR", "1")
            .envs(vars.iter().copied())
            // A test that gives up on it (a timeout) leaves nothing behind.
            .kill_on_drop(true)
            .output()
            .await
            .context("running the reactor binary")?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        anyhow::ensure!(
            output.status.success(),
            "reactor {} failed ({}):\n{stdout}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(stdout)
    }

    /// Starts `reactor run` with this test's configuration.
    pub fn start_reactor(&self, label: &str) -> Result<ReactorProcess> {
        self.start_reactor_with_env(label, &[])
    }

    /// Starts `reactor run` with this test's configuration, overridden by
    /// `REACTOR__...` variables in `vars`, as a deployment would.
    pub fn start_reactor_with_env(
        &self,
        label: &str,
        vars: &[(&str, &str)],
    ) -> Result<ReactorProcess> {
        let logs = reactor_binary()?.parent().map_or_else(
            || self.dir.path().to_owned(),
            |debug| debug.join("../it-logs"),
        );
        std::fs::create_dir_all(&logs)?;
        let log_path = logs.join(format!("{}-{label}.log", self.config.kafka.group_id));
        let address_file = self.dir.path().join(format!("{label}.http-address"));
        ReactorProcess::start(&self.config_path, log_path, address_file, vars)
    }
}

impl Drop for TestEnv {
    /// Drops the test's database; keeps it, and says which, when the test
    /// failed (topics stay either way: the broker is memory-only).
    fn drop(&mut self) {
        let database = self.config.clickhouse.database.clone();
        if std::thread::panicking() {
            eprintln!("test failed: keeping ClickHouse database {database} for inspection");
            return;
        }
        let client = self.clickhouse();
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // the statement runs on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(
                client
                    .query(&format!("DROP DATABASE IF EXISTS {database}"))
                    .execute(),
            )?;
            anyhow::Ok(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database: {dropped:?}");
        }
    }
}

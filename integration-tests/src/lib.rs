//! Harness for Reactor's end-to-end tests: real services, a fresh set of
//! topics, a fresh ClickHouse database and a fresh consumer group per test,
//! and the real `reactor` binary as a child process (so a test can SIGKILL it).
//!
//! Service addresses come from the environment that `scripts/services-start`
//! prints, with the same loopback defaults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod expected;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::Rng;
use reactor::config::{Config, KafkaConfig, TopicsConfig};
use reactor::event::registry::SchemaRegistry;
use reactor::generate::publish::Publisher;
use reactor::kafka::admin;

/// Addresses of the local services.
#[derive(Debug, Clone)]
pub struct Services {
    /// Kafka bootstrap, host:port.
    pub kafka: String,
    /// ClickHouse HTTP URL.
    pub clickhouse: String,
    /// Schema registry URL.
    pub registry: String,
}

impl Services {
    /// From `KAFKA_BROKERS`, `CLICKHOUSE_URL`, `SCHEMA_REGISTRY_URL`, or the
    /// defaults of `scripts/services-start`.
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Services {
            kafka: var("KAFKA_BROKERS", "127.0.0.1:19092"),
            clickhouse: var("CLICKHOUSE_URL", "http://127.0.0.1:18123"),
            registry: var("SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081"),
        }
    }
}

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
        let services = Services::from_env();
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

    /// Publishes, to every partition of every input topic, a valid event
    /// `minutes_later` after `after`. It advances each partition's watermark
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
        eventually("every expected rollup row", timeout, || {
            let client = client.clone();
            let running = reactor.is_running();
            let log = reactor.log_tail(30);
            async move {
                anyhow::ensure!(running, "reactor exited:\n{log}");
                Ok((expected::stored_count(&client).await.unwrap_or(0) >= want).then_some(()))
            }
        })
        .await
        .map_err(|e| {
            let late = reactor.metric("reactor_late_events_total");
            e.context(format!(
                "late events: {late:?}; log: {}",
                reactor.log_path().display()
            ))
        })?;
        // Rows of a batch arrive together; give a straggler insert a moment.
        tokio::time::sleep(Duration::from_secs(1)).await;
        expected::compare(expected, &expected::stored(&client).await?, window_secs)
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
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(reactor_binary()?)
            .arg("--config")
            .arg(&self.config_path)
            .arg("run")
            .env("RUST_LOG", "info,reactor=debug")
            .env("NO_COLOR", "1")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the reactor binary")?;
        Ok(ReactorProcess { child, log_path })
    }

    /// Removes the test's database (topics stay; the broker is memory-only).
    pub async fn cleanup(self) {
        let _ignored = self
            .clickhouse()
            .query(&format!(
                "DROP DATABASE IF EXISTS {}",
                self.config.clickhouse.database
            ))
            .execute()
            .await;
    }
}

/// The `reactor` binary: `$REACTOR_BIN`, else the workspace's debug build.
pub fn reactor_binary() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("REACTOR_BIN") {
        return Ok(path.into());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug/reactor");
    if !path.exists() {
        bail!(
            "{} not found: build it first (cargo build --bin reactor) or set REACTOR_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// A running `reactor run`.
#[derive(Debug)]
pub struct ReactorProcess {
    child: Child,
    log_path: PathBuf,
}

impl ReactorProcess {
    /// SIGKILL: no drain, no final checkpoint, nothing flushed.
    pub fn kill(&mut self) {
        let _ignored = self.child.kill();
        let _ignored = self.child.wait();
    }

    /// SIGTERM, then waits for a graceful exit; returns whether it exited 0.
    pub fn terminate(&mut self, timeout: Duration) -> Result<bool> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            if Instant::now() > deadline {
                self.kill();
                bail!(
                    "reactor did not stop within {timeout:?} of SIGTERM; log:\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until it logs its HTTP address, and returns it (failing if it
    /// exits first).
    pub async fn wait_for_http(&mut self, timeout: Duration) -> Result<String> {
        eventually("reactor's HTTP address", timeout, || {
            let running = self.is_running();
            let address = self.http_address();
            let log = self.log_tail(30);
            async move {
                anyhow::ensure!(running, "reactor exited:\n{log}");
                Ok(address)
            }
        })
        .await
    }

    /// The HTTP address it logged once listening (text or JSON logs).
    pub fn http_address(&self) -> Option<String> {
        let log = self.log();
        let line = log.lines().find(|l| l.contains("HTTP server listening"))?;
        if line.starts_with('{') {
            let record: serde_json::Value = serde_json::from_str(line).ok()?;
            return Some(record.get("address")?.as_str()?.to_owned());
        }
        let start = line.find("address=")? + "address=".len();
        Some(line[start..].split_whitespace().next()?.to_owned())
    }

    /// The value of a counter or gauge on `/metrics`, summed over labels.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let address = self.http_address()?;
        let out = Command::new("curl")
            .args(["-sf", &format!("http://{address}/metrics")])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Some(
            text.lines()
                .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// Where its log is.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log_path
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for ReactorProcess {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill();
        }
    }
}

/// Polls `check` every 250 ms until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_error:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads at least `count` messages of `topic` from the beginning (a fresh
/// group), or fails after `timeout`. Blocking; call from `spawn_blocking`.
pub fn read_topic(
    kafka: &KafkaConfig,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<rdkafka::message::OwnedMessage>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let id: u32 = rand::rng().random();
    let consumer: BaseConsumer = reactor::kafka::consumer::client_config(kafka)
        .set("group.id", format!("it-reader-{id:08x}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    while messages.len() < count {
        if Instant::now() > deadline {
            bail!(
                "read {} of {count} messages from {topic} within {timeout:?}",
                messages.len()
            );
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            messages.push(message?.detach());
        }
    }
    // Anything beyond `count` that is already there is read too.
    while let Some(message) = consumer.poll(Duration::from_secs(2)) {
        messages.push(message?.detach());
    }
    Ok(messages)
}

/// GETs `url`, with `query` as the URL-encoded `query` parameter if given:
/// the status code and the body.
pub async fn http_get(url: &str, query: Option<&str>) -> Result<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut request = client.get(url);
    if let Some(query) = query {
        request = request.query(&[("query", query)]);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// A file_sd target of the local Prometheus (`scripts/services-start` makes
/// it read `PROMETHEUS_TARGETS_DIR/*.json`) naming one Reactor; removed on
/// drop, so Prometheus stops scraping it even when the test fails.
#[derive(Debug)]
pub struct ScrapeTarget {
    path: PathBuf,
}

impl ScrapeTarget {
    /// Makes Prometheus scrape `address`, labelled `instance`.
    pub fn register(instance: &str, address: &str) -> Result<Self> {
        let dir = prometheus_targets_dir();
        anyhow::ensure!(
            dir.is_dir(),
            "{} does not exist: start Prometheus with scripts/services-start prometheus",
            dir.display()
        );
        let path = dir.join(format!("{instance}.json"));
        // Written aside and renamed, so Prometheus (which reads *.json only)
        // never sees half a file.
        let partial = dir.join(format!("{instance}.json.partial"));
        std::fs::write(
            &partial,
            format!(r#"[{{"targets":["{address}"],"labels":{{"instance":"{instance}"}}}}]"#),
        )?;
        std::fs::rename(&partial, &path)?;
        Ok(ScrapeTarget { path })
    }
}

impl Drop for ScrapeTarget {
    fn drop(&mut self) {
        let _ignored = std::fs::remove_file(&self.path);
    }
}

/// `PROMETHEUS_TARGETS_DIR`, else where `scripts/services-start` puts it.
fn prometheus_targets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PROMETHEUS_TARGETS_DIR") {
        return dir.into();
    }
    std::env::var_os("REACTOR_SERVICES_DIR")
        .map_or_else(
            || std::env::temp_dir().join("reactor-services"),
            PathBuf::from,
        )
        .join(Path::new("prometheus/targets"))
}

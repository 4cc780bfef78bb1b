//! Observability end to end: the local Prometheus (`scripts/services-start`)
//! scrapes a running Reactor and sees exactly the records it consumed, with
//! the labels the alert rules of `docker/prometheus/alerts.yml` rely on;
//! `promtool check metrics` finds nothing to lint in the real `/metrics`; and
//! `/healthz`, `/readyz` and `/state` answer as documented in `src/http.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::{eventually, http_get, reactor_binary, ScrapeTarget, TestEnv};
use reactor::generate::publish::FormatMix;
use serde::Deserialize;

/// Window size of the scenario (`Scenario::window`), in milliseconds.
const WINDOW_MS: i64 = 60_000;
/// Allowed lateness of the scenario (`Scenario::lateness`), in milliseconds.
const LATENESS_MS: i64 = 10_000;

/// While startup waits for ClickHouse, the HTTP server answers already:
/// liveness and metrics do (an orchestrator does not kill a process that is
/// only waiting), readiness and `/state` say it is starting, and SIGTERM
/// stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_server_answers_while_startup_waits_for_clickhouse() -> Result<()> {
    let env = TestEnv::new("http-starting", &crate::without_idle_closing()).await?;
    // A port nothing listens on.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let url = format!("http://{unused}");
    let mut reactor =
        env.start_reactor_with_env("no-clickhouse", &[("REACTOR__CLICKHOUSE__URL", &url)])?;
    let address = reactor.wait_for_http(Duration::from_secs(20)).await?;
    let base = format!("http://{address}");
    eventually(
        "startup to wait for ClickHouse",
        Duration::from_secs(20),
        || {
            let waiting = reactor.log().contains("ClickHouse is not answering yet");
            async move { Ok(waiting.then_some(())) }
        },
    )
    .await?;

    let (status, body) = http_get(&format!("{base}/healthz"), None).await?;
    assert_eq!((status, body.trim()), (200, "ok"), "/healthz");
    let (status, body) = http_get(&format!("{base}/readyz"), None).await?;
    assert_eq!(
        (status, body.as_str()),
        (
            503,
            "not ready:\nstarting: startup checks have not finished\n"
        ),
        "/readyz"
    );
    let (status, body) = http_get(&format!("{base}/state"), None).await?;
    assert_eq!((status, body.as_str()), (503, "starting\n"), "/state");
    let (status, body) = http_get(&format!("{base}/metrics"), None).await?;
    assert_eq!(status, 200, "/metrics: {body}");

    let status = reactor.terminate(Duration::from_secs(10))?;
    assert!(
        status.success(),
        "exited with {status}:\n{}",
        reactor.log_tail(20)
    );
    assert!(
        reactor.log().contains("stopped while starting"),
        "{}",
        reactor.log_tail(20)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_reactor_and_its_endpoints_answer() -> Result<()> {
    // Windows stay open (no idle closing), so /state has some to show.
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("observability", &scenario).await?;
    let prometheus = env.services.prometheus.clone();
    // Unique per test run: the consumer group is a fresh random name.
    let instance = env.kafka().group_id.clone();
    let publisher = env.publisher().await?;
    let events = crate::events(11, 5_000);
    let mut reactor = env.start_reactor("a")?;

    let address = reactor.wait_for_http(Duration::from_secs(60)).await?;
    let base = format!("http://{address}");

    // Liveness, then readiness once the startup checks have passed.
    let (status, body) = http_get(&format!("{base}/healthz"), None).await?;
    assert_eq!((status, body.trim()), (200, "ok"), "/healthz");
    eventually("/readyz to answer 200", Duration::from_secs(60), || {
        let url = format!("{base}/readyz");
        async move {
            let (status, body) = http_get(&url, None).await?;
            ensure!(status == 200, "/readyz: {status} {body}");
            assert_eq!(body.trim(), "ready");
            Ok(Some(()))
        }
    })
    .await?;

    let _target = ScrapeTarget::register(&instance, &address)?;

    // Events in both formats, and one record that is dead-lettered.
    let _report = publisher
        .publish(
            FormatMix::Mixed {
                avro_share: 0.5,
                seed: 11,
            }
            .assign(events.clone()),
            None,
            None,
        )
        .await?;
    let topics = env.topics().clone();
    publisher
        .send_raw(
            &topics.engagement,
            Some(0),
            Some(b"campaign-000".as_slice()),
            b"\xff\xfe not an event",
        )
        .await?;
    let consumed = events.len() as f64 + 1.0;
    let inputs: BTreeSet<&str> = [&topics.content, &topics.engagement, &topics.conversion]
        .into_iter()
        .map(String::as_str)
        .collect();

    // Prometheus sees every consumed record, per input partition.
    let selector = format!(r#"instance="{instance}""#);
    eventually(
        "Prometheus to see every consumed record",
        Duration::from_secs(120),
        || {
            let promql = format!("reactor_events_consumed_total{{{selector}}}");
            let prometheus = prometheus.clone();
            let inputs = inputs.clone();
            async move {
                let samples = query(&prometheus, &promql).await?;
                for (labels, _) in &samples {
                    assert_eq!(label(labels, "job"), "reactor", "{labels:?}");
                    assert!(inputs.contains(label(labels, "topic")), "{labels:?}");
                    assert!(label(labels, "partition").parse::<i32>().is_ok());
                }
                let sum: f64 = samples.iter().map(|(_, v)| v).sum();
                ensure!(sum == consumed, "{promql} sums to {sum}, want {consumed}");
                Ok(Some(()))
            }
        },
    )
    .await?;
    assert_eq!(
        reactor.metric("reactor_events_consumed_total").await,
        Some(consumed),
        "/metrics"
    );

    // The labels the alert rules use, on the series Prometheus stored.
    let up = query(&prometheus, &format!(r#"up{{job="reactor",{selector}}}"#)).await?;
    assert_eq!(up.len(), 1, "up: {up:?}");
    assert_eq!(up[0].1, 1.0, "up: {up:?}");
    let version = reactor_version()?;
    let info = query(&prometheus, &format!("reactor_build_info{{{selector}}}")).await?;
    assert_eq!(info.len(), 1, "reactor_build_info: {info:?}");
    assert_eq!(label(&info[0].0, "version"), version, "{info:?}");
    assert_eq!(info[0].1, 1.0, "reactor_build_info: {info:?}");
    // Counted right after the record, possibly a scrape later.
    eventually(
        "reactor_dead_letters_total in Prometheus",
        Duration::from_secs(30),
        || {
            let promql = format!("reactor_dead_letters_total{{{selector}}}");
            let prometheus = prometheus.clone();
            let engagement = topics.engagement.clone();
            async move {
                let letters = query(&prometheus, &promql).await?;
                let want = vec![(engagement, "unrecognised_format".to_owned(), 1.0)];
                let got: Vec<(String, String, f64)> = letters
                    .iter()
                    .map(|(labels, value)| {
                        let (topic, reason) = (label(labels, "topic"), label(labels, "reason"));
                        (topic.to_owned(), reason.to_owned(), *value)
                    })
                    .collect();
                ensure!(got == want, "{promql}: {got:?}, want {want:?}");
                Ok(Some(()))
            }
        },
    )
    .await?;
    // Lag comes from librdkafka's statistics (every 5 s) once an offset is
    // committed; the lag and "no progress" rules join it on these labels.
    eventually(
        "reactor_consumer_lag_messages in Prometheus",
        Duration::from_secs(60),
        || {
            let promql = format!("reactor_consumer_lag_messages{{{selector}}}");
            let prometheus = prometheus.clone();
            let inputs = inputs.clone();
            async move {
                let samples = query(&prometheus, &promql).await?;
                for (labels, value) in &samples {
                    assert!(inputs.contains(label(labels, "topic")), "{labels:?}");
                    assert!(label(labels, "partition").parse::<i32>().is_ok());
                    assert!(*value >= 0.0, "{labels:?}: {value}");
                }
                Ok((!samples.is_empty()).then_some(()))
            }
        },
    )
    .await?;

    // The real /metrics passes promtool's lint.
    let (status, metrics) = http_get(&format!("{base}/metrics"), None).await?;
    assert_eq!(status, 200, "/metrics");
    promtool_check_metrics(&metrics).await?;

    // /state: every assigned input partition, its open windows and watermark.
    let (status, body) = http_get(&format!("{base}/state"), None).await?;
    assert_eq!(status, 200, "/state: {body}");
    let partitions = partition_states(&body)?;
    let want: BTreeSet<(String, i32)> = inputs
        .iter()
        .flat_map(|topic| (0..scenario.partitions).map(|p| ((*topic).to_owned(), p)))
        .collect();
    let got: BTreeSet<(String, i32)> = partitions.keys().cloned().collect();
    assert_eq!(got, want, "partitions on /state");
    let newest = crate::EVENTS_END.as_millis() - LATENESS_MS;
    for ((topic, partition), state) in &partitions {
        if let Some(watermark) = state.watermark {
            assert!(watermark <= newest, "{topic}/{partition}: {state:?}");
        }
        for &(start, series) in &state.open_windows {
            let watermark = state.watermark.unwrap_or(i64::MIN);
            assert_eq!(start % WINDOW_MS, 0, "{topic}/{partition}: {state:?}");
            assert!(
                start + WINDOW_MS > watermark,
                "closed window open: {state:?}"
            );
            assert!(series > 0, "{topic}/{partition}: {state:?}");
        }
        assert!(
            state.open_windows.is_empty() || state.watermark.is_some(),
            "{topic}/{partition}: open windows without a watermark: {state:?}"
        );
    }
    assert!(
        partitions.values().any(|s| !s.open_windows.is_empty()),
        "no open windows on /state: {body}"
    );

    // The gauges Prometheus scraped agree with /state (nothing moves any
    // more: every record is consumed and idle closing is off).
    eventually(
        "reactor_watermark_seconds and reactor_open_windows to match /state",
        Duration::from_secs(30),
        || {
            let prometheus = prometheus.clone();
            let selector = selector.clone();
            let partitions = &partitions;
            async move {
                let watermarks = by_partition(
                    query(
                        &prometheus,
                        &format!("reactor_watermark_seconds{{{selector}}}"),
                    )
                    .await?,
                )?;
                let open = by_partition(
                    query(&prometheus, &format!("reactor_open_windows{{{selector}}}")).await?,
                )?;
                for (key, state) in partitions {
                    ensure!(
                        open.get(key) == Some(&(state.open_windows.len() as f64)),
                        "{key:?}: reactor_open_windows {:?}, /state {state:?}",
                        open.get(key)
                    );
                    let want = state.watermark.map(|ms| ms as f64 / 1000.0);
                    ensure!(
                        watermarks.get(key).copied() == want,
                        "{key:?}: reactor_watermark_seconds {:?}, /state {state:?}",
                        watermarks.get(key)
                    );
                }
                Ok(Some(()))
            }
        },
    )
    .await?;

    reactor.stop()?;
    Ok(())
}

/// Labels of a series, without the metric name.
type Labels = BTreeMap<String, String>;

/// An answer of Prometheus' query API (only what this test reads).
#[derive(Debug, Deserialize)]
struct QueryResponse {
    status: String,
    data: QueryData,
}

#[derive(Debug, Deserialize)]
struct QueryData {
    result: Vec<QuerySample>,
}

/// One series of an instant vector: its labels and `[time, "value"]`.
#[derive(Debug, Deserialize)]
struct QuerySample {
    metric: Labels,
    value: (f64, String),
}

/// An instant query against Prometheus' HTTP API: each series' labels and value.
async fn query(prometheus: &str, promql: &str) -> Result<Vec<(Labels, f64)>> {
    let url = format!("{prometheus}/api/v1/query");
    let (status, body) = http_get(&url, Some(promql)).await?;
    ensure!(status == 200, "{promql}: HTTP {status}: {body}");
    let response: QueryResponse =
        serde_json::from_str(&body).with_context(|| format!("{promql}: {body}"))?;
    ensure!(response.status == "success", "{promql}: {body}");
    response
        .data
        .result
        .into_iter()
        .map(|sample| Ok((sample.metric, sample.value.1.parse()?)))
        .collect()
}

/// A label's value, or "" when the series has no such label.
fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map_or("", String::as_str)
}

/// Query results keyed by their `topic` and `partition` labels.
fn by_partition(samples: Vec<(Labels, f64)>) -> Result<BTreeMap<(String, i32), f64>> {
    samples
        .into_iter()
        .map(|(labels, value)| {
            let partition = label(&labels, "partition").parse()?;
            Ok(((label(&labels, "topic").to_owned(), partition), value))
        })
        .collect()
}

/// Pipes `text` to `promtool check metrics`; fails on any lint problem.
async fn promtool_check_metrics(text: &str) -> Result<()> {
    let text = text.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut promtool = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context(
                "starting promtool (Debian package prometheus; scripts/services-start prometheus installs it)",
            )?;
        // promtool reads all of its input before it writes anything.
        promtool
            .stdin
            .take()
            .context("promtool's stdin")?
            .write_all(text.as_bytes())?;
        let out = promtool.wait_with_output()?;
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            out.status.success() && report.trim().is_empty(),
            "promtool check metrics ({}):\n{report}",
            out.status
        );
        Ok(())
    })
    .await?
}

/// The version `reactor --version` prints, which `reactor_build_info` carries.
fn reactor_version() -> Result<String> {
    let out = std::process::Command::new(reactor_binary()?)
        .arg("--version")
        .output()?;
    ensure!(out.status.success(), "reactor --version failed");
    let text = String::from_utf8(out.stdout)?;
    text.split_whitespace()
        .nth(1)
        .map(str::to_owned)
        .with_context(|| format!("no version in {text:?}"))
}

/// One entry of `/state` (`PartitionState`), with the fields this test reads.
#[derive(Debug, Deserialize)]
struct PartitionState {
    topic: String,
    partition: i32,
    pipeline: PipelineState,
}

/// What `/state` says about one partition's pipeline (`PipelineState`).
#[derive(Debug, Deserialize)]
struct PipelineState {
    /// Start (ms) and number of series of each open window.
    open_windows: Vec<(i64, u64)>,
    /// Milliseconds; null before the partition's first event.
    watermark: Option<i64>,
}

/// `/state`'s body, `[{topic, partition, pipeline: {open_windows, watermark, …}}]`,
/// keyed by topic and partition.
fn partition_states(body: &str) -> Result<BTreeMap<(String, i32), PipelineState>> {
    let json: serde_json::Value =
        serde_json::from_str(body).with_context(|| format!("/state is not JSON: {body}"))?;
    let entries = json.as_array().context("/state is not an array")?;
    for entry in entries {
        let pipeline = &entry["pipeline"];
        // Present even when empty or null: Option would hide a missing key.
        ensure!(
            pipeline.get("open_windows").is_some() && pipeline.get("watermark").is_some(),
            "no pipeline.open_windows or pipeline.watermark in {entry}"
        );
    }
    let states: Vec<PartitionState> = serde_json::from_value(json)?;
    let mut partitions = BTreeMap::new();
    for state in states {
        let key = (state.topic, state.partition);
        let previous = partitions.insert(key, state.pipeline);
        ensure!(previous.is_none(), "a partition twice on /state: {body}");
    }
    Ok(partitions)
}

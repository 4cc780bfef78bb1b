//! `log.format = "json"`: every line Reactor writes is one JSON object, and
//! what a partition actor logs carries its `partition` span (topic and
//! partition), so a log collector can filter by partition.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::{eventually, TestEnv};
use reactor::generate::publish::FormatMix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_partition_span() -> Result<()> {
    let env = TestEnv::new("logs", &crate::without_idle_closing()).await?;
    let mut reactor = env.start_reactor_with_env("a", &[("REACTOR__LOG__FORMAT", "json")])?;
    reactor.wait_for_http(Duration::from_secs(60)).await?;
    let publisher = env.publisher().await?;
    let _report = publisher
        .publish(FormatMix::Json.assign(crate::events(3, 500)), None, None)
        .await?;

    let topic = env.topics().engagement.clone();
    eventually(
        "a partition actor's log line",
        Duration::from_secs(60),
        || {
            let log = reactor.log();
            let topic = topic.clone();
            async move { Ok((log.contains("partition started") && log.contains(&topic)).then_some(())) }
        },
    )
    .await?;
    reactor.stop()?;

    let log = reactor.log();
    let mut partition_lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not a JSON object: {line}"))?;
        ensure!(record.get("level").is_some(), "no level: {line}");
        ensure!(record.get("timestamp").is_some(), "no timestamp: {line}");
        if record["message"] == "partition started" {
            let span = &record["span"];
            ensure!(span["name"] == "partition", "no partition span: {line}");
            ensure!(span["topic"].is_string(), "no topic in the span: {line}");
            ensure!(
                span["partition"].is_number(),
                "no partition in the span: {line}"
            );
            partition_lines += 1;
        }
    }
    ensure!(partition_lines >= 1, "no partition started line in:\n{log}");
    Ok(())
}

//! The end-to-end benchmark (`scripts/bench`): per workload, a seeded
//! backlog of JSON engagement events published once to fresh topics, then
//! in one run (a) the consume-only ceiling (a plain rdkafka `BaseConsumer`
//! reading and discarding), (b) Reactor's full job (`reactor run`, release
//! build) from backlog to the last window written, and (c) `reactor replay`
//! of the whole range: events/s, rollup rows/s, CPU seconds per million
//! events, peak RSS, and the ratios to the ceiling. Not a test: it prints
//! figures for BENCHMARKS.md.
//!
//! ```sh
//! scripts/bench [--events N] [--minutes M] [--workload dense|sparse|both]
//!     [--reactor-env NAME=VALUE]... [--reactor-cpus LIST]
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use integration_tests::consume::consume_only;
use integration_tests::expected::{rollups, stored_count, written_count};
use integration_tests::{Scenario, TestEnv};
use reactor::event::EventTime;
use reactor::generate::publish::FormatMix;
use reactor::generate::{EventGenerator, GeneratorSettings};

const START_MS: i64 = 1_767_225_600_000;

/// `windows.idle_timeout` of the run: how long after the input ends its
/// last windows close.
const IDLE_TIMEOUT: &str = "2s";
const IDLE_TIMEOUT_S: f64 = 2.0;

struct Workload {
    name: &'static str,
    campaigns: usize,
    contents: usize,
    channels: usize,
}

const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "dense",
        campaigns: 5,
        contents: 10,
        channels: 4,
    },
    Workload {
        name: "sparse",
        campaigns: 20,
        contents: 50,
        channels: 4,
    },
];

/// Clock ticks of user and system CPU of `pid`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The pid of a local service started by `scripts/services-start`
/// (`kafka`, `clickhouse`), to report the CPU it takes from the same cores.
fn service_pid(name: &str) -> Option<u32> {
    let dir = std::env::var_os("REACTOR_SERVICES_DIR").map_or_else(
        || std::env::temp_dir().join("reactor-services"),
        std::path::PathBuf::from,
    );
    std::fs::read_to_string(dir.join("run").join(format!("{name}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// CPU seconds taken by Reactor (if given), the broker and ClickHouse, and
/// by the whole machine, between two samples.
#[derive(Clone, Copy, Default)]
struct CpuSample {
    reactor: u64,
    broker: u64,
    clickhouse: u64,
    busy: u64,
}

impl CpuSample {
    fn take(reactor: Option<u32>) -> Self {
        let ticks = |pid: Option<u32>| pid.and_then(cpu_ticks).unwrap_or(0);
        Self {
            reactor: ticks(reactor),
            broker: ticks(service_pid("kafka")),
            clickhouse: ticks(service_pid("clickhouse")),
            busy: machine_busy_ticks().unwrap_or(0),
        }
    }

    /// Seconds of CPU since `earlier`: (reactor, broker, ClickHouse, machine).
    fn since(self, earlier: Self) -> (f64, f64, f64, f64) {
        let s = |now: u64, then: u64| now.saturating_sub(then) as f64 / 100.0;
        (
            s(self.reactor, earlier.reactor),
            s(self.broker, earlier.broker),
            s(self.clickhouse, earlier.clickhouse),
            s(self.busy, earlier.busy),
        )
    }
}

/// Clock ticks the whole machine spent busy (not idle, not waiting for I/O).
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?;
    let fields: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3)? + fields.get(4)?;
    Some(fields.iter().take(8).sum::<u64>() - idle)
}

/// A `/proc/<pid>/status` figure in KiB (`VmHWM`, `VmRSS`), as MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident set of `pid`, MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmHWM")
}

/// Resident set of `pid` now, MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmRSS")
}

/// The resident set when each tenth of the backlog had been consumed, from
/// samples of (events consumed, MiB): memory should follow the keys and the
/// open windows, not how much has been read.
fn rss_by_tenth(samples: &[(u64, f64)], count: u64) -> String {
    (1..=10)
        .filter_map(|tenth| {
            let (_, mib) = samples.iter().find(|(n, _)| n * 10 >= count * tenth)?;
            Some(format!("{}% {mib:.0}", tenth * 10))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct Figures {
    /// Over the backlog: from the first record to the last consumed.
    events_per_s: f64,
    /// From the first record to the last row written, less the idle
    /// timeout that closes the last windows once the input ends.
    to_last_row_per_s: f64,
    rows_per_s: f64,
    cpu_s_per_m: f64,
    peak_rss_mib: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut events: u64 = 500_000;
    let mut minutes: u64 = 30;
    let mut which = "both".to_owned();
    let mut reactor_env = Vec::new();
    let mut cpus: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--events" => events = args.next().context("--events N")?.parse()?,
            "--minutes" => minutes = args.next().context("--minutes M")?.parse()?,
            "--workload" => which = args.next().context("--workload NAME")?,
            "--reactor-env" => {
                let pair = args.next().context("--reactor-env NAME=VALUE")?;
                let (name, value) = pair.split_once('=').context("--reactor-env NAME=VALUE")?;
                reactor_env.push((name.to_owned(), value.to_owned()));
            }
            "--reactor-cpus" => cpus = Some(args.next().context("--reactor-cpus LIST")?),
            "-h" | "--help" => {
                println!("usage: bench [--events N] [--minutes M] [--workload dense|sparse|both] [--reactor-env NAME=VALUE]... [--reactor-cpus LIST]");
                return Ok(());
            }
            other => bail!("unknown option {other}"),
        }
    }
    let binary = std::env::var("REACTOR_BIN")
        .context("set REACTOR_BIN to a release build of reactor (scripts/bench does)")?;
    println!(
        "reactor binary: {binary}; {events} events per workload over {minutes} minutes of event time; Reactor's defaults ({}) but idle_timeout {IDLE_TIMEOUT}, then --reactor-env",
        default_intervals()?.map(|(k, v)| format!("{k}={v}")).join(", ")
    );
    let mut table = Vec::new();
    for workload in WORKLOADS
        .iter()
        .filter(|w| which == "both" || which == w.name)
    {
        table.push((
            workload.name,
            run_workload(workload, events, minutes, &reactor_env, cpus.as_deref()).await?,
        ));
    }
    println!();
    println!("| workload | consume-only events/s | run: over the backlog, events/s | ratio | run: to the last row, events/s | ratio | rollup rows/s | CPU s per M events | peak RSS MiB | replay events/s | replay ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, (ceiling, run, replay)) in table {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} % | {:.0} | {:.0} % | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} % |",
            ceiling,
            run.events_per_s,
            100.0 * run.events_per_s / ceiling,
            run.to_last_row_per_s,
            100.0 * run.to_last_row_per_s / ceiling,
            run.rows_per_s,
            run.cpu_s_per_m,
            run.peak_rss_mib,
            replay,
            100.0 * replay / ceiling
        );
    }
    Ok(())
}

async fn run_workload(
    workload: &Workload,
    count: u64,
    minutes: u64,
    reactor_env: &[(String, String)],
    cpus: Option<&str>,
) -> Result<(f64, Figures, f64)> {
    let scenario = Scenario {
        partitions: 4,
        idle_timeout: IDLE_TIMEOUT,
        derived_format: "json",
        ..Scenario::default()
    };
    let env = TestEnv::new(&format!("bench-{}", workload.name), &scenario).await?;
    let events: Vec<_> = EventGenerator::new(GeneratorSettings {
        seed: 42,
        count,
        start: EventTime::from_millis(START_MS),
        span: Duration::from_secs(minutes * 60),
        disorder: Duration::from_secs(5),
        campaigns: workload.campaigns,
        contents_per_campaign: workload.contents,
        channels: ["web", "email", "social", "search"][..workload.channels]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        mix: [0, 1, 0],
        ..GeneratorSettings::default()
    })
    .collect();
    let expected_rows = rollups(&events, 60).len() as u64;
    let publisher = env.publisher().await?;
    let began = Instant::now();
    let report = publisher
        .publish(FormatMix::Json.assign(events), None, None)
        .await?;
    println!(
        "[{}] published {} events in {:.1?}; {expected_rows} rollup rows expected",
        workload.name,
        report.messages,
        began.elapsed()
    );

    let kafka = env.config.kafka.clone();
    let topic = env.topics().engagement.clone();
    // The best of three: a fraction of a second each, so noisy.
    let mut ceiling: f64 = 0.0;
    for _ in 0..3 {
        let before = CpuSample::take(None);
        let own_before = cpu_ticks(std::process::id()).unwrap_or(0);
        let (kafka, topic) = (kafka.clone(), topic.clone());
        let read =
            tokio::task::spawn_blocking(move || consume_only(&kafka, &topic, count)).await??;
        let (took, per_partition) = (read.took, read.per_partition);
        let read = read.read;
        let (_, broker, _, busy) = CpuSample::take(None).since(before);
        // The plain reader's own CPU: librdkafka's threads and the poll loop.
        let reader = cpu_ticks(std::process::id())
            .unwrap_or(0)
            .saturating_sub(own_before) as f64
            / 100.0;
        let rate = read as f64 / took.as_secs_f64();
        ceiling = ceiling.max(rate);
        println!(
            "[{}] consume-only: {read} messages in {took:.2?} ({rate:.0}/s; per partition {per_partition:?}); CPU: reader {reader:.2}s ({:.2}s per million), broker {broker:.1}s, machine {busy:.1}s",
            workload.name,
            reader / (read as f64 / 1e6),
        );
    }

    let defaults = default_intervals()?;
    let mut vars: Vec<(&str, &str)> = vec![("RUST_LOG", "warn,reactor=info")];
    vars.extend(defaults.iter().map(|(k, v)| (*k, v.as_str())));
    // Last, so that they win.
    vars.extend(reactor_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut reactor = env.start_reactor_with_env("run", &vars)?;
    let address = reactor.wait_for_http(Duration::from_secs(120)).await?;
    let pid = reactor.pid();
    if let Some(cpus) = cpus {
        // Every thread, before any record is read.
        let status = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "taskset -a -p -c {cpus} {pid} failed");
    }
    let client = env.clickhouse();
    let (mut t0, mut cpu0) = (None, CpuSample::default());
    let mut rss_samples: Vec<(u64, f64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1800);
    let consumed_at = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "reactor did not consume the backlog"
        );
        let consumed = integration_tests::scrape(&address)
            .await
            .ok()
            .and_then(|m| m.sum("reactor_events_consumed_total"))
            .unwrap_or(0.0) as u64;
        if consumed > 0 && t0.is_none() {
            t0 = Some(Instant::now());
            cpu0 = CpuSample::take(Some(pid));
        }
        if consumed > 0 {
            rss_samples.push((consumed, rss_mib(pid).unwrap_or(0.0)));
        }
        if consumed >= count {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let t0 = t0.context("nothing consumed")?;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the last windows were never written"
        );
        // The cheap count first: `FINAL` every 50 ms would take ClickHouse
        // CPU from the run it measures.
        if written_count(&client).await.unwrap_or(0) >= expected_rows
            && stored_count(&client).await.unwrap_or(0) >= expected_rows
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written_at = Instant::now();
    let (cpu, broker, clickhouse, busy) = CpuSample::take(Some(pid)).since(cpu0);
    let rss = peak_rss_mib(pid).unwrap_or(0.0);
    let rss_end = rss_mib(pid).unwrap_or(0.0);
    let inserts = inserts(&address).await.unwrap_or_default();
    reactor.stop()?;
    let consume_s = consumed_at.duration_since(t0).as_secs_f64();
    let total_s = written_at.duration_since(t0).as_secs_f64();
    println!(
        "[{}] reactor run: all consumed after {consume_s:.2}s, last window written after {total_s:.2}s (idle timeout {IDLE_TIMEOUT_S} s included); CPU: reactor {cpu:.1}s, broker {broker:.1}s, ClickHouse {clickhouse:.1}s, machine {busy:.1}s; peak RSS {rss:.0} MiB",
        workload.name
    );
    println!("[{}] ClickHouse INSERTs: {inserts}", workload.name);
    // What the machine can spend per event at half the ceiling, what the
    // broker and ClickHouse took of it for this run's input and output, and
    // so what was left for Reactor against what it took.
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let per_m = |s: f64| s / (count as f64 / 1e6);
    let budget = cores / (ceiling / 2.0 / 1e6);
    let services = per_m(broker) + per_m(clickhouse);
    println!(
        "[{}] CPU s per million events: at 50 % of the ceiling the {cores} cores have {budget:.2}; the broker took {:.2} and ClickHouse {:.2}, which leaves {:.2} for Reactor; Reactor took {:.2}",
        workload.name,
        per_m(broker),
        per_m(clickhouse),
        budget - services,
        per_m(cpu),
    );
    println!(
        "[{}] RSS MiB by share of the backlog consumed: {}; after the last window: {rss_end:.0}",
        workload.name,
        rss_by_tenth(&rss_samples, count)
    );
    let run = Figures {
        events_per_s: count as f64 / consume_s,
        to_last_row_per_s: count as f64 / (total_s - IDLE_TIMEOUT_S).max(consume_s),
        rows_per_s: expected_rows as f64 / (total_s - IDLE_TIMEOUT_S).max(consume_s),
        cpu_s_per_m: cpu / (count as f64 / 1e6),
        peak_rss_mib: rss,
    };

    let fresh = format!("{}_replay", env.config.clickhouse.database);
    let from = EventTime::from_millis(START_MS - 60_000).to_rfc3339();
    let to = EventTime::from_millis(START_MS + (minutes as i64 + 10) * 60_000).to_rfc3339();
    let began = Instant::now();
    let summary = env
        .reactor_command(
            &[
                "replay",
                "--from",
                &from,
                "--to",
                &to,
                "--topics",
                "engagement",
            ],
            &[
                vars.as_slice(),
                &[("REACTOR__CLICKHOUSE__DATABASE", fresh.as_str())],
            ]
            .concat(),
        )
        .await?;
    let replay_s = began.elapsed().as_secs_f64();
    println!("[{}] replay: {replay_s:.2}s\n{summary}", workload.name);
    let replay_client = reactor::sink::clickhouse::client(&env.config.clickhouse, Some(&fresh))?;
    let _dropped = replay_client
        .query(&format!("DROP DATABASE IF EXISTS {fresh}"))
        .execute()
        .await;
    Ok((ceiling, run, count as f64 / replay_s))
}

/// Reactor's own defaults (`config/default.toml`) for what the test
/// environment shortens so that tests finish quickly (checkpoints every
/// second, flushes every 200 ms): the benchmark runs Reactor as users do,
/// the idle timeout excepted.
fn default_intervals() -> Result<[(&'static str, String); 2]> {
    let defaults = reactor::config::load(None, std::iter::empty())?;
    let text = |d: Duration| format!("{}ms", d.as_millis());
    Ok([
        (
            "REACTOR__PIPELINE__CHECKPOINT_INTERVAL",
            text(defaults.pipeline.checkpoint_interval),
        ),
        (
            "REACTOR__CLICKHOUSE__FLUSH_INTERVAL",
            text(defaults.clickhouse.flush_interval),
        ),
    ])
}

/// How many INSERTs Reactor made per table, and their mean size (every
/// INSERT is a part, much of ClickHouse's CPU here), and how many derived
/// events of each kind it published.
async fn inserts(address: &str) -> Result<String> {
    let metrics = integration_tests::scrape(address).await?;
    let per_table = |name: &str| -> std::collections::BTreeMap<String, f64> {
        metrics
            .named(name)
            .filter_map(|s| Some((s.labels.get("table")?.clone(), s.value)))
            .collect()
    };
    let counts = per_table(&format!(
        "{}_count",
        reactor::telemetry::metrics::INSERT_DURATION
    ));
    let rows = per_table(reactor::telemetry::metrics::ROWS_WRITTEN);
    let derived: Vec<String> = metrics
        .named(reactor::telemetry::metrics::DERIVED_EVENTS)
        .filter_map(|s| Some(format!("{} {:.0}", s.labels.get("kind")?, s.value)))
        .collect();
    let inserts = counts
        .iter()
        .map(|(table, n)| {
            let mean = rows.get(table).copied().unwrap_or(0.0) / n.max(1.0);
            format!("{table} {n:.0} (mean {mean:.0} rows)")
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "{inserts}; derived events published: {}",
        derived.join(", ")
    ))
}

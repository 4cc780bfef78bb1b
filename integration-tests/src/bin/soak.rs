//! The chaos soak: Reactor replicas killed, restarted, added and removed,
//! ClickHouse paused and its answers dropped, while the seeded generator
//! publishes at a steady rate; then every rollup row, all columns, checked
//! against a golden single-instance run over the same input, derived events
//! against the golden run's by id, and dead letters and late records
//! against the golden run's by source offset.
//!
//! ```sh
//! scripts/soak [--minutes N] [--instances K] [--rate EVENTS_PER_SECOND] [--seed S]
//! ```
//!
//! Needs the local services (`scripts/soak` starts them) and a built
//! `reactor` binary. Exits non-zero on any difference.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use integration_tests::expected::{rollups, stored_count};
use integration_tests::proxy::{Fault, FaultProxy, Scope};
use integration_tests::rows::{differences as row_differences, full_rows};
use integration_tests::{header, read_all, ReactorProcess, Scenario, TestEnv};
use rand::{Rng, SeedableRng};
use rdkafka::message::Message as _;
use reactor::event::{EngagementEvent, EngagementKind, Event, EventTime};
use reactor::generate::publish::FormatMix;
use reactor::generate::{EventGenerator, GeneratorSettings};

/// Start of the event time, 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;
/// Event time runs this many times faster than the wall clock.
const SPEEDUP: u64 = 10;
const WINDOW_SECS: u32 = 60;

#[derive(Debug)]
struct Options {
    minutes: f64,
    instances: usize,
    rate: f64,
    seed: u64,
}

fn options() -> Result<Options> {
    let mut options = Options {
        minutes: 3.0,
        instances: 3,
        rate: 1_000.0,
        seed: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--minutes" => options.minutes = value()?.parse()?,
            "--instances" => options.instances = value()?.parse()?,
            "--rate" => options.rate = value()?.parse()?,
            "--seed" => options.seed = value()?.parse()?,
            "-h" | "--help" => {
                println!("usage: soak [--minutes N] [--instances K] [--rate EVENTS_PER_SECOND] [--seed S]");
                std::process::exit(0);
            }
            other => bail!("unknown option {other} (see --help)"),
        }
    }
    anyhow::ensure!(options.instances >= 2, "--instances must be at least 2");
    Ok(options)
}

/// What the chaos did.
#[derive(Debug, Default)]
struct Tally {
    kills: u64,
    restarts: u64,
    joins: u64,
    leaves: u64,
    outages: u64,
    dropped_answers: u64,
}

/// Waits until `client`'s rollups hold `want` rows and have stopped changing.
async fn settled(client: &clickhouse::Client, want: u64, timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut last = (0, Instant::now());
    loop {
        let rows = stored_count(client).await.unwrap_or(0);
        if rows != last.0 {
            last = (rows, Instant::now());
        }
        if rows >= want && last.1.elapsed() > Duration::from_secs(5) {
            return Ok(rows);
        }
        if Instant::now() > deadline {
            bail!(
                "{rows} rows of {want} after {timeout:?}; the last new row {:.0?} ago",
                last.1.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Ids of the derived events on `topic`, and how many copies were read.
async fn derived_ids(env: &TestEnv, topic: &str) -> Result<(BTreeSet<String>, usize)> {
    let kafka = env.config.kafka.clone();
    let topic = topic.to_owned();
    let messages =
        tokio::task::spawn_blocking(move || read_all(&kafka, &topic, Duration::from_secs(120)))
            .await??;
    let copies = messages.len();
    let ids = messages
        .iter()
        .map(|m| {
            let value: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default())?;
            Ok(value["id"].as_str().unwrap_or_default().to_owned())
        })
        .collect::<Result<BTreeSet<_>>>()?;
    Ok((ids, copies))
}

/// (source partition, source offset, kind) of the records on a side topic.
async fn side_records(
    env: &TestEnv,
    topic: &str,
    kind_header: &str,
) -> Result<BTreeSet<(String, String, String)>> {
    let kafka = env.config.kafka.clone();
    let topic = topic.to_owned();
    let messages =
        tokio::task::spawn_blocking(move || read_all(&kafka, &topic, Duration::from_secs(120)))
            .await??;
    Ok(messages
        .iter()
        .map(|m| {
            (
                format!(
                    "{}/{}",
                    header(m, "reactor.source.topic"),
                    header(m, "reactor.source.partition")
                ),
                header(m, "reactor.source.offset"),
                header(m, kind_header),
            )
        })
        .collect())
}

/// Stops a replica with SIGTERM, as an orchestrator scaling down does. A
/// replica started a moment ago may not have its signal handlers yet (the
/// signal then ends it before it has read anything): that is a stop too.
/// So is a drain that ClickHouse being down cut short at its deadline,
/// which the replica reports with a failing exit status.
fn leave(process: &mut ReactorProcess) -> Result<()> {
    use std::os::unix::process::ExitStatusExt as _;
    let status = process.terminate(Duration::from_secs(60))?;
    let cut_short = || {
        process
            .log()
            .contains("did not drain within pipeline.drain_timeout")
    };
    anyhow::ensure!(
        status.success() || status.signal() == Some(15) || cut_short(),
        "a replica leaving exited with {status}:\n{}",
        process.log_tail(30)
    );
    Ok(())
}

fn start(env: &TestEnv, label: &str, vars: &[(&str, String)]) -> Result<ReactorProcess> {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.start_reactor_with_env(label, &vars)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let options = options()?;
    let seconds = options.minutes * 60.0;
    let count = (options.rate * seconds) as u64;
    println!("soak: {options:?}: {count} events over {seconds:.0}s");
    let scenario = Scenario {
        partitions: 4,
        idle_timeout: "5s",
        late_policy: "side-topic",
        derived_format: "json",
        ..Scenario::default()
    };
    let env = TestEnv::new("soak", &scenario).await?;
    let proxy = FaultProxy::start(&env.services.clickhouse).await?;
    let via_proxy = vec![("REACTOR__CLICKHOUSE__URL", proxy.url())];

    let mut events: Vec<Event> = EventGenerator::new(GeneratorSettings {
        seed: options.seed,
        count,
        start: EventTime::from_millis(START_MS),
        span: Duration::from_secs_f64(seconds * SPEEDUP as f64),
        disorder: Duration::from_secs(5),
        campaigns: 20,
        contents_per_campaign: 10,
        ..GeneratorSettings::default()
    })
    .collect();
    // Now and then an event from far behind the stream: late.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed);
    for i in (5_000..events.len()).step_by(5_000) {
        let at = events[i].occurred_at().as_millis() - 20 * 60_000;
        events.insert(
            i,
            Event::Engagement(EngagementEvent {
                event_id: format!("late-{i}"),
                occurred_at: EventTime::from_millis(at),
                content_id: "content-000-000".into(),
                campaign_id: "campaign-000".into(),
                channel: "web".into(),
                user_id: "late".into(),
                kind: EngagementKind::View,
                dwell_ms: None,
            }),
        );
    }
    let expected_end = events
        .iter()
        .map(Event::occurred_at)
        .max()
        .context("no events")?;
    let publisher = env.publisher().await?;
    let publish_events = events.clone();
    let publisher_topic = env.topics().engagement.clone();
    let rate = options.rate;
    let seed = options.seed;
    let publishing = tokio::spawn(async move {
        let mix = FormatMix::Mixed {
            avro_share: 0.5,
            seed,
        };
        // In chunks, each followed by a record no decoder accepts: dead
        // letters.
        let engagement = publisher_topic.clone();
        let mut messages = 0;
        for (i, chunk) in publish_events.chunks(10_000).enumerate() {
            let report = publisher
                .publish(mix.assign(chunk.to_vec()), Some(rate), None)
                .await?;
            messages += report.messages;
            let key = format!("garbage-{i}");
            publisher
                .send_raw(&engagement, None, Some(key.as_bytes()), b"\x00\x00garbage")
                .await?;
        }
        anyhow::Ok((publisher, messages))
    });

    // The chaos.
    let mut tally = Tally::default();
    let mut instances: Vec<Option<ReactorProcess>> = Vec::new();
    let mut generation = 0u32;
    let mut label = |i: usize| {
        generation += 1;
        format!("{}{}", (b'a' + i as u8) as char, generation)
    };
    for i in 0..options.instances - 1 {
        instances.push(Some(start(&env, &label(i), &via_proxy)?));
    }
    instances.push(None);
    let began = Instant::now();
    let mut next_kill = began + Duration::from_secs_f64(rng.random_range(0.0..6.0));
    let mut restarts: Vec<(Instant, usize)> = Vec::new();
    let mut next_membership = began + Duration::from_secs(120);
    let mut next_outage = began + Duration::from_secs(45);
    let mut next_drop = began + Duration::from_secs(20);
    let mut outage_until: Option<Instant> = None;
    let mut drop_until: Option<Instant> = None;
    while !publishing.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Instant::now();
        if now >= next_kill {
            let alive: Vec<usize> = (0..instances.len())
                .filter(|&i| instances[i].is_some() && !restarts.iter().any(|(_, r)| *r == i))
                .collect();
            if let Some(&victim) = alive.get(rng.random_range(0..alive.len().max(1))) {
                if let Some(mut process) = instances[victim].take() {
                    process.kill();
                    tally.kills += 1;
                    restarts.push((
                        now + Duration::from_secs_f64(rng.random_range(0.0..3.0)),
                        victim,
                    ));
                }
            }
            next_kill = now + Duration::from_secs_f64(rng.random_range(0.0..6.0));
        }
        let due: Vec<usize> = restarts
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, i)| *i)
            .collect();
        restarts.retain(|(at, _)| *at > now);
        for i in due {
            instances[i] = Some(start(&env, &label(i), &via_proxy)?);
            tally.restarts += 1;
        }
        if now >= next_membership {
            let last = instances.len() - 1;
            if restarts.iter().all(|(_, r)| *r != last) {
                match instances[last].take() {
                    Some(mut process) => {
                        leave(&mut process)?;
                        tally.leaves += 1;
                    }
                    None => {
                        instances[last] = Some(start(&env, &label(last), &via_proxy)?);
                        tally.joins += 1;
                    }
                }
            }
            next_membership = now + Duration::from_secs(120);
        }
        if now >= next_outage && outage_until.is_none() && drop_until.is_none() {
            proxy.set(Fault::Pause, Scope::All);
            tally.outages += 1;
            outage_until = Some(now + Duration::from_secs(15));
        }
        if outage_until.is_some_and(|t| now >= t) {
            proxy.heal();
            outage_until = None;
            next_outage = now + Duration::from_secs(90);
        }
        if now >= next_drop && outage_until.is_none() && drop_until.is_none() {
            proxy.set(Fault::DropResponse, Scope::Inserts);
            drop_until = Some(now + Duration::from_secs(2));
        }
        if drop_until.is_some_and(|t| now >= t) {
            proxy.heal();
            drop_until = None;
            next_drop = now + Duration::from_secs(20);
        }
    }
    proxy.heal();
    let (_publisher, published) = publishing.await??;
    tally.dropped_answers = proxy
        .counts()
        .dropped_after_apply
        .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "chaos over after {:.0?}: {published} events published; {tally:?}",
        began.elapsed()
    );
    for (i, slot) in instances.iter_mut().enumerate() {
        if slot.is_none() && i + 1 < options.instances {
            *slot = Some(start(&env, &label(i), &via_proxy)?);
        }
    }

    // Everything closes by idle timeout once the input stops.
    let expected = rollups(
        &events
            .iter()
            .filter(|e| !matches!(e, Event::Engagement(x) if x.user_id == "late"))
            .cloned()
            .collect::<Vec<_>>(),
        i64::from(WINDOW_SECS),
    );
    let chaos_db = env.clickhouse();
    let rows = match settled(&chaos_db, expected.len() as u64, Duration::from_secs(300)).await {
        Ok(rows) => rows,
        Err(e) => {
            // Say whether the replicas own anything: a group that stopped
            // forming (README, "What Tansu can and cannot do") owns nothing.
            let mut owned = Vec::new();
            for process in instances.iter().flatten() {
                let address = process.http_address().unwrap_or_default();
                let partitions = integration_tests::partitions_of(&address)
                    .await
                    .map_or_else(|e| format!("/state: {e}"), |p| p.len().to_string());
                owned.push(format!("{address}: {partitions}"));
            }
            return Err(e.context(format!(
                "the chaos run did not finish; partitions owned by each live replica: {}",
                owned.join(", ")
            )));
        }
    };
    let survivor = instances
        .iter_mut()
        .flatten()
        .next()
        .context("no instance left")?;
    env.assert_rollups_exact(survivor, &expected, WINDOW_SECS, Duration::from_secs(60))
        .await
        .context("the chaos run against the published events")?;
    println!("chaos run: {rows} rows exact against the published events (counts, sums, min, max, means, trend, anomaly)");
    let _ = expected_end;

    // The golden run: one instance, no faults, same input, its own group,
    // database and output topics.
    let golden_db_name = format!("{}_golden", env.config.clickhouse.database);
    let golden = |name: &str| format!("{name}.golden");
    let t = env.topics();
    let outputs = [
        golden(&t.rollups),
        golden(&t.trends),
        golden(&t.anomalies),
        golden(&t.dead_letter),
        golden(&t.late),
    ];
    let names: Vec<&str> = outputs.iter().map(String::as_str).collect();
    reactor::kafka::admin::create_topics(env.kafka(), &names, scenario.partitions, 1).await?;
    let golden_vars = vec![
        (
            "REACTOR__KAFKA__GROUP_ID",
            format!("{}-golden", env.config.kafka.group_id),
        ),
        ("REACTOR__CLICKHOUSE__DATABASE", golden_db_name.clone()),
        ("REACTOR__TOPICS__ROLLUPS", outputs[0].clone()),
        ("REACTOR__TOPICS__TRENDS", outputs[1].clone()),
        ("REACTOR__TOPICS__ANOMALIES", outputs[2].clone()),
        ("REACTOR__TOPICS__DEAD_LETTER", outputs[3].clone()),
        ("REACTOR__TOPICS__LATE", outputs[4].clone()),
    ];
    let mut golden_process = start(&env, "golden", &golden_vars)?;
    let golden_db =
        reactor::sink::clickhouse::client(&env.config.clickhouse, Some(&golden_db_name))?;
    let _golden_rows = settled(&golden_db, expected.len() as u64, Duration::from_secs(300)).await?;

    let (chaos_rows, golden_rows) = (full_rows(&chaos_db).await?, full_rows(&golden_db).await?);
    let (count, mut differences) = row_differences(&chaos_rows, &golden_rows, 30);
    println!(
        "rollups: {} rows compared, every column, {} differences",
        golden_rows.len(),
        count
    );
    for (i, (name, golden_name)) in [&t.rollups, &t.trends, &t.anomalies]
        .into_iter()
        .zip(&outputs[..3])
        .enumerate()
    {
        let (chaos, copies) = derived_ids(&env, name).await?;
        let (want, _) = derived_ids(&env, golden_name).await?;
        println!(
            "derived {}: {} ids in the golden run, {} in the chaos run ({copies} copies read)",
            ["rollup", "trend", "anomaly"][i],
            want.len(),
            chaos.len()
        );
        if chaos != want {
            differences.push(format!(
                "{name}: {} ids missing, {} extra",
                want.difference(&chaos).count(),
                chaos.difference(&want).count()
            ));
        }
    }
    for (name, golden_name, kind) in [
        (&t.dead_letter, &outputs[3], "reactor.error.kind"),
        (&t.late, &outputs[4], "reactor.late.kind"),
    ] {
        let chaos = side_records(&env, name, kind).await?;
        let want = side_records(&env, golden_name, kind).await?;
        println!(
            "{name}: {} records in the golden run, {} in the chaos run",
            want.len(),
            chaos.len()
        );
        if chaos != want {
            differences.push(format!("{name}: the records differ from the golden run's"));
        }
    }
    golden_process.stop()?;
    for process in instances.iter_mut().flatten() {
        process.stop()?;
    }
    if differences.is_empty() {
        let _dropped = golden_db
            .query(&format!("DROP DATABASE IF EXISTS {golden_db_name}"))
            .execute()
            .await;
    }
    if differences.is_empty() {
        println!(
            "soak passed: {} kills, {} restarts, {} joins, {} leaves, {} outages, {} answers dropped; {} rows, 0 differences",
            tally.kills, tally.restarts, tally.joins, tally.leaves, tally.outages, tally.dropped_answers, golden_rows.len()
        );
        Ok(())
    } else {
        for d in differences.iter().take(30) {
            eprintln!("{d}");
        }
        bail!("soak failed: {} differences", differences.len())
    }
}

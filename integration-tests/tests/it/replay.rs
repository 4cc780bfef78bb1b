//! `reactor replay` against a live run over the same seeded input, every
//! column compared: a replay of the whole range into a fresh database, a
//! replay of a middle sub-range into the live database while the live
//! service keeps consuming new events, and a replay with corrections
//! published after the fact that changes exactly the corrected campaign's
//! rows.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::expected::{self, rollups, Key};
use integration_tests::rows::{differences, full_rows, FullRow};
use integration_tests::TestEnv;
use reactor::event::{ConversionEvent, Event, EventTime};
use reactor::generate::publish::FormatMix;

const MINUTE: i64 = 60_000;

fn at(minutes: i64) -> String {
    EventTime::from_millis(crate::START_MS + minutes * MINUTE).to_rfc3339()
}

/// Rows whose window starts in [`from`, `to`) minutes, and that `keep`.
fn within(
    rows: &BTreeMap<Key, FullRow>,
    from: i64,
    to: i64,
    keep: impl Fn(&FullRow) -> bool,
) -> BTreeMap<Key, FullRow> {
    let seconds = |m: i64| u32::try_from((crate::START_MS + m * MINUTE) / 1000).unwrap_or(0);
    rows.iter()
        .filter(|(_, r)| r.window_start >= seconds(from) && r.window_start < seconds(to) && keep(r))
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect()
}

fn assert_same(got: &BTreeMap<Key, FullRow>, want: &BTreeMap<Key, FullRow>, what: &str) {
    let (count, lines) = differences(got, want, 10);
    assert_eq!(
        count,
        0,
        "{what}: {count} rows differ:\n{}",
        lines.join("\n")
    );
}

/// The numbers on a summary line: "  rows written: N  (new A, changed B, unchanged C)".
fn rows_line(summary: &str) -> (u64, u64, u64, u64) {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("rows "))
        .unwrap_or_default();
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [rows, new, changed, unchanged] => (rows, new, changed, unchanged),
        _ => panic!("no rows line in:\n{summary}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_write_exactly_what_live_wrote() -> anyhow::Result<()> {
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("replay", &scenario).await?;
    let events = crate::events(17, 40_000);
    let mut reactor = env.start_reactor("live")?;
    let publisher = env.publisher().await?;
    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 17,
    };
    let _report = publisher
        .publish(mix.assign(events.clone()), None, None)
        .await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(
        &mut reactor,
        &rollups(&events, 60),
        60,
        Duration::from_secs(180),
    )
    .await?;
    let live = full_rows(&env.clickhouse()).await?;
    // The generator's disorder puts a few events just before the start.
    let range = within(&live, -2, 20, |_| true);
    println!(
        "live: {} rows, {} in the 20 minutes replayed",
        live.len(),
        range.len()
    );

    // The whole range, into a fresh database: the same rows, every column.
    let fresh = format!("{}_fresh", env.config.clickhouse.database);
    let summary = env
        .reactor_command(
            &["replay", "--from", &at(-2), "--to", &at(20)],
            &[("REACTOR__CLICKHOUSE__DATABASE", &fresh)],
        )
        .await?;
    let fresh_client = reactor::sink::clickhouse::client(&env.config.clickhouse, Some(&fresh))?;
    let replayed = full_rows(&fresh_client).await?;
    assert_same(
        &replayed,
        &range,
        "whole-range replay into a fresh database",
    );
    assert_eq!(rows_line(&summary).1, range.len() as u64, "{summary}");
    println!("whole range: {} rows, all equal", replayed.len());

    // A middle sub-range into the live database while the live service
    // consumes new, later events: nothing changes.
    let later = reactor::generate::EventGenerator::new(reactor::generate::GeneratorSettings {
        seed: 18,
        count: 20_000,
        start: EventTime::from_millis(crate::EVENTS_END.as_millis() + 11 * MINUTE),
        span: Duration::from_secs(600),
        disorder: Duration::from_secs(5),
        campaigns: 20,
        contents_per_campaign: 10,
        ..reactor::generate::GeneratorSettings::default()
    })
    .collect::<Vec<Event>>();
    let publishing = {
        let publisher = env.publisher().await?;
        let later = later.clone();
        tokio::spawn(async move {
            publisher
                .publish(mix.assign(later), Some(4_000.0), None)
                .await
        })
    };
    let summary = env
        .reactor_command(&["replay", "--from", &at(5), "--to", &at(15)], &[])
        .await?;
    let _report = publishing.await??;
    let (rows, new, changed, unchanged) = rows_line(&summary);
    let middle = within(&live, 5, 15, |_| true);
    assert_eq!(
        (rows, new, changed, unchanged),
        (middle.len() as u64, 0, 0, middle.len() as u64),
        "{summary}"
    );
    let after = full_rows(&env.clickhouse()).await?;
    assert_same(
        &within(&after, -2, 20, |_| true),
        &range,
        "live rows after a middle replay",
    );
    println!("middle range beside the live service: {rows} rows, unchanged");

    // Corrections for one campaign, published after the fact with event
    // times in the range: live calls them late; a replay that includes late
    // records changes exactly that campaign's rows.
    let corrections: Vec<Event> = (0..200)
        .map(|i| {
            Event::Conversion(ConversionEvent {
                event_id: format!("correction-{i}"),
                occurred_at: EventTime::from_millis(crate::START_MS + 5 * MINUTE + i * 2_900),
                campaign_id: "campaign-003".into(),
                content_id: None,
                channel: None,
                user_id: format!("u{i}"),
                kind: "purchase".into(),
                revenue: Some(10.0 + i as f64),
                cost: None,
                currency: None,
            })
        })
        .collect();
    let publisher = env.publisher().await?;
    let _report = publisher
        .publish(FormatMix::Json.assign(corrections.clone()), None, None)
        .await?;
    let summary = env
        .reactor_command(
            &[
                "replay",
                "--from",
                &at(5),
                "--to",
                &at(15),
                "--include-late",
            ],
            &[],
        )
        .await?;
    let corrected = full_rows(&env.clickhouse()).await?;
    let others = |r: &FullRow| r.campaign_id != "campaign-003";
    assert_same(
        &within(&corrected, -2, 20, others),
        &within(&after, -2, 20, others),
        "other campaigns after the corrections",
    );
    let mut all: Vec<Event> = events.clone();
    all.extend(corrections);
    let want = rollups(&all, 60);
    let history =
        reactor::app::pipeline_settings(&env.config, reactor::event::TopicKind::Conversion).history;
    let signals = expected::signals(&want, &history, 60)?;
    let seconds = |m: i64| u32::try_from((crate::START_MS + m * MINUTE) / 1000).unwrap_or(0);
    let in_range = |k: &Key| k.1 == "campaign-003" && k.4 >= seconds(5) && k.4 < seconds(15);
    let want: BTreeMap<_, _> = want.into_iter().filter(|(k, _)| in_range(k)).collect();
    let stored: Vec<expected::StoredRollup> = expected::stored(&env.clickhouse())
        .await?
        .into_iter()
        .filter(|r| {
            in_range(&(
                r.metric.clone(),
                r.campaign_id.clone(),
                r.content_id.clone(),
                r.channel.clone(),
                r.window_start,
            ))
        })
        .collect();
    expected::compare(&want, &stored, 60, Some(&signals))?;
    let (_, new, changed, _) = rows_line(&summary);
    let corrected_campaign = |r: &FullRow| r.campaign_id == "campaign-003";
    let (moved, _) = differences(
        &within(&corrected, 5, 15, corrected_campaign),
        &within(&after, 5, 15, corrected_campaign),
        0,
    );
    assert!(moved > 0, "{summary}");
    assert_eq!(new + changed, moved as u64, "{summary}");
    println!(
        "corrections: {} rows of campaign-003 new or changed, exact; every other row unchanged",
        new + changed
    );

    // The same range without the late records: the rows only corrections
    // made are not produced, and are reported, not deleted.
    let summary = env
        .reactor_command(&["replay", "--from", &at(5), "--to", &at(15)], &[])
        .await?;
    let stale = format!("did not produce, left as they are: {new} ");
    assert!(
        new > 0 && summary.contains(&stale),
        "{stale:?} in:\n{summary}"
    );
    reactor.stop()?;
    Ok(())
}

/// Input written by a transactional producer ends with a commit marker, an
/// offset no record is delivered for. A replay whose range runs past the
/// end of the input ends all the same, at the end of each partition, with
/// every window the input closed written exactly, and only those: also
/// with `--include-late`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_past_a_transactional_end_of_input_ends() -> anyhow::Result<()> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let scenario = integration_tests::Scenario {
        partitions: 1,
        ..crate::without_idle_closing()
    };
    let env = TestEnv::new("replay-txn", &scenario).await?;
    let events = crate::events(23, 2_000);
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.services.kafka)
        .set(
            "transactional.id",
            format!("{}-producer", env.topics().engagement),
        )
        .create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    producer.begin_transaction()?;
    for event in &events {
        let topics = env.topics();
        let topic = match event.topic_kind() {
            reactor::event::TopicKind::Content => &topics.content,
            reactor::event::TopicKind::Engagement => &topics.engagement,
            reactor::event::TopicKind::Conversion => &topics.conversion,
        };
        let payload = reactor::event::encode::to_json(event)?;
        let mut record = BaseRecord::<'_, [u8], [u8]>::to(topic).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.commit_transaction(Duration::from_secs(30))?;

    let fresh = format!("{}_fresh", env.config.clickhouse.database);
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        env.reactor_command(
            &["replay", "--from", &at(-2), "--to", &at(40)],
            &[("REACTOR__CLICKHOUSE__DATABASE", &fresh)],
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the replay did not end at the end of its input"))??;
    assert!(summary.contains("left to the live run"), "{summary}");
    // The windows the input's watermark (its newest event less the 10 s of
    // lateness) closed.
    let newest = events.iter().map(|e| e.occurred_at().as_millis()).max();
    let closed_before = newest.unwrap_or_default() - 10_000;
    let mut want = rollups(&events, 60);
    want.retain(|key, _| (i64::from(key.4) + 60) * 1_000 <= closed_before);
    let fresh_client = reactor::sink::clickhouse::client(&env.config.clickhouse, Some(&fresh))?;
    expected::compare(&want, &expected::stored(&fresh_client).await?, 60, None)?;

    // With late records included, the same: the windows still open at the
    // end of the input are left to the live run, not written unfinished
    // with versions live's rows could never replace.
    let late = format!("{}_late", env.config.clickhouse.database);
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        env.reactor_command(
            &[
                "replay",
                "--from",
                &at(-2),
                "--to",
                &at(40),
                "--include-late",
            ],
            &[("REACTOR__CLICKHOUSE__DATABASE", &late)],
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the replay with late records did not end"))??;
    assert!(summary.contains("left to the live run"), "{summary}");
    let late_client = reactor::sink::clickhouse::client(&env.config.clickhouse, Some(&late))?;
    expected::compare(&want, &expected::stored(&late_client).await?, 60, None)?;

    // A rebuild no live run will follow: every window, the last ones
    // closed as a partition going idle closes them.
    let rebuilt = format!("{}_rebuilt", env.config.clickhouse.database);
    let summary = env
        .reactor_command(
            &[
                "replay",
                "--from",
                &at(-2),
                "--to",
                &at(40),
                "--close-at-end",
            ],
            &[("REACTOR__CLICKHOUSE__DATABASE", &rebuilt)],
        )
        .await?;
    assert!(
        summary.contains("closed as a partition going idle"),
        "{summary}"
    );
    let rebuilt_client = reactor::sink::clickhouse::client(&env.config.clickhouse, Some(&rebuilt))?;
    expected::compare(
        &rollups(&events, 60),
        &expected::stored(&rebuilt_client).await?,
        60,
        None,
    )?;
    Ok(())
}

/// The live run's checkpoint for a partition, written as a start of the
/// live run would: every window ending at or before `closed_through`
/// written.
async fn live_checkpoint(
    env: &TestEnv,
    topic: &str,
    partition: i32,
    closed_through: EventTime,
) -> anyhow::Result<()> {
    let checkpoint = reactor::pipeline::Checkpoint {
        closed_through: Some(closed_through),
        ..reactor::pipeline::Checkpoint::at(0)
    };
    let body = serde_json::json!({ "epoch": 1, "checkpoint": checkpoint });
    env.clickhouse()
        .query(
            "INSERT INTO partition_state \
             SELECT ?, ?, ?, '', '', '', '', ?, ?, now()",
        )
        .bind(&env.config.kafka.group_id)
        .bind(topic)
        .bind(partition)
        .bind((1_u64 << 32) + 1)
        .bind(body.to_string())
        .execute()
        .await?;
    Ok(())
}

/// A replay beside a live run that has not yet written the windows before
/// the range would compute trend and anomaly without them, and its rows
/// would replace live's: it stops with what to do instead. Where live has
/// written them, and closed the windows still open at the end of the
/// input (the partition went idle), the replay writes those too, as live
/// did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_follows_what_the_live_run_has_written() -> anyhow::Result<()> {
    let scenario = integration_tests::Scenario {
        partitions: 1,
        ..crate::without_idle_closing()
    };
    let env = TestEnv::new("replay-live", &scenario).await?;
    let events = crate::events(41, 3_000);
    let publisher = env.publisher().await?;
    let _report = publisher
        .publish(FormatMix::Json.assign(events.clone()), None, None)
        .await?;
    // A dry run writes nothing, not even the tables.
    let summary = env
        .reactor_command(
            &["replay", "--from", &at(0), "--to", &at(2), "--dry-run"],
            &[],
        )
        .await?;
    let admin = reactor::sink::clickhouse::client(&env.config.clickhouse, None)?;
    let tables: u64 = admin
        .query("SELECT count() FROM system.tables WHERE database = ?")
        .bind(&env.config.clickhouse.database)
        .fetch_one()
        .await?;
    assert_eq!(tables, 0, "a dry run created tables:\n{summary}");
    // The tables, as a live start creates them.
    reactor::sink::clickhouse::schema::apply(&admin, &env.config.clickhouse.database).await?;

    // Live has written windows through minute 3 only.
    let topics = env.topics().clone();
    for topic in [&topics.content, &topics.engagement, &topics.conversion] {
        live_checkpoint(
            &env,
            topic,
            0,
            EventTime::from_millis(crate::START_MS + 3 * MINUTE),
        )
        .await?;
    }
    let refused = env
        .reactor_command(&["replay", "--from", &at(10), "--to", &at(20)], &[])
        .await;
    let error = format!("{:#}", refused.expect_err("a replay ahead of live ran"));
    assert!(
        error.contains("has written this partition's windows only through")
            && error.contains("Wait until live has passed"),
        "{error}"
    );
    assert_eq!(
        expected::stored_count(&env.clickhouse()).await?,
        0,
        "rows were written"
    );

    // Live has written every window, and closed the last ones idle.
    for topic in [&topics.content, &topics.engagement, &topics.conversion] {
        live_checkpoint(
            &env,
            topic,
            0,
            EventTime::from_millis(crate::START_MS + 60 * MINUTE),
        )
        .await?;
    }
    let summary = env
        .reactor_command(&["replay", "--from", &at(-2), "--to", &at(40)], &[])
        .await?;
    assert!(
        summary.contains("closed as a partition going idle"),
        "{summary}"
    );
    assert!(!summary.contains("left to the live run"), "{summary}");
    expected::compare(
        &rollups(&events, 60),
        &expected::stored(&env.clickhouse()).await?,
        60,
        None,
    )?;
    Ok(())
}

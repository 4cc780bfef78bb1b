//! The binary's configuration errors, as a user sees them.

use std::process::Command;

use integration_tests::reactor_binary;

/// `reactor --config <config> <args>`: whether it succeeded, and what it
/// printed (standard output, then standard error).
fn reactor(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(reactor_binary().unwrap())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("REACTOR__KAFKA__BROKERS")
        // Errors must read the same with backtraces asked for.
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn check_config(toml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    reactor(&path, &["check-config"])
}

#[test]
fn check_config_accepts_the_defaults_and_names_each_problem() {
    let (ok, text) = check_config("");
    assert!(ok && text.contains("configuration is valid"), "{text}");

    let (ok, text) = check_config("[kafka]\nbrokers = []\n");
    assert!(
        !ok && text.contains("kafka.brokers: the broker list is empty"),
        "{text}"
    );

    let (ok, text) = check_config("[windows]\nsize = \"a while\"\n");
    assert!(!ok && text.contains("size"), "{text}");

    let (ok, text) = check_config("[clickhouse]\npasword = \"x\"\n");
    assert!(!ok && text.contains("pasword"), "{text}");

    // Every key that is unknown and value that does not parse, in one
    // report, and no backtrace.
    let (ok, text) = check_config(
        "[windows]\nsize = \"a while\"\n[clickhouse]\npasword = \"x\"\n[kafka]\nbatch_max_messages = \"lots\"\n",
    );
    assert!(!ok, "{text}");
    for named in ["`windows.size`", "`pasword`", "`kafka.batch_max_messages`"] {
        assert!(text.contains(named), "{named} in:\n{text}");
    }
    assert!(!text.contains("backtrace"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");

    // librdkafka's own names and ranges, checked without connecting.
    let (ok, text) = check_config(
        "[kafka.properties]\n\"socket.keepalive.enabel\" = \"true\"\n\"linger.ms\" = \"-5\"\n",
    );
    assert!(
        !ok && text.contains("No such configuration property: \"socket.keepalive.enabel\"")
            && text.contains("kafka.properties.\"linger.ms\""),
        "{text}"
    );

    let (ok, text) =
        check_config("[derived]\nrollup_metrics = [\"engagement.click\", \"engagement.clicks\"]\n");
    assert!(
        !ok && text.contains("derived.rollup_metrics: unknown metric \"engagement.clicks\""),
        "{text}"
    );
    let (ok, text) =
        check_config("[derived]\nrollup_metrics = [\"engagement.click\", \"conversion.*\"]\n");
    assert!(ok, "{text}");
}

#[test]
fn secrets_are_masked_when_printing_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(reactor_binary().unwrap())
        .args(["check-config", "--print"])
        .current_dir(dir.path())
        .env("REACTOR__CLICKHOUSE__PASSWORD", "hunter2")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("password: \"***\""),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
}

/// `create-topics` creates what is missing, with the brokers' default
/// replication unless told otherwise, and says what exists.
#[test]
fn create_topics_creates_what_is_missing_with_the_brokers_replication() {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let services = integration_tests::Services::from_env();
    let prefix = format!("it-create-topics-{:08x}", rand::random::<u32>());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reactor.toml");
    let names = [
        "content",
        "engagement",
        "conversion",
        "rollups",
        "anomalies",
        "trends",
        "dead_letter",
        "late",
    ];
    let topics: String = names
        .iter()
        .map(|n| format!("{n} = \"{prefix}.{n}\"\n"))
        .collect();
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = [\"{}\"]\n[topics]\n{topics}",
            services.kafka
        ),
    )
    .unwrap();
    let run = |args: &[&str]| reactor(&path, &[&["create-topics"], args].concat());

    let (ok, text) = run(&["--replication", "0"]);
    assert!(!ok && text.contains("--replication"), "{text}");
    let (ok, text) = run(&["--partitions", "0"]);
    assert!(!ok && text.contains("--partitions"), "{text}");
    let (ok, text) = run(&["--partitions", "3"]);
    assert!(ok, "{text}");
    assert_eq!(text.matches(" created  ").count(), names.len(), "{text}");
    assert_eq!(
        text.matches("(3 partitions)").count(),
        names.len(),
        "{text}"
    );
    let (ok, text) = run(&[]);
    assert!(ok, "{text}");
    assert_eq!(text.matches("  exists  ").count(), names.len(), "{text}");
    assert_eq!(
        text.matches("(3 partitions, not 4: existing topics are left as they are)")
            .count(),
        names.len(),
        "{text}"
    );

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &services.kafka)
        .create()
        .unwrap();
    let topic = format!("{prefix}.engagement");
    let metadata = consumer
        .fetch_metadata(Some(&topic), std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
}

/// `anomaly backtest` reads a series exported from elsewhere as it is:
/// hourly rows, times without a zone, against the default one-minute
/// windows. Each row is scored as an hour (not 59 empty minutes between
/// rows), the spike is the one anomaly, and the note says which window
/// was used; given `--window 1h`, there is nothing to note. Told nothing
/// of the kind, values that are not all counts are scored as measures.
#[test]
fn anomaly_backtest_scores_an_hourly_export_as_hours() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reactor.toml");
    std::fs::write(&config, "").unwrap();
    let input = dir.path().join("revenue.csv");
    let mut csv = String::from("timestamp,value\n");
    for hour in 0..200 {
        let value = if hour == 150 {
            900.0
        } else {
            100.0 + f64::from(hour % 7) * 2.5
        };
        csv.push_str(&format!(
            "2025-11-{:02} {:02}:00:00,{value}\n",
            1 + hour / 24,
            hour % 24
        ));
    }
    std::fs::write(&input, csv).unwrap();
    let input = input.to_str().unwrap();
    let args = ["anomaly", "backtest", "--input", input];
    let (ok, text) = reactor(&config, &args);
    assert!(ok, "{text}");
    let alarms: Vec<&str> = text.lines().filter(|l| l.ends_with(",true")).collect();
    assert_eq!(alarms.len(), 1, "{text}");
    assert!(alarms[0].starts_with("2025-11-07 06:00:00,900,"), "{text}");
    assert!(
        text.contains(
            "\n200 windows of 1h as measures (not every value is a count), 190 scored, 1 anomalies"
        ),
        "{text}"
    );
    assert!(text.contains("note: the rows are spaced by 1h, not by the configured window of 1m (windows.slide): scored as windows of 1h"), "{text}");
    let given = ["--window", "1h", "--kind", "measure"];
    let (ok, given) = reactor(&config, &[&args[..], &given].concat());
    assert!(ok && !given.contains("note:"), "{given}");
    assert_eq!(
        given.lines().filter(|l| l.ends_with(",true")).count(),
        1,
        "{given}"
    );
}

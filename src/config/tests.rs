//! Loading and validation, end to end from TOML and environment variables.

use std::io::Write;
use std::time::Duration;

use super::*;

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_str(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut file = tempfile::NamedTempFile::with_suffix(".toml").unwrap();
    file.write_all(toml.as_bytes()).unwrap();
    load(Some(file.path()), env(vars))
}

#[test]
fn defaults_load_and_validate() {
    let config = load(None, env(&[])).unwrap();
    assert_eq!(config.kafka.brokers, vec!["127.0.0.1:9092"]);
    assert_eq!(config.windows.size, Duration::from_secs(60));
    assert_eq!(config.topics.dead_letter, "reactor.dead-letter");
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    let config = load_str(
        "[kafka]\ngroup_id = \"from-file\"\nbrokers = [\"a:1\"]\n[windows]\nsize = \"5m\"\n",
        &[
            ("REACTOR__KAFKA__GROUP_ID", "from-env"),
            ("REACTOR__KAFKA__BROKERS", "b:2,c:3"),
            ("REACTOR__CLICKHOUSE__BATCH_MAX_ROWS", "7"),
            ("UNRELATED", "x"),
        ],
    )
    .unwrap();
    assert_eq!(config.kafka.group_id, "from-env");
    assert_eq!(config.kafka.brokers, vec!["b:2", "c:3"]);
    assert_eq!(config.windows.size, Duration::from_secs(300));
    assert_eq!(config.clickhouse.batch_max_rows, 7);
}

#[test]
fn files_that_cannot_be_read_and_impossible_values_are_reported_together() {
    let err = load(
        None,
        env(&[
            ("REACTOR__CLICKHOUSE__TLS__CA_FILE", "/nonexistent/ca.pem"),
            ("REACTOR__HISTORY__RETENTION", "1s"),
        ]),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("clickhouse.tls.ca_file"), "{text}");
    assert!(text.contains("history.retention"), "{text}");
}

#[test]
fn values_that_do_not_parse_are_named_once_with_what_to_write() {
    let err = load_str("[windows]\nsize = \"90x\"\n", &[]).unwrap_err();
    let report = format!("{:?}", anyhow::Error::from(err));
    assert_eq!(report.matches("expected a duration").count(), 1, "{report}");
    assert!(report.contains("`windows.size`"), "{report}");
    assert!(report.contains("\"30s\""), "{report}");
    let err = load_str("[kafka]\nstart_from = \"beginning\"\n", &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("config/default.toml lists the accepted values"),
        "{err}"
    );
}

#[test]
fn environment_strings_stay_as_written_and_typed_settings_still_parse() {
    let config = load(
        None,
        env(&[
            ("REACTOR__KAFKA__GROUP_ID", "0123"),
            ("REACTOR__CLICKHOUSE__PASSWORD", "007"),
            ("REACTOR__CLICKHOUSE__USER", "TRUE"),
            ("REACTOR__SCHEMA_REGISTRY__USERNAME", "00"),
            ("REACTOR__SCHEMA_REGISTRY__PASSWORD", "12345678901234567890"),
            ("REACTOR__KAFKA__SASL__MECHANISM", "PLAIN"),
            ("REACTOR__KAFKA__SASL__USERNAME", "1.0e3"),
            ("REACTOR__KAFKA__SASL__PASSWORD", "+5"),
            ("REACTOR__KAFKA__BROKERS", "b:2"),
            ("REACTOR__CLICKHOUSE__BATCH_MAX_ROWS", "7"),
            ("REACTOR__CLICKHOUSE__CREATE_SCHEMA", "false"),
            ("REACTOR__ANOMALY__THRESHOLD", "3.5"),
            ("REACTOR__WINDOWS__SIZE", "5m"),
        ]),
    )
    .unwrap();
    assert_eq!(config.kafka.group_id, "0123");
    assert_eq!(config.clickhouse.password.expose(), "007");
    assert_eq!(config.clickhouse.user, "TRUE");
    assert_eq!(config.schema_registry.username, "00");
    assert_eq!(
        config.schema_registry.password.expose(),
        "12345678901234567890"
    );
    assert_eq!(config.kafka.sasl.username, "1.0e3");
    assert_eq!(config.kafka.sasl.password.expose(), "+5");
    assert_eq!(config.kafka.brokers, vec!["b:2"]);
    assert_eq!(config.clickhouse.batch_max_rows, 7);
    assert!(!config.clickhouse.create_schema);
    assert!((config.anomaly.threshold - 3.5).abs() < f64::EPSILON);
    assert_eq!(config.windows.size, Duration::from_secs(300));
}

#[test]
fn rollup_metrics_from_the_file_or_the_environment_and_not_with_rollup_events_off() {
    let config = load_str("[derived]\nrollup_metrics = [\"engagement.click\"]\n", &[]).unwrap();
    assert_eq!(config.derived.rollup_metrics, vec!["engagement.click"]);
    let config = load(
        None,
        env(&[(
            "REACTOR__DERIVED__ROLLUP_METRICS",
            "engagement.click,conversion.*",
        )]),
    )
    .unwrap();
    assert_eq!(
        config.derived.rollup_metrics,
        vec!["engagement.click", "conversion.*"]
    );
    assert!(load(None, env(&[]))
        .unwrap()
        .derived
        .rollup_metrics
        .is_empty());

    let err = load_str(
        "[derived]\nrollup_events = false\nrollup_metrics = [\"engagement.click\"]\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("derived.rollup_metrics: names metrics, but derived.rollup_events = false"),
        "{err}"
    );
}

#[test]
fn every_value_that_does_not_parse_is_named_in_one_report() {
    let err = load_str(
        "[windows]\nsize = \"1 mnute\"\nallowed_lateness = \"5 sekunden\"\n\
         [kafka]\nbatch_max_messages = \"lots\"\nbrokerz = [\"a:1\"]\nstart_from = \"beginning\"\n\
         [bogus]\nx = 1\n\
         [clickhouse]\nflush_intervall = \"1s\"\nbatch_max_rows = -5\n",
        &[("REACTOR__LOG__FORMAT", "yaml")],
    )
    .unwrap_err();
    let text = err.to_string();
    for named in [
        "`windows.size`",
        "`windows.allowed_lateness`",
        "`kafka.batch_max_messages`",
        "`brokerz`",
        "`kafka.start_from`",
        "`bogus`",
        "`flush_intervall`",
        "`clickhouse.batch_max_rows`",
        "`log.format`",
    ] {
        assert_eq!(text.matches(named).count(), 1, "{named} in:\n{text}");
    }
    assert_eq!(text.lines().count(), 10, "{text}");
    assert!(
        text.starts_with("cannot load configuration:\n  - "),
        "{text}"
    );
    // The hints stay with their values.
    assert_eq!(
        text.matches("durations are written like").count(),
        2,
        "{text}"
    );
    // One value: one line, as before.
    let err = load_str("[windows]\nsize = \"1 mnute\"\n", &[]).unwrap_err();
    assert_eq!(err.to_string().lines().count(), 1, "{err}");
}

#[test]
fn unknown_key_is_an_error_naming_the_key() {
    let err = load_str("[kafka]\nbrokerz = [\"a:1\"]\n", &[]).unwrap_err();
    assert!(err.to_string().contains("brokerz"), "{err}");
    let err = load(None, env(&[("REACTOR__WINDOWS__SIZ", "1m")])).unwrap_err();
    assert!(err.to_string().contains("siz"), "{err}");
}

#[test]
fn bad_duration_is_an_error() {
    let err = load_str("[windows]\nsize = \"ten minutes\"\n", &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("size"), "{text}");
}

#[test]
fn empty_broker_list_is_reported_with_its_key() {
    let err = load_str("[kafka]\nbrokers = []\n", &[]).unwrap_err();
    let ConfigError::Invalid(problems) = err else {
        panic!("expected Invalid, got {err}")
    };
    let all: Vec<_> = problems.iter().collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].starts_with("kafka.brokers: the broker list is empty"));
}

#[test]
fn several_problems_are_reported_together() {
    let err = load_str(
        "[windows]\nsize = \"1500ms\"\n[clickhouse]\ndatabase = \"my-db\"\nurl = \"localhost:8123\"\n[topics]\nrollups = \"content.events\"\n",
        &[],
    )
    .unwrap_err();
    let text = err.to_string();
    for key in [
        "windows.size",
        "clickhouse.database",
        "clickhouse.url",
        "topics.rollups",
    ] {
        assert!(text.contains(key), "{key} missing from:\n{text}");
    }
}

#[test]
fn hopping_windows_and_analytics_settings_are_checked() {
    let config = load_str(
        "[windows]\nslide = \"30s\"\n[windows.engagement]\nsize = \"5m\"\nslide = \"1m\"\n",
        &[],
    )
    .unwrap();
    use crate::event::TopicKind;
    let spec = config.windows.size_and_slide(TopicKind::Engagement);
    assert_eq!(spec, (Duration::from_secs(300), Duration::from_secs(60)));
    let spec = config.windows.size_and_slide(TopicKind::Content);
    assert_eq!(spec, (Duration::from_secs(60), Duration::from_secs(30)));
    let err = load_str(
        "[windows]\nslide = \"25s\"\n[anomaly]\nalpha = 0.0\nescalation = 0.5\n[trend]\nwindows = 1\n[derived]\nformat = \"avro\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    for key in [
        "windows.slide",
        "anomaly.alpha",
        "anomaly.escalation",
        "trend.windows",
        "derived.format",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    // Escalations off, or any multiple above 1.
    for escalation in ["0", "0.0", "1.5", "4"] {
        let config = load_str(&format!("[anomaly]\nescalation = {escalation}\n"), &[]);
        assert!(config.is_ok(), "escalation = {escalation}: {config:?}");
    }
    assert_eq!(load_str("", &[]).unwrap().anomaly.escalation, 4.0);
}

#[test]
fn every_secret_is_masked_in_debug_output() {
    let config = load_str(
        "",
        &[
            ("REACTOR__CLICKHOUSE__PASSWORD", "s3cret-1"),
            ("REACTOR__KAFKA__SASL__MECHANISM", "PLAIN"),
            ("REACTOR__KAFKA__SASL__USERNAME", "reactor"),
            ("REACTOR__KAFKA__SASL__PASSWORD", "s3cret-2"),
            ("REACTOR__SCHEMA_REGISTRY__USERNAME", "key"),
            ("REACTOR__SCHEMA_REGISTRY__PASSWORD", "s3cret-3"),
        ],
    )
    .unwrap();
    assert_eq!(config.clickhouse.password.expose(), "s3cret-1");
    assert_eq!(config.kafka.sasl.password.expose(), "s3cret-2");
    let printed = format!("{config:?}");
    assert!(!printed.contains("s3cret"), "{printed}");

    // Credentials passed straight to librdkafka are masked too.
    let config = load_str(
        "[kafka.properties]\n\"sasl.oauthbearer.client.secret\" = \"s3cret-4\"\n",
        &[],
    )
    .unwrap();
    let printed = format!("{config:?}");
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(
        printed.contains("sasl.oauthbearer.client.secret"),
        "{printed}"
    );
}

#[test]
fn secrets_are_read_from_files_named_by_env() {
    let dir = tempfile::tempdir().unwrap();
    let ch = dir.path().join("clickhouse");
    let kafka = dir.path().join("kafka");
    std::fs::write(&ch, "from-file-1\n").unwrap();
    std::fs::write(&kafka, "from-file-2").unwrap();
    let config = load(
        None,
        env(&[
            ("REACTOR__CLICKHOUSE__PASSWORD_FILE", ch.to_str().unwrap()),
            ("REACTOR__KAFKA__SASL__MECHANISM", "SCRAM-SHA-256"),
            ("REACTOR__KAFKA__SASL__USERNAME", "reactor"),
            (
                "REACTOR__KAFKA__SASL__PASSWORD_FILE",
                kafka.to_str().unwrap(),
            ),
        ]),
    )
    .unwrap();
    assert_eq!(config.clickhouse.password.expose(), "from-file-1");
    assert_eq!(config.kafka.sasl.password.expose(), "from-file-2");
}

#[test]
fn security_settings_are_checked() {
    let err = load(
        None,
        env(&[
            ("REACTOR__KAFKA__SASL__MECHANISM", "SCRAM-SHA-512"),
            ("REACTOR__KAFKA__TLS__ENABLED", "true"),
            ("REACTOR__KAFKA__TLS__CERT_FILE", "/nonexistent/cert.pem"),
            ("REACTOR__CLICKHOUSE__TLS__CA_FILE", "/nonexistent/ca.pem"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("kafka.tls.cert_file: \"/nonexistent/cert.pem\" is not a readable file"),
        "{err}"
    );
    assert!(err.contains("clickhouse.tls.ca_file"), "{err}");

    let err = load_str(
        "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n",
        &[
            ("REACTOR__KAFKA__SASL__MECHANISM", "SCRAM-SHA-512"),
            ("REACTOR__KAFKA__TLS__ENABLED", "true"),
        ],
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "kafka.sasl.username: must be set",
        "kafka.sasl.password: must be set",
        "kafka.properties.security.protocol: conflicts with",
    ] {
        assert!(err.contains(expected), "{expected} not in {err}");
    }

    let err = load_str(
        "[kafka.properties]\n\"enable.auto.commit\" = \"true\"\n\"group.id\" = \"x\"\n\"linger.ms\" = \"50\"\n\"acks\" = \"-1\"\n\"enable.idempotence\" = \"TRUE\"\n\"isolation.level\" = \"read_uncommitted\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "kafka.properties.enable.auto.commit: must be \"false\" (or left out): Reactor sets it because offsets are committed only with checkpoints",
        "kafka.properties.group.id: is set by Reactor; use kafka.group_id",
        "kafka.properties.isolation.level: must be \"read_committed\" (or left out): Reactor sets it because records of aborted transactions must not be counted",
    ] {
        assert!(err.contains(expected), "{expected} not in {err}");
    }
    for accepted in ["linger.ms", "acks", "enable.idempotence"] {
        assert!(!err.contains(accepted), "{accepted} is accepted: {err}");
    }

    let err = load(None, env(&[("REACTOR__KAFKA__SASL__MECHANISM", "GSSAPI")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("GSSAPI"), "{err}");
}

#[test]
fn topic_names_follow_kafka_rules() {
    assert!(topics::check_topic_name("reactor.dead-letter_1").is_ok());
    assert!(topics::check_topic_name("bad topic").is_err());
    assert!(topics::check_topic_name("..").is_err());
    assert!(topics::check_topic_name(&"x".repeat(250)).is_err());
}

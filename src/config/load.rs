//! Loading and validating configuration.
//!
//! Precedence, lowest to highest:
//! 1. `config/default.toml`, embedded in the binary ([`DEFAULT_TOML`]);
//! 2. the file given with `--config`;
//! 3. environment variables `REACTOR__<SECTION>__<KEY>` (lists comma-separated).
//!
//! Then secrets named by `<key>_file` settings are read, and the TLS files
//! the configuration names are checked to exist. [`validate`] checks the
//! result without any I/O; reaching brokers and ClickHouse is a separate
//! startup step.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use config::{Environment, File, FileFormat};

use super::Config;

/// The documented defaults, embedded so the binary runs without any file.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Why configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file or variable could not be read or parsed, or a key is unknown or
    /// has the wrong type.
    #[error("cannot load configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// Values parsed but do not make sense together.
    #[error("invalid configuration:\n{0}")]
    Invalid(Problems),
}

/// One line per invalid setting, each naming the key.
#[derive(Debug)]
pub struct Problems(Vec<String>);

impl Problems {
    /// The problems, one per setting.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// Loads the layered configuration and validates it.
///
/// `env` is the process environment (pass `std::env::vars()`); only variables
/// starting with `REACTOR__` are read.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .into_iter()
        .filter(|(key, _)| key.starts_with("REACTOR__"))
        .collect();
    let mut builder =
        config::Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
    }
    builder = builder.add_source(
        Environment::with_prefix("REACTOR")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("kafka.brokers")
            .try_parsing(true)
            .source(Some(env)),
    );
    let mut config: Config = builder.build()?.try_deserialize()?;
    read_files(&mut config)?;
    validate(&config)?;
    Ok(config)
}

/// Reads the secrets given as files into their settings, and checks that
/// every certificate or key file named exists, so a wrong mount is reported
/// at start with its key rather than as a TLS failure later.
fn read_files(config: &mut Config) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let kafka = &mut config.kafka;
    let registry = &mut config.schema_registry;
    let clickhouse = &mut config.clickhouse;
    let secrets = [
        (
            "kafka.sasl.password",
            &mut kafka.sasl.password,
            &kafka.sasl.password_file,
        ),
        (
            "kafka.tls.key_password",
            &mut kafka.tls.key_password,
            &kafka.tls.key_password_file,
        ),
        (
            "schema_registry.password",
            &mut registry.password,
            &registry.password_file,
        ),
        (
            "clickhouse.password",
            &mut clickhouse.password,
            &clickhouse.password_file,
        ),
    ];
    for (key, secret, file) in secrets {
        if let Err(problem) = super::secret::read_into(key, secret, file) {
            problems.push(problem);
        }
    }
    let files = [
        ("kafka.tls.ca_file", &kafka.tls.ca_file),
        ("kafka.tls.cert_file", &kafka.tls.cert_file),
        ("kafka.tls.key_file", &kafka.tls.key_file),
        ("schema_registry.tls.ca_file", &registry.tls.ca_file),
        ("clickhouse.tls.ca_file", &clickhouse.tls.ca_file),
    ];
    for (key, file) in files {
        if !file.is_empty() && !Path::new(file).is_file() {
            problems.push(format!("{key}: {file:?} is not a readable file"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(Problems(problems)))
    }
}

/// Checks values that parse but cannot work. Pure: no I/O.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| problems.push(format!("{key}: {message}"));

    let kafka = &config.kafka;
    if kafka.brokers.is_empty() {
        problem(
            "kafka.brokers",
            "the broker list is empty; list at least one \"host:port\"".into(),
        );
    }
    for broker in &kafka.brokers {
        if !is_host_port(broker) {
            problem(
                "kafka.brokers",
                format!("{broker:?} is not \"host:port\" (for example \"kafka-1:9092\")"),
            );
        }
    }
    if kafka.group_id.trim().is_empty() {
        problem("kafka.group_id", "must not be empty".into());
    }
    if kafka.batch_max_messages == 0 {
        problem("kafka.batch_max_messages", "must be at least 1".into());
    }
    let sasl = &kafka.sasl;
    if sasl.mechanism != super::SaslMechanism::None {
        if sasl.username.is_empty() {
            problem(
                "kafka.sasl.username",
                "must be set when kafka.sasl.mechanism is".into(),
            );
        }
        if sasl.password.is_empty() {
            problem(
                "kafka.sasl.password",
                "must be set (or kafka.sasl.password_file) when kafka.sasl.mechanism is".into(),
            );
        }
    }
    let tls = &kafka.tls;
    if tls.cert_file.is_empty() != tls.key_file.is_empty() {
        problem(
            "kafka.tls.key_file",
            "kafka.tls.cert_file and kafka.tls.key_file go together; set both or neither".into(),
        );
    }
    let secured = tls.enabled || sasl.mechanism != super::SaslMechanism::None;
    for (key, _) in kafka.properties.iter() {
        let security =
            key == "security.protocol" || key.starts_with("ssl.") || key.starts_with("sasl.");
        if secured && security {
            problem(
                &format!("kafka.properties.{key}"),
                "conflicts with [kafka.tls] / [kafka.sasl]; configure security in one place".into(),
            );
        }
    }
    if kafka.session_timeout < Duration::from_secs(1) {
        problem(
            "kafka.session_timeout",
            format!(
                "{} is too short; use at least 1s",
                humantime::format_duration(kafka.session_timeout)
            ),
        );
    }

    let topics = &config.topics;
    let named = [
        ("topics.content", &topics.content),
        ("topics.engagement", &topics.engagement),
        ("topics.conversion", &topics.conversion),
        ("topics.rollups", &topics.rollups),
        ("topics.anomalies", &topics.anomalies),
        ("topics.trends", &topics.trends),
        ("topics.late", &topics.late),
        ("topics.dead_letter", &topics.dead_letter),
    ];
    for (key, name) in named {
        if let Err(why) = check_topic_name(name) {
            problem(key, why);
        }
    }
    for (i, (key_a, a)) in named.iter().enumerate() {
        for (key_b, b) in &named[i + 1..] {
            if a == b && !a.is_empty() {
                problem(
                    key_b,
                    format!("{b:?} is also used by {key_a}; each topic needs its own name"),
                );
            }
        }
    }

    let registry = &config.schema_registry.url;
    if !registry.is_empty() && !is_http_url(registry) {
        problem(
            "schema_registry.url",
            format!("{registry:?} must start with http:// or https://, or be empty"),
        );
    }
    if config.schema_registry.username.is_empty() && !config.schema_registry.password.is_empty() {
        problem(
            "schema_registry.username",
            "must be set when schema_registry.password is".into(),
        );
    }

    let windows = &config.windows;
    if windows.size < Duration::from_secs(1) || windows.size.subsec_nanos() != 0 {
        problem(
            "windows.size",
            format!(
                "{} must be a whole number of seconds, at least 1s",
                humantime::format_duration(windows.size)
            ),
        );
    }
    if windows.allowed_lateness.subsec_millis() as u128 * 1_000_000
        != windows.allowed_lateness.subsec_nanos() as u128
    {
        problem(
            "windows.allowed_lateness",
            "must be a whole number of milliseconds".into(),
        );
    }
    if windows.idle_timeout < Duration::from_millis(100) {
        problem("windows.idle_timeout", "must be at least 100ms".into());
    }
    let families = [
        ("windows", Some((windows.size, windows.slide))),
        (
            "windows.content",
            windows.content.map(|f| (f.size, f.slide)),
        ),
        (
            "windows.engagement",
            windows.engagement.map(|f| (f.size, f.slide)),
        ),
        (
            "windows.conversion",
            windows.conversion.map(|f| (f.size, f.slide)),
        ),
    ];
    for (section, spec) in families {
        let Some((size, slide)) = spec else { continue };
        let whole = |d: Duration| d >= Duration::from_secs(1) && d.subsec_nanos() == 0;
        if section != "windows" && !whole(size) {
            problem(
                &format!("{section}.size"),
                format!(
                    "{} must be a whole number of seconds, at least 1s",
                    humantime::format_duration(size)
                ),
            );
        }
        if let Some(slide) = slide {
            if !whole(slide) || slide > size || size.as_secs() % slide.as_secs().max(1) != 0 {
                problem(
                    &format!("{section}.slide"),
                    format!(
                        "{} must be whole seconds that divide {section}.size ({})",
                        humantime::format_duration(slide),
                        humantime::format_duration(size)
                    ),
                );
            }
        }
    }
    if windows.max_future_skew < Duration::from_secs(1) {
        problem("windows.max_future_skew", "must be at least 1s".into());
    }

    if config.trend.windows < 2 || config.trend.windows > 1000 {
        problem(
            "trend.windows",
            format!("{} must be between 2 and 1000", config.trend.windows),
        );
    }
    if !(config.trend.threshold.is_finite() && config.trend.threshold > 0.0) {
        problem("trend.threshold", "must be a positive number".into());
    }
    let anomaly = &config.anomaly;
    if !(anomaly.alpha > 0.0 && anomaly.alpha <= 1.0) {
        problem(
            "anomaly.alpha",
            format!("{} must be in (0, 1]", anomaly.alpha),
        );
    }
    if anomaly.warm_up == 0 {
        problem("anomaly.warm_up", "must be at least 1".into());
    }
    if !(anomaly.threshold.is_finite() && anomaly.threshold > 0.0) {
        problem("anomaly.threshold", "must be a positive number".into());
    }
    if config.history.retention < windows.size {
        problem("history.retention", "must be at least windows.size".into());
    }
    if config.derived.format == super::DerivedFormat::Avro && registry.is_empty() {
        problem(
            "derived.format",
            "\"avro\" needs schema_registry.url to register the derived-event schemas; set it, or use \"json\"".into(),
        );
    }

    let pipeline = &config.pipeline;
    if pipeline.checkpoint_interval < Duration::from_millis(100) {
        problem(
            "pipeline.checkpoint_interval",
            "must be at least 100ms".into(),
        );
    }
    if pipeline.stall_timeout < pipeline.checkpoint_interval {
        problem(
            "pipeline.stall_timeout",
            "must be at least pipeline.checkpoint_interval".into(),
        );
    }

    let clickhouse = &config.clickhouse;
    if !is_http_url(&clickhouse.url) {
        problem(
            "clickhouse.url",
            format!(
                "{:?} must start with http:// or https:// (the HTTP interface, usually port 8123)",
                clickhouse.url
            ),
        );
    }
    if !is_identifier(&clickhouse.database) {
        problem(
            "clickhouse.database",
            format!(
                "{:?} must be a plain identifier: letters, digits and _, not starting with a digit",
                clickhouse.database
            ),
        );
    }
    if clickhouse.batch_max_rows == 0 {
        problem("clickhouse.batch_max_rows", "must be at least 1".into());
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(Problems(problems)))
    }
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

fn is_http_url(s: &str) -> bool {
    ["http://", "https://"]
        .iter()
        .any(|scheme| s.len() > scheme.len() && s.starts_with(scheme))
}

/// Whether `s` is usable unquoted as a ClickHouse database name.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Kafka's own rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "{name:?} is longer than Kafka's limit of 249 characters"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a valid topic name"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{name:?} contains {bad:?}; topic names use only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

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
        let spec = config.windows.spec(TopicKind::Engagement);
        assert_eq!(
            (spec.size, spec.slide),
            (Duration::from_secs(300), Duration::from_secs(60))
        );
        let spec = config.windows.spec(TopicKind::Content);
        assert_eq!(
            (spec.size, spec.slide),
            (Duration::from_secs(60), Duration::from_secs(30))
        );
        let err = load_str(
            "[windows]\nslide = \"25s\"\n[anomaly]\nalpha = 0.0\n[trend]\nwindows = 1\n[derived]\nformat = \"avro\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        for key in [
            "windows.slide",
            "anomaly.alpha",
            "trend.windows",
            "derived.format",
        ] {
            assert!(err.contains(key), "{key} missing from:\n{err}");
        }
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

        let err = load(None, env(&[("REACTOR__KAFKA__SASL__MECHANISM", "GSSAPI")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("GSSAPI"), "{err}");
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(check_topic_name("reactor.dead-letter_1").is_ok());
        assert!(check_topic_name("bad topic").is_err());
        assert!(check_topic_name("..").is_err());
        assert!(check_topic_name(&"x".repeat(250)).is_err());
    }
}

//! Loading and validating configuration.
//!
//! Precedence, lowest to highest:
//! 1. `config/default.toml`, embedded in the binary ([`DEFAULT_TOML`]);
//! 2. the file given with `--config`;
//! 3. environment variables `REACTOR__<SECTION>__<KEY>` (lists comma-separated).
//!
//! Then secrets named by `<key>_file` settings are read, and the TLS files
//! the configuration names are checked to exist. [`Config::validate`]
//! checks the result without any I/O; reaching brokers and ClickHouse is a
//! separate startup step.

use std::collections::HashMap;
use std::path::Path;

use config::{Environment, File, FileFormat};

use super::{Config, Problems};

/// Settings that are lists: comma-separated in the environment.
const LIST_KEYS: [&str; 2] = ["kafka.brokers", "derived.rollup_metrics"];

/// The documented defaults, embedded so the binary runs without any file.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Why configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file or variable could not be read or parsed, or a key is unknown or
    /// has the wrong type. The message is the cause's (not a source of its
    /// own: a report would print it twice), with a hint where it helps.
    #[error("cannot load configuration: {0}{hint}", hint = load_hint(.0))]
    Load(config::ConfigError),
    /// Values parsed but do not make sense together.
    #[error("invalid configuration:\n{0}")]
    Invalid(Problems),
}

impl From<config::ConfigError> for ConfigError {
    fn from(error: config::ConfigError) -> Self {
        ConfigError::Load(error)
    }
}

/// What to do about a value that does not parse, where the parser's words
/// do not say.
fn load_hint(error: &config::ConfigError) -> &'static str {
    let text = error.to_string();
    if text.contains("does not have variant constructor") {
        "; config/default.toml lists the accepted values of every setting"
    } else if text.contains("expected a duration") {
        "; durations are written like \"500ms\", \"30s\", \"5m\" or \"1h\""
    } else {
        ""
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
    let mut env: HashMap<String, String> = env
        .into_iter()
        .filter(|(key, _)| key.starts_with("REACTOR__"))
        .collect();
    // Lists are split here; every other value stays the string it was
    // (a password "007" or a group id "0123" is not a number), and is
    // converted only where the setting is a number or a boolean.
    let mut lists = Vec::new();
    for key in LIST_KEYS {
        let name = format!("REACTOR__{}", key.replace('.', "__").to_uppercase());
        if let Some(value) = env.remove(&name) {
            let items: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect();
            lists.push((key, items));
        }
    }
    let mut builder =
        config::Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
    }
    builder = builder.add_source(
        Environment::with_prefix("REACTOR")
            .prefix_separator("__")
            .separator("__")
            .source(Some(env)),
    );
    for (key, items) in lists {
        builder = builder.set_override(key, items)?;
    }
    let mut config: Config = builder.build()?.try_deserialize()?;
    // Every problem at once: the files named, and the values.
    let mut problems = Problems::default();
    read_files(&mut config, &mut problems);
    config.check(&mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Reads the secrets given as files into their settings, and checks that
/// every certificate or key file named exists, so a wrong mount is reported
/// at start with its key rather than as a TLS failure later.
fn read_files(config: &mut Config, problems: &mut Problems) {
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
            problems.push_line(problem);
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
            problems.push(key, format_args!("{file:?} is not a readable file"));
        }
    }
}

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

use config::{Environment, File, FileFormat, Map, Source as _, Value, ValueKind};

use super::{Config, Problems};

/// Settings that are lists: comma-separated in the environment.
const LIST_KEYS: [&str; 2] = ["kafka.brokers", "derived.rollup_metrics"];

/// The documented defaults, embedded so the binary runs without any file.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Why configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file or variable could not be read or parsed, or keys are unknown
    /// or have the wrong type: every such value found, in the order found.
    /// The messages are the causes' (not sources of their own: a report
    /// would print them twice), with a hint where it helps.
    #[error("{}", LoadErrors(.0))]
    Load(Vec<config::ConfigError>),
    /// Values parsed but do not make sense together.
    #[error("invalid configuration:\n{0}")]
    Invalid(Problems),
}

impl From<config::ConfigError> for ConfigError {
    fn from(error: config::ConfigError) -> Self {
        ConfigError::Load(vec![error])
    }
}

/// How [`ConfigError::Load`] reads: one error on the line, several as a list.
struct LoadErrors<'a>(&'a [config::ConfigError]);

impl std::fmt::Display for LoadErrors<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            [one] => write!(f, "cannot load configuration: {one}{}", load_hint(one)),
            several => {
                f.write_str("cannot load configuration:")?;
                for error in several {
                    write!(f, "\n  - {error}{}", load_hint(error))?;
                }
                Ok(())
            }
        }
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
    let mut config = deserialize(builder.build()?)?;
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

/// Most values that do not parse named in one report.
const MOST_REPORTED: usize = 20;

/// The merged settings as a [`Config`]. When a value does not parse, the
/// loader goes on without it (an unknown key left out, any other value
/// replaced by its built-in default) to find the next, so one attempt names
/// every value to fix, not only the first.
fn deserialize(merged: config::Config) -> Result<Config, ConfigError> {
    let first = match merged.clone().try_deserialize() {
        Ok(config) => return Ok(config),
        Err(error) => error,
    };
    let defaults = File::from_str(DEFAULT_TOML, FileFormat::Toml).collect()?;
    let mut tree = merged.collect()?;
    let mut errors = vec![first];
    while errors.len() < MOST_REPORTED {
        let Some(last) = errors.last() else { break };
        if !set_aside(&mut tree, &defaults, last) {
            break;
        }
        let mut builder = config::Config::builder();
        for (key, value) in &tree {
            builder = builder.set_override(key.as_str(), value.clone())?;
        }
        match builder.build()?.try_deserialize::<Config>() {
            Ok(_) => break,
            Err(error) => errors.push(error),
        }
    }
    Err(ConfigError::Load(errors))
}

/// Takes the value `error` is about out of `tree`: an unknown key is
/// removed, any other value is replaced by its default (or removed if it has
/// none). False if `error` names no value, or the value is not in `tree`.
fn set_aside(
    tree: &mut Map<String, Value>,
    defaults: &Map<String, Value>,
    error: &config::ConfigError,
) -> bool {
    let key = match error {
        config::ConfigError::At { key, .. } | config::ConfigError::Type { key, .. } => {
            key.as_deref()
        }
        _ => None,
    };
    // "kafka.brokers[1]": the list as a whole.
    let key = key.map(|k| k.split('[').next().unwrap_or(k));
    let mut path: Vec<&str> = key.map(|k| k.split('.').collect()).unwrap_or_default();
    let message = error.to_string();
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next());
    if let Some(field) = unknown {
        path.push(field);
    }
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let default = match unknown {
        Some(_) => None,
        None => table(defaults, parents).and_then(|t| t.get(*last)).cloned(),
    };
    let Some(map) = table_mut(tree, parents) else {
        return false;
    };
    match default {
        Some(value) => map.insert((*last).to_owned(), value).is_some(),
        None => map.remove(*last).is_some(),
    }
}

/// The table at `path` in `map`.
fn table<'m>(mut map: &'m Map<String, Value>, path: &[&str]) -> Option<&'m Map<String, Value>> {
    for part in path {
        match &map.get(*part)?.kind {
            ValueKind::Table(inner) => map = inner,
            _ => return None,
        }
    }
    Some(map)
}

/// [`table`], to change.
fn table_mut<'m>(
    mut map: &'m mut Map<String, Value>,
    path: &[&str],
) -> Option<&'m mut Map<String, Value>> {
    for part in path {
        match &mut map.get_mut(*part)?.kind {
            ValueKind::Table(inner) => map = inner,
            _ => return None,
        }
    }
    Some(map)
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

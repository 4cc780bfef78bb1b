//! `[kafka]`, `[kafka.tls]`, `[kafka.sasl]` and `[kafka.properties]`: the
//! brokers, the consumer group, and how to reach them securely.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::{Problems, Secret};

/// `[kafka]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Consumer group shared by all replicas.
    pub group_id: String,
    /// Where a partition without any checkpoint or committed offset starts.
    pub start_from: StartFrom,
    /// Consumer session timeout.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Most messages per batch handed to a partition actor.
    pub batch_max_messages: usize,
    /// Batches of a partition between reading and their outputs being
    /// handed over.
    pub batches_in_flight: usize,
    /// librdkafka's prefetch per partition, KiB (`queued.max.messages.kbytes`).
    pub prefetch_kbytes_per_partition: u32,
    /// Partition assignment protocol.
    pub assignment: Assignment,
    /// TLS to the brokers.
    pub tls: KafkaTlsConfig,
    /// SASL authentication to the brokers.
    pub sasl: KafkaSaslConfig,
    /// Extra librdkafka properties, passed through as-is.
    #[serde(default)]
    pub properties: KafkaProperties,
}

/// How partitions move between the replicas of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Assignment {
    /// Incremental: only moved partitions stop.
    #[serde(rename = "cooperative-sticky")]
    CooperativeSticky,
    /// Every partition stops and restarts on each membership change.
    #[serde(rename = "eager")]
    Eager,
}

impl Assignment {
    /// librdkafka's `partition.assignment.strategy`.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Assignment::CooperativeSticky => "cooperative-sticky",
            Assignment::Eager => "range,roundrobin",
        }
    }
}

/// `[kafka.tls]`. File paths are empty when unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTlsConfig {
    /// Connect to the brokers over TLS.
    pub enabled: bool,
    /// PEM file of the CA certificates to trust; empty means the system's.
    pub ca_file: String,
    /// PEM client certificate, for brokers that authenticate clients by
    /// certificate (mutual TLS).
    pub cert_file: String,
    /// PEM private key of `cert_file`.
    pub key_file: String,
    /// Password of `key_file`, if it is encrypted.
    pub key_password: Secret,
    /// File holding `key_password`.
    pub key_password_file: String,
}

/// `[kafka.sasl]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSaslConfig {
    /// SASL mechanism; `None` (empty in TOML) means no SASL.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password; never logged.
    pub password: Secret,
    /// File holding `password`.
    pub password_file: String,
}

/// A SASL mechanism librdkafka implements without extra libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// No SASL.
    #[serde(rename = "")]
    None,
    /// User name and password in clear (use it with TLS).
    #[serde(rename = "PLAIN", alias = "plain")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[serde(rename = "SCRAM-SHA-512", alias = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name for it (`sasl.mechanisms`); `None` for no SASL.
    pub fn as_librdkafka(self) -> Option<&'static str> {
        match self {
            SaslMechanism::None => None,
            SaslMechanism::Plain => Some("PLAIN"),
            SaslMechanism::ScramSha256 => Some("SCRAM-SHA-256"),
            SaslMechanism::ScramSha512 => Some("SCRAM-SHA-512"),
        }
    }
}

/// Pass-through librdkafka properties. `Debug` masks the values of keys that
/// hold credentials (passwords, keys, tokens), so `check-config --print` and
/// logs never show them.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct KafkaProperties(pub BTreeMap<String, String>);

impl KafkaProperties {
    /// Whether librdkafka treats `key` as a credential.
    pub fn is_sensitive(key: &str) -> bool {
        ["password", "secret", "pem", "token", "oauthbearer.config"]
            .iter()
            .any(|needle| key.contains(needle))
    }

    /// The properties, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if Self::is_sensitive(k) { "***" } else { v };
                (k, shown)
            }))
            .finish()
    }
}

/// Where a partition starts when nothing says where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// The oldest retained message.
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

impl KafkaConfig {
    /// Checks `[kafka]` and its subsections.
    pub(super) fn validate(&self, problems: &mut Problems) {
        if self.brokers.is_empty() {
            problems.push(
                "kafka.brokers",
                "the broker list is empty; list at least one \"host:port\"",
            );
        }
        for broker in &self.brokers {
            if !is_host_port(broker) {
                problems.push(
                    "kafka.brokers",
                    format_args!("{broker:?} is not \"host:port\" (for example \"kafka-1:9092\")"),
                );
            }
        }
        if self.group_id.trim().is_empty() {
            problems.push("kafka.group_id", "must not be empty");
        }
        if self.batch_max_messages == 0 {
            problems.push("kafka.batch_max_messages", "must be at least 1");
        }
        if self.batches_in_flight == 0 {
            problems.push("kafka.batches_in_flight", "must be at least 1");
        }
        if !(64..=2_097_151).contains(&self.prefetch_kbytes_per_partition) {
            problems.push(
                "kafka.prefetch_kbytes_per_partition",
                "must be between 64 (KiB) and 2097151 (librdkafka's limit)",
            );
        }
        problems.at_least(
            "kafka.session_timeout",
            self.session_timeout,
            Duration::from_secs(1),
        );
        let sasl = &self.sasl;
        if sasl.mechanism != SaslMechanism::None {
            if sasl.username.is_empty() {
                problems.push(
                    "kafka.sasl.username",
                    "must be set when kafka.sasl.mechanism is",
                );
            }
            if sasl.password.is_empty() {
                problems.push(
                    "kafka.sasl.password",
                    "must be set (or kafka.sasl.password_file) when kafka.sasl.mechanism is",
                );
            }
        }
        let tls = &self.tls;
        if tls.cert_file.is_empty() != tls.key_file.is_empty() {
            problems.push(
                "kafka.tls.key_file",
                "kafka.tls.cert_file and kafka.tls.key_file go together; set both or neither",
            );
        }
        let secured = tls.enabled || sasl.mechanism != SaslMechanism::None;
        for (key, value) in self.properties.iter() {
            if let Some(why) = refused_property(key, value) {
                problems.push(&format!("kafka.properties.{key}"), why);
            }
            let security =
                key == "security.protocol" || key.starts_with("ssl.") || key.starts_with("sasl.");
            if secured && security {
                problems.push(
                    &format!("kafka.properties.{key}"),
                    "conflicts with [kafka.tls] / [kafka.sasl]; configure security in one place",
                );
            }
        }
    }
}

/// librdkafka properties Reactor sets itself, and what to do instead of
/// setting them in `[kafka.properties]`: some have their own setting.
const OWNED_PROPERTIES: [(&str, &str); 6] = [
    ("bootstrap.servers", "is set by Reactor; use kafka.brokers"),
    ("group.id", "is set by Reactor; use kafka.group_id"),
    (
        "auto.offset.reset",
        "is set by Reactor; use kafka.start_from",
    ),
    (
        "session.timeout.ms",
        "is set by Reactor; use kafka.session_timeout",
    ),
    (
        "partition.assignment.strategy",
        "is set by Reactor; use kafka.assignment",
    ),
    (
        "queued.max.messages.kbytes",
        "is set by Reactor; use kafka.prefetch_kbytes_per_partition",
    ),
];

/// librdkafka properties the delivery guarantee rests on (offsets are
/// stored only with checkpoints, output is idempotent and acknowledged by
/// every in-sync replica): the values Reactor accepts, and why.
const FIXED_PROPERTIES: [(&str, &[&str], &str); 6] = [
    (
        "enable.auto.commit",
        &["false"],
        "offsets are committed only with checkpoints",
    ),
    (
        "enable.auto.offset.store",
        &["false"],
        "offsets are stored only with checkpoints",
    ),
    (
        "enable.partition.eof",
        &["true"],
        "the end of a partition is how Reactor knows it is idle",
    ),
    (
        "isolation.level",
        &["read_committed"],
        "records of aborted transactions must not be counted",
    ),
    (
        "acks",
        &["all", "-1"],
        "output is acknowledged by all in-sync replicas",
    ),
    (
        "enable.idempotence",
        &["true"],
        "retried output must not be duplicated",
    ),
];

/// Why `key = value` in `[kafka.properties]` is refused, if it is.
fn refused_property(key: &str, value: &str) -> Option<String> {
    if let Some((_, instead)) = OWNED_PROPERTIES.iter().find(|(owned, _)| *owned == key) {
        return Some((*instead).to_owned());
    }
    let (_, accepted, why) = FIXED_PROPERTIES.iter().find(|(fixed, ..)| *fixed == key)?;
    let value = value.trim();
    (!accepted.iter().any(|a| a.eq_ignore_ascii_case(value))).then(|| {
        format!(
            "must be {:?} (or left out): Reactor sets it because {why}",
            accepted[0]
        )
    })
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

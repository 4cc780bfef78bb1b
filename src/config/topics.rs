//! `[topics]`: the input topics and every topic Reactor writes.

use serde::Deserialize;

use super::Problems;

/// `[topics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Content events (input).
    pub content: String,
    /// Engagement events (input).
    pub engagement: String,
    /// Conversion events (input).
    pub conversion: String,
    /// Closed-window rollups (output).
    pub rollups: String,
    /// Anomaly events (output).
    pub anomalies: String,
    /// Trend-change events (output).
    pub trends: String,
    /// Late events, with `windows.late_policy = "side-topic"` (output).
    pub late: String,
    /// Dead-lettered input (output).
    pub dead_letter: String,
}

impl TopicsConfig {
    /// Every topic setting with its key, inputs first.
    pub fn named(&self) -> [(&'static str, &str); 8] {
        [
            ("topics.content", &self.content),
            ("topics.engagement", &self.engagement),
            ("topics.conversion", &self.conversion),
            ("topics.rollups", &self.rollups),
            ("topics.anomalies", &self.anomalies),
            ("topics.trends", &self.trends),
            ("topics.late", &self.late),
            ("topics.dead_letter", &self.dead_letter),
        ]
    }

    /// Checks `[topics]`: valid names, none used twice.
    pub(super) fn validate(&self, problems: &mut Problems) {
        let named = self.named();
        for (key, name) in named {
            if let Err(why) = check_topic_name(name) {
                problems.push(key, why);
            }
        }
        for (i, (key_a, a)) in named.iter().enumerate() {
            for (key_b, b) in &named[i + 1..] {
                if a == b && !a.is_empty() {
                    problems.push(
                        key_b,
                        format_args!(
                            "{b:?} is also used by {key_a}; each topic needs its own name"
                        ),
                    );
                }
            }
        }
    }
}

/// Kafka's own rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub(super) fn check_topic_name(name: &str) -> Result<(), String> {
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

//! The invalid settings found while validating, one line each, every line
//! naming its key; and the checks several sections share.

use std::fmt;
use std::time::Duration;

/// One line per invalid setting, each naming the key.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    /// Records that `key` is invalid, and why.
    pub fn push(&mut self, key: &str, message: impl fmt::Display) {
        self.0.push(format!("{key}: {message}"));
    }

    /// Records a line that already names its key.
    pub(super) fn push_line(&mut self, line: String) {
        self.0.push(line);
    }

    /// `duration` must be whole seconds and at least one second.
    pub fn whole_seconds(&mut self, key: &str, duration: Duration) {
        if !is_whole_seconds(duration) {
            self.push(
                key,
                format_args!(
                    "{} must be a whole number of seconds, at least 1s",
                    humantime::format_duration(duration)
                ),
            );
        }
    }

    /// `duration` must be at least `min`.
    pub fn at_least(&mut self, key: &str, duration: Duration, min: Duration) {
        if duration < min {
            self.push(
                key,
                format_args!(
                    "{} is too short; use at least {}",
                    humantime::format_duration(duration),
                    humantime::format_duration(min)
                ),
            );
        }
    }

    /// `value` must be a positive, finite number.
    pub fn positive(&mut self, key: &str, value: f64) {
        if !(value.is_finite() && value > 0.0) {
            self.push(key, format_args!("{value} must be a positive number"));
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

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

/// At least one second, and no fraction of one.
pub(super) fn is_whole_seconds(d: Duration) -> bool {
    d >= Duration::from_secs(1) && d.subsec_nanos() == 0
}

/// Whether `s` is an `http://` or `https://` URL with something after the
/// scheme.
pub(super) fn is_http_url(s: &str) -> bool {
    ["http://", "https://"]
        .iter()
        .any(|scheme| s.len() > scheme.len() && s.starts_with(scheme))
}

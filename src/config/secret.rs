//! A string that never shows up in logs, `Debug` output or error messages,
//! and reading one from a file (`<key>_file` settings, for Kubernetes and
//! Docker secrets mounted as files).

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// A secret value (a password, a token). `Debug` and `Display` print `***`;
/// the value is only reachable through [`Secret::expose`], so every place that
/// uses it is easy to find.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret was set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Fills `secret` from `file` when a file is named: the file's content
/// without its trailing newline. Setting both the value and the file is an
/// error, as is a missing, unreadable or empty file. `key` names the setting
/// in the message (e.g. `"kafka.sasl.password"`).
pub(super) fn read_into(key: &str, secret: &mut Secret, file: &str) -> Result<(), String> {
    if file.is_empty() {
        return Ok(());
    }
    if !secret.is_empty() {
        return Err(format!(
            "{key} and {key}_file are both set; set only one of them"
        ));
    }
    let text = std::fs::read_to_string(Path::new(file))
        .map_err(|e| format!("{key}_file: cannot read {file:?}: {e}"))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(format!("{key}_file: {file:?} is empty"));
    }
    *secret = Secret::new(value);
    Ok(())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "\"***\"");
        assert_eq!(format!("{secret}"), "\"***\"");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_secret_file_fills_the_value_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\n").unwrap();
        let mut secret = Secret::default();
        read_into("clickhouse.password", &mut secret, path.to_str().unwrap()).unwrap();
        assert_eq!(secret.expose(), "s3cret");
    }

    #[test]
    fn secret_file_errors_name_the_key_and_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret").unwrap();
        let file = path.to_str().unwrap();

        let mut both = Secret::new("inline");
        let err = read_into("kafka.sasl.password", &mut both, file).unwrap_err();
        assert!(
            err.contains("kafka.sasl.password_file are both set"),
            "{err}"
        );
        assert!(!err.contains("inline") && !err.contains("s3cret"), "{err}");

        let mut missing = Secret::default();
        let err = read_into("kafka.sasl.password", &mut missing, "/nonexistent/pw").unwrap_err();
        assert!(
            err.starts_with("kafka.sasl.password_file: cannot read"),
            "{err}"
        );

        std::fs::write(&path, "\n").unwrap();
        let err = read_into("kafka.sasl.password", &mut missing, file).unwrap_err();
        assert!(err.ends_with("is empty"), "{err}");
    }
}

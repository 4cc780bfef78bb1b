//! A string that never shows up in logs, `Debug` output or error messages.

use std::fmt;

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
}

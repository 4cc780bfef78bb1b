//! What the schemas cannot express: plausible times, non-empty ids, finite
//! numbers, well-formed conversion kinds and currency codes.

use super::{ContentEvent, ConversionEvent, EngagementEvent, Event};

/// Why a decoded event cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// `occurred_at` outside 2000-01-01..2100-01-01.
    #[error(
        "absurd timestamp: occurred_at {millis} ms ({time}) is outside 2000-01-01..2100-01-01"
    )]
    AbsurdTimestamp {
        /// The value received.
        millis: i64,
        /// The same, readable.
        time: String,
    },
    /// A field has a value that cannot be right.
    #[error("invalid {field}: {reason}")]
    Field {
        /// Field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Invalid {
    /// A short, fixed label for metrics and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self {
            Invalid::AbsurdTimestamp { .. } => "absurd_timestamp",
            Invalid::Field { .. } => "invalid_field",
        }
    }
}

/// Checks what the schema cannot express.
pub(super) fn validate(event: &Event) -> Result<(), Invalid> {
    let time = event.occurred_at();
    if !time.is_plausible() {
        return Err(Invalid::AbsurdTimestamp {
            millis: time.as_millis(),
            time: time.to_rfc3339(),
        });
    }
    match event {
        Event::Content(ContentEvent {
            event_id,
            content_id,
            campaign_id,
            channel,
            sentiment,
            seo_score,
            ..
        }) => {
            non_empty("event_id", event_id)?;
            non_empty("campaign_id", campaign_id)?;
            non_empty("content_id", content_id)?;
            non_empty("channel", channel)?;
            finite("sentiment", *sentiment)?;
            finite("seo_score", *seo_score)?;
        }
        Event::Engagement(EngagementEvent {
            event_id,
            content_id,
            campaign_id,
            channel,
            dwell_ms,
            ..
        }) => {
            non_empty("event_id", event_id)?;
            non_empty("campaign_id", campaign_id)?;
            non_empty("content_id", content_id)?;
            non_empty("channel", channel)?;
            if let Some(dwell) = *dwell_ms {
                if dwell < 0 {
                    return Err(invalid("dwell_ms", format!("{dwell} is negative")));
                }
            }
        }
        Event::Conversion(ConversionEvent {
            event_id,
            campaign_id,
            kind,
            revenue,
            cost,
            currency,
            ..
        }) => {
            non_empty("event_id", event_id)?;
            non_empty("campaign_id", campaign_id)?;
            let valid_kind = !kind.is_empty()
                && kind.len() <= 32
                && kind.starts_with(|c: char| c.is_ascii_lowercase())
                && kind
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid_kind {
                return Err(invalid(
                    "kind",
                    format!("{kind:?} must be 1-32 lower-case letters, digits or _, starting with a letter"),
                ));
            }
            if ConversionEvent::RESERVED_KINDS.contains(&kind.as_str()) {
                return Err(invalid(
                    "kind",
                    format!("{kind:?} is reserved: conversion.{kind} is the measured metric"),
                ));
            }
            finite("revenue", *revenue)?;
            finite("cost", *cost)?;
            if let Some(code) = currency {
                if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(invalid(
                        "currency",
                        format!("{code:?} is not an ISO 4217 code such as \"EUR\""),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn invalid(field: &'static str, reason: String) -> Invalid {
    Invalid::Field { field, reason }
}

fn non_empty(field: &'static str, value: &str) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        Err(invalid(field, "must not be empty".into()))
    } else {
        Ok(())
    }
}

fn finite(field: &'static str, value: Option<f64>) -> Result<(), Invalid> {
    match value {
        Some(v) if !v.is_finite() => Err(invalid(field, format!("{v} is not a finite number"))),
        _ => Ok(()),
    }
}

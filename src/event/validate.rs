//! What the schemas cannot express: plausible times, non-empty ids, finite
//! numbers of sane magnitude, dimensions of bounded length, well-formed
//! conversion kinds and currency codes.

use super::{ContentEvent, ConversionEvent, EngagementEvent, Event};

/// Bounds on what one event may carry (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Longest dimension (campaign, content, channel), in bytes: each is a
    /// ClickHouse key and kept in memory per series.
    pub max_dimension_bytes: usize,
    /// Largest magnitude of a measured value (revenue, cost, dwell time,
    /// scores): beyond it sums lose their meaning long before they overflow.
    pub max_abs_value: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_dimension_bytes: 256,
            max_abs_value: 1e15,
        }
    }
}

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
    /// A dimension longer than `limits.max_dimension_bytes`.
    #[error("{field} is {bytes} bytes long, more than limits.max_dimension_bytes ({max}); dimensions are keys and must stay short")]
    TooLong {
        /// Field name.
        field: &'static str,
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A value beyond `limits.max_abs_value`.
    #[error("{field} = {value} is beyond ±limits.max_abs_value ({max})")]
    OutOfRange {
        /// Field name.
        field: &'static str,
        /// The value.
        value: f64,
        /// The limit.
        max: f64,
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
            Invalid::TooLong { .. } => "dimension_too_long",
            Invalid::OutOfRange { .. } => "value_out_of_range",
            Invalid::Field { .. } => "invalid_field",
        }
    }
}

/// Checks what the schema cannot express.
pub(super) fn validate(event: &Event, limits: &Limits) -> Result<(), Invalid> {
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
            dimension("campaign_id", campaign_id, limits)?;
            dimension("content_id", content_id, limits)?;
            dimension("channel", channel, limits)?;
            value("sentiment", *sentiment, limits)?;
            value("seo_score", *seo_score, limits)?;
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
            dimension("campaign_id", campaign_id, limits)?;
            dimension("content_id", content_id, limits)?;
            dimension("channel", channel, limits)?;
            if let Some(dwell) = *dwell_ms {
                if dwell < 0 {
                    return Err(invalid("dwell_ms", format!("{dwell} is negative")));
                }
                value("dwell_ms", Some(dwell as f64), limits)?;
            }
        }
        Event::Conversion(ConversionEvent {
            event_id,
            campaign_id,
            content_id,
            channel,
            kind,
            revenue,
            cost,
            currency,
            ..
        }) => {
            non_empty("event_id", event_id)?;
            dimension("campaign_id", campaign_id, limits)?;
            if let Some(content_id) = content_id {
                dimension_length("content_id", content_id, limits)?;
            }
            if let Some(channel) = channel {
                dimension_length("channel", channel, limits)?;
            }
            if !ConversionEvent::is_valid_kind(kind) {
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
            value("revenue", *revenue, limits)?;
            value("cost", *cost, limits)?;
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
        Err(invalid(
            field,
            "must not be empty or only white space".into(),
        ))
    } else {
        Ok(())
    }
}

/// A required dimension: not blank, not too long.
fn dimension(field: &'static str, text: &str, limits: &Limits) -> Result<(), Invalid> {
    non_empty(field, text)?;
    dimension_length(field, text, limits)
}

fn dimension_length(field: &'static str, text: &str, limits: &Limits) -> Result<(), Invalid> {
    if text.len() > limits.max_dimension_bytes {
        return Err(Invalid::TooLong {
            field,
            bytes: text.len(),
            max: limits.max_dimension_bytes,
        });
    }
    Ok(())
}

/// A measured value: finite, and within the configured magnitude.
fn value(field: &'static str, value: Option<f64>, limits: &Limits) -> Result<(), Invalid> {
    match value {
        Some(v) if !v.is_finite() => Err(invalid(field, format!("{v} is not a finite number"))),
        Some(v) if v.abs() > limits.max_abs_value => Err(Invalid::OutOfRange {
            field,
            value: v,
            max: limits.max_abs_value,
        }),
        _ => Ok(()),
    }
}

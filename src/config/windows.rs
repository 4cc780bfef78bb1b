//! `[windows]` and `[windows.<family>]`: event-time windows, lateness,
//! idle closing and the clock-skew guard.

use std::time::Duration;

use serde::Deserialize;

use super::problems::is_whole_seconds;
use super::Problems;
use crate::event::TopicKind;

/// `[windows]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Window length (whole seconds).
    #[serde(with = "humantime_serde")]
    pub size: Duration,
    /// Distance between window starts; absent means `size` (tumbling).
    #[serde(default, with = "humantime_serde")]
    pub slide: Option<Duration>,
    /// How far behind the partition's newest event an event may still count.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// Wall-clock silence after which a partition closes its open windows.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Events that would move the watermark further than this (that lie
    /// further than this ahead of the watermark plus `allowed_lateness`)
    /// are held by the clock guard, and dead-lettered unless
    /// `jump_records` agree.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// Records whose median event time starts a fresh partition's
    /// watermark.
    pub first_watermark_records: usize,
    /// Consecutive records more than `max_future_skew` ahead that make the
    /// watermark jump with them.
    pub jump_records: usize,
    /// What happens to late events.
    pub late_policy: crate::window::LatePolicy,
    /// Window size and slide for content metrics, if not the default.
    #[serde(default)]
    pub content: Option<FamilyWindowConfig>,
    /// Window size and slide for engagement metrics, if not the default.
    #[serde(default)]
    pub engagement: Option<FamilyWindowConfig>,
    /// Window size and slide for conversion metrics, if not the default.
    #[serde(default)]
    pub conversion: Option<FamilyWindowConfig>,
}

/// `[windows.<family>]`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyWindowConfig {
    /// Window length (whole seconds).
    #[serde(with = "humantime_serde")]
    pub size: Duration,
    /// Distance between window starts; absent means `size` (tumbling).
    #[serde(default, with = "humantime_serde")]
    pub slide: Option<Duration>,
}

impl WindowConfig {
    /// The window size and slide (`size` when unset: tumbling) of a metric
    /// family (input topic kind).
    pub fn size_and_slide(&self, kind: TopicKind) -> (Duration, Duration) {
        let family = match kind {
            TopicKind::Content => self.content,
            TopicKind::Engagement => self.engagement,
            TopicKind::Conversion => self.conversion,
        };
        let (size, slide) = family.map_or((self.size, self.slide), |f| (f.size, f.slide));
        (size, slide.unwrap_or(size))
    }

    /// Checks `[windows]` and its families.
    pub(super) fn validate(&self, problems: &mut Problems) {
        if self.allowed_lateness.subsec_nanos() % 1_000_000 != 0 {
            problems.push(
                "windows.allowed_lateness",
                "must be a whole number of milliseconds",
            );
        }
        problems.at_least(
            "windows.idle_timeout",
            self.idle_timeout,
            Duration::from_millis(100),
        );
        problems.at_least(
            "windows.max_future_skew",
            self.max_future_skew,
            Duration::from_secs(1),
        );
        for (key, records) in [
            (
                "windows.first_watermark_records",
                self.first_watermark_records,
            ),
            ("windows.jump_records", self.jump_records),
        ] {
            if !(1..=100_000).contains(&records) {
                problems.push(key, format_args!("{records} must be between 1 and 100000"));
            }
        }
        let families = [
            ("windows", Some((self.size, self.slide))),
            ("windows.content", self.content.map(|f| (f.size, f.slide))),
            (
                "windows.engagement",
                self.engagement.map(|f| (f.size, f.slide)),
            ),
            (
                "windows.conversion",
                self.conversion.map(|f| (f.size, f.slide)),
            ),
        ];
        for (section, spec) in families {
            let Some((size, slide)) = spec else { continue };
            problems.whole_seconds(&format!("{section}.size"), size);
            if let Some(slide) = slide {
                let divides = is_whole_seconds(slide)
                    && slide <= size
                    && size.as_secs() % slide.as_secs().max(1) == 0;
                if !divides {
                    problems.push(
                        &format!("{section}.slide"),
                        format_args!(
                            "{} must be whole seconds that divide {section}.size ({})",
                            humantime::format_duration(slide),
                            humantime::format_duration(size)
                        ),
                    );
                }
            }
        }
    }
}

//! Which rows get a rollup event: `derived.rollup_events` and
//! `derived.rollup_metrics`. Trend and anomaly events are never filtered.

use crate::event::ConversionEvent;
use crate::rollup::{Metric, UnknownMetric};

/// The sections metric names start with, each usable as `<section>.*`.
const SECTIONS: [&str; 3] = ["engagement", "conversion", "content"];

/// Which rows' rollup events are published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RollupSelection {
    /// Every row's (the default).
    #[default]
    All,
    /// None (`derived.rollup_events = false`): the rows are in ClickHouse.
    None,
    /// Only rows of these metrics: exact names, and whole sections
    /// (`"conversion.*"`, as conversion kinds are the producers' own).
    Metrics {
        /// Exact metric names.
        names: Vec<String>,
        /// Sections given as `<section>.*`, with the dot: `"conversion."`.
        prefixes: Vec<String>,
    },
}

impl RollupSelection {
    /// The selection `[derived]` asks for: none when `enabled` is false,
    /// every row when `metrics` is empty, else the metrics it names, each a
    /// metric name ([`Metric`]) or `<section>.*`.
    pub fn new(enabled: bool, metrics: &[String]) -> Result<Self, UnknownMetric> {
        if !enabled {
            return Ok(RollupSelection::None);
        }
        if metrics.is_empty() {
            return Ok(RollupSelection::All);
        }
        let (mut names, mut prefixes) = (Vec::new(), Vec::new());
        for pattern in metrics {
            match pattern.strip_suffix('*') {
                Some(prefix)
                    if SECTIONS
                        .iter()
                        .any(|s| prefix.strip_suffix('.') == Some(*s)) =>
                {
                    prefixes.push(prefix.to_owned());
                }
                _ => match pattern.parse()? {
                    // A kind no event can carry would never match.
                    Metric::Conversion(kind) if !ConversionEvent::is_valid_kind(&kind) => {
                        return Err(UnknownMetric(pattern.clone()));
                    }
                    metric => names.push(metric.name().into_owned()),
                },
            }
        }
        Ok(RollupSelection::Metrics { names, prefixes })
    }

    /// Whether rows of `metric` get a rollup event.
    pub fn includes(&self, metric: &str) -> bool {
        match self {
            RollupSelection::All => true,
            RollupSelection::None => false,
            RollupSelection::Metrics { names, prefixes } => {
                names.iter().any(|n| n == metric) || prefixes.iter().any(|p| metric.starts_with(p))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(metrics: &[&str]) -> Result<RollupSelection, UnknownMetric> {
        let metrics: Vec<String> = metrics.iter().map(|m| (*m).to_owned()).collect();
        RollupSelection::new(true, &metrics)
    }

    #[test]
    fn on_by_default_off_for_all_or_by_metric() {
        assert!(RollupSelection::default().includes("engagement.click"));
        assert!(select(&[]).unwrap().includes("content.published"));
        let off = RollupSelection::new(false, &["engagement.click".into()]).unwrap();
        assert!(!off.includes("engagement.click"));

        let some = select(&["engagement.click", "conversion.*"]).unwrap();
        for metric in [
            "engagement.click",
            "conversion.signup",
            "conversion.revenue",
        ] {
            assert!(some.includes(metric), "{metric}");
        }
        for metric in [
            "engagement.view",
            "engagement.dwell_ms",
            "content.published",
            "engagement.clicks",
        ] {
            assert!(!some.includes(metric), "{metric}");
        }
    }

    #[test]
    fn a_conversion_kind_is_named_like_any_metric() {
        let signup = select(&["conversion.signup", "conversion.revenue"]).unwrap();
        assert!(signup.includes("conversion.signup"));
        assert!(signup.includes("conversion.revenue"));
        assert!(!signup.includes("conversion.purchase"));
    }

    #[test]
    fn unknown_names_and_sections_are_refused_by_name() {
        for bad in [
            "engagement.clicks",
            "clicks",
            "dwell_ms",
            "*",
            "events.*",
            "engagement*",
        ] {
            let err = select(&["engagement.click", bad]).unwrap_err();
            assert_eq!(err, UnknownMetric(bad.into()));
        }
    }
}

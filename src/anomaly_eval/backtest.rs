//! `reactor anomaly backtest`: runs the anomaly detector, exactly as the
//! pipeline runs it per series, over one series of closed-window values
//! read as CSV, and writes each window's score. Users tune `[anomaly]` on
//! their own history with it.
//!
//! Input: a header, then `timestamp,value` rows in time order (one row per
//! closed window; timestamps are RFC 3339 times or numbers). Output: a
//! header, then `timestamp,value,score,anomalous` rows; the score is empty
//! during the warm-up. For counts, windows missing between two rows
//! (timestamps in epoch milliseconds or RFC 3339, more than a window apart)
//! counted zero, as the live run takes them: they are scored, and written
//! with value 0 (at most a day of them per gap, as live).

use std::io::{Read, Write};

use crate::aggregate::{AnomalySettings, Detector, SeriesKind};
use crate::event::EventTime;

/// Why a backtest stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BacktestError {
    /// The input is not CSV, or a row has the wrong number of fields.
    #[error("line {line}: {message}")]
    Csv {
        /// 1-based line of the input.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The header lacks a column.
    #[error("the header has no {0:?} column; the input needs a header with timestamp and value")]
    MissingColumn(&'static str),
    /// A field does not parse.
    #[error("line {line}: {field} {text:?} is not {expected}")]
    Field {
        /// 1-based line of the input.
        line: u64,
        /// Which column.
        field: &'static str,
        /// Its text.
        text: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A timestamp is not after the one before it.
    #[error("line {line}: timestamp {text:?} is not after the previous row's; rows must be in time order, one per window")]
    Unsorted {
        /// 1-based line of the input.
        line: u64,
        /// The timestamp.
        text: String,
    },
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Write(#[from] std::io::Error),
}

/// What a backtest saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BacktestSummary {
    /// Windows read.
    pub windows: u64,
    /// Windows scored (after the warm-up).
    pub scored: u64,
    /// Anomalies raised.
    pub anomalies: u64,
}

/// A timestamp as a sortable number: epoch milliseconds for RFC 3339 times,
/// the number itself otherwise.
fn parse_time(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .or_else(|| EventTime::parse_rfc3339(text.trim()).map(|t| t.as_millis() as f64))
}

/// Most empty windows of a count series filled in per gap, as live
/// ([`crate::aggregate::SeriesHistory`]).
const MOST_EMPTY_WINDOWS: i64 = 1_440;

/// Scores the series read from `input` as a `kind` series with `settings`,
/// writing one row per window to `output`. `window_ms`: the windows' slide,
/// by which missing windows of a count series are found.
pub fn backtest(
    input: impl Read,
    output: impl Write,
    kind: SeriesKind,
    settings: &AnomalySettings,
    window_ms: i64,
) -> Result<BacktestSummary, BacktestError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let line_of = |position: Option<&csv::Position>| position.map_or(0, csv::Position::line);
    let headers = reader.headers().map_err(|e| BacktestError::Csv {
        line: line_of(e.position()),
        message: e.to_string(),
    })?;
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or(BacktestError::MissingColumn(name))
    };
    let (time_column, value_column) = (column("timestamp")?, column("value")?);
    let mut writer = csv::Writer::from_writer(output);
    writer
        .write_record(["timestamp", "value", "score", "anomalous"])
        .map_err(std::io::Error::from)?;
    let mut detector = Detector::default();
    let mut summary = BacktestSummary::default();
    let mut previous: Option<f64> = None;
    let mut last_time: Option<f64> = None;
    // When the last alarm was: the quiet period after it is counted in
    // windows, the windows without a row included, as live counts it.
    let mut last_alarm: Option<f64> = None;
    let since_alarm = |at: f64, last_alarm: Option<f64>| {
        last_alarm
            .filter(|_| window_ms > 0)
            .map(|alarm| ((at - alarm) / window_ms as f64).round().max(0.0) as u64)
    };
    for record in reader.records() {
        let record = record.map_err(|e| BacktestError::Csv {
            line: line_of(e.position()),
            message: e.to_string(),
        })?;
        let line = line_of(record.position());
        let field = |column: usize| record.get(column).unwrap_or_default();
        let (time_text, value_text) = (field(time_column), field(value_column));
        let time = parse_time(time_text).ok_or_else(|| BacktestError::Field {
            line,
            field: "timestamp",
            text: time_text.to_owned(),
            expected: "an RFC 3339 time or a number",
        })?;
        if previous.is_some_and(|p| time <= p) {
            return Err(BacktestError::Unsorted {
                line,
                text: time_text.to_owned(),
            });
        }
        // Windows with no row between the previous one and this: empty.
        let missing = match (kind, last_time) {
            (SeriesKind::Count, Some(last)) if window_ms > 0 => {
                (((time - last) / window_ms as f64).round() as i64 - 1).clamp(0, MOST_EMPTY_WINDOWS)
            }
            _ => 0,
        };
        let numeric = time_text.trim().parse::<f64>().is_ok();
        for k in (1..=missing).rev() {
            let at = time - (k * window_ms) as f64;
            let at_text = if numeric {
                format!("{at}")
            } else {
                EventTime::from_millis(at as i64).to_rfc3339()
            };
            let score = detector.observe_in(
                0.0,
                SeriesKind::Count,
                settings,
                since_alarm(at, last_alarm),
            );
            if score.is_some_and(|s| s.anomalous) {
                last_alarm = Some(at);
            }
            write_scored(&mut writer, &mut summary, &at_text, "0", score)?;
        }
        last_time = Some(time);
        previous = Some(time);
        let value = value_text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| BacktestError::Field {
                line,
                field: "value",
                text: value_text.to_owned(),
                expected: "a finite number",
            })?;
        let score = detector.observe_in(value, kind, settings, since_alarm(time, last_alarm));
        if score.is_some_and(|s| s.anomalous) {
            last_alarm = Some(time);
        }
        write_scored(&mut writer, &mut summary, time_text, value_text, score)?;
    }
    writer.flush()?;
    Ok(summary)
}

/// Writes one scored window and counts it.
fn write_scored(
    writer: &mut csv::Writer<impl Write>,
    summary: &mut BacktestSummary,
    time_text: &str,
    value_text: &str,
    score: Option<crate::aggregate::Score>,
) -> Result<(), BacktestError> {
    summary.windows += 1;
    summary.scored += u64::from(score.is_some());
    summary.anomalies += u64::from(score.is_some_and(|s| s.anomalous));
    let (score_text, anomalous) = match score {
        Some(s) => (s.score.to_string(), s.anomalous),
        None => (String::new(), false),
    };
    writer
        .write_record([
            time_text,
            value_text,
            score_text.as_str(),
            if anomalous { "true" } else { "false" },
        ])
        .map_err(std::io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Result<(String, BacktestSummary), BacktestError> {
        let mut out = Vec::new();
        let summary = backtest(
            input.as_bytes(),
            &mut out,
            SeriesKind::Count,
            &AnomalySettings::default(),
            60_000,
        )?;
        Ok((String::from_utf8(out).unwrap_or_default(), summary))
    }

    /// Rows exported from ClickHouse have none for the windows a count
    /// series counted nothing in: they are scored as zeros, as live does,
    /// and written.
    #[test]
    fn missing_windows_of_a_count_series_are_scored_as_zero() {
        let mut with_gaps = String::from("timestamp,value\n");
        let mut every = String::from("timestamp,value\n");
        for i in 0..50 {
            let value = if i % 3 == 0 { 1 } else { 0 };
            let at = format!("2026-01-01T00:{i:02}:00Z,{value}\n");
            every.push_str(&at);
            if value > 0 {
                with_gaps.push_str(&at);
            }
        }
        let (filled, summary) = run(&with_gaps).unwrap();
        let (all, _) = run(&every).unwrap();
        // The last row of the input is the last window: the same lines.
        let all: Vec<&str> = all
            .lines()
            .take_while(|l| !l.starts_with("2026-01-01T00:49"))
            .collect();
        let filled: Vec<&str> = filled.lines().take(all.len()).collect();
        assert_eq!(filled, all);
        assert_eq!(summary.windows, 49);
        // Numbers that are not epoch milliseconds: no window is missing.
        let (out, summary) = run("timestamp,value\n1,5\n2,5\n5,5\n").unwrap();
        assert_eq!((summary.windows, out.lines().count()), (3, 4));
    }

    #[test]
    fn scores_every_window_after_the_warm_up() {
        let mut input = String::from("timestamp,value\n");
        for i in 0..40 {
            let value = if i == 30 { 60 } else { 5 };
            input.push_str(&format!("2026-01-01T00:{i:02}:00Z,{value}\n"));
        }
        let (out, summary) = run(&input).unwrap();
        assert_eq!(
            summary,
            BacktestSummary {
                windows: 40,
                scored: 30,
                anomalies: 1
            }
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "timestamp,value,score,anomalous");
        assert_eq!(lines[1], "2026-01-01T00:00:00Z,5,,false");
        assert!(lines[31].starts_with("2026-01-01T00:30:00Z,60,") && lines[31].ends_with(",true"));
    }

    #[test]
    fn bad_input_names_the_line() {
        let err = |input: &str| run(input).unwrap_err().to_string();
        assert!(err("time,value\n1,2\n").contains("no \"timestamp\" column"));
        assert!(err("timestamp,value\n1,2\n2,x\n").starts_with("line 3: value \"x\""));
        assert!(err("timestamp,value\n1,2\nyesterday,3\n").starts_with("line 3: timestamp"));
        assert!(err("timestamp,value\n2,2\n1,3\n").contains("line 3: timestamp \"1\" is not after"));
        assert!(err("timestamp,value\n1,2\n2\n").starts_with("line 3:"));
    }
}

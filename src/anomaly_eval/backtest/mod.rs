//! `reactor anomaly backtest`: runs the anomaly detector, exactly as the
//! pipeline runs it per series, over one series of closed-window values
//! read as CSV, and writes each window's score. Users tune `[anomaly]` on
//! their own history with it.
//!
//! Input: a header, then `timestamp,value` rows in time order, one row per
//! closed window (a row repeating the time of the row before is scored as
//! the next window, as NAB's runner takes every row). Timestamps are RFC
//! 3339 times, times without a zone (`2026-01-01 00:01:00`, read as UTC),
//! dates, or numbers: epoch seconds below 1e11, epoch milliseconds above. The values are counts or
//! measures as `--kind` says; told nothing, counts if every value is a
//! whole number, zero or more, else measures. Output: a header, then
//! `timestamp,value,score,anomalous` rows; the score is empty during the
//! warm-up.
//!
//! Rows stand for windows of one length: `--window`, or by default the
//! configured slide, unless the rows are plainly spaced otherwise (hourly
//! rows, row numbers): then their own spacing, and a note says so. Where
//! two rows are further apart than a window, the windows between them have
//! no row: for counts they counted zero, as the live run takes them (rows
//! exported from ClickHouse have none for empty windows): they are scored,
//! and written with value 0, at most a day of them per gap, as live. The
//! quiet period after an alarm is counted in windows, those without a row
//! included.

use std::io::{Read, Write};

mod stamp;

use crate::aggregate::{AnomalySettings, Detector, SeriesKind};
use stamp::{format_time, parse_time, Stamp};

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
    /// A timestamp is before the one before it.
    #[error("line {line}: timestamp {text:?} is before the previous row's; rows must be in time order, one per window")]
    Unsorted {
        /// 1-based line of the input.
        line: u64,
        /// The timestamp.
        text: String,
    },
    /// A value of a series said to be counts is not a count.
    #[error("line {line}: value {text:?} is not a count (a whole number, zero or more); for measured values (money, durations, scores), pass --kind measure")]
    NotACount {
        /// 1-based line of the input.
        line: u64,
        /// The value.
        text: String,
    },
    /// Two rows are closer than half the window given: the rows are not
    /// one per window of that length.
    #[error("line {line}: timestamp {text:?} is {gap} after the previous row's, closer than half a window ({window}); rows must be one per window: if each row is a window of {gap}, pass --window {gap}")]
    CloserThanAWindow {
        /// 1-based line of the input.
        line: u64,
        /// The timestamp.
        text: String,
        /// How far it is from the previous row's.
        gap: String,
        /// The window's length.
        window: String,
    },
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Write(#[from] std::io::Error),
}

/// What a backtest saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacktestSummary {
    /// Windows read.
    pub windows: u64,
    /// Windows scored (after the warm-up).
    pub scored: u64,
    /// Anomalies raised.
    pub anomalies: u64,
    /// Windows without a row, between two rows of a count series, scored
    /// as zero (among `windows`).
    pub filled: u64,
    /// The least time between two consecutive rows, in milliseconds.
    pub closest_gap_ms: Option<f64>,
    /// The window the rows were scored as, in milliseconds.
    pub window_ms: i64,
    /// Whether `window_ms` is the rows' own spacing, not the configured
    /// window ([`RowWindow::Configured`]).
    pub window_from_rows: bool,
    /// What the values were scored as: given, or, if not, counts when
    /// every value is one.
    pub kind: SeriesKind,
    /// Rows with the time of the row before, each scored as the next
    /// window (as NAB's runner takes every row).
    pub repeated: u64,
}

impl BacktestSummary {
    /// What a person should know about how the rows were read, if it is
    /// not plainly what was asked for: the rows' own spacing instead of
    /// `configured_ms`, a given window no two rows were apart by, rows
    /// repeating the time of the one before.
    pub fn notes(&self, configured_ms: i64) -> Vec<String> {
        let window = duration(self.window_ms as f64);
        let mut notes = Vec::new();
        if self.window_from_rows {
            notes.push(format!(
                "the rows are spaced by {window}, not by the configured window of {} (windows.slide): scored as windows of {window}; pass --window to choose",
                duration(configured_ms as f64),
            ));
        } else if let Some(closest) = self
            .closest_gap_ms
            .filter(|&c| c >= 1.5 * self.window_ms as f64)
        {
            notes.push(format!(
                "no two rows are one window ({window}) apart, the closest are {} apart, so the windows between rows were taken as missing{}; if each row is a window of {}, pass --window {}",
                duration(closest),
                if self.filled > 0 { format!(" ({} scored as zero counts)", self.filled) } else { String::new() },
                duration(closest),
                duration(closest),
            ));
        }
        if self.repeated > 0 {
            notes.push(format!(
                "{} rows have the time of the row before them: each was scored as the next window",
                self.repeated
            ));
        }
        notes
    }
}

/// Most empty windows of a count series filled in per gap, as live
/// ([`crate::aggregate::SeriesHistory`]).
const MOST_EMPTY_WINDOWS: i64 = 1_440;

/// How long a window each row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowWindow {
    /// Given (`--window`), in milliseconds: rows closer than half of it
    /// are an error.
    Given(i64),
    /// The configured windows' slide, in milliseconds, unless the rows are
    /// plainly spaced otherwise (closer than half of it, or on a grid at
    /// least one and a half times as coarse): then the rows' own spacing.
    Configured(i64),
}

/// One input row, read and checked before any is scored.
struct Row {
    line: u64,
    time_text: String,
    value_text: String,
    stamp: Stamp,
    value: f64,
}

/// Whether `value` can be a count of events: a whole number, zero or more.
fn is_count(value: f64) -> bool {
    value >= 0.0 && value.fract() == 0.0
}

/// Scores the series read from `input` as a `kind` series with `settings`
/// (`None`: counts if every value is a count, else measures),
/// writing one row per window to `output`, the rows standing for windows
/// of `window`. Where two rows are further apart than a window, the
/// windows between them have no row: a count series counts them as zero
/// (and writes them), as live does, and the quiet period after an alarm
/// is counted in windows, those included.
pub fn backtest(
    input: impl Read,
    output: impl Write,
    kind: Option<SeriesKind>,
    settings: &AnomalySettings,
    window: RowWindow,
) -> Result<BacktestSummary, BacktestError> {
    let rows = read_rows(input)?;
    let kind = series_kind(&rows, kind)?;
    let closest_gap_ms = gaps(&rows).min_by(f64::total_cmp);
    let repeated = rows
        .windows(2)
        .filter(|pair| pair[1].stamp.millis == pair[0].stamp.millis)
        .count() as u64;
    let (window_ms, window_from_rows) = match window {
        RowWindow::Given(ms) => (ms.max(1), false),
        RowWindow::Configured(ms) => {
            spacing(&rows, ms.max(1)).map_or((ms.max(1), false), |s| (s, true))
        }
    };
    let window = window_ms as f64;
    let mut summary = BacktestSummary {
        windows: 0,
        scored: 0,
        anomalies: 0,
        filled: 0,
        closest_gap_ms,
        window_ms,
        window_from_rows,
        kind,
        repeated,
    };
    one_per_window(&rows, window)?;
    let mut writer = csv::Writer::from_writer(output);
    writer
        .write_record(["timestamp", "value", "score", "anomalous"])
        .map_err(std::io::Error::from)?;
    let mut detector = Detector::default();
    let mut previous: Option<f64> = None;
    // Each scored window's position, and the last alarm's: the quiet period
    // after it is counted in windows, the windows without a row included,
    // as live counts it, and a row repeating a time as a window of its own.
    let mut position: u64 = 0;
    let mut last_alarm: Option<u64> = None;
    let since_alarm =
        |at: u64, last_alarm: Option<u64>| last_alarm.map(|alarm| at.saturating_sub(alarm));
    for row in &rows {
        let windows_apart = previous.map_or(1, |p| {
            (((row.stamp.millis - p) / window).round() as i64).max(1)
        });
        previous = Some(row.stamp.millis);
        // Windows with no row between the previous one and this: empty.
        let missing = match kind {
            SeriesKind::Count => (windows_apart - 1).min(MOST_EMPTY_WINDOWS),
            SeriesKind::Measure => 0,
        };
        position = position.saturating_add((windows_apart - 1 - missing) as u64);
        for k in (1..=missing).rev() {
            position = position.saturating_add(1);
            let score = detector.observe_in(
                0.0,
                SeriesKind::Count,
                settings,
                since_alarm(position, last_alarm),
            );
            if score.is_some_and(|s| s.anomalous) {
                last_alarm = Some(position);
            }
            summary.filled += 1;
            let at_text = format_time(row.stamp.millis - k as f64 * window, row.stamp.style);
            write_scored(&mut writer, &mut summary, &at_text, "0", score)?;
        }
        position = position.saturating_add(1);
        let score =
            detector.observe_in(row.value, kind, settings, since_alarm(position, last_alarm));
        if score.is_some_and(|s| s.anomalous) {
            last_alarm = Some(position);
        }
        write_scored(
            &mut writer,
            &mut summary,
            &row.time_text,
            &row.value_text,
            score,
        )?;
    }
    writer.flush()?;
    Ok(summary)
}

/// The kind the rows are scored as: `kind` if given, after checking that
/// counts are counts; else counts if every value is one, measures if not.
fn series_kind(rows: &[Row], kind: Option<SeriesKind>) -> Result<SeriesKind, BacktestError> {
    match kind {
        Some(SeriesKind::Count) => match rows.iter().find(|row| !is_count(row.value)) {
            Some(row) => Err(BacktestError::NotACount {
                line: row.line,
                text: row.value_text.clone(),
            }),
            None => Ok(SeriesKind::Count),
        },
        Some(kind) => Ok(kind),
        None if rows.iter().all(|row| is_count(row.value)) => Ok(SeriesKind::Count),
        None => Ok(SeriesKind::Measure),
    }
}

/// The times between consecutive rows, but rows repeating the time of
/// the one before (each is scored as the next window).
fn gaps(rows: &[Row]) -> impl Iterator<Item = f64> + Clone + '_ {
    rows.windows(2)
        .map(|pair| pair[1].stamp.millis - pair[0].stamp.millis)
        .filter(|&gap| gap > 0.0)
}

/// An error for the first row closer than half a window to the one
/// before, but a repeat of its time: the rows are not one per window.
fn one_per_window(rows: &[Row], window: f64) -> Result<(), BacktestError> {
    match rows.windows(2).find(|pair| {
        let gap = pair[1].stamp.millis - pair[0].stamp.millis;
        gap > 0.0 && gap < window / 2.0
    }) {
        Some([before, row]) => Err(BacktestError::CloserThanAWindow {
            line: row.line,
            text: row.time_text.clone(),
            gap: duration(row.stamp.millis - before.stamp.millis),
            window: duration(window),
        }),
        _ => Ok(()),
    }
}

/// The rows' own spacing, where it is not `configured_ms`: the least time
/// between two rows if some are closer than half of it (rows of a finer
/// grid), or the greatest common divisor of the times between rows if it is
/// at least one and a half times it (rows of a coarser grid: hourly rows,
/// some hours missing, are an hour apart or a whole number of hours). Rows
/// of a count series exported at the configured window, empty windows left
/// out, are a whole number of windows apart, and some of those numbers are
/// coprime: their divisor is the window.
fn spacing(rows: &[Row], configured_ms: i64) -> Option<i64> {
    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let gaps = gaps(rows).map(|gap| (gap.round() as i64).max(1));
    let closest = gaps.clone().min()?;
    let configured = i128::from(configured_ms);
    if 2 * i128::from(closest) < configured {
        return Some(closest);
    }
    let grid = gaps.fold(0, gcd);
    (2 * i128::from(grid) >= 3 * configured).then_some(grid)
}

/// Every row of `input`, its timestamp and value parsed, in time order.
fn read_rows(input: impl Read) -> Result<Vec<Row>, BacktestError> {
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
    let mut rows: Vec<Row> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| BacktestError::Csv {
            line: line_of(e.position()),
            message: e.to_string(),
        })?;
        let line = line_of(record.position());
        let field = |column: usize| record.get(column).unwrap_or_default();
        let (time_text, value_text) = (field(time_column), field(value_column));
        let stamp = parse_time(time_text).ok_or_else(|| BacktestError::Field {
            line,
            field: "timestamp",
            text: time_text.to_owned(),
            expected: "a time (RFC 3339, `YYYY-MM-DD hh:mm:ss` in UTC, a date) or epoch seconds or milliseconds",
        })?;
        if rows
            .last()
            .is_some_and(|last| stamp.millis < last.stamp.millis)
        {
            return Err(BacktestError::Unsorted {
                line,
                text: time_text.to_owned(),
            });
        }
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
        rows.push(Row {
            line,
            time_text: time_text.to_owned(),
            value_text: value_text.to_owned(),
            stamp,
            value,
        });
    }
    Ok(rows)
}

/// `millis` as a duration people read (`1h`, `1m 30s`).
fn duration(millis: f64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(millis.max(0.0) as u64)).to_string()
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
        run_as(input, RowWindow::Configured(60_000))
    }

    fn run_as(input: &str, window: RowWindow) -> Result<(String, BacktestSummary), BacktestError> {
        let mut out = Vec::new();
        let settings = AnomalySettings::default();
        let summary = backtest(
            input.as_bytes(),
            &mut out,
            Some(SeriesKind::Count),
            &settings,
            window,
        )?;
        Ok((String::from_utf8(out).unwrap_or_default(), summary))
    }

    /// Rows exported from ClickHouse have none for the windows a count
    /// series counted nothing in: they are scored as zeros, as live does,
    /// and written.
    #[test]
    fn missing_windows_of_a_count_series_are_scored_as_zero() {
        // Rows 1, 2 and 3 windows apart: the rows' spacing is the window.
        let mut with_gaps = String::from("timestamp,value\n");
        let mut every = String::from("timestamp,value\n");
        for i in 0..50 {
            let value = if i % 3 == 0 || i % 7 == 0 { 1 } else { 0 };
            let at = format!("2026-01-01T00:{i:02}:00Z,{value}\n");
            every.push_str(&at);
            if value > 0 {
                with_gaps.push_str(&at);
            }
        }
        let (filled, summary) = run(&with_gaps).unwrap();
        let (all, _) = run(&every).unwrap();
        // Window 49 has a row in both: the same lines, every one.
        assert_eq!(filled, all);
        assert_eq!((summary.windows, summary.filled), (50, 28));
    }

    /// One count series, three spikes 100 windows apart (more than the
    /// quiet period), written with a timestamp in each of `stamp`'s forms.
    fn three_spikes(stamp: impl Fn(i64) -> String) -> String {
        let mut input = String::from("timestamp,value\n");
        for i in 0..400 {
            let value = match i {
                100 | 200 | 300 => 120,
                _ => 20 + (i * 7 % 5) - 2,
            };
            input.push_str(&format!("{},{value}\n", stamp(i)));
        }
        input
    }

    /// The scores and alarms of a run, without the timestamps.
    fn scores(out: &str) -> Vec<String> {
        out.lines()
            .skip(1)
            .map(|l| l.split_once(',').map_or("", |(_, rest)| rest).to_owned())
            .collect()
    }

    /// Epoch milliseconds, epoch seconds, RFC 3339, ClickHouse's `DateTime`
    /// and an ISO time without a zone are the same windows: the quiet
    /// period after the first spike ends alike in each (with seconds taken
    /// as milliseconds it never did, and the later spikes went unreported).
    #[test]
    fn every_form_of_timestamp_scores_alike() {
        const START_S: i64 = 1_764_547_200; // 2025-12-01T00:00:00Z
        /// A timestamp for window `i`.
        type Form = fn(i64) -> String;
        let forms: [(&str, Form); 5] = [
            ("epoch ms", |i| format!("{}", (START_S + 60 * i) * 1_000)),
            ("epoch s", |i| format!("{}", START_S + 60 * i)),
            ("RFC 3339", |i| {
                format!("2025-12-01T{:02}:{:02}:00Z", i / 60, i % 60)
            }),
            ("ClickHouse", |i| {
                format!("2025-12-01 {:02}:{:02}:00", i / 60, i % 60)
            }),
            ("no zone", |i| {
                format!("2025-12-01T{:02}:{:02}", i / 60, i % 60)
            }),
        ];
        let (reference, summary) = run(&three_spikes(forms[0].1)).unwrap();
        let alarms: Vec<usize> = scores(&reference)
            .iter()
            .enumerate()
            .filter(|(_, s)| s.ends_with(",true"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(alarms, vec![100, 200, 300], "{reference}");
        assert_eq!(summary.anomalies, 3);
        for (name, stamp) in &forms[1..] {
            let (out, _) = run(&three_spikes(*stamp)).unwrap();
            assert_eq!(scores(&out), scores(&reference), "{name}");
        }
    }

    /// The windows filled in between two rows are written as the rows are.
    #[test]
    fn filled_windows_are_written_like_their_rows() {
        let filled = |input: &str| {
            let (out, _) = run_as(input, RowWindow::Given(60_000)).unwrap();
            out.lines()
                .nth(2)
                .unwrap_or_default()
                .split(',')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let rows = |a: &str, b: &str| format!("timestamp,value\n{a},3\n{b},4\n");
        assert_eq!(
            filled(&rows("2025-12-01 00:00:00", "2025-12-01 00:02:00")),
            "2025-12-01 00:01:00"
        );
        assert_eq!(
            filled(&rows("2025-12-01T00:00", "2025-12-01T00:02")),
            "2025-12-01T00:01:00"
        );
        assert_eq!(
            filled(&rows("2025-12-01T00:00:00Z", "2025-12-01T00:02:00Z")),
            "2025-12-01T00:01:00Z"
        );
        assert_eq!(filled(&rows("1764547200", "1764547320")), "1764547260");
        assert_eq!(
            filled(&rows("1764547200000", "1764547320000")),
            "1764547260000"
        );
        // Daily rows, backtested as daily windows.
        let mut out = Vec::new();
        let daily = rows("2025-12-01", "2025-12-03");
        let summary = backtest(
            daily.as_bytes(),
            &mut out,
            Some(SeriesKind::Count),
            &AnomalySettings::default(),
            RowWindow::Given(86_400_000),
        )
        .unwrap();
        assert_eq!(summary.filled, 1);
        assert!(String::from_utf8(out)
            .unwrap_or_default()
            .contains("\n2025-12-02,0,"));
    }

    /// Rows spaced otherwise than the configured window are scored as
    /// windows of their own spacing, and the note says so; a window given
    /// that rows are closer than half of is an error that says what to
    /// pass, and one no two rows are apart by is noted.
    #[test]
    fn rows_spaced_otherwise_than_the_window_are_named() {
        let hourly = "timestamp,value\n2025-12-01 00:00:00,5\n2025-12-01 01:00:00,5\n2025-12-01 03:00:00,5\n";
        // The configured minute: the rows are an hour apart, so each is an
        // hour, and the missing hour is a zero count.
        let (out, summary) = run(hourly).unwrap();
        assert_eq!(
            (summary.windows, summary.filled, summary.window_ms),
            (4, 1, 3_600_000)
        );
        assert!(out.contains("\n2025-12-01 02:00:00,0,"), "{out}");
        let note = summary.notes(60_000).join("\n");
        assert_eq!(note, "the rows are spaced by 1h, not by the configured window of 1m (windows.slide): scored as windows of 1h; pass --window to choose");
        // Row numbers, read as epoch seconds: windows of a second.
        let (_, summary) = run("timestamp,value\n1,5\n2,5\n3,5\n").unwrap();
        assert_eq!((summary.windows, summary.window_ms), (3, 1_000));
        // Given a minute: hourly rows have 59 missing windows between
        // them, and the note says which window would match.
        let (_, summary) = run_as(hourly, RowWindow::Given(60_000)).unwrap();
        assert_eq!((summary.windows, summary.filled), (181, 178));
        let note = summary.notes(60_000).join("\n");
        assert!(note.contains("the closest are 1h apart, so the windows between rows were taken as missing (178 scored as zero counts)"), "{note}");
        assert!(note.ends_with("pass --window 1h"), "{note}");
        // Given an hour, rows a minute apart.
        let err = run_as("timestamp,value\n0,5\n60,5\n", RowWindow::Given(3_600_000))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "line 3: timestamp \"60\" is 1m after the previous row's, closer than half a window (1h); rows must be one per window: if each row is a window of 1m, pass --window 1m");
        // Rows a configured window apart somewhere: the window, no note.
        let (_, summary) = run("timestamp,value\n0,5\n60,5\n600,5\n").unwrap();
        assert_eq!(
            (summary.window_ms, summary.notes(60_000)),
            (60_000, Vec::<String>::new())
        );
    }

    /// Told nothing, a series is counts if every value is one, else
    /// measures; told counts, a value that is not one is an error. (Scored
    /// as counts, a measure around -50 scored 0 in every window and its
    /// drop to -150 raised nothing.)
    #[test]
    fn values_that_are_not_counts_are_scored_as_measures_unless_said_to_be_counts() {
        let mut input = String::from("timestamp,value\n");
        for i in 0..300 {
            let value = if i == 200 {
                -150.0
            } else {
                -50.0 + f64::from(i % 9) * 1.25
            };
            input.push_str(&format!("{},{value}\n", 1_764_547_200 + 60 * i));
        }
        let settings = AnomalySettings::default();
        let window = RowWindow::Configured(60_000);
        let mut out = Vec::new();
        let summary = backtest(input.as_bytes(), &mut out, None, &settings, window).unwrap();
        assert_eq!((summary.kind, summary.anomalies), (SeriesKind::Measure, 1));
        let out = String::from_utf8(out).unwrap_or_default();
        assert!(
            out.contains("\n1764559200,-150,")
                && out.lines().nth(201).unwrap_or_default().ends_with(",true"),
            "{out}"
        );
        let err = backtest(
            input.as_bytes(),
            Vec::new(),
            Some(SeriesKind::Count),
            &settings,
            window,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "line 2: value \"-50\" is not a count (a whole number, zero or more); for measured values (money, durations, scores), pass --kind measure");
        let counts = "timestamp,value\n0,3\n60,0\n120,12\n";
        let summary = backtest(counts.as_bytes(), Vec::new(), None, &settings, window).unwrap();
        assert_eq!(summary.kind, SeriesKind::Count);
    }

    /// A row with the time of the row before it (NAB's ad exchange series
    /// have one) is scored as the next window, as NAB's runner takes every
    /// row, and a note says so; it changes neither the spacing nor the
    /// window.
    #[test]
    fn a_row_repeating_the_time_before_is_the_next_window() {
        let hourly = "timestamp,value\n2011-08-24 11:00:01,0.1\n2011-08-24 12:00:01,0.13\n2011-08-24 12:00:01,0.12\n2011-08-24 13:00:01,0.11\n";
        let settings = AnomalySettings::default();
        let measure = Some(SeriesKind::Measure);
        let mut out = Vec::new();
        let window = RowWindow::Configured(60_000);
        let summary = backtest(hourly.as_bytes(), &mut out, measure, &settings, window).unwrap();
        let out = String::from_utf8(out).unwrap_or_default();
        assert_eq!(
            (summary.windows, summary.repeated, summary.window_ms),
            (4, 1, 3_600_000)
        );
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with("2011-08-24 12:00:01,"))
                .count(),
            2,
            "{out}"
        );
        let notes = summary.notes(60_000);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(
            notes[1],
            "1 rows have the time of the row before them: each was scored as the next window"
        );
        let window = RowWindow::Given(3_600_000);
        let summary = backtest(hourly.as_bytes(), Vec::new(), measure, &settings, window).unwrap();
        assert_eq!((summary.windows, summary.notes(60_000).len()), (4, 1));
    }

    /// The quiet period after an alarm counts a row repeating the time
    /// before as the window it is scored as: with it, a spike five minutes
    /// after the alarm is six windows on and past a quiet period of five;
    /// without it, it is within.
    #[test]
    fn a_repeated_row_counts_in_the_quiet_period() {
        let settings = AnomalySettings {
            quiet_windows: 5,
            escalation: 0.0,
            ..AnomalySettings::default()
        };
        let series = |repeat: bool| {
            let mut rows = String::from("timestamp,value\n");
            for minute in 0..40 {
                rows += &format!("{},{}\n", minute * 60, 10 + minute % 3);
            }
            rows += "2400,100\n";
            for minute in 41..45 {
                rows += &format!("{},10\n", minute * 60);
            }
            if repeat {
                rows += "2640,11\n";
            }
            rows += "2700,1000\n";
            rows
        };
        let alarms = |repeat: bool| {
            let mut out = Vec::new();
            let window = RowWindow::Given(60_000);
            let input = series(repeat);
            backtest(input.as_bytes(), &mut out, None, &settings, window).unwrap();
            String::from_utf8(out)
                .unwrap_or_default()
                .lines()
                .filter(|line| line.ends_with(",true"))
                .map(|line| line.split(',').next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(alarms(true), ["2400", "2700"]);
        assert_eq!(alarms(false), ["2400"]);
    }

    /// Absurd timestamps and values are scored or refused, never a panic.
    #[test]
    fn absurd_rows_are_scored_or_refused() {
        let settings = AnomalySettings::default();
        for input in [
            "timestamp,value\n0,1\n1e300,1\n",
            "timestamp,value\n-1e300,1\n1e300,1\n",
            "timestamp,value\n1,1e308\n2,-1e308\n3,1e308\n",
            "timestamp,value\n9999-12-31T23:59:59Z,1\n",
            "timestamp,value\n0001-01-01,1\n9999-12-31,2\n",
            "timestamp,value\n1e-300,1\n2e-300,1\n",
        ] {
            for kind in [None, Some(SeriesKind::Count), Some(SeriesKind::Measure)] {
                for window in [
                    RowWindow::Configured(60_000),
                    RowWindow::Given(i64::MAX),
                    RowWindow::Given(1),
                ] {
                    let _outcome = backtest(input.as_bytes(), Vec::new(), kind, &settings, window);
                }
            }
        }
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
                anomalies: 1,
                filled: 0,
                closest_gap_ms: Some(60_000.0),
                window_ms: 60_000,
                window_from_rows: false,
                kind: SeriesKind::Count,
                repeated: 0,
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
        assert!(err("timestamp,value\n60,2\n120,x\n").starts_with("line 3: value \"x\""));
        assert!(err("timestamp,value\n1,2\nyesterday,3\n").starts_with("line 3: timestamp"));
        assert!(err("timestamp,value\n120,2\n60,3\n")
            .contains("line 3: timestamp \"60\" is before the previous row's"));
        assert!(err("timestamp,value\n60,2\n120\n").starts_with("line 3:"));
        assert!(err("timestamp,value\n2025-13-01 00:00:00,2\n").starts_with("line 2: timestamp"));
    }
}

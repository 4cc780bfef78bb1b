//! Where results go: ClickHouse (rollups and checkpoints) and Kafka (derived
//! events, dead letters, late events). Each sink classifies its errors.

pub mod clickhouse;
#[cfg(test)]
mod contract;
pub mod derived;
pub mod side_topic;

use std::borrow::Cow;

use crate::error::{Classified, Disposition};

/// A failed write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// ClickHouse refused or could not be reached.
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] ::clickhouse::error::Error),
    /// The sink task is gone (the process is stopping).
    #[error("the {0} sink has stopped")]
    Stopped(&'static str),
    /// A stored checkpoint does not parse.
    #[error("the stored state of {topic}/{partition} does not parse")]
    CorruptState {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint could not be encoded (a bug).
    #[error("encoding a checkpoint")]
    Encode(#[source] serde_json::Error),
    /// ClickHouse did not answer in time.
    #[error("clickhouse did not answer {0} in time")]
    TimedOut(&'static str),
}

impl SinkError {
    /// ClickHouse's answer is one it also gives for a body cut short on
    /// the way (27, 33): worth a few retries, not endless ones.
    pub fn is_suspect(&self) -> bool {
        match self {
            SinkError::ClickHouse(::clickhouse::error::Error::BadResponse(message)) => {
                exception_code(message).is_some_and(|code| SUSPECT_CODES.contains(&code))
            }
            _ => false,
        }
    }
}

impl Classified for SinkError {
    /// Whether retrying can help.
    ///
    /// ClickHouse errors about the data or the schema (unknown table or
    /// column, type or parse errors, missing database, access denied) will
    /// fail again the same way; network errors, timeouts, overload and
    /// anything unknown are worth retrying.
    fn disposition(&self) -> Disposition {
        match self {
            SinkError::Stopped(_) | SinkError::CorruptState { .. } | SinkError::Encode(_) => {
                Disposition::Fatal
            }
            SinkError::ClickHouse(e) => clickhouse_disposition(e),
            SinkError::TimedOut(_) => Disposition::Retry,
        }
    }

    fn remedy(&self) -> Option<Cow<'static, str>> {
        if let SinkError::CorruptState { .. } = self {
            return Some("the partition_state table holds a row this version cannot read: if it was written by a newer Reactor, run that version; otherwise delete the partition's rows (it then resumes from the group's committed offset)".into());
        }
        let SinkError::ClickHouse(::clickhouse::error::Error::BadResponse(message)) = self else {
            return None;
        };
        let remedy = match exception_code(message)? {
            60 | 81 => "the database or a table is missing: check clickhouse.database, or set clickhouse.create_schema = true and restart so Reactor creates them (schemas/clickhouse/)",
            16 | 47 | 53 => "the table does not match this Reactor version: apply schemas/clickhouse/ (or migrate the table) and restart",
            192 | 193 | 516 => "ClickHouse refused the credentials: check clickhouse.user and clickhouse.password (or password_file)",
            164 => "clickhouse.user is read-only (its settings profile has readonly = 1 or 2): give it a profile with readonly = 0",
            497 => "clickhouse.user may not do this: grant it SELECT, INSERT and CREATE on clickhouse.database",
            _ => return None,
        };
        Some(remedy.into())
    }
}

/// ClickHouse exception codes that retrying cannot fix.
const FATAL_CODES: &[u32] = &[
    16,  // NO_SUCH_COLUMN_IN_TABLE
    36,  // BAD_ARGUMENTS
    41,  // CANNOT_PARSE_DATETIME
    47,  // UNKNOWN_IDENTIFIER
    53,  // TYPE_MISMATCH
    60,  // UNKNOWN_TABLE
    62,  // SYNTAX_ERROR
    81,  // UNKNOWN_DATABASE
    117, // INCORRECT_DATA
    164, // READONLY
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED
];

/// Codes ClickHouse returns for bad data and for a body cut short on the
/// way (a connection reset mid-INSERT): retryable, a few times (see
/// [`SinkError::is_suspect`]).
const SUSPECT_CODES: &[u32] = &[
    27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33, // CANNOT_READ_ALL_DATA
];

fn clickhouse_disposition(error: &::clickhouse::error::Error) -> Disposition {
    use ::clickhouse::error::Error;
    match error {
        Error::BadResponse(message) => match exception_code(message) {
            Some(code) if FATAL_CODES.contains(&code) => Disposition::Fatal,
            _ => Disposition::Retry,
        },
        Error::Network(_) | Error::TimedOut => Disposition::Retry,
        Error::InvalidParams(_) | Error::Unsupported(_) | Error::SchemaMismatch(_) => {
            Disposition::Fatal
        }
        _ => Disposition::Retry,
    }
}

/// The `Code: N` of a ClickHouse exception message.
fn exception_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_clickhouse_exceptions_and_says_what_to_do() {
        let bad =
            |m: &str| SinkError::ClickHouse(::clickhouse::error::Error::BadResponse(m.into()));
        assert_eq!(
            bad("Code: 60, e.displayText() = DB::Exception: Table x.rollups doesn't exist")
                .disposition(),
            Disposition::Fatal
        );
        assert_eq!(
            bad("Code: 252, e.displayText() = DB::Exception: Too many parts").disposition(),
            Disposition::Retry
        );
        assert_eq!(
            bad("Code: 241. DB::Exception: Memory limit exceeded").disposition(),
            Disposition::Retry
        );
        assert_eq!(
            bad("something unexpected").disposition(),
            Disposition::Retry
        );
        assert_eq!(
            SinkError::Stopped("rollup").disposition(),
            Disposition::Fatal
        );
        assert_eq!(exception_code("Code: 117, e.displayText()"), Some(117));
        // A truncated INSERT body reads as bad data: retried, a few times.
        let truncated = bad("Code: 33, e.displayText() = DB::Exception: Cannot read all data");
        assert_eq!(truncated.disposition(), Disposition::Retry);
        assert!(truncated.is_suspect());
        assert!(!bad("Code: 252, Too many parts").is_suspect());
        let missing =
            bad("Code: 60, e.displayText() = DB::Exception: Table x.rollups doesn't exist");
        assert!(missing
            .remedy()
            .is_some_and(|r| r.contains("clickhouse.create_schema")));
        assert_eq!(bad("Code: 252, Too many parts").remedy(), None);
        let readonly = bad(
            "Code: 164, e.displayText() = DB::Exception: Cannot execute query in readonly mode",
        );
        assert_eq!(readonly.disposition(), Disposition::Fatal);
        assert!(readonly
            .remedy()
            .is_some_and(|r| r.contains("readonly = 0")));
    }
}

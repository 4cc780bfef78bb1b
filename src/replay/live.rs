//! What the live run (the configured consumer group) has written of a
//! partition, from its checkpoint, and what a replay may do about it.
//!
//! A replay rebuilds its trend and anomaly histories from the rows live
//! wrote before the range, and its rows outrank live's: a replay ahead of
//! live would write rows computed without windows live has not written
//! yet, for good. At the end of its input, a replay closes the windows
//! live closed (its partition went idle), and leaves the others to live.

use anyhow::Context as _;

use crate::config::Config;
use crate::event::EventTime;
use crate::pipeline::Checkpoint;

/// What the live run has written of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// No checkpoint of the group for the partition: a rebuild, a live run
    /// that has not started, or one that has read nothing durable yet
    /// (with `start_from = "latest"` it never reads what came before).
    Absent,
    /// Every window ending at or before this is written (`None`: none yet).
    ClosedThrough(Option<EventTime>),
}

/// The live run has not written the windows a replay needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the live run (kafka.group_id) has written this partition's windows only through {written}, \
     not yet up to the range's start: the replayed windows' trend and anomaly values would miss \
     the windows in between, and would replace live's. Wait until live has passed {needed} (the \
     partition's reactor_watermark_seconds, or /state), or replay from {written} or earlier; \
     windows this replay wrote already are whole and right"
)]
pub struct LiveBehind {
    written: String,
    needed: String,
}

/// Reads the live checkpoint of `topic`/`partition`, if there is one.
pub async fn checkpoint(
    clickhouse: &::clickhouse::Client,
    config: &Config,
    topic: &str,
    partition: i32,
) -> anyhow::Result<Option<Checkpoint>> {
    let saved = crate::sink::clickhouse::state::load_checkpoint(
        clickhouse,
        &config.kafka.group_id,
        topic,
        partition,
        config.clickhouse.request_timeout,
    )
    .await
    .with_context(|| format!("reading the live checkpoint of {topic}/{partition}"))?;
    Ok(saved.and_then(|s| s.checkpoint))
}

impl Live {
    /// What a checkpoint says live has written.
    pub fn of(checkpoint: Option<&Checkpoint>) -> Live {
        match checkpoint {
            None => Live::Absent,
            Some(checkpoint) => Live::ClosedThrough(checkpoint.closed_through),
        }
    }

    /// `Ok` if a replay may write windows whose histories need every window
    /// ending at or before `needed`: live has written them, or there is no
    /// live run to follow.
    pub fn check_written_before(self, needed: EventTime) -> Result<(), LiveBehind> {
        match self {
            Live::ClosedThrough(written) if written.is_none_or(|w| w < needed) => Err(LiveBehind {
                written: written.map_or_else(|| "none yet".to_owned(), |w| w.to_rfc3339()),
                needed: needed.to_rfc3339(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the windows a partition going idle would close, ending at
    /// the latest at `last_end`, may be closed by the replay: live closed
    /// them, or (with `close_at_end`) there is no live run to leave them to.
    pub fn closes(self, last_end: EventTime, close_at_end: bool) -> bool {
        match self {
            Live::Absent => close_at_end,
            Live::ClosedThrough(written) => written.is_some_and(|w| last_end <= w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> EventTime {
        EventTime::from_millis(minutes * 60_000)
    }

    #[test]
    fn a_replay_follows_what_live_has_written() {
        let through = |m| {
            Live::of(Some(&Checkpoint {
                closed_through: Some(at(m)),
                ..Checkpoint::at(5)
            }))
        };
        assert_eq!(Live::of(None), Live::Absent);
        assert_eq!(
            Live::of(Some(&Checkpoint::at(5))),
            Live::ClosedThrough(None)
        );

        assert!(Live::Absent.check_written_before(at(10)).is_ok());
        assert!(through(10).check_written_before(at(10)).is_ok());
        let behind = through(9).check_written_before(at(10)).unwrap_err();
        assert!(
            behind
                .to_string()
                .contains("only through 1970-01-01T00:09:00"),
            "{behind}"
        );
        let none = Live::ClosedThrough(None)
            .check_written_before(at(10))
            .unwrap_err();
        assert!(none.to_string().contains("only through none yet"), "{none}");

        assert!(through(10).closes(at(10), false));
        assert!(!through(10).closes(at(11), true));
        assert!(!Live::ClosedThrough(None).closes(at(1), true));
        assert!(Live::Absent.closes(at(1), true));
        assert!(!Live::Absent.closes(at(1), false));
    }
}

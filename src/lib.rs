//! # Reactor
//!
//! A stream processor for marketing analytics: it consumes content,
//! engagement and conversion events from Kafka, aggregates them per campaign,
//! content and channel in event-time windows, and writes each closed window
//! ("rollup") to ClickHouse.
//!
//! # Data flow
//!
//! ```text
//! Kafka partition ─► reader task ─► PartitionActor ─► PartitionPipeline (pure, sync)
//!   (split queue)    (batches)      (bounded mailbox)   decode → window → aggregate
//!                                                        │              │
//!                          dead letters ◄───────────────┘              ▼ closed windows
//!                      (Kafka, acked) ──┐                       RollupWriter (batched)
//!                                       ▼                              │ ClickHouse ack
//!                              CheckpointLedger ◄──────────────────────┘
//!                                       │ checkpoint (offset + watermark)
//!                                       ▼
//!                    ClickHouse `checkpoints`, then Kafka commit (for lag tools)
//! ```
//!
//! A partition resumes from its checkpoint: the oldest offset still needed
//! to rebuild unwritten windows, with the watermark at that point, so a
//! restart rebuilds exactly the open windows and rewrites (ReplacingMergeTree)
//! identical rows. See [`pipeline`] and [`pipeline::checkpoint`].
//!
//! # Layout
//!
//! Imports point down this list, never up:
//!
//! - Wiring: [`cli`] parses the command line; [`app`] starts everything and
//!   turns [`config`] into the settings each part runs with.
//! - Shell: [`actors`] (supervision and routing only), [`http`],
//!   [`health`], [`registry`] (schema registry client), [`kafka`] (consumer
//!   protocol, producers, admin), [`sink`] (ClickHouse, derived events, side
//!   topics), [`telemetry`], [`tls`], [`retry`] (the one back-off policy).
//! - Pure core, no I/O and no runtime: [`pipeline`] (per-partition
//!   processing, the checkpoint ledger), [`derived`] (derived events and
//!   their ids), [`window`] (windows, watermark, late policy),
//!   [`aggregate`] (mergeable aggregators, trend, anomaly), [`rollup`]
//!   (metrics and rows), [`event`] (domain events, framing, decoding,
//!   validation), [`generate`]'s event stream, and [`anomaly_eval`] (the
//!   labelled corpus and scorer the anomaly detector is measured on).
//! - Leaves: [`config`] (settings, validated without I/O) and [`error`]
//!   (dispositions and the typed [`error::Failure`]).

pub mod actors;
pub mod aggregate;
pub mod anomaly_eval;
pub mod app;
pub mod cli;
pub mod config;
pub mod derived;
pub mod error;
pub mod event;
pub mod generate;
pub mod health;
pub mod http;
pub mod kafka;
pub mod pipeline;
pub mod registry;
pub mod replay;
pub mod retry;
pub mod rollup;
pub mod sink;
pub mod telemetry;
pub mod tls;
pub mod window;

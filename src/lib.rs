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
//!                                 OffsetTracker ◄──────────────────────┘
//!                                       │ checkpoint (offset + watermark)
//!                                       ▼
//!                    ClickHouse `checkpoints`, then Kafka commit (for lag tools)
//! ```
//!
//! A partition resumes from its checkpoint: the oldest offset still needed
//! to rebuild unwritten windows, with the watermark at that point, so a
//! restart rebuilds exactly the open windows and rewrites (ReplacingMergeTree)
//! identical rows. See [`pipeline`] and [`kafka::offsets`].
//!
//! # Layout
//!
//! - Pure core, no I/O: [`event`] (domain events, decoding), [`window`]
//!   (tumbling windows, watermark), [`aggregate`] (mergeable aggregators),
//!   [`rollup`] (metrics and rows), [`kafka::offsets`], [`pipeline`], and
//!   [`generate`]'s event stream.
//! - Shell: [`actors`] (supervision and routing), [`kafka`] (consumer
//!   protocol, producers, admin), [`sink`] (ClickHouse, dead letters),
//!   [`http`], [`health`], [`telemetry`].
//! - Wiring: [`app`] starts everything; [`cli`] parses the command line;
//!   [`config`] loads and validates settings.

pub mod actors;
pub mod aggregate;
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
pub mod retry;
pub mod rollup;
pub mod sink;
pub mod telemetry;
pub mod tls;
pub mod window;

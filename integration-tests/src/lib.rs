//! Harness for Reactor's end-to-end tests: real services, a fresh set of
//! topics, a fresh ClickHouse database and a fresh consumer group per test,
//! and the real `reactor` binary as a child process (so a test can SIGKILL it).
//!
//! - [`services`]: where the local services are (`scripts/services-start`).
//! - [`env`](mod@env): one test's topics, database, config file and cleanup.
//! - [`process`]: a running `reactor run`.
//! - [`kafka`]: reading output topics.
//! - [`metrics`]: `/metrics`, HTTP GET, Prometheus scrape targets.
//! - [`proxy`]: faults at the wire in front of a real service.
//! - [`expected`]: the rollups a test expects, computed independently.
//! - [`shell`]: Reactor's actors driven in-process.
//! - [`rows`]: whole stored rows, for comparing two runs.
//! - [`consume`]: the consume-only ceiling the benchmark compares with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod broker;
pub mod consume;
pub mod env;
pub mod expected;
pub mod kafka;
pub mod metrics;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod rows;
pub mod services;
pub mod shell;
pub mod wait;

pub use env::{Publishing, Scenario, TestEnv};
pub use kafka::{header, read_all, read_topic, read_topic_async};
pub use metrics::{
    http_get, partitions_of, running_partitions_of, scrape, some_partitions_move_to, Metrics,
    ScrapeTarget,
};
pub use process::{reactor_binary, ReactorProcess};
pub use registry::TestRegistry;
pub use services::{env_or, Services};
pub use wait::eventually;

//! Reactor.
pub mod aggregate;
pub mod config;
pub mod error;
pub mod event;
pub mod kafka;
pub mod pipeline;
pub mod rollup;
pub mod window;

//! Heap held per open (key, window) by a partition pipeline, counted by a
//! wrapping allocator: `cargo bench --bench memory`. (Requested bytes, so
//! the figure does not depend on the allocator.)
#![allow(clippy::expect_used)] // setup that fails is a bug in the benchmark

mod common;

use common::{events, pipeline, records, EVENTS_PER_WINDOW};
use reactor::event::decode::Format;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Heap held by the open windows of one minute, per open series and per
/// open (campaign, content, channel) key.
fn main() {
    println!("memory held by open windows (one window open, nothing closed):");
    for keys in [1_000, 100_000] {
        let input = records(&events(keys, EVENTS_PER_WINDOW - 1_000), Format::Json);
        let mut p = pipeline();
        let region = Region::new(GLOBAL);
        for batch in input.chunks(2_000) {
            let _out = p.process(batch.to_vec());
        }
        let stats = region.change();
        let held = stats.bytes_allocated as f64 - stats.bytes_deallocated as f64;
        let state = p.state();
        let series: usize = state.open_windows.iter().map(|(_, n)| n).sum();
        // Each key has one dwell series and up to six count series.
        let keys_open = state.open_windows.len() * keys.min(EVENTS_PER_WINDOW);
        println!(
            "  {keys:>7} keys: {:>6.1} MiB held, {series} open series → {:.0} B per series, {:.0} B per open (key, window)",
            held / 1_048_576.0,
            held / series as f64,
            held / keys_open as f64,
        );
    }
}

//! The `reactor` binary: parses the command line and runs the subcommand.

use clap::Parser;

/// mimalloc: the partition actors allocate and free many small keys and
/// rows per window; glibc's allocator spent a quarter of the aggregation
/// benchmark consolidating and unlinking chunks (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    reactor::cli::Cli::parse().run()
}

//! The `reactor` binary: parses the command line and runs the subcommand.

use clap::Parser;

/// mimalloc: the partition actors allocate and free many small keys and
/// rows per window; glibc's allocator spent a quarter of the aggregation
/// benchmark consolidating and unlinking chunks (BENCHMARKS.md). Built
/// without transparent huge pages (`no_thp`): the kernel zeroing 2 MiB
/// pages on first touch took a quarter of Reactor's CPU on a backlog, and
/// about 10 % less CPU and 20 % less memory were measured without them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    reactor::cli::Cli::parse().run()
}

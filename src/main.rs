//! The `reactor` binary: parses the command line and runs the subcommand.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the partition actors allocate and free many small keys and
/// rows per window; glibc's allocator spent a quarter of the aggregation
/// benchmark consolidating and unlinking chunks (BENCHMARKS.md). Built
/// without transparent huge pages (`no_thp`): the kernel zeroing 2 MiB
/// pages on first touch took a quarter of Reactor's CPU on a backlog, and
/// about 10 % less CPU and 20 % less memory were measured without them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match reactor::cli::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The error and its causes, as anyhow writes them, but never
            // with a backtrace, even under RUST_BACKTRACE=1 (which container
            // images often set): these errors are about configuration and
            // services and say what to do; a backtrace would bury that. A
            // panic, a bug, still prints its backtrace.
            eprintln!("Error: {error}");
            let causes: Vec<_> = error.chain().skip(1).collect();
            if !causes.is_empty() {
                eprintln!("\nCaused by:");
                for (i, cause) in causes.iter().enumerate() {
                    if causes.len() == 1 {
                        eprintln!("    {cause}");
                    } else {
                        eprintln!("    {i}: {cause}");
                    }
                }
            }
            ExitCode::FAILURE
        }
    }
}

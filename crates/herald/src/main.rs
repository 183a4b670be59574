//! `herald`: run a Server-Sent Events hub, and talk to one from a terminal.
//!
//! Each subcommand lives in its own module: `serve` runs the hub, `publish`
//! and `sub` are a publisher and a subscriber, `token` mints JWTs, `bench`
//! loads a hub and measures it.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod bench;
mod publish;
mod serve;
mod sub;
mod token;

/// jemalloc, with its background purging thread, instead of glibc's
/// malloc: memory the hub frees goes back to the system within seconds.
/// With glibc, a hub that once held a few hundred megabytes (large updates
/// queued for slow subscribers, a burst of big publishes) kept them for
/// good: after the first large block is freed glibc raises its mmap
/// threshold, serves later large blocks from its heaps, and does not give
/// those back. mimalloc kept them too, until its next allocation in the
/// same thread. Measured in bench/RESULTS.md ("A subscriber that stops
/// reading").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Herald: a Server-Sent Events hub speaking the Mercure protocol.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub.
    Serve(Box<serve::ServeArgs>),
    /// Follow an event stream (any SSE URL, or topics on a hub).
    Sub(Box<sub::SubArgs>),
    /// Publish an update to a hub.
    Pub(Box<publish::PubArgs>),
    /// Mint a token for publishers or subscribers: a draft-07 JWT, or
    /// (--draft 08) a draft-08 access token.
    Token(Box<token::TokenArgs>),
    /// Load a hub (or any SSE server) with subscribers and publishes, and
    /// measure delivery, latency and memory.
    Bench(Box<bench::BenchArgs>),
}

fn main() -> std::process::ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Sub(mut args) => {
            // A stream's URL given beside HERALD_HUB wins over it; beside
            // an explicit --hub it is an error (`sub::run` says so).
            args.hub_from_env = matches
                .subcommand_matches("sub")
                .and_then(|sub| sub.value_source("hub"))
                == Some(clap::parser::ValueSource::EnvVariable);
            sub::run(*args)
        }
        Command::Pub(args) => publish::run(*args),
        Command::Token(args) => token::run(*args),
        Command::Bench(args) => bench::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

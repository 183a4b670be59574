//! `herald`: run a Server-Sent Events hub, and talk to one from a terminal.
//!
//! Each subcommand lives in its own module: `serve` runs the hub, `publish`
//! and `sub` are a publisher and a subscriber, `token` mints JWTs.

use clap::{Parser, Subcommand};

mod serve;

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

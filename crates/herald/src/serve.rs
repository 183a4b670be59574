//! `herald serve`: runs the hub. (Being built.)

use std::process::ExitCode;

/// Options of `herald serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {}

/// Runs the hub until SIGINT or SIGTERM.
pub(crate) fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the hub is not built yet")
}

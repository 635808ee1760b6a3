//! `eventprop exact` (being written).

/// Arguments of `eventprop exact`.
#[derive(Debug, clap::Args)]
pub struct ExactArgs {}

/// Runs the subcommand.
pub fn run(_args: ExactArgs) -> anyhow::Result<()> {
    anyhow::bail!("`eventprop exact` is not built yet")
}

//! `eventprop bench` (being written).

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs the subcommand.
pub fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}

//! `eventprop neuron` (being written).

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct NeuronArgs {}

/// Runs the subcommand.
pub fn run(_args: NeuronArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}

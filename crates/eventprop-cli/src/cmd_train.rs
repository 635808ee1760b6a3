//! `eventprop train` and `eventprop eval` (being written).

/// Arguments of `eventprop train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {}

/// Arguments of `eventprop eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {}

/// Runs `train`.
pub fn run_train(_args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("`eventprop train` is not built yet")
}

/// Runs `eval`.
pub fn run_eval(_args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`eventprop eval` is not built yet")
}

//! The integration tests of `eventprop-cli`, one module per topic, linked into one test
//! binary (one link instead of one per file).

mod bench_cli;
mod chip_cli;
mod common;
mod data_files_cli;
mod events_cli;
mod exact_cli;
mod exact_general_cli;
mod hostile_cli;
mod limits_cli;
mod neuron_cli;
mod nir_cli;
mod readme_cli;
mod train_cli;

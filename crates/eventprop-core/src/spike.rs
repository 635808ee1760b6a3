//! Spikes: the events every engine, data reader and chip exchanges.

use serde::{Deserialize, Serialize};

/// One spike: a time in seconds and the index of the neuron within its layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spike {
    /// Spike time in seconds.
    pub time: f64,
    /// Neuron index within its layer.
    pub neuron: u32,
}

/// Sorts spikes by `(time, neuron)` (the order every spike list of this crate uses).
pub fn sort_spikes(spikes: &mut [Spike]) {
    spikes.sort_by(|x, y| x.time.total_cmp(&y.time).then(x.neuron.cmp(&y.neuron)));
}

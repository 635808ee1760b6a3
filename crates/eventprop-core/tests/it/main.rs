//! The integration tests of `eventprop-core`, one module per topic, linked into one test
//! binary (one link instead of one per file).

mod common;
mod fused;
mod fused_recurrent;
mod hardening;
mod hw_path;
mod into_buffers;
mod lif_cases;
mod lif_gradients;
mod seed_faithful;
mod synapse;
mod validation;

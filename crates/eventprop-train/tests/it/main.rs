//! The integration tests of `eventprop-train`, one module per topic, linked into one test
//! binary (one link instead of one per file).

mod augment;
mod chip;
mod collective;
mod delay_line;
mod events;
mod files;
mod hidden_counts;
mod init;
mod learn;
mod loss_shaping;
mod nir;
mod sections;
mod stepped_fused;
mod stepped_layer;
mod stepped_network;
mod stepped_recurrent;
mod trainer;

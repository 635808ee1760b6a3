//! # eventprop-data
//!
//! The data every engine reads, and the files they come from:
//!
//! * [`sample`]: labelled samples of input spike events ([`SpikeSet`]) and their time grid
//!   ([`rasterize`]);
//! * file formats, one module each: [`files`] (`.npz` and CSV feature and event files),
//!   `shd` (SHD/SSC-layout HDF5, feature `hdf5`, on by default), [`npy`] (checked `.npy` headers inside `.npz`);
//! * [`events`]: reading the event files of a run by extension, the validation hold-out
//!   and the sizes the data imply;
//! * generated tasks, one module each: [`yinyang`] (Yin-Yang, Kriener et al. 2021, and its
//!   spike-time encoding), and event tasks whose class templates come from a `task_seed`
//!   shared by the splits of one task and whose samples come from a `seed`, one random
//!   stream per sample: [`timing`] (classes that differ only in spike timing),
//!   [`latency`] (latency-coded images), [`rates`] (dense SHD-like Poisson rates),
//!   [`place`] (place-coded moving bands), [`order`] (reordered syllables with speaker and
//!   tempo variation);
//! * [`augment`]: augmentation of event samples for training (time and channel shift, time
//!   stretch, blending two samples of a class);
//! * [`fsio`]: atomic file writing (temp file, then rename), used by every writer of the
//!   project.
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod arrays;
pub mod augment;
pub mod error;
pub mod events;
pub mod files;
pub mod fsio;
mod generated;
pub mod latency;
pub mod npy;
pub mod order;
pub mod place;
pub mod rates;
pub mod sample;
#[cfg(feature = "hdf5")]
pub mod shd;
pub mod timing;
pub mod yinyang;

pub use error::{Error, Result};
pub use events::{DataSizes, EventSources, Splits};
pub use sample::{grid_spikes, rasterize, Spike, SpikeSet};

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
//!   spike-time encoding), [`timing`] (classes that differ only in spike timing);
//! * [`fsio`]: atomic file writing (temp file, then rename), used by every writer of the
//!   project.
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod error;
pub mod events;
pub mod files;
pub mod fsio;
pub mod npy;
pub mod sample;
#[cfg(feature = "hdf5")]
pub mod shd;
pub mod timing;
pub mod yinyang;

pub use error::{Error, Result};
pub use events::{DataSizes, EventSources, Splits};
pub use sample::{grid_spikes, rasterize, Spike, SpikeSet};

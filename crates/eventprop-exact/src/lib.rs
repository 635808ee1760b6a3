//! placeholder crate, being written.
#![deny(missing_docs)]

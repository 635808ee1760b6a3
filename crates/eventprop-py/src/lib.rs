//! Python bindings (being written).
#![deny(missing_docs)]

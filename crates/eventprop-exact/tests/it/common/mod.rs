//! Helpers shared by the integration tests and examples.
pub mod fd;
pub mod stepped;

//! The integration tests of `eventprop-exact`, one module per topic, linked into one test
//! binary (one link instead of one per file).

mod common;
mod forward_cases;
mod gradcheck;
mod gradcheck_general;
mod recurrent_cases;
mod stepped_agreement;

//! drowl-host's integration tests: real components, run through the real runtime.
//!
//! One test binary (faster to link than one per file). Components are built from the
//! workspace by `support::component` the first time a test needs them.

mod bounds;
mod cli;
mod github;
#[allow(dead_code, reason = "the memory helpers are for the soak binaries")]
#[path = "../hostile_faults/mod.rs"]
mod hostile_faults;
mod ingestion;
mod production;
mod sandbox;
mod support;

//! drowl-host's integration tests: real components, run through the real runtime.
//!
//! One test binary (faster to link than one per file). The components come from
//! drowl-test-artifacts, whose build script builds them before any test runs.

mod cli;
mod github;
#[allow(dead_code, reason = "the memory helpers are for the soak binaries")]
#[path = "../hostile_faults/mod.rs"]
mod hostile_faults;
mod ingestion;
mod production;
mod sandbox;
mod support;

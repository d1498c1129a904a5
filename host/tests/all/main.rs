//! drowl-host's integration tests: real components, run through the real runtime.
//!
//! One test binary (faster to link than one per file). Components are built from the
//! workspace by `support::component` the first time a test needs them.

mod cli;
mod github;
mod ingestion;
mod production;
mod sandbox;
mod support;

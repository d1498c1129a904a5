//! drowl-host's integration tests: real components, run through the real runtime.
//!
//! One test binary (faster to link than one per file). The components come from
//! drowl-test-artifacts, whose build script builds them before any test runs.

mod bounds;
mod cli;
mod contract;
mod export;
mod github;
mod identity;
mod ingestion;
mod links;
mod production;
mod registry;
mod resolution;
mod sandbox;
mod settings_file;
mod support;
mod webhooks;

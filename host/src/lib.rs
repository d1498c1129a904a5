//! # drowl-host
//!
//! The data plane of drowl: it pulls jobs from drowl's Bull queue and runs ingestion,
//! enrichment and export plugins as sandboxed WebAssembly components.
//!
//! # Overview
//!
//! The crate is laid out by responsibility, and each folder can be read on its own.
//! Imports go one way only, from the top of this list to the bottom:
//!
//! ```text
//! main → cli → http → queue → jobs → capabilities → runtime → storage
//! ```
//!
//! Below them all sit leaf modules that import nothing from the crate: [`bindings`]
//! (generated from the WIT), [`manifest`], [`ids`] (plugin ids), [`policy`] (the
//! operator's budgets and grants) and [`redact`] (secrets kept out of messages and logs).
//!
//! - [`runtime`]: wasmtime engine, component loading and validation, per-job stores
//!   with deadlines and memory limits, and calls into the plugin worlds.
//! - [`capabilities`]: one folder per WIT interface the host provides to plugins
//!   (`log`, `config`, `kv`, `objects`, `http`, `queue`), each scoped to one plugin.
//! - [`storage`]: the backends behind small traits: SQLite and local files when embedded,
//!   PostgreSQL and S3 in production.
//! - [`jobs`]: what each drowl job type does, independent of where the job came from
//!   (the queue or `drowl-host run-plugin`).
//! - [`queue`]: the daemon side of the Bull queue (built on the `drowl-bull` crate).
//! - [`http`]: the daemon's HTTP surface (health, status).
//! - [`cli`]: the `drowl-host` command line.
//! - [`config`]: settings from flags, drowl's environment variables and the TOML settings
//!   file, with where each came from (`drowl-host config check`).

pub mod bindings;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod manifest;
pub mod policy;
pub mod queue;
pub mod redact;
pub mod runtime;
pub mod storage;

/// The host's own version, compared with each plugin's `min-host-version`.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

//! The host side of every `drowl:plugin` contract version this host runs, one module per
//! version, generated from `wit/`.
//!
//! Versions are additive: 0.2.0 keeps every interface 0.1.0 released under its `@0.1.0`
//! name and only adds `@0.2.0` ones, so the host implements each import once (in the
//! capabilities layer, against the 0.1.0 types) and a 0.1.0 component needs no adapter.
//! A future version that changes a released interface gets its own module here and
//! converts its records to the newest ones at this boundary.

#![allow(missing_docs, reason = "generated code")]
#![allow(unreachable_pub, reason = "generated code")]

pub mod v0_1_0;
pub mod v0_2_0;

pub use v0_1_0::host_api::drowl::plugin::types;
pub use v0_1_0::{enrichment, export, host_api, ingestion};
pub use v0_2_0::{identity, scheduled, webhook};

//! The `http` interface: outbound HTTP for plugins, limited to the origins the plugin
//! declared and the operator granted, with the host resolving names and refusing
//! private and special addresses.
//!
//! - [`egress`]: the engine behind `http.send` (checks, pinned connections, limits, records).
//! - [`policy`]: origins, the effective allow-list and limits.
//! - [`ip`]: which addresses may be connected to.

pub mod egress;
pub mod host;
pub mod ip;
pub mod policy;

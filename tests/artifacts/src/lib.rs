//! The plugin components drowl-host's integration tests and benches load: the real
//! first-party plugins and the test plugins (hostile, slow-describe, webhook-echo), compiled for `wasm32-wasip2` in the size-optimised `plugin` profile
//! (as `scripts/build-plugins.sh` builds them for operators) by this crate's build script.
//!
//! Why a crate: a test that runs `cargo build` waits for the target directory's lock,
//! which the `cargo test` running it may hold for minutes, and a test that expects a
//! script to have been run fails on a fresh checkout or loads a stale component. As a
//! build script, cargo builds the components once, before any test, and again only when
//! a plugin's, the SDK's or the WIT sources change (the pattern of wasmtime's
//! `test-programs-artifacts`).
//!
//! They are built in `target/test-plugins/`, a target directory of their own: the build
//! script's cargo must not wait for the lock of the cargo that runs it, and the
//! operators' `target/wasm32-wasip2/plugin/` stays theirs. The paths below are copies in
//! this crate's `OUT_DIR`, which belong to the build that made them.

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/components.rs"));

/// The component of plugin package `package` (`"hostile-plugin"`, …).
///
/// # Panics
///
/// If `package` is not one of [`ALL`]: a test naming a plugin that is not built here is
/// a mistake in the test.
pub fn component(package: &str) -> &'static Path {
    ALL.iter()
        .find(|(name, _)| *name == package)
        .map(|(_, path)| Path::new(*path))
        .unwrap_or_else(|| {
            let known: Vec<&str> = ALL.iter().map(|(name, _)| *name).collect();
            panic!("no test artifact for plugin package {package:?}; built here: {known:?}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_was_built() {
        for (package, path) in ALL {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{package}: {path}: {e}"));
            assert!(bytes.starts_with(b"\0asm"), "{package}: {path} is not wasm");
            assert_eq!(component(package), Path::new(path));
        }
        assert_eq!(component("hostile-plugin"), Path::new(HOSTILE_PLUGIN));
    }
}

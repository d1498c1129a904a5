#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the wasm32-wasip2 target, moto_server
# and bull, then runs every test in the workspace against the machine's PostgreSQL and
# Redis. The plugin components the tests load are built by tests/artifacts' build script
# (into target/test-plugins), so scripts/build-plugins.sh is not needed here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
cargo test --workspace --no-fail-fast "$@"

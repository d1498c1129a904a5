#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the wasm32-wasip2 target, moto_server
# and bull, builds the plugin components, then runs every test in the workspace against
# the machine's PostgreSQL and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
scripts/build-plugins.sh >/dev/null
cargo test --workspace --no-fail-fast "$@"

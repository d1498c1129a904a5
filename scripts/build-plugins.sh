#!/usr/bin/env bash
# Builds every plugin component (first-party and test plugins) for wasm32-wasip2 into
# target/wasm32-wasip2/plugin (the size-optimised `plugin` profile), for the demo and for operators. The tests and benches do not
# need it: tests/artifacts' build script builds the same packages into target/test-plugins.
# Each package is built on its own so the SDK's role features are not unified across
# plugins: a component must export only its own world.
# Usage: scripts/build-plugins.sh [PACKAGE...]   (all of them when none is named)
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
  packages=(github-plugin feed-plugin keywords-plugin identity-plugin export-plugin hostile-plugin slow-describe-plugin webhook-echo-plugin)
fi
for pkg in "${packages[@]}"; do
  cargo build --quiet --profile plugin --target wasm32-wasip2 -p "$pkg"
  ls -1 "target/wasm32-wasip2/plugin/${pkg//-/_}.wasm"
done

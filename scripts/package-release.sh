#!/usr/bin/env bash
# Packages a release of drowl-host with its first-party plugins, so an operator runs them
# without a Rust toolchain:
#
#   dist/drowl-host-<version>-<target>/
#     drowl-host                      the binary (release build)
#     plugins/<id>.wasm               github, feed, keywords, identity, export
#     README.md, SECURITY.md
#   dist/drowl-host-<version>-<target>.tar.gz
#
# On the server, either point the daemon at the bundle's directory
#   drowl-host serve --plugins /opt/drowl-host/plugins
# or record them in the plugins table once (every daemon on the database runs them, and
# drowl's API can enable, disable and configure them):
#   drowl-host migrate && drowl-host plugin install-bundled
# (`install-bundled` reads plugins/ next to the binary; `--upgrade` moves installed ones
# to the bundled build after a host upgrade.)
#
# DROWL_HOST_BIN=path/to/drowl-host skips the host's release build (e.g. a binary built
# elsewhere for the same target).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
target=$(rustc -vV | sed -n 's/^host: //p')
out="dist/drowl-host-${version}-${target}"
declare -A ids=([github-plugin]=github [feed-plugin]=feed [keywords-plugin]=keywords
                [identity-plugin]=identity [export-plugin]=export)
for pkg in "${!ids[@]}"; do
  cargo build --quiet --profile plugin --target wasm32-wasip2 -p "$pkg"
done
bin=${DROWL_HOST_BIN:-}
if [[ -z "$bin" ]]; then
  cargo build --quiet --release -p drowl-host --bin drowl-host
  bin="${CARGO_TARGET_DIR:-target}/release/drowl-host"
fi
rm -rf "$out"
mkdir -p "$out/plugins"
cp "$bin" "$out/drowl-host"
for pkg in "${!ids[@]}"; do
  # Named by id, so `serve --plugins` installs each under the id its manifest declares.
  cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/plugin/${pkg//-/_}.wasm" "$out/plugins/${ids[$pkg]}.wasm"
done
cp README.md SECURITY.md "$out/"
tar -C dist -czf "$out.tar.gz" "$(basename "$out")"
echo "$out.tar.gz"

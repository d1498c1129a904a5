#!/usr/bin/env bash
# The main job on embedded defaults (no Redis, PostgreSQL or S3): ingest a GitHub user's
# public activity from recorded API responses served on loopback, then extract keywords
# from what was stored. State goes to .drowl/demo (SQLite + files); run it twice to see
# the cursor stop at events it already has. The job names its keywords inline: a job never
# adds to drowl's `keywords` table, so terms no row tracks (all of them, in a fresh data
# dir) are matched and reported under `unknownKeywords`, and no match is stored.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DROWL_DATA_DIR:-.drowl/demo}

echo "== building drowl-host, the fixture server and the plugins" >&2
cargo build --quiet -p drowl-host -p fixture-server
scripts/build-plugins.sh >/dev/null

echo "== starting the recorded GitHub API on loopback" >&2
fifo=$(mktemp -u) && mkfifo "$fifo"
target/debug/fixture-server --fixtures plugins/github/fixtures >"$fifo" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$fifo"' EXIT
read -r first <"$fifo"
api=$(grep -o 'http://127\.0\.0\.1:[0-9]*' <<<"$first")
echo "   $api" >&2

echo "== event_ingestion: github plugin" >&2
target/debug/drowl-host run-plugin target/wasm32-wasip2/release/github_plugin.wasm \
  --job examples/jobs/github-octocat.json \
  --data-dir "$DATA_DIR" \
  --config "api-base-url=$api" \
  --allow-host "$api" \
  --allow-network 127.0.0.1/32

echo "== keyword_extraction: keywords plugin" >&2
target/debug/drowl-host run-plugin target/wasm32-wasip2/release/keywords_plugin.wasm \
  --job examples/jobs/extract-keywords.json \
  --data-dir "$DATA_DIR"

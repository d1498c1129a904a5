#!/usr/bin/env bash
# The main job on embedded defaults (no Redis, PostgreSQL or S3): ingest a GitHub user's
# public activity from recorded API responses served on loopback, then extract keywords
# from what was stored. State goes to .drowl/demo (SQLite + files); run it twice to see
# the cursor stop at events it already has. The job names its keywords inline, and a job
# never adds to drowl's `keywords` table (drowl's UI manages it): so the demo first tracks
# three of them, as the UI would, whose matches are stored; the others are matched and
# reported under `unknownKeywords`.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DROWL_DATA_DIR:-.drowl/demo}

echo "== building drowl-host, the fixture server and the plugins" >&2
cargo build --quiet -p drowl-host -p fixture-server
scripts/build-plugins.sh github-plugin keywords-plugin >/dev/null  # the two this demo runs

echo "== starting the recorded GitHub API on loopback" >&2
fifo=$(mktemp -u) && mkfifo "$fifo"
target/debug/fixture-server --fixtures plugins/github/fixtures >"$fifo" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$fifo"' EXIT
read -r first <"$fifo"
api=$(grep -o 'http://127\.0\.0\.1:[0-9]*' <<<"$first")
echo "   $api" >&2

echo "== event_ingestion: github plugin" >&2
target/debug/drowl-host run-plugin target/wasm32-wasip2/plugin/github_plugin.wasm \
  --job examples/jobs/github-octocat.json \
  --data-dir "$DATA_DIR" \
  --config "api-base-url=$api" \
  --allow-host "$api" \
  --allow-network 127.0.0.1/32

echo "== tracking TypeScript, Rust and WebAssembly in drowl's keywords table (as drowl's UI does)" >&2
python3 - "$DATA_DIR/drowl.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
now = "2024-01-01T00:00:00Z"
db.executemany(
    "INSERT OR IGNORE INTO keywords (id, term, category, synonyms, created_at, updated_at) "
    "VALUES (?, ?, 'technology', ?, ?, ?)",
    [("kw-typescript", "TypeScript", "[]", now, now),
     ("kw-rust", "Rust", '["rustlang"]', now, now),
     ("kw-wasm", "WebAssembly", '["wasm"]', now, now)],
)
db.commit()
PY

echo "== keyword_extraction: keywords plugin" >&2
target/debug/drowl-host run-plugin target/wasm32-wasip2/plugin/keywords_plugin.wasm \
  --job examples/jobs/extract-keywords.json \
  --data-dir "$DATA_DIR"

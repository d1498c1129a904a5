#!/usr/bin/env bash
# Makes sure what the test suite talks to is there: PostgreSQL and Redis (started with the
# machine's own commands if they are down), moto_server in .venv (a real S3-compatible
# server process), tests/interop's npm packages: the real `bull` client and GitHub's
# example webhook payloads (`@octokit/webhooks-examples`, read by plugins/github's tests),
# and Debian's Chromium with its WebDriver (the dashboard's browser test,
# host/tests/dashboard.rs). `--no-browser` skips Chromium (scripts/bench.sh needs no
# browser).
set -euo pipefail
cd "$(dirname "$0")/.."
browser=1
[ "${1:-}" = "--no-browser" ] && browser=0

if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if [ ! -x .venv/bin/moto_server ]; then
  echo "installing moto_server into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet 'moto[server]'
fi
if [ ! -f tests/interop/node_modules/bull/package.json ] ||
  [ ! -f tests/interop/node_modules/@octokit/webhooks-examples/api.github.com/index.json ]; then
  echo "installing tests/interop's npm packages (bull, @octokit/webhooks-examples)" >&2
  (cd tests/interop && npm ci --silent --no-audit --no-fund)
fi
if [ "$browser" = 1 ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  echo "installing chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

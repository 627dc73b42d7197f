#!/bin/sh
# Run every benchmark from the repo root: sh bench/run_all.sh
set -e
cd "$(dirname "$0")/.."
for name in startup decide api_calls ttfm ack ack_locked tracker redaction storage soak; do
  echo "== $name"
  .venv/bin/python "bench/$name.py"
done

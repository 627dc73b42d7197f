#!/bin/sh
# Run every benchmark from the repo root: sh bench/run_all.sh
set -e
cd "$(dirname "$0")/.."
for name in startup decide api_calls ack ack_locked tracker storage soak; do
  echo "== $name"
  .venv/bin/python "bench/$name.py"
done

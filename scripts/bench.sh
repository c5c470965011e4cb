#!/usr/bin/env bash
# Benchmarks: on the private PostgreSQL and Redis (unless DATABASE_URL/REDIS_URL are given), then SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [[ -z "${DATABASE_URL:-}" ]]; then
  eval "$(scripts/services.sh start)"
fi
export EVHUB_VAR_DIR="$PWD/var/bench"
"$PY" manage.py migrate --noinput -v0
for bench in bench/bench_*.py; do
  echo "=== $bench (PostgreSQL) ==="
  "$PY" "$bench"
done
for bench in bench/bench_*.py; do
  echo "=== $bench (embedded SQLite) ==="
  env -u DATABASE_URL -u REDIS_URL bash -c "'$PY' manage.py migrate --noinput -v0 && '$PY' '$bench'"
done

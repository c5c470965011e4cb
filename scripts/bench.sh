#!/usr/bin/env bash
# Benchmarks (`make bench`): every bench/bench_*.py with its own defaults, on the private PostgreSQL and Redis
# (unless DATABASE_URL/REDIS_URL are given), then on the embedded SQLite; at the end one table of the
# headline figures: value, target, floor measured in the same run, ratio to it, CPU ms per operation, load
# average and dataset (bench/report.py; each bench writes its figures as JSON into EVHUB_BENCH_REPORT_DIR).
#
#   BENCH_ONLY="graphql cold_start"   run only these (names without bench_ and .py)
#   BENCH_SKIP_SQLITE=1               PostgreSQL only
#   BENCH_ARGS_<NAME>="..."           extra arguments for one bench, e.g. BENCH_ARGS_graphql="100000"
#
# A bench that fails is reported and the others still run; the exit status is then 1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [[ -z "${DATABASE_URL:-}" ]]; then
  eval "$(scripts/services.sh start)"
fi
export EVHUB_VAR_DIR="${EVHUB_VAR_DIR:-$PWD/var/bench}"
mkdir -p "$EVHUB_VAR_DIR"
REPORT_DIR="${EVHUB_BENCH_REPORT_DIR:-$EVHUB_VAR_DIR/report-$(date +%Y%m%d-%H%M%S)}"
failed=()

selected() {  # bench/bench_x.py -> is x in BENCH_ONLY (or is BENCH_ONLY unset)?
  local name; name="$(basename "$1" .py)"; name="${name#bench_}"
  [[ -z "${BENCH_ONLY:-}" || " $BENCH_ONLY " == *" $name "* ]]
}

run_all() {  # $1: backend label; the benches run in the current environment
  export EVHUB_BENCH_REPORT_DIR="$REPORT_DIR/$1"
  mkdir -p "$EVHUB_BENCH_REPORT_DIR"
  "$PY" manage.py migrate --noinput -v0
  for bench in bench/bench_*.py; do
    selected "$bench" || continue
    local name; name="$(basename "$bench" .py)"; name="${name#bench_}"
    local extra="BENCH_ARGS_$name"
    echo "=== $bench ($1) - load average $(cut -d' ' -f1-3 /proc/loadavg) ==="
    # shellcheck disable=SC2086 - extra arguments are meant to be split
    if ! "$PY" "$bench" ${!extra:-}; then
      echo "!!! $bench failed on $1"
      failed+=("$bench ($1)")
    fi
  done
}

run_all postgresql
if [[ -z "${BENCH_SKIP_SQLITE:-}" ]]; then
  # The embedded default: no DATABASE_URL or REDIS_URL (the benches that need PostgreSQL say so and skip).
  unset DATABASE_URL REDIS_URL
  run_all sqlite
fi

echo
echo "Figures as JSON in $REPORT_DIR"
"$PY" bench/report.py "$REPORT_DIR/postgresql" "$REPORT_DIR/sqlite" || echo "(no figures recorded)"
if (( ${#failed[@]} )); then
  printf 'failed: %s\n' "${failed[@]}"
  exit 1
fi

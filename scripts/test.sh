#!/usr/bin/env bash
# The test suite: everything on PostgreSQL + Redis (private instances on loopback unless DATABASE_URL and
# REDIS_URL are given), then the smoke subset on the embedded default (SQLite, file broker).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

run_pytest() {
  local label=$1; shift
  echo "=== $label ==="
  "$PY" -m pytest "$@"
  local rc=$?
  case $rc in
    0) return 0 ;;
    5) echo "$label: pytest collected no tests, which is a failure" >&2; return 1 ;;
    *) echo "$label: pytest failed (exit $rc)" >&2; return $rc ;;
  esac
}

install_chromium() {
  # The map page's end-to-end test drives Debian's headless Chromium; it skips cleanly without it.
  [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] && return 0
  echo "installing chromium and chromium-driver for the end-to-end test (apt-get)"
  if ! { command -v apt-get >/dev/null && apt-get update -qq \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
    echo "warning: could not install chromium and chromium-driver; the end-to-end test will be skipped" >&2
  fi
  return 0
}

smoke_only=0
[[ "${1:-}" == "--smoke-only" ]] && { smoke_only=1; shift; }

if [[ $smoke_only -eq 0 ]]; then
  install_chromium
  started_services=0
  if [[ -z "${DATABASE_URL:-}" || -z "${REDIS_URL:-}" ]]; then
    exports=$(scripts/services.sh start) || { echo "could not start PostgreSQL and Redis" >&2; exit 1; }
    eval "$exports"
    started_services=1
  fi
  EVHUB_VAR_DIR="$PWD/var/test" run_pytest "full suite on PostgreSQL and Redis" "$@"
  rc=$?
  [[ $started_services -eq 1 ]] && scripts/services.sh stop >/dev/null 2>&1
  [[ $rc -ne 0 ]] && exit $rc
fi

rm -rf var/test-smoke
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL EVHUB_VAR_DIR="$PWD/var/test-smoke" \
  bash -c "$(declare -f run_pytest); PY=$PY; run_pytest 'smoke subset on the embedded default (SQLite)' -m smoke $*"

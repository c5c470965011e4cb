#!/usr/bin/env bash
# The test suite: everything on PostgreSQL + Redis (private instances on loopback unless DATABASE_URL and
# REDIS_URL are given), then the smoke subset on the embedded default (SQLite, file broker).
#
#   scripts/test.sh [--smoke-only] [pytest arguments...]
#
# The arguments go to pytest as given in both phases (e.g. -k "health and not stale"); in the smoke phase a
# `-m EXPR` of theirs becomes `-m "smoke and (EXPR)"`. Exit status: 0 only when every phase passed. A phase
# that collects no test fails, except the smoke phase after a full run whose selection has no smoke test
# in it (then there is nothing to run on SQLite). Ctrl-C or TERM stops the private services it started.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# shellcheck source=scripts/apt.sh
. scripts/apt.sh

services_started=0
pytest_pid=""

stop_services() {
  if ((services_started)); then
    services_started=0
    scripts/services.sh stop >/dev/null 2>&1 ||
      echo "warning: the private PostgreSQL and Redis did not stop (scripts/services.sh stop)" >&2
  fi
}

# A TERM sent to this script alone (make passes its own on to us, not to pytest) asks pytest to stop as
# Ctrl-C does, so that its fixtures stop the servers they started; Ctrl-C reached pytest already (the
# terminal signals the whole process group) and is not sent twice.
on_signal() {
  local signal=$1 status=$2
  trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
  if [[ -n $pytest_pid ]]; then
    [[ $signal == TERM ]] && kill -INT "$pytest_pid" 2>/dev/null
    pytest_wait 120 || { kill -TERM "$pytest_pid" 2>/dev/null; pytest_wait 10; } || kill -KILL "$pytest_pid" 2>/dev/null
  fi
  echo "scripts/test.sh: stopped by SIG$signal" >&2
  exit "$status"
}

pytest_wait() {  # pytest_wait SECONDS: whether pytest ended within them
  local tenths
  for ((tenths = 0; tenths < $1 * 10; tenths++)); do
    kill -0 "$pytest_pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}
trap stop_services EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

# run_pytest LABEL ARGS...: pytest's exit status, in the environment `env "${pytest_env[@]}"` makes
# (5: no test collected, which the caller judges).
pytest_env=()
run_pytest() {
  local label=$1 rc
  shift
  echo "=== $label ==="
  # A background job waited for, so that a signal's trap runs at once rather than when pytest ends. Its
  # stdin (for --pdb) given back, and its Ctrl-C: ignored in a background job (or by whoever started us), it
  # would not end pytest through KeyboardInterrupt, the way that runs its fixtures' finalizers.
  env "${pytest_env[@]}" "$PY" -c 'import runpy, signal
signal.signal(signal.SIGINT, signal.default_int_handler)
runpy.run_module("pytest", run_name="__main__", alter_sys=True)' "$@" <&0 &
  pytest_pid=$!
  wait "$pytest_pid"
  rc=$?
  pytest_pid=""
  ((rc == 0 || rc == 5)) || echo "$label: pytest failed (exit $rc)" >&2
  return "$rc"
}

install_chromium() {
  # The map page's end-to-end test drives Debian's headless Chromium; it skips cleanly without it.
  [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] && return 0
  echo "installing chromium and chromium-driver for the end-to-end test (apt-get)"
  if ! { command -v apt-get >/dev/null && apt_install chromium chromium-driver >/dev/null; }; then
    echo "warning: could not install chromium and chromium-driver; the end-to-end test will be skipped" >&2
  fi
  return 0
}

smoke_only=0
[[ "${1:-}" == "--smoke-only" ]] && { smoke_only=1; shift; }

if ((!smoke_only)); then
  install_chromium
  if [[ -z "${DATABASE_URL:-}" || -z "${REDIS_URL:-}" ]]; then
    services_started=1  # before the start: one interrupted half-way is stopped too
    exports=$(scripts/services.sh start) || { echo "could not start PostgreSQL and Redis" >&2; exit 1; }
    eval "$exports"
  fi
  pytest_env=(EVHUB_VAR_DIR="$PWD/var/test")
  run_pytest "full suite on PostgreSQL and Redis" "$@"
  rc=$?
  ((rc == 5)) && echo "full suite: pytest collected no tests, which is a failure" >&2
  stop_services
  ((rc == 0)) || exit "$rc"
fi

# The smoke phase's arguments: the user's, their mark expression narrowed to smoke tests.
marks=smoke
smoke_args=()
while (($#)); do
  case $1 in
    --) smoke_args+=("$@"); break ;;
    -m) (($# >= 2)) || { smoke_args+=("$1"); shift; continue; }
        marks="smoke and ($2)"; shift 2 ;;
    -m?*) marks="smoke and (${1#-m})"; shift ;;
    *) smoke_args+=("$1"); shift ;;
  esac
done

rm -rf var/test-smoke
pytest_env=(-u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL EVHUB_VAR_DIR="$PWD/var/test-smoke")
run_pytest "smoke subset on the embedded default (SQLite)" -m "$marks" "${smoke_args[@]}"
rc=$?
if ((rc == 5 && !smoke_only)); then
  # The full run passed with the same selection: pytest's 5 here means that none of it is a smoke test,
  # provided that the suite has smoke tests at all.
  if run_pytest "the suite's smoke tests, collected only" -q --collect-only -m smoke >/dev/null; then
    echo "smoke subset: none of the selected tests is a smoke test; nothing of the selection to run on SQLite"
    rc=0
  else
    echo "smoke subset: pytest collected no smoke tests, which is a failure" >&2
  fi
elif ((rc == 5)); then
  echo "smoke subset: pytest collected no tests, which is a failure" >&2
fi
exit "$rc"

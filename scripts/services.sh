#!/usr/bin/env bash
# Private PostgreSQL and Redis on loopback for the evhub test suite.
#
# Usage:
#   scripts/services.sh start   # install if needed, start (idempotent), print env
#   scripts/services.sh env     # print env only
#   scripts/services.sh stop    # stop both (tolerates not running)
#
# `start` and `env` print exactly two lines to stdout, for eval:
#   export DATABASE_URL=postgres://evhub:evhub@127.0.0.1:54329/evhub
#   export REDIS_URL=redis://127.0.0.1:63799/0
# Everything else goes to stderr.
#
# State lives under <project root>/var/services/ (pg/data, pg/socket, redis/).
# Ports: EVHUB_PG_PORT (default 54329), EVHUB_REDIS_PORT (default 63799).
# No system services are used (no systemctl/service/pg_ctlcluster).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/apt.sh
. "$SCRIPT_DIR/apt.sh"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SERVICES_DIR="$ROOT/var/services"
PG_DIR="$SERVICES_DIR/pg"
# If the project dir is not reachable by the PostgreSQL user, pg is a symlink
# to a private dir under /tmp (see pg_prepare_dir); work on the real path.
if [[ -L $PG_DIR && -d $PG_DIR ]]; then
    PG_DIR=$(readlink -f "$PG_DIR")
fi
REDIS_DIR="$SERVICES_DIR/redis"

PG_PORT="${EVHUB_PG_PORT:-54329}"
REDIS_PORT="${EVHUB_REDIS_PORT:-63799}"
HOST=127.0.0.1
DB_NAME=evhub
DB_USER=evhub
DB_PASSWORD=evhub
WAIT_SECONDS="${EVHUB_SERVICES_TIMEOUT:-60}"

log() { printf 'services: %s\n' "$*" >&2; }
die() {
    printf 'services: ERROR: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat >&2 <<EOF
usage: $0 {start|stop|env}
  start  install PostgreSQL/Redis if missing, start private instances on
         $HOST (idempotent) and print the env lines for eval
  stop   stop both private instances (tolerates not running)
  env    print the env lines for eval
EOF
    exit 2
}

print_env() {
    printf 'export DATABASE_URL=postgres://%s:%s@%s:%s/%s\n' \
        "$DB_USER" "$DB_PASSWORD" "$HOST" "$PG_PORT" "$DB_NAME"
    printf 'export REDIS_URL=redis://%s:%s/0\n' "$HOST" "$REDIS_PORT"
}

check_port() {
    local name=$1 value=$2
    if ! [[ $value =~ ^[0-9]+$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
        die "$name must be a TCP port number (1-65535), got '$value'"
    fi
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# --------------------------------------------------------------------------
# Binaries and installation
# --------------------------------------------------------------------------

PG_BIN=""

find_pg_bin() {
    PG_BIN=""
    local dir
    # Highest version first (sort -V handles 9.6 < 10 < 15 < 16).
    while IFS= read -r dir; do
        if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
            PG_BIN=$dir
            return 0
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -Vr)
    return 1
}

have_redis() { command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; }

ensure_installed() {
    local -a pkgs=() services=()
    find_pg_bin || { pkgs+=(postgresql); services+=(postgresql); }
    have_redis || { pkgs+=(redis-server); services+=(redis-server); }
    ((${#pkgs[@]} == 0)) && return 0

    log "missing: ${pkgs[*]}; installing with apt-get"
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 ||
            die "need root (or sudo) to install ${pkgs[*]}; install them manually"
    fi
    # Waits for apt's locks; no system PostgreSQL or Redis is started, nor left enabled (scripts/apt.sh).
    apt_install --no-install-recommends "${pkgs[@]}" >&2 || die "apt-get install ${pkgs[*]} failed"
    apt_services_disable "${services[@]}"

    find_pg_bin || die "PostgreSQL server binaries still not found under /usr/lib/postgresql/*/bin"
    have_redis || die "redis-server/redis-cli still not found after install"
}

# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

PG_USER=""

pick_pg_user() {
    if ! is_root; then
        PG_USER=$(id -un)
        return
    fi
    local u
    for u in postgres nobody; do
        if id -u "$u" >/dev/null 2>&1; then
            PG_USER=$u
            return
        fi
    done
    log "creating system user evhub-pg to run PostgreSQL"
    useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin evhub-pg
    PG_USER=evhub-pg
}

# Run a command as the PostgreSQL user, from a directory it can access.
# fd 9 (the lock) is closed so that a started postmaster does not keep it.
as_pg() {
    if is_root; then
        (cd "$PG_DIR" && runuser -u "$PG_USER" -- "$@" 9>&-)
    else
        (cd "$PG_DIR" && "$@" 9>&-)
    fi
}

pg_ctl_() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@"; }

pg_running() {
    [[ -f $PG_DIR/data/PG_VERSION ]] || return 1
    pg_ctl_ status >/dev/null 2>&1
}

pg_log_tail() {
    if [[ -f $PG_DIR/postgres.log ]]; then
        printf -- '--- tail of %s ---\n' "$PG_DIR/postgres.log" >&2
        tail -n 30 "$PG_DIR/postgres.log" >&2 || true
    fi
}

pg_reachable() { runuser -u "$PG_USER" -- test -w "$1" 2>/dev/null; }

pg_prepare_dir() {
    local link="$SERVICES_DIR/pg"
    if [[ -L $link && ! -d $link ]]; then
        rm -f "$link" # fallback dir (below) vanished, e.g. /tmp was cleaned
    fi
    mkdir -p "$PG_DIR"
    if is_root; then
        chown -R "$PG_USER:" "$PG_DIR"
        chmod 700 "$PG_DIR"
        if ! pg_reachable "$PG_DIR"; then
            # Some parent of the project (e.g. a 0700 checkout dir) is not
            # searchable by the unprivileged user. Keep the cluster in a
            # private dir under /tmp instead, and point var/services/pg at it.
            local fallback
            fallback=$(mktemp -d /tmp/evhub-pg.XXXXXX)
            chown "$PG_USER:" "$fallback"
            pg_reachable "$fallback" ||
                die "user '$PG_USER' cannot use $PG_DIR nor $fallback (PostgreSQL cannot run as root)"
            log "user '$PG_USER' cannot reach $PG_DIR (a parent directory is not searchable);"
            log "keeping the PostgreSQL cluster in $fallback (symlinked from $link)"
            rm -rf "$link"
            ln -s "$fallback" "$link"
            PG_DIR=$fallback
        fi
    fi
    as_pg mkdir -p "$PG_DIR/socket"
    as_pg chmod 700 "$PG_DIR/socket"
}

pg_write_conf() {
    # Rewritten on every start, so port changes take effect.
    local socket_dirs="$PG_DIR/socket"
    # Unix socket paths are limited to ~107 bytes; fall back to TCP only.
    if ((${#socket_dirs} + ${#PG_PORT} + 12 > 100)); then
        log "socket path too long, PostgreSQL will listen on TCP only"
        socket_dirs=""
    fi
    as_pg tee "$PG_DIR/data/evhub.conf" >/dev/null <<EOF
# Managed by scripts/services.sh -- rewritten on every start.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$socket_dirs'
password_encryption = 'scram-sha-256'
max_connections = 100
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
checkpoint_timeout = 30min
max_wal_size = 1GB
logging_collector = off
log_min_messages = warning
timezone = 'UTC'
EOF
}

pg_init() {
    log "initialising PostgreSQL cluster in $PG_DIR/data (as $PG_USER)"
    local pwfile="$PG_DIR/.pwfile" locale=C
    if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then
        locale=C.UTF-8
    fi
    rm -rf "$PG_DIR/data"
    # shellcheck disable=SC2016 # expanded by the inner sh
    as_pg sh -c 'umask 077 && printf "%s\n" "$1" >"$2"' sh "$DB_PASSWORD" "$pwfile"
    # The bootstrap superuser is the evhub role itself, with its password.
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$DB_USER" --pwfile="$pwfile" \
        --encoding=UTF8 --locale="$locale" \
        --auth-local=trust --auth-host=scram-sha-256 2>&1 | as_pg tee "$PG_DIR/initdb.log" >/dev/null; then
        rm -f "$pwfile"
        cat "$PG_DIR/initdb.log" >&2 || true
        die "initdb failed"
    fi
    rm -f "$pwfile"
    as_pg tee "$PG_DIR/data/pg_hba.conf" >/dev/null <<EOF
# Managed by scripts/services.sh
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
EOF
    printf "\ninclude_if_exists = 'evhub.conf'\n" | as_pg tee -a "$PG_DIR/data/postgresql.conf" >/dev/null
}

pg_wait_ready() {
    local i
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        if "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U "$DB_USER" -d postgres; then
            return 0
        fi
        sleep 0.5
    done
    pg_log_tail
    die "PostgreSQL did not accept connections on $HOST:$PG_PORT within ${WAIT_SECONDS}s"
}

pg_running_port() {
    # Line 4 of postmaster.pid is the port.
    sed -n 4p "$PG_DIR/data/postmaster.pid" 2>/dev/null || true
}

pg_start() {
    pick_pg_user
    pg_prepare_dir
    if [[ ! -f $PG_DIR/data/PG_VERSION ]]; then
        pg_init
    fi
    local data_ver bin_ver
    data_ver=$(<"$PG_DIR/data/PG_VERSION")
    bin_ver=$("$PG_BIN/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
    if [[ $data_ver != "$bin_ver" ]]; then
        if pg_running; then pg_ctl_ stop -m fast >/dev/null; fi
        log "cluster is PostgreSQL $data_ver but binaries are $bin_ver; re-initialising"
        pg_init
    fi

    if pg_running; then
        local running_port
        running_port=$(pg_running_port)
        if [[ $running_port == "$PG_PORT" ]]; then
            log "PostgreSQL already running on $HOST:$PG_PORT, reusing"
        else
            log "PostgreSQL running on port $running_port, restarting on $PG_PORT"
            pg_write_conf
            pg_ctl_ restart -m fast -w -t "$WAIT_SECONDS" -l "$PG_DIR/postgres.log" >/dev/null ||
                {
                    pg_log_tail
                    die "PostgreSQL failed to restart"
                }
        fi
    else
        pg_write_conf
        log "starting PostgreSQL ($PG_BIN) on $HOST:$PG_PORT as $PG_USER"
        if ! pg_ctl_ start -w -t "$WAIT_SECONDS" -l "$PG_DIR/postgres.log" >/dev/null 2>&1; then
            pg_log_tail
            die "PostgreSQL failed to start (port $PG_PORT in use? set EVHUB_PG_PORT)"
        fi
    fi
    pg_wait_ready

    # Make sure the evhub database exists (role evhub is the bootstrap superuser).
    local -a psql=(env PGPASSWORD="$DB_PASSWORD" PGCONNECT_TIMEOUT=10 "$PG_BIN/psql"
        -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U "$DB_USER" -d postgres)
    local exists
    exists=$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ||
        die "cannot connect to PostgreSQL as $DB_USER on $HOST:$PG_PORT"
    if [[ $exists != 1 ]]; then
        log "creating database $DB_NAME"
        "${psql[@]}" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null ||
            die "cannot create database $DB_NAME"
    fi
    log "PostgreSQL ready on $HOST:$PG_PORT"
}

pg_stop() {
    if [[ ! -f $PG_DIR/data/PG_VERSION ]]; then
        log "PostgreSQL: no cluster in $PG_DIR/data, nothing to stop"
        return 0
    fi
    if ! find_pg_bin; then
        log "PostgreSQL binaries not found, cannot stop (nothing running?)"
        return 0
    fi
    # Run as the owner of the data directory.
    if is_root; then PG_USER=$(stat -c %U "$PG_DIR/data"); fi
    if pg_running; then
        log "stopping PostgreSQL"
        pg_ctl_ stop -m fast -w >/dev/null || die "pg_ctl stop failed"
    else
        log "PostgreSQL not running"
    fi
}

# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------

REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"

# Pid of our redis-server (from the pidfile), if it is alive.
redis_pid() {
    local pid
    [[ -f $REDIS_PIDFILE ]] || return 1
    pid=$(<"$REDIS_PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]] || return 1
    printf '%s\n' "$pid"
}

redis_ping() {
    [[ $(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

redis_log_tail() {
    if [[ -f $REDIS_LOG ]]; then
        printf -- '--- tail of %s ---\n' "$REDIS_LOG" >&2
        tail -n 30 "$REDIS_LOG" >&2 || true
    fi
}

redis_kill() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    die "redis-server (pid $pid) did not exit"
}

redis_start() {
    mkdir -p "$REDIS_DIR"
    local pid
    if pid=$(redis_pid); then
        if redis_ping; then
            log "Redis already running on $HOST:$REDIS_PORT (pid $pid), reusing"
            return 0
        fi
        log "Redis (pid $pid) not answering on port $REDIS_PORT, restarting it"
        redis_kill "$pid"
    fi
    rm -f "$REDIS_PIDFILE"
    log "starting Redis on $HOST:$REDIS_PORT"
    if ! redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" \
        --dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" \
        --save '' --appendonly no >/dev/null 2>&1 9>&-; then
        redis_log_tail
        die "redis-server failed to start"
    fi
    local i
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        # Only ping once our daemon is alive (its pidfile appears right after
        # it forks); it exits early if it cannot listen: fail fast then.
        if redis_pid >/dev/null; then
            if redis_ping; then
                log "Redis ready on $HOST:$REDIS_PORT"
                return 0
            fi
        elif ((i >= 2)); then
            redis_log_tail
            die "redis-server exited during startup (port $REDIS_PORT in use? set EVHUB_REDIS_PORT)"
        fi
        sleep 0.5
    done
    redis_log_tail
    die "Redis did not answer PING on $HOST:$REDIS_PORT within ${WAIT_SECONDS}s (port in use? set EVHUB_REDIS_PORT)"
}

redis_stop() {
    local pid=""
    pid=$(redis_pid) || pid=""
    if [[ -z $pid ]]; then
        log "Redis not running"
        rm -f "$REDIS_PIDFILE"
        return 0
    fi
    log "stopping Redis (pid $pid)"
    if command -v redis-cli >/dev/null 2>&1; then
        timeout 10 redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    # Still alive (e.g. started on another port)? Signal it; with save '' no dump is written.
    redis_kill "$pid"
    rm -f "$REDIS_PIDFILE"
}

# --------------------------------------------------------------------------

lock() {
    mkdir -p "$SERVICES_DIR"
    exec 9>"$SERVICES_DIR/.lock"
    flock -w 300 9 || die "another services.sh is running (lock $SERVICES_DIR/.lock)"
}

main() {
    (($# == 1)) || usage
    check_port EVHUB_PG_PORT "$PG_PORT"
    check_port EVHUB_REDIS_PORT "$REDIS_PORT"
    case $1 in
    start)
        lock
        ensure_installed
        pg_start
        redis_start
        print_env
        ;;
    stop)
        lock
        local rc=0
        redis_stop || rc=1
        pg_stop || rc=1
        return "$rc"
        ;;
    env)
        print_env
        ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"

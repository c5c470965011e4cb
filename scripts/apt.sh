# shellcheck shell=bash
# apt-get for `make test` on a fresh Debian machine; sourced by scripts/services.sh, scripts/test.sh and
# the Makefile's virtualenv rule.
#
# - Right after boot, unattended-upgrades, cloud-init or another apt often hold apt's or dpkg's locks: a
#   plain apt-get fails at once. Here it waits for them (EVHUB_APT_LOCK_TIMEOUT seconds, 600 by default):
#   DPkg::Lock::Timeout covers dpkg's lock, and `apt-get update`, whose lists lock that option does not
#   cover, is tried again while the lock is held.
# - Installing postgresql or redis-server would start the system's own server (port 5432 or 6379, memory,
#   a cluster of its own) and enable it at every boot; dbus comes with chromium. A policy-rc.d that refuses
#   (exit 101) keeps the packages' maintainer scripts from starting any service during the install (it is
#   removed afterwards, also on Ctrl-C; one already there is left alone), and apt_services_disable undoes
#   the enabling.

APT_LOCK_TIMEOUT="${EVHUB_APT_LOCK_TIMEOUT:-600}"
APT_POLICY_RC_D=/usr/sbin/policy-rc.d

apt_log() { printf 'apt: %s\n' "$*" >&2; }

# As root, or through sudo without a password prompt (a test run must not hang on one).
apt_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        apt_log "need root (or sudo) for: $*"
        return 1
    fi
}

# apt_get ARGS...: apt-get, waiting while another process holds a lock of apt or dpkg.
apt_get() {
    local deadline=$((SECONDS + APT_LOCK_TIMEOUT)) errors rc said=0
    errors=$(mktemp) || return 1
    while :; do
        if apt_as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" "$@" 2>"$errors"; then
            rc=0
        else
            rc=$?
        fi
        if ((rc != 0 && SECONDS < deadline)) &&
            grep -qE 'Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock' "$errors"; then
            if ((!said)); then
                apt_log "another process holds apt's lock ($(grep -m1 -oE 'held by process [0-9]+[^.]*' "$errors" ||
                    echo 'see fuser /var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock')); waiting up to ${APT_LOCK_TIMEOUT}s"
                said=1
            fi
            sleep 3
            continue
        fi
        cat "$errors" >&2
        rm -f "$errors"
        return "$rc"
    done
}

# apt_install [apt-get install options] PACKAGE...: the package lists updated, then the packages installed,
# with no service started by their maintainer scripts. A subshell: its traps are its own.
apt_install() (
    if ! apt_as_root test -e "$APT_POLICY_RC_D"; then
        # Set before the file exists: an interrupt right after creating it still removes it. A signal is
        # raised again once the file is gone, so that the callers end by it as well (a shell whose child
        # merely exits after Ctrl-C carries on).
        trap 'apt_as_root rm -f "$APT_POLICY_RC_D"' EXIT
        trap 'apt_as_root rm -f "$APT_POLICY_RC_D"; trap - INT; kill -INT $BASHPID' INT
        trap 'apt_as_root rm -f "$APT_POLICY_RC_D"; trap - TERM; kill -TERM $BASHPID' TERM
        printf '#!/bin/sh\n# temporary, created by evhub scripts/apt.sh during an install\nexit 101\n' |
            apt_as_root tee "$APT_POLICY_RC_D" >/dev/null && apt_as_root chmod 755 "$APT_POLICY_RC_D" ||
            { apt_log "cannot write $APT_POLICY_RC_D"; exit 1; }
    fi
    apt_get update -qq && apt_get install -y -qq "$@"
)

# apt_services_disable NAME...: the system services these packages enabled (for the next boot) disabled
# again; the private instances of scripts/services.sh are all the tests use.
apt_services_disable() {
    local name
    for name in "$@"; do
        if command -v systemctl >/dev/null 2>&1; then
            apt_as_root systemctl disable --quiet "$name.service" >/dev/null 2>&1 || true
        fi
        if [[ -e /etc/init.d/$name ]] && command -v update-rc.d >/dev/null 2>&1; then
            apt_as_root update-rc.d "$name" disable >/dev/null 2>&1 || true
        fi
    done
}

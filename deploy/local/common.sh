# Shared by up.sh, down.sh and test.sh: paths, the Swift toolchain, the server env.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVERS="$ROOT/deploy/local/servers.sh"
STATE_DIR="${CSS_STATE_DIR:-$ROOT/.state}"
RUN_DIR="$STATE_DIR/run"

# The services that exist; up.sh starts each of them.
SERVICES=(intake classification sla escalation change)

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="$PATH:/opt/swift/usr/bin"
        else
            log "no Swift toolchain: install Swift 6.1 or newer (expected at /opt/swift)"
            exit 1
        fi
    fi
}

servers_up() {
    bash "$SERVERS" install
    bash "$SERVERS" start
    eval "$(bash "$SERVERS" env)"
    export CSS_AMQP_URL CSS_DATABASE_URL
}

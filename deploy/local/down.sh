#!/usr/bin/env bash
# Stops what up.sh started: the services (gracefully, SIGTERM), then RabbitMQ and PostgreSQL.
# `down.sh --services` stops only the services.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for service in "${SERVICES[@]}"; do
    pidfile="$RUN_DIR/$service.pid"
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$service did not stop within 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $service"
    fi
    rm -f "$pidfile"
done
if [ "${1:-}" != "--services" ]; then
    bash "$SERVERS" stop
fi

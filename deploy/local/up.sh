#!/usr/bin/env bash
# Brings the whole system up on this machine and runs it in the foreground:
# installs what is missing, starts RabbitMQ and PostgreSQL on loopback, builds
# (release), and runs every service with its log on this terminal. Ctrl-C (or
# deploy/local/down.sh from another terminal) stops the services gracefully.
# Services apply their database migrations themselves at start.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mkdir -p "$RUN_DIR"
for service in "${SERVICES[@]}"; do
    pidfile="$RUN_DIR/$service.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "already running: $service (pid $(cat "$pidfile")); stop it with deploy/local/down.sh"
        exit 0
    fi
done

ensure_swift
servers_up
log "building (release)"
for service in "${SERVICES[@]}"; do
    (cd "$ROOT" && swift build -c release --product "$service" >&2)
done
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)"

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap stop_all INT TERM
for service in "${SERVICES[@]}"; do
    "$BIN/$service" &
    pids+=("$!")
    echo "$!" > "$RUN_DIR/$service.pid"
    log "started $service (pid $!)"
done
log "commands go to exchange css.commands on $CSS_AMQP_URL (see README); Ctrl-C stops"
status=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || status=$?
    # wait returns early when a trapped signal arrives: wait again for the exit itself.
    while kill -0 "${pids[$i]}" 2>/dev/null; do wait "${pids[$i]}" || status=$?; done
    rm -f "$RUN_DIR/${SERVICES[$i]}.pid"
done
log "services stopped (servers keep running; deploy/local/down.sh stops them too)"
exit "$status"

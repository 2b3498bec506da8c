#!/usr/bin/env bash
# Builds intake and intake-load in release mode and runs the intake load benchmark
# against the local servers (deploy/local/servers.sh), teeing the report to
# .state/bench/intake-<timestamp>.txt. Arguments are passed to intake-load, e.g.
#   Benchmarks/run-intake-benchmark.sh --tickets 5000 --seconds 5
#   Benchmarks/run-intake-benchmark.sh --workers 2 --batch-size 256
# The servers are started only when they are not running already. When they were
# started from another checkout, point CSS_STATE_DIR at that checkout's .state so
# this script (and the vhost helpers the tool calls) find them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
SERVERS=deploy/local/servers.sh

# Servers already listening but started from another checkout: find its state dir
# from the broker's HOME (servers.sh gives it $STATE/rabbitmq/home).
find_running_state() {
    local f home
    for f in /proc/[0-9]*/cmdline; do
        home=$({ tr '\0' '\n' <"$f"; } 2>/dev/null | grep -A1 -x -- '-home' | tail -n 1) || continue
        if [[ $home == */rabbitmq/home ]]; then
            printf '%s\n' "${home%/rabbitmq/home}"
            return 0
        fi
    done
    return 1
}

if ! bash "$SERVERS" status >/dev/null 2>&1; then
    if [[ -z ${CSS_STATE_DIR:-} ]] && (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null &&
        state=$(find_running_state) && CSS_STATE_DIR=$state bash "$SERVERS" status >/dev/null 2>&1; then
        export CSS_STATE_DIR=$state
        echo "using the servers already running from $CSS_STATE_DIR" >&2
    else
        bash "$SERVERS" start
    fi
fi
eval "$(bash "$SERVERS" env)"

# One --product per call: swift build honours only the last one.
swift build -c release --product intake
swift build -c release --product classification
for arg in "$@"; do
    if [[ $arg == --follow-sla ]]; then swift build -c release --product sla; fi
done
swift build -c release --product intake-load

mkdir -p .state/bench
REPORT=.state/bench/intake-$(date -u +%Y%m%dT%H%M%SZ).txt
echo "report: $REPORT" >&2
{
    echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(uname -srm), $(nproc) cores"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$REPORT"
set +e
.build/release/intake-load --bin-dir .build/release "$@" 2>&1 | tee -a "$REPORT"
status=${PIPESTATUS[0]}
set -e
echo "report: $REPORT" >&2
exit "$status"

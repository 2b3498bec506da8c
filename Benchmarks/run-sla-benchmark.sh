#!/usr/bin/env bash
# Builds sla and sla-load in release mode and runs the SLA timer benchmark (issue 8)
# against the local servers (deploy/local/servers.sh), teeing the report to
# .state/bench/sla-<timestamp>.txt. Arguments are passed to sla-load, e.g.
#   Benchmarks/run-sla-benchmark.sh                                   # full: 1,000,000 targets, 1,000 firings/s for 60 s
#   Benchmarks/run-sla-benchmark.sh --targets 20000 --due-rate 200 --seconds 15 --recovery-timers 2000 --raw-messages 20000
#   Benchmarks/run-sla-benchmark.sh --phases raw,arm,measure           # without the kill -9 phase
# CSS_BENCH_SCRATCH=/path builds into that scratch directory instead of .build (so a
# benchmark build does not share .build with someone else's debug builds and tests).
# The servers are started only when they are not running already. When they were
# started from another checkout, point CSS_STATE_DIR at that checkout's .state so
# this script (and the vhost helpers the tool calls) find them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
SERVERS=deploy/local/servers.sh
SCRATCH=${CSS_BENCH_SCRATCH:-.build}

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
swift build -c release --scratch-path "$SCRATCH" --product sla
swift build -c release --scratch-path "$SCRATCH" --product sla-load

mkdir -p .state/bench
REPORT=.state/bench/sla-$(date -u +%Y%m%dT%H%M%SZ).txt
echo "report: $REPORT" >&2
{
    echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Services Shared 2>/dev/null || echo '+uncommitted') $(uname -srm), $(nproc) cores"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$REPORT"
set +e
"$SCRATCH/release/sla-load" --bin-dir "$SCRATCH/release" "$@" 2>&1 | tee -a "$REPORT"
status=${PIPESTATUS[0]}
set -e
echo "report: $REPORT" >&2
exit "$status"

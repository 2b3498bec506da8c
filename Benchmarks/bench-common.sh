#!/usr/bin/env bash
# What the benchmark run scripts share: the local servers (started only when they are not
# running; when they were started from another checkout, its state dir is found or taken
# from CSS_STATE_DIR), release builds, and a report teed to .state/bench/<name>-<time>.txt.
# Sourced by Benchmarks/run-*-benchmark.sh. CSS_BENCH_SCRATCH=/path builds into that scratch
# directory instead of .build (so a benchmark build does not share .build with debug builds).
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

bench_servers() {
    if ! bash "$SERVERS" status >/dev/null 2>&1; then
        local state
        if [[ -z ${CSS_STATE_DIR:-} ]] && (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null &&
            state=$(find_running_state) && CSS_STATE_DIR=$state bash "$SERVERS" status >/dev/null 2>&1; then
            export CSS_STATE_DIR=$state
            echo "using the servers already running from $CSS_STATE_DIR" >&2
        else
            bash "$SERVERS" start
        fi
    fi
    eval "$(bash "$SERVERS" env)"
}

# bench_build product...: one --product per call, since swift build honours only the last one.
bench_build() {
    local product
    for product in "$@"; do swift build -c release --scratch-path "$SCRATCH" --product "$product"; done
}

# bench_run name tool [args...]: runs the built tool against the built services, teeing its report.
bench_run() {
    local name=$1 tool=$2
    shift 2
    mkdir -p .state/bench
    local report
    report=.state/bench/$name-$(date -u +%Y%m%dT%H%M%SZ).txt
    echo "report: $report" >&2
    {
        echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Services Shared 2>/dev/null || echo '+uncommitted') $(uname -srm), $(nproc) cores"
        echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee "$report"
    set +e
    "$SCRATCH/release/$tool" --bin-dir "$SCRATCH/release" "$@" 2>&1 | tee -a "$report"
    local status=${PIPESTATUS[0]}
    set -e
    echo "report: $report" >&2
    return "$status"
}

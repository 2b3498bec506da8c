#!/usr/bin/env bash
# Builds sla and sla-load in release mode and runs the SLA timer benchmark (issue 8)
# against the local servers (deploy/local/servers.sh), teeing the report to
# .state/bench/sla-<timestamp>.txt. Arguments are passed to sla-load, e.g.
#   Benchmarks/run-sla-benchmark.sh                                   # full: 1,000,000 targets, 1,000 firings/s for 60 s
#   Benchmarks/run-sla-benchmark.sh --targets 20000 --due-rate 200 --seconds 15 --recovery-timers 2000 --raw-messages 20000
#   Benchmarks/run-sla-benchmark.sh --phases raw,arm,measure           # without the kill -9 phase
# Servers, CSS_STATE_DIR and CSS_BENCH_SCRATCH: see Benchmarks/bench-common.sh.
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

bench_servers
bench_build sla sla-load
bench_run sla sla-load "$@"

#!/usr/bin/env bash
# Builds change and change-load in release mode and runs the change-management benchmark
# (issue 10: 10,000 changes through the full Standard lifecycle, p99 command latency <= 50 ms at
# 200 commands/s, resident memory <= 100 MiB) against the local servers
# (deploy/local/servers.sh), teeing the report to .state/bench/change-<timestamp>.txt.
# Arguments are passed to change-load, e.g.
#   Benchmarks/run-change-benchmark.sh                                  # full: 10,000 changes at 200 commands/s (about 450 s), then 2,000 at the ceiling
#   Benchmarks/run-change-benchmark.sh --changes 1000 --max-changes 500 # quick check
#   Benchmarks/run-change-benchmark.sh --phases lifecycle --rate 300    # the paced phase alone, at another rate
#   CSS_WORKERS=4 Benchmarks/run-change-benchmark.sh                    # the service's settings come from the environment
# Servers, CSS_STATE_DIR and CSS_BENCH_SCRATCH: see Benchmarks/bench-common.sh.
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

bench_servers
bench_build change change-load
bench_run change change-load "$@"

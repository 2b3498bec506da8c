#!/usr/bin/env bash
# Builds intake, classification and intake-load (and sla with --follow-sla) in release mode
# and runs the intake/pipeline load benchmark against the local servers
# (deploy/local/servers.sh), teeing the report to .state/bench/intake-<timestamp>.txt.
# Arguments are passed to intake-load, e.g.
#   Benchmarks/run-intake-benchmark.sh --tickets 5000 --seconds 5
#   Benchmarks/run-intake-benchmark.sh --workers 2 --batch-size 256
#   Benchmarks/run-intake-benchmark.sh --follow-sla
#   Benchmarks/run-intake-benchmark.sh --all-services   # every service as deployed (escalation, change too)
# Servers, CSS_STATE_DIR and CSS_BENCH_SCRATCH: see Benchmarks/bench-common.sh.
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

bench_servers
products=(intake classification)
for arg in "$@"; do
    if [[ $arg == --follow-sla ]]; then products+=(sla); fi
    if [[ $arg == --all-services ]]; then products+=(sla escalation change); fi
done
bench_build "${products[@]}" intake-load
bench_run intake intake-load "$@"

#!/usr/bin/env bash
# Builds escalation and escalation-load in release mode and runs the escalation benchmark
# (issue 9) against the local servers (deploy/local/servers.sh), teeing the report to
# .state/bench/escalation-<timestamp>.txt. Arguments are passed to escalation-load, e.g.
#   Benchmarks/run-escalation-benchmark.sh                       # full: 500 breaches/s for 30 s, 100,000 chains held, 200 acks/s for 20 s
#   Benchmarks/run-escalation-benchmark.sh --rate 100 --seconds 5 --chains 5000 --ack-rate 50 --ack-seconds 5 --raw-messages 20000
#   Benchmarks/run-escalation-benchmark.sh --phases page,ack       # no raw ceiling, no 100,000 chains
#   CSS_WORKERS=4 Benchmarks/run-escalation-benchmark.sh           # the service's settings come from the environment
# Servers, CSS_STATE_DIR and CSS_BENCH_SCRATCH: see Benchmarks/bench-common.sh.
source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

bench_servers
bench_build escalation escalation-load
bench_run escalation escalation-load "$@"

#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, starts RabbitMQ and
# PostgreSQL if they are not running, builds everything (the integration tests
# start the real service executables) and runs every test, one suite at a time
# (some restart the broker or kill services). Also checks the AsyncAPI document.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_swift
servers_up
cd "$ROOT"
log "building"
swift build --build-tests
CSS_BIN_DIR="$(swift build --show-bin-path)"
export CSS_BIN_DIR
if [ -f docs/check_asyncapi.py ]; then
    python3 -c 'import yaml, jsonschema' 2>/dev/null || python3 -m pip install -q pyyaml jsonschema
    python3 docs/check_asyncapi.py
fi
log "testing"
swift test --skip-build --no-parallel "$@"

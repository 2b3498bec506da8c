#!/usr/bin/env bash
# Calendar benchmark: builds the release harness, installs the Python comparison
# (businesstimedelta, holidays) and runs both on the same cases.
# Usage: Tools/bench-calendar.sh [calendar-bench options, e.g. --starts 200000 --rounds 7]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python3 -m pip install -q -r Tools/oracles/requirements.txt
swift build -c release --product calendar-bench
"$(swift build -c release --show-bin-path)/calendar-bench" --root "$root" "$@"

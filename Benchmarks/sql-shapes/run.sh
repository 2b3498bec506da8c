#!/usr/bin/env bash
# Replays intake's database work per command batch with pgbench, as sent today
# (per_ticket.sql) and set-wise (set_based.sql), each with unnamed (extended, like
# PQexecParams) and prepared statements, on a scratch database that is dropped after.
# Prints tickets/s and PostgreSQL CPU per ticket. Needs CSS_DATABASE_URL (servers.sh env).
# Usage: Benchmarks/sql-shapes/run.sh [BATCH=64] [SECONDS=15] [CLIENTS=4]
set -euo pipefail
BATCH=${1:-64} SECS=${2:-15} CLIENTS=${3:-4}
URL=${CSS_DATABASE_URL:-postgres://css@127.0.0.1:5432/css}
BASE=${URL%/*}
DB=shapes_$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
DIR=$(mktemp -d)
PG_BIN=${CSS_PG_BIN:-/usr/lib/postgresql/15/bin}
trap 'psql "$URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1; rm -rf "$DIR"' EXIT
python3 "$(dirname "$0")/gen.py" "$DIR" "$BATCH"
psql "$URL" -qc "CREATE DATABASE $DB" >/dev/null
psql "$BASE/$DB" -q -f "$DIR/schema.sql" >/dev/null

backend_jiffies() { # utime+stime of the backends of $DB
    local total=0 f pid
    for f in /proc/[0-9]*/cmdline; do
        if { tr "\0" " " <"$f"; } 2>/dev/null | grep -q "^postgres: .* $DB "; then
            pid=${f#/proc/}; pid=${pid%/cmdline}
            total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
        fi
    done
    echo "$total"
}

for script in per_ticket set_based; do
    for mode in extended prepared; do
        out=$DIR/$script-$mode.out
        "$PG_BIN/pgbench" -n -M "$mode" -c "$CLIENTS" -j 2 -T "$SECS" -f "$DIR/$script.sql" "$BASE/$DB" >"$out" 2>&1 &
        pgb=$!
        # Backends exit with pgbench: sample their CPU time inside the run.
        sleep 2
        j0=$(backend_jiffies)
        sleep $((SECS - 4))
        j1=$(backend_jiffies)
        wait "$pgb" || { grep -i error "$out" | head -3; exit 1; }
        tps=$(awk '/^tps = /{print $3; exit}' "$out")
        awk -v s="$script" -v m="$mode" -v t="$tps" -v b="$BATCH" -v j=$((j1 - j0)) -v w=$((SECS - 4)) -v hz="$(getconf CLK_TCK)" 'BEGIN{
            cpu = j / hz / w
            printf "%-10s %-8s %6.0f batches/s = %6.0f tickets/s   postgres %.2f cores = %4.0f us cpu/ticket\n", s, m, t, t*b, cpu, cpu / (t*b) * 1e6 }'
    done
done

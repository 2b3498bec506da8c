#!/usr/bin/env bash
# Local RabbitMQ + PostgreSQL for development and CI (Debian 12, root, no systemd).
#
# Everything listens on 127.0.0.1 only. State lives under $CSS_STATE_DIR
# (default <checkout>/.state). See deploy/local/README.md.
#
# LOCAL DEV SETUP ONLY: role `css` has no password and pg_hba trusts it on
# 127.0.0.1; the broker uses the built-in guest user (loopback-only).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CHECKOUT=$(cd "$SCRIPT_DIR/../.." && pwd -P)

PACKAGES=(rabbitmq-server postgresql librabbitmq-dev libpq-dev)
PG_BIN=${CSS_PG_BIN:-/usr/lib/postgresql/15/bin}
RMQ_BIN=${CSS_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
TIMEOUT=${CSS_START_TIMEOUT:-120}
PG_ROLE=css
PG_DB=css

log() { printf 'servers.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat <<'EOF'
usage: deploy/local/servers.sh COMMAND [ARGS]
  install              apt-get install missing packages (skips apt entirely if none missing)
  start                start RabbitMQ and PostgreSQL (idempotent), create role/db css
  stop                 stop both (idempotent)
  status               report; exit 0 if both run, 3 otherwise
  env                  print export lines for CSS_AMQP_URL and CSS_DATABASE_URL
  add-vhost NAME       create vhost NAME, grant guest full permissions, print its AMQP URL
  delete-vhost NAME    delete vhost NAME (idempotent)
  delete-queue V Q     delete queue Q in vhost V (what an operator or a lost node does)
  list-queues V        print each queue of vhost V and its message count
  restart-rabbitmq     stop and start RabbitMQ only, wait until it accepts connections
env: CSS_AMQP_PORT (5672) CSS_PG_PORT (5432) CSS_STATE_DIR (<checkout>/.state)
     CSS_RABBITMQ_DIST_PORT (amqp+20000) CSS_EPMD_PORT (4369) CSS_RABBITMQ_NODENAME
     CSS_START_TIMEOUT (120 seconds) CSS_KEEP_EPMD (0)
EOF
}

# ---------------------------------------------------------------- layout ----

STATE=${CSS_STATE_DIR:-$CHECKOUT/.state}
LOG_DIR=$STATE/log
RMQ_DIR=$STATE/rabbitmq
RUN_ENV=$STATE/servers.env   # the settings the running servers were started with

# Effective settings. `start` uses the environment for a server it has to
# start; everything else prefers what was recorded when the servers started.
env_amqp_port=${CSS_AMQP_PORT:-5672}
env_pg_port=${CSS_PG_PORT:-5432}
env_dist_port=${CSS_RABBITMQ_DIST_PORT:-$((env_amqp_port + 20000))}
env_epmd_port=${CSS_EPMD_PORT:-4369}
if [[ -n ${CSS_RABBITMQ_NODENAME:-} ]]; then
    env_node=$CSS_RABBITMQ_NODENAME
elif [[ $env_amqp_port == 5672 ]]; then
    env_node=rabbit@localhost
else
    env_node=rabbit-$env_amqp_port@localhost
fi
AMQP_PORT=$env_amqp_port PG_PORT=$env_pg_port DIST_PORT=$env_dist_port
EPMD_PORT=$env_epmd_port NODE=$env_node

load_recorded() {
    [[ -f $RUN_ENV ]] || return 0
    local k v
    while IFS='=' read -r k v; do
        case $k in
            AMQP_PORT | PG_PORT | DIST_PORT | EPMD_PORT | NODE) printf -v "$k" '%s' "$v" ;;
        esac
    done <"$RUN_ENV"
}

record() {
    mkdir -p "$STATE"
    printf '%s\n' "AMQP_PORT=$AMQP_PORT" "DIST_PORT=$DIST_PORT" "EPMD_PORT=$EPMD_PORT" \
        "NODE=$NODE" "PG_PORT=$PG_PORT" >"$RUN_ENV.tmp"
    mv "$RUN_ENV.tmp" "$RUN_ENV"
}

check_port() { # name value
    if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > 65535)); then
        die "$1 must be a TCP port, got '$2'"
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

tail_log() { # file
    if [[ -e $1 ]]; then
        log "last lines of $1:"
        tail -n 40 "$1" >&2 || true
    else
        log "(no log at $1)"
    fi
}

# ---------------------------------------------------------------- install ---

pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

cmd_install() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        log "all packages present: ${PACKAGES[*]}"
        return 0
    fi
    ((EUID == 0)) || die "installing ${missing[*]} needs root"
    log "installing: ${missing[*]}"
    # The Debian packages would start a system-wide broker (0.0.0.0:5672) and a
    # "15/main" cluster on 5432 through their init scripts where an init system
    # allows it; keep them from starting, we run our own instances.
    local policy=/usr/sbin/policy-rc.d ours=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, from css deploy/local/servers.sh install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        ours=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    } >&2 || rc=$?
    ((ours)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get failed (exit $rc)"
    log "installed: ${missing[*]}"
}

require_installed() {
    [[ -x $PG_BIN/pg_ctl && -x $RMQ_BIN/rabbitmq-server ]] ||
        die "RabbitMQ/PostgreSQL binaries missing; run: $0 install"
    id postgres >/dev/null 2>&1 || die "no 'postgres' user; run: $0 install"
    ((EUID == 0)) || die "must run as root (starts PostgreSQL as the postgres user)"
}

# --------------------------------------------------------------- rabbitmq ---

rmq_env() { # runs "$@" with the environment of our node
    env HOME="$RMQ_DIR/home" \
        RABBITMQ_NODENAME="$NODE" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$AMQP_PORT" \
        RABBITMQ_DIST_PORT="$DIST_PORT" \
        RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia" \
        RABBITMQ_LOG_BASE="$LOG_DIR" \
        RABBITMQ_PID_FILE="$RMQ_DIR/rabbitmq.pid" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins" \
        RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config" \
        RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        ERL_EPMD_PORT="$EPMD_PORT" \
        ERL_CRASH_DUMP="$LOG_DIR/rabbitmq_erl_crash.dump" \
        "$@"
}

rmqctl() { rmq_env "$RMQ_BIN/rabbitmqctl" -q -n "$NODE" "$@"; }

rmq_pid() {
    local pid f
    if [[ -s $RMQ_DIR/rabbitmq.pid ]]; then
        read -r pid <"$RMQ_DIR/rabbitmq.pid" || true
        # guard against a recycled pid
        if [[ $pid =~ ^[0-9]+$ ]] && [[ $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) == *beam* ]]; then
            printf '%s\n' "$pid"
            return 0
        fi
    fi
    # no pid file yet (node still booting, or a start that failed): find the VM
    # by the HOME it was given, which is unique to this state dir
    for f in /proc/[0-9]*/cmdline; do
        if [[ $({ tr '\0' ' ' <"$f"; } 2>/dev/null) == *beam*" -home $RMQ_DIR/home "* ]]; then
            pid=${f#/proc/}
            printf '%s\n' "${pid%/cmdline}"
            return 0
        fi
    done
    return 1
}

rmq_kill() { # pid: TERM, then KILL after 30s
    kill -TERM "$1" 2>/dev/null || return 0
    local deadline=$((SECONDS + 30))
    while kill -0 "$1" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "RabbitMQ (pid $1) ignores SIGTERM; sending SIGKILL"
            kill -KILL "$1" 2>/dev/null || true
            sleep 1
            return 0
        fi
        sleep 0.5
    done
}

rmq_running() { rmq_pid >/dev/null; }

# Speaks the start of AMQP 0-9-1: the broker must answer the protocol header
# with a method frame (type 1, connection.start).
amqp_ready() {
    local first
    # shellcheck disable=SC2016 # expanded by the inner bash
    first=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "AMQP\x00\x00\x09\x01" >&3
        head -c 1 <&3 | od -An -tu1' _ "$AMQP_PORT" 2>/dev/null) || return 1
    [[ ${first// /} == 1 ]]
}

rmq_prepare() {
    mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$LOG_DIR"
    chmod 700 "$RMQ_DIR/home"
    # One cookie per state dir, shared by the server and rabbitmqctl via HOME.
    if [[ ! -s $RMQ_DIR/home/.erlang.cookie ]]; then
        (umask 077 && head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 40 \
            >"$RMQ_DIR/home/.erlang.cookie")
        chmod 400 "$RMQ_DIR/home/.erlang.cookie"
    fi
    [[ -e $RMQ_DIR/enabled_plugins ]] || printf '[].\n' >"$RMQ_DIR/enabled_plugins"
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
# generated by deploy/local/servers.sh; listener/port come from the environment
loopback_users.guest = true
log.file.level = info
log.console = false
EOF
    [[ -e $RMQ_DIR/advanced.config ]] || printf '[].\n' >"$RMQ_DIR/advanced.config"
    [[ -e $RMQ_DIR/rabbitmq-env.conf ]] ||
        printf '# intentionally empty: keeps /etc/rabbitmq/rabbitmq-env.conf out\n' >"$RMQ_DIR/rabbitmq-env.conf"
}

epmd_up() { epmd -port "$EPMD_PORT" -names >/dev/null 2>&1; }

rmq_preflight() {
    check_port CSS_AMQP_PORT "$AMQP_PORT"
    check_port CSS_RABBITMQ_DIST_PORT "$DIST_PORT"
    local p
    for p in "$AMQP_PORT" "$DIST_PORT"; do
        if port_open "$p"; then
            die "port 127.0.0.1:$p is taken by another process (a system rabbitmq? see: ss -ltnp | grep :$p)"
        fi
    done
}

rmq_start() {
    if rmq_running; then
        log "RabbitMQ already running (node $NODE, pid $(rmq_pid), amqp 127.0.0.1:$AMQP_PORT)"
        rmq_wait_ready
        return 0
    fi
    rmq_preflight
    rmq_prepare
    rm -f "$RMQ_DIR/rabbitmq.pid"
    local startup_log=$LOG_DIR/rabbitmq-startup.log
    log "starting RabbitMQ (node $NODE, amqp 127.0.0.1:$AMQP_PORT, dist $DIST_PORT)"
    (cd "$RMQ_DIR" && rmq_env "$RMQ_BIN/rabbitmq-server" -detached) >>"$startup_log" 2>&1 ||
        { tail_log "$startup_log"; die "rabbitmq-server -detached failed"; }
    if ! rmqctl wait --timeout "$TIMEOUT" "$RMQ_DIR/rabbitmq.pid" >>"$startup_log" 2>&1; then
        tail_log "$startup_log"
        tail_log "$LOG_DIR/$NODE.log"
        rmq_abort
        die "RabbitMQ did not start within ${TIMEOUT}s"
    fi
    rmq_wait_ready
    log "RabbitMQ is up (pid $(rmq_pid || echo '?'))"
}

rmq_abort() { # do not leave a half-started node behind
    local pid
    if pid=$(rmq_pid); then
        log "killing the half-started RabbitMQ node (pid $pid)"
        rmq_kill "$pid"
    fi
    rm -f "$RMQ_DIR/rabbitmq.pid"
}

rmq_wait_ready() {
    local deadline=$((SECONDS + TIMEOUT))
    until amqp_ready; do
        if ! rmq_running; then
            tail_log "$LOG_DIR/$NODE.log"
            die "RabbitMQ exited while starting"
        fi
        if ((SECONDS >= deadline)); then
            tail_log "$LOG_DIR/$NODE.log"
            rmq_abort
            die "RabbitMQ does not accept AMQP on 127.0.0.1:$AMQP_PORT after ${TIMEOUT}s"
        fi
        sleep 0.5
    done
}

rmq_stop() {
    if rmq_running; then
        local pid
        pid=$(rmq_pid)
        log "stopping RabbitMQ (node $NODE, pid $pid)"
        if [[ -s $RMQ_DIR/rabbitmq.pid ]] &&
            rmqctl stop "$RMQ_DIR/rabbitmq.pid" >>"$LOG_DIR/rabbitmq-startup.log" 2>&1; then
            local deadline=$((SECONDS + 60))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
        else
            log "rabbitmqctl stop failed or no pid file; sending SIGTERM to $pid"
        fi
        rmq_kill "$pid"
        if kill -0 "$pid" 2>/dev/null; then die "RabbitMQ (pid $pid) did not stop"; fi
        rm -f "$RMQ_DIR/rabbitmq.pid"
        log "RabbitMQ stopped"
    else
        log "RabbitMQ is not running"
    fi
    # epmd (started by the node) outlives it; stop it once no Erlang node is
    # registered any more, so port 4369 is free again. CSS_KEEP_EPMD=1 keeps it.
    if [[ ${CSS_KEEP_EPMD:-0} != 1 ]] && epmd_up; then
        if [[ -z $(epmd -port "$EPMD_PORT" -names 2>/dev/null | grep '^name ' || true) ]]; then
            epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
            log "stopped idle epmd on port $EPMD_PORT"
        else
            log "epmd on port $EPMD_PORT still serves other nodes; left running"
        fi
    fi
}

# ------------------------------------------------------------- postgresql ---

as_pg() { (cd / && runuser -u postgres -- "$@"); }

# PostgreSQL runs as `postgres`, which must be able to traverse every parent of
# its data dir. If it cannot reach the state dir (e.g. a clone under /root),
# the PG area goes to /var/tmp/css-<hash of the state dir> and $STATE/pg is a
# symlink to it.
pg_area() {
    if [[ -L $STATE/pg ]]; then
        readlink -f "$STATE/pg"
    elif [[ -d $STATE/pg ]]; then
        printf '%s\n' "$STATE/pg"
    elif as_pg test -x "$STATE"; then
        printf '%s\n' "$STATE/pg"
    else
        local h
        h=$(printf '%s' "$(readlink -f "$STATE")" | sha256sum | cut -c1-12)
        printf '%s\n' "/var/tmp/css-$h"
    fi
}

pg_prepare_area() {
    mkdir -p "$STATE" "$LOG_DIR"
    PG_AREA=$(pg_area)
    if [[ $PG_AREA != "$STATE/pg" && ! -L $STATE/pg ]]; then
        log "postgres cannot reach $STATE; keeping PostgreSQL data in $PG_AREA (symlink $STATE/pg)"
    fi
    if [[ ! -d $PG_AREA ]]; then
        install -d -o postgres -g postgres -m 700 "$PG_AREA"
    fi
    [[ $(stat -c %U "$PG_AREA") == postgres ]] || die "$PG_AREA exists but is not owned by postgres"
    [[ $PG_AREA == "$STATE/pg" ]] || ln -sfn "$PG_AREA" "$STATE/pg"
    install -d -o postgres -g postgres -m 700 "$PG_AREA/run" "$PG_AREA/log"
    as_pg test -w "$PG_AREA" || die "postgres cannot write to $PG_AREA"
    ln -sfn "$PG_AREA/log/postgresql.log" "$LOG_DIR/postgresql.log"
}

pg_paths() {
    PG_AREA=$(pg_area)
    PGDATA_DIR=$PG_AREA/data
    PG_SOCK=$PG_AREA/run
    PG_LOG=$PG_AREA/log/postgresql.log
}

pg_running() {
    pg_paths
    [[ -f $PGDATA_DIR/PG_VERSION ]] || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

pg_write_conf() {
    as_pg tee "$PGDATA_DIR/css.conf" >/dev/null <<EOF
# generated by deploy/local/servers.sh on every start; edit the script instead
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 256MB
effective_cache_size = 4GB
work_mem = 8MB
maintenance_work_mem = 128MB
# fewer forced checkpoints under bursts (a 100,000-ticket run writes ~1 GB of WAL)
max_wal_size = 4GB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
# durability stays on: tests measure real commits
fsync = on
synchronous_commit = on
full_page_writes = on
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    as_pg tee "$PGDATA_DIR/pg_hba.conf" >/dev/null <<'EOF'
# generated by deploy/local/servers.sh -- LOCAL DEV SETUP ONLY
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer
host    all       css       127.0.0.1/32   trust
host    all       all       127.0.0.1/32   scram-sha-256
EOF
}

pg_psql() { # admin psql over the unix socket, script on stdin
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres
}

pg_preflight() {
    check_port CSS_PG_PORT "$PG_PORT"
    if port_open "$PG_PORT"; then
        die "port 127.0.0.1:$PG_PORT is taken by another process (see: ss -ltnp | grep :$PG_PORT; if it is the Debian 15/main cluster: pg_ctlcluster 15 main stop)"
    fi
}

pg_start() {
    if pg_running; then
        log "PostgreSQL already running (127.0.0.1:$PG_PORT, data $PGDATA_DIR)"
        pg_bootstrap
        return 0
    fi
    pg_preflight
    pg_prepare_area
    pg_paths
    if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then
        log "initdb in $PGDATA_DIR"
        install -d -o postgres -g postgres -m 700 "$PGDATA_DIR"
        as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=peer --auth-host=scram-sha-256 --data-checksums \
            >>"$LOG_DIR/initdb.log" 2>&1 || { tail_log "$LOG_DIR/initdb.log"; die "initdb failed"; }
        printf "\ninclude_if_exists = 'css.conf'\n" | as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
    fi
    pg_write_conf
    log "starting PostgreSQL (127.0.0.1:$PG_PORT, data $PGDATA_DIR)"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$TIMEOUT" -s start; then
        tail_log "$PG_LOG"
        die "PostgreSQL did not start within ${TIMEOUT}s"
    fi
    local deadline=$((SECONDS + 30))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; do
        if ((SECONDS >= deadline)); then
            tail_log "$PG_LOG"
            die "PostgreSQL runs but does not accept connections on 127.0.0.1:$PG_PORT"
        fi
        sleep 0.5
    done
    log "PostgreSQL is up"
    pg_bootstrap
}

pg_bootstrap() { # role and database, idempotent
    pg_psql <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
    CREATE ROLE $PG_ROLE LOGIN CREATEDB;
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB')
\gexec
EOF
}

pg_stop() {
    if pg_running; then
        log "stopping PostgreSQL (data $PGDATA_DIR)"
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 -s stop ||
            { tail_log "$PG_LOG"; die "pg_ctl stop failed"; }
        log "PostgreSQL stopped"
    else
        log "PostgreSQL is not running"
    fi
}

# ---------------------------------------------------------------- helpers ---

urlencode() {
    local s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
            [a-zA-Z0-9._~-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

amqp_url() { printf 'amqp://guest:guest@127.0.0.1:%s/%s' "$AMQP_PORT" "$(urlencode "${1:-/}")"; }
db_url() { printf 'postgres://%s@127.0.0.1:%s/%s' "$PG_ROLE" "$PG_PORT" "$PG_DB"; }

require_rmq() { rmq_running || die "RabbitMQ is not running (run: $0 start)"; }

# --------------------------------------------------------------- commands ---

cmd_start() {
    require_installed
    mkdir -p "$STATE" "$LOG_DIR"
    # a server that already runs keeps the settings it was started with
    local r_amqp=$env_amqp_port r_dist=$env_dist_port r_epmd=$env_epmd_port r_node=$env_node r_pg=$env_pg_port
    if [[ -f $RUN_ENV ]]; then
        load_recorded
        if rmq_running; then r_amqp=$AMQP_PORT r_dist=$DIST_PORT r_epmd=$EPMD_PORT r_node=$NODE; fi
        if pg_running; then r_pg=$PG_PORT; fi
    fi
    AMQP_PORT=$r_amqp DIST_PORT=$r_dist EPMD_PORT=$r_epmd NODE=$r_node PG_PORT=$r_pg
    # refuse before starting anything when a port we need is taken
    rmq_running || rmq_preflight
    pg_running || pg_preflight
    record
    rmq_start
    pg_start
}

cmd_stop() {
    load_recorded
    rmq_stop
    pg_stop
}

cmd_status() {
    load_recorded
    local rc=0
    if rmq_running; then
        if amqp_ready; then
            echo "rabbitmq:   running (node $NODE, pid $(rmq_pid), amqp 127.0.0.1:$AMQP_PORT)"
        else
            echo "rabbitmq:   starting or unhealthy (node $NODE, pid $(rmq_pid), amqp 127.0.0.1:$AMQP_PORT not answering)"
            rc=3
        fi
    else
        echo "rabbitmq:   stopped"
        rc=3
    fi
    if pg_running; then
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; then
            echo "postgresql: running (127.0.0.1:$PG_PORT, data $PGDATA_DIR)"
        else
            echo "postgresql: running but not accepting connections (127.0.0.1:$PG_PORT)"
            rc=3
        fi
    else
        echo "postgresql: stopped"
        rc=3
    fi
    echo "state:      $STATE"
    return "$rc"
}

cmd_env() {
    load_recorded
    if ! rmq_running || ! pg_running; then
        log "warning: not everything is running (see: $0 status)"
    fi
    printf 'export CSS_AMQP_URL=%s\n' "$(amqp_url /)"
    printf 'export CSS_DATABASE_URL=%s\n' "$(db_url)"
}

cmd_add_vhost() {
    if (($# != 1)) || [[ -z $1 ]]; then die "usage: $0 add-vhost NAME"; fi
    load_recorded
    require_rmq
    if ! rmqctl list_vhosts name | grep -qxF -- "$1"; then
        rmqctl add_vhost "$1" >/dev/null
    fi
    rmqctl set_permissions -p "$1" guest '.*' '.*' '.*' >/dev/null
    log "vhost '$1' ready"
    amqp_url "$1"
    echo
}

cmd_delete_vhost() {
    if (($# != 1)) || [[ -z $1 ]]; then die "usage: $0 delete-vhost NAME"; fi
    load_recorded
    require_rmq
    if rmqctl list_vhosts name | grep -qxF -- "$1"; then
        rmqctl delete_vhost "$1" >/dev/null
        log "vhost '$1' deleted"
    else
        log "vhost '$1' does not exist"
    fi
}

cmd_delete_queue() {
    if (($# != 2)) || [[ -z $1 || -z $2 ]]; then die "usage: $0 delete-queue VHOST QUEUE"; fi
    load_recorded
    require_rmq
    rmqctl delete_queue -p "$1" "$2" >/dev/null
    log "queue '$2' deleted in vhost '$1'"
}

cmd_list_queues() {
    if (($# != 1)) || [[ -z $1 ]]; then die "usage: $0 list-queues VHOST"; fi
    load_recorded
    require_rmq
    rmqctl list_queues -p "$1" --no-table-headers name messages
}

cmd_restart_rabbitmq() {
    require_installed
    load_recorded
    rmq_stop
    rmq_start
}

main() {
    local cmd=${1:-}
    (($#)) && shift
    case $cmd in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        add-vhost) cmd_add_vhost "$@" ;;
        delete-vhost) cmd_delete_vhost "$@" ;;
        delete-queue) cmd_delete_queue "$@" ;;
        list-queues) cmd_list_queues "$@" ;;
        restart-rabbitmq) cmd_restart_rabbitmq ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"

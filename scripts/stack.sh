#!/usr/bin/env bash
# Manages one trading-api stack (Postgres, memcached, the trading-api pool, nginx) whose state
# lives in RUN_DIR. Several stacks can run side by side (different RUN_DIR and ports); every
# process is stopped by the PID recorded in its RUN_DIR, never by name.
#
#   scripts/stack.sh COMMAND
#     up            start what is not running (restart the pool if its binary or settings
#                   changed, reload nginx), wait for /api/v1/health, write RUN_DIR/stack.env
#     down          stop what `up` started, by the PIDs recorded in RUN_DIR (data is kept)
#     status        one line per service and the health check (exit 3 if anything is down)
#     pg-stop | pg-start | mc-stop | mc-start   stop/start that one service (fault tests)
#     reload-nginx  re-render the nginx config (rate limits: environment, else recorded), reload
#     pool-pid      PID of the pool supervisor (kill -HUP "$(...)" = rolling worker restart)
#     logs [all|pool|nginx|access|postgres|memcached|-f]   tails of RUN_DIR/logs/*
#
# Environment (read by `up`; the other commands use what `up` recorded in RUN_DIR/stack.conf):
#   RUN_DIR (.run, relative to the repository)   HTTP_PORT (8080)  PG_PORT (54329)  MC_PORT (11219)
#   DATABASE_URL       use this database instead of a cluster in RUN_DIR/pgdata
#   MEMCACHED_SERVERS  use these instead of starting memcached
#   JWT_SECRET_KEY     else generated once into RUN_DIR/jwt_secret
#   TRADING_API_BIN (.build/release/trading-api)  WORKERS (one per CPU, at least 2: bench/README.md)  MAX_REQUESTS
#   CACHE_TTL_SECONDS (5)  LOG_LEVEL (info)
#   RATE_LIMIT_PER_ADDR (50) RATE_BURST_PER_ADDR (100) RATE_LIMIT_PER_TOKEN (20) RATE_BURST_PER_TOKEN (40)
#     (rates in requests/second, "20" or nginx's "20r/s" / "600r/m"; stack.env has "20r/s")
#   DEMO_DATA (1; 0 = none)  DEMO_USERS (100)  DEMO_ROWS_PER_USER (200)
#     DEMO_MAX_AGE (3600 s: older demo data is regenerated, its times are relative to the load)
#   STACK_UP_TIMEOUT (60 s: how long `up` waits for the health check)
#   PG_BINDIR (/usr/lib/postgresql/15/bin)
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG="stack"

log()  { printf '[%s %s] %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2; }
die()  { log "error: $*"; exit 1; }

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------
# Configuration

abs_path() {  # relative paths are relative to the repository
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *)  printf '%s\n' "$ROOT/${1#./}" ;;
    esac
}

RUN_DIR=$(abs_path "${RUN_DIR:-.run}")
RUN_DIR=${RUN_DIR%/}
CONF_FILE="$RUN_DIR/stack.conf"
ENV_FILE="$RUN_DIR/stack.env"
LOG_DIR="$RUN_DIR/logs"
PGDATA="$RUN_DIR/pgdata"
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}   # not /usr/local/bin: those are something else
PSQL="$PG_BINDIR/psql"
NGINX_USER=www-data
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
PG_ROLE=trading
PG_DB=trading

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

normalize_rate() {  # NAME VALUE: "20" or "20r/s" -> "20r/s"; "600r/m" stays (nginx's syntax)
    if [[ $2 =~ ^[1-9][0-9]*$ ]]; then
        printf '%sr/s\n' "$2"
    elif [[ $2 =~ ^[1-9][0-9]*r/[sm]$ ]]; then
        printf '%s\n' "$2"
    else
        die "$1 must be requests per second (20), or nginx's 20r/s or 600r/m (got '$2')"
    fi
}

# Values `up` computes from the environment. Other commands load the recorded ones.
config_from_env() {
    HTTP_PORT=${HTTP_PORT:-8080}
    PG_PORT=${PG_PORT:-54329}
    MC_PORT=${MC_PORT:-11219}
    local cpus
    cpus=$(nproc 2>/dev/null || echo 2)
    WORKERS=${WORKERS:-$((cpus < 2 ? 2 : cpus))}
    CACHE_TTL_SECONDS=${CACHE_TTL_SECONDS:-5}
    LOG_LEVEL=${LOG_LEVEL:-info}
    RATE_LIMIT_PER_ADDR=${RATE_LIMIT_PER_ADDR:-50}
    RATE_BURST_PER_ADDR=${RATE_BURST_PER_ADDR:-100}
    RATE_LIMIT_PER_TOKEN=${RATE_LIMIT_PER_TOKEN:-20}
    RATE_BURST_PER_TOKEN=${RATE_BURST_PER_TOKEN:-40}
    TRADING_API_BIN=$(abs_path "${TRADING_API_BIN:-.build/release/trading-api}")
    local v
    for v in HTTP_PORT PG_PORT MC_PORT WORKERS CACHE_TTL_SECONDS \
             RATE_BURST_PER_ADDR RATE_BURST_PER_TOKEN; do
        is_uint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
    done
    [ "$WORKERS" -ge 1 ] || die "WORKERS must be at least 1"
    RATE_LIMIT_PER_ADDR=$(normalize_rate RATE_LIMIT_PER_ADDR "$RATE_LIMIT_PER_ADDR")
    RATE_LIMIT_PER_TOKEN=$(normalize_rate RATE_LIMIT_PER_TOKEN "$RATE_LIMIT_PER_TOKEN")

    # A DATABASE_URL / MEMCACHED_SERVERS that is this stack's own (e.g. exported from
    # stack.env) still means "managed here".
    local prev_url="" prev_mc=""
    if [ -f "$CONF_FILE" ]; then
        prev_url=$(conf_get MANAGED_DATABASE_URL)
        prev_mc=$(conf_get MANAGED_MEMCACHED_SERVERS)
    fi
    if [ -n "${DATABASE_URL:-}" ] && [ "$DATABASE_URL" != "$prev_url" ]; then
        PG_MANAGED=0
    else
        PG_MANAGED=1
    fi
    if [ -n "${MEMCACHED_SERVERS:-}" ] && [ "$MEMCACHED_SERVERS" != "$prev_mc" ]; then
        MC_MANAGED=0
    else
        MC_MANAGED=1
    fi
    derive_paths
}

derive_paths() {
    SOCK_DIR="/run/trading-api-$HTTP_PORT"
    FCGI_SOCKET="$SOCK_DIR/fcgi.sock"
    PG_SOCK_DIR="/run/trading-api-pg-$PG_PORT"
    BASE_URL="http://127.0.0.1:$HTTP_PORT"
}

CONF_KEYS=(HTTP_PORT PG_PORT MC_PORT PG_MANAGED MC_MANAGED WORKERS CACHE_TTL_SECONDS LOG_LEVEL
           RATE_LIMIT_PER_ADDR RATE_BURST_PER_ADDR RATE_LIMIT_PER_TOKEN RATE_BURST_PER_TOKEN
           TRADING_API_BIN MANAGED_DATABASE_URL MANAGED_MEMCACHED_SERVERS)

conf_get() {  # KEY -> value recorded in stack.conf (empty when absent)
    [ -f "$CONF_FILE" ] || return 0
    (
        # shellcheck disable=SC1090
        . "$CONF_FILE"
        printf '%s' "${!1:-}"
    )
}

write_conf() {
    local k tmp="$CONF_FILE.tmp"
    (
        umask 077
        for k in "${CONF_KEYS[@]}"; do printf '%s=%q\n' "$k" "${!k:-}"; done >"$tmp"
    )
    mv -f "$tmp" "$CONF_FILE"
}

load_conf() {
    [ -f "$CONF_FILE" ] || die "no stack recorded in $RUN_DIR (run 'up' first)"
    local k
    for k in "${CONF_KEYS[@]}"; do unset "$k"; done
    # shellcheck disable=SC1090
    . "$CONF_FILE"
    derive_paths
}

# ---------------------------------------------------------------------------------------------
# Processes: recorded by PID plus kernel start time, so a recycled PID is never mistaken for ours.

start_time_of() {  # PID -> start time in clock ticks since boot (field 22 of /proc/PID/stat)
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    printf '%s\n' "${fields[19]}"
}

pidfile_alive() {  # PIDFILE -> prints the PID if that process (same start time) is alive
    local f=$1 pid want now
    [ -f "$f" ] || return 1
    pid=$(head -n1 "$f" 2>/dev/null) || return 1
    is_uint "$pid" || return 1
    want=$(cat "$f.start" 2>/dev/null) || return 1
    now=$(start_time_of "$pid") || return 1
    [ "$want" = "$now" ] || return 1
    printf '%s\n' "$pid"
}

record_pid() {  # PIDFILE PID
    printf '%s\n' "$2" >"$1"
    start_time_of "$2" >"$1.start" || true
}

wait_gone() {  # PID SECONDS
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

stop_group() {  # NAME PID GRACE_SIGNAL SECONDS: graceful signal, then SIGKILL to its process group
    local name=$1 pid=$2 sig=$3 grace=$4
    log "stopping $name (pid $pid, SIG$sig)"
    kill -s "$sig" "$pid" 2>/dev/null || return 0
    if ! wait_gone "$pid" "$grace"; then
        log "$name did not stop within ${grace}s: SIGKILL to its process group $pid"
        kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || log "warning: $name (pid $pid) is still there"
    fi
}

tcp_open() {  # HOST PORT: something accepts connections
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Secrets

random_token() {  # N random bytes as hex
    od -An -tx1 -N "$1" /dev/urandom | tr -d ' \n'
}

secret_file() {  # FILE BYTES: read, or create once (0600)
    local f=$1
    if [ ! -s "$f" ]; then
        (umask 077 && random_token "$2" >"$f.tmp" && mv -f "$f.tmp" "$f")
        log "generated $f"
    fi
    chmod 600 "$f"
    cat "$f"
}

# ---------------------------------------------------------------------------------------------
# Postgres (own cluster in RUN_DIR/pgdata, run as the postgres user)

as_postgres() {  # run a command as postgres from a directory it can enter
    (cd / && runuser -u postgres -- "$@")
}

# The postgres user must be able to reach RUN_DIR/pgdata. CI clones into `mktemp -d` (0700):
# add o+x (traverse, not list) to each ancestor postgres cannot enter, and say so.
ensure_postgres_can_traverse() {
    local path=$1 d="" part
    local -a parts
    IFS=/ read -r -a parts <<<"${path#/}"
    for part in "${parts[@]}"; do
        d="$d/$part"
        [ -d "$d" ] || break
        if ! as_postgres test -x "$d"; then
            chmod o+x "$d"
            log "postgres could not traverse $d: added o+x (mode now $(stat -c %a "$d"))"
            as_postgres test -x "$d" || die "postgres still cannot traverse $d (owner/group ACL?)"
        fi
    done
}

pg_running() {
    [ -f "$PGDATA/PG_VERSION" ] && as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

pg_prepare_dirs() {
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    # RUN_DIR and logs/: group postgres so the server can reach pgdata and its log; nobody else.
    chgrp postgres "$RUN_DIR" "$LOG_DIR"
    chmod 0750 "$RUN_DIR" "$LOG_DIR"
    ensure_postgres_can_traverse "$RUN_DIR"
    install -d -o postgres -g postgres -m 0700 "$PGDATA"
    install -d -o postgres -g postgres -m 0755 "$PG_SOCK_DIR"
    touch "$LOG_DIR/postgres.log"
    chown postgres:postgres "$LOG_DIR/postgres.log"
    chmod 0640 "$LOG_DIR/postgres.log"
}

pg_init() {
    [ -f "$PGDATA/PG_VERSION" ] && return 0
    [ -x "$PG_BINDIR/initdb" ] || die "$PG_BINDIR/initdb not found (apt-get install postgresql)"
    log "initdb $PGDATA"
    touch "$LOG_DIR/initdb.log" && chown postgres:postgres "$LOG_DIR/initdb.log"
    if ! as_postgres "$PG_BINDIR/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale \
            --auth-local=peer --auth-host=scram-sha-256 >>"$LOG_DIR/initdb.log" 2>&1; then
        tail -n 20 "$LOG_DIR/initdb.log" >&2
        die "initdb failed"
    fi
    echo "include_if_exists = 'trading.conf'" >>"$PGDATA/postgresql.conf"
}

pg_configure() {
    # Rewritten on every start: ports and paths follow the current configuration.
    cat >"$PGDATA/trading.conf" <<EOF
# Written by scripts/stack.sh: a small box, this stack only.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK_DIR'
max_connections = 100
shared_buffers = 128MB
effective_cache_size = 512MB
work_mem = 4MB
maintenance_work_mem = 64MB
max_wal_size = 1GB
password_encryption = scram-sha-256
log_min_duration_statement = 500
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    cat >"$PGDATA/pg_hba.conf" <<EOF
# Written by scripts/stack.sh
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer
host    $PG_DB    $PG_ROLE  127.0.0.1/32   scram-sha-256
EOF
    chown postgres:postgres "$PGDATA/trading.conf" "$PGDATA/pg_hba.conf"
    chmod 0600 "$PGDATA/trading.conf" "$PGDATA/pg_hba.conf"
}

pg_start() {
    pg_prepare_dirs
    pg_init
    if pg_running; then
        log "postgres already running ($PGDATA)"
        return 0
    fi
    pg_configure
    log "starting postgres on 127.0.0.1:$PG_PORT"
    if ! as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$LOG_DIR/postgres.log" -w -t 60 \
            start >/dev/null; then
        tail -n 20 "$LOG_DIR/postgres.log" >&2
        die "postgres did not start"
    fi
}

pg_stop() {
    if pg_running; then
        log "stopping postgres ($PGDATA)"
        as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
    fi
}

pg_bootstrap() {  # role and database; sets DATABASE_URL
    local pw
    pw=$(secret_file "$RUN_DIR/pg_password" 18)
    # The password travels on stdin, not the command line.
    as_postgres "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -d postgres <<EOF
SET client_min_messages = warning;
\\set pw '$pw'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE') AS need_role \\gset
\\if :need_role
CREATE ROLE $PG_ROLE LOGIN PASSWORD :'pw';
\\else
ALTER ROLE $PG_ROLE LOGIN PASSWORD :'pw';
\\endif
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') AS need_db \\gset
\\if :need_db
CREATE DATABASE $PG_DB OWNER $PG_ROLE;
\\endif
EOF
    DATABASE_URL="postgresql://$PG_ROLE:$pw@127.0.0.1:$PG_PORT/$PG_DB"
}

wait_for_database() {
    local deadline=$((SECONDS + 30))
    until "$PSQL" -X -q -d "$DATABASE_URL" -c 'SELECT 1' >/dev/null 2>&1; do
        if [ $SECONDS -ge "$deadline" ]; then
            "$PSQL" -X -q -d "$DATABASE_URL" -c 'SELECT 1' >/dev/null || true
            die "database not reachable"
        fi
        sleep 0.5
    done
}

migrate() {
    local f name script
    script=$(mktemp)
    {
        echo 'SET client_min_messages = warning;'
        echo "SELECT pg_advisory_lock(hashtext('trading-api schema_migrations')) \\g /dev/null"
        echo 'CREATE TABLE IF NOT EXISTS schema_migrations (filename text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());'
        for f in "$ROOT"/sql/migrations/*.sql; do
            [ -e "$f" ] || continue
            name=$(basename "$f")
            [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "unexpected migration file name: $name"
            cat <<EOF
BEGIN;
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE filename = '$name') AS pending \\gset
\\if :pending
\\echo '[migrate] applying $name'
\\i '$f'
INSERT INTO schema_migrations (filename) VALUES ('$name');
\\endif
COMMIT;
EOF
        done
    } >"$script"
    # -o /dev/null: query results (e.g. a migration's final SELECT) are not shown; \echo is.
    if ! "$PSQL" -X -q -v ON_ERROR_STOP=1 -o /dev/null -d "$DATABASE_URL" -f "$script" >&2; then
        rm -f "$script"
        die "migrations failed"
    fi
    rm -f "$script"
}

# ---------------------------------------------------------------------------------------------
# memcached

mc_start() {
    local pid user
    if pid=$(pidfile_alive "$RUN_DIR/memcached.pid"); then
        log "memcached already running (pid $pid)"
        return 0
    fi
    mkdir -p "$LOG_DIR"
    if tcp_open 127.0.0.1 "$MC_PORT"; then
        die "127.0.0.1:$MC_PORT is already in use by something this stack did not start"
    fi
    user=memcache
    id -u "$user" >/dev/null 2>&1 || user=nobody
    log "starting memcached on 127.0.0.1:$MC_PORT"
    # memcached's own -d/-P writes the pid file after dropping to $user, which may not be
    # able to write RUN_DIR: it runs in the background of its own session and we record it.
    setsid "$MEMCACHED_BIN" -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64 -c 1024 -u "$user" \
        </dev/null >>"$LOG_DIR/memcached.log" 2>&1 &
    pid=$!
    record_pid "$RUN_DIR/memcached.pid" "$pid"
    local deadline=$((SECONDS + 10))
    until tcp_open 127.0.0.1 "$MC_PORT"; do
        kill -0 "$pid" 2>/dev/null || { tail -n 5 "$LOG_DIR/memcached.log" >&2; die "memcached exited"; }
        [ $SECONDS -lt "$deadline" ] || die "memcached not listening on $MC_PORT"
        sleep 0.1
    done
}

mc_stop() {
    local pid
    if pid=$(pidfile_alive "$RUN_DIR/memcached.pid"); then
        stop_group memcached "$pid" TERM 10
    fi
    rm -f "$RUN_DIR/memcached.pid" "$RUN_DIR/memcached.pid.start"
}

# ---------------------------------------------------------------------------------------------
# The trading-api pool

ensure_sock_dir() {
    # Outside RUN_DIR: nginx's www-data workers must reach the socket even when RUN_DIR is in
    # a 0700 directory. root:www-data 0750: the workers may enter, nobody else.
    install -d -o root -g "$NGINX_USER" -m 0750 "$SOCK_DIR"
}

pool_fingerprint() {
    local bin_id
    bin_id=$(stat -c '%s %Y %i' "$TRADING_API_BIN" 2>/dev/null || echo missing)
    printf '%s\n' "$TRADING_API_BIN $bin_id" "$DATABASE_URL" "$MEMCACHED_SERVERS" "$JWT_SECRET_KEY" \
        "$WORKERS" "${MAX_REQUESTS:-}" "$CACHE_TTL_SECONDS" "$FCGI_SOCKET" "$LOG_LEVEL" \
        | cksum | cut -d' ' -f1
}

pool_start() {
    local pid fp
    [ -x "$TRADING_API_BIN" ] || die "$TRADING_API_BIN not found or not executable (swift build first)"
    fp=$(pool_fingerprint)
    if pid=$(pidfile_alive "$RUN_DIR/pool.pid"); then
        if [ "$(cat "$RUN_DIR/pool.fingerprint" 2>/dev/null)" = "$fp" ]; then
            log "trading-api pool already running (pid $pid)"
            return 0
        fi
        log "binary or settings changed: restarting the pool"
        pool_stop
    fi
    ensure_sock_dir
    mkdir -p "$LOG_DIR"
    rm -f "$FCGI_SOCKET"   # a stale socket from a crash; the pool creates its own
    log "starting $TRADING_API_BIN (WORKERS=$WORKERS, socket $FCGI_SOCKET)"
    {
        echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) stack.sh: starting $TRADING_API_BIN"
    } >>"$LOG_DIR/pool.log"
    env DATABASE_URL="$DATABASE_URL" MEMCACHED_SERVERS="$MEMCACHED_SERVERS" \
        JWT_SECRET_KEY="$JWT_SECRET_KEY" WORKERS="$WORKERS" CACHE_TTL_SECONDS="$CACHE_TTL_SECONDS" \
        FCGI_SOCKET="$FCGI_SOCKET" FCGI_SOCKET_GROUP="$NGINX_USER" LOG_LEVEL="$LOG_LEVEL" \
        setsid "$TRADING_API_BIN" </dev/null >>"$LOG_DIR/pool.log" 2>&1 &
    pid=$!
    record_pid "$RUN_DIR/pool.pid" "$pid"
    printf '%s\n' "$fp" >"$RUN_DIR/pool.fingerprint"
}

pool_stop() {
    local pid
    if pid=$(pidfile_alive "$RUN_DIR/pool.pid"); then
        stop_group "trading-api pool" "$pid" TERM "${POOL_STOP_TIMEOUT:-20}"
    fi
    rm -f "$RUN_DIR/pool.pid" "$RUN_DIR/pool.pid.start" "$RUN_DIR/pool.fingerprint"
}

# ---------------------------------------------------------------------------------------------
# nginx

render() {  # TEMPLATE OUT: replace @NAME@ placeholders
    local tmp="$2.tmp"
    sed -e "s|@RUN_DIR@|$RUN_DIR|g" \
        -e "s|@HTTP_PORT@|$HTTP_PORT|g" \
        -e "s|@SOCK_DIR@|$SOCK_DIR|g" \
        -e "s|@FCGI_SOCKET@|$FCGI_SOCKET|g" \
        -e "s|@NGINX_USER@|$NGINX_USER|g" \
        -e "s|@RATE_LIMIT_PER_ADDR@|$RATE_LIMIT_PER_ADDR|g" \
        -e "s|@RATE_BURST_PER_ADDR@|$RATE_BURST_PER_ADDR|g" \
        -e "s|@RATE_LIMIT_PER_TOKEN@|$RATE_LIMIT_PER_TOKEN|g" \
        -e "s|@RATE_BURST_PER_TOKEN@|$RATE_BURST_PER_TOKEN|g" \
        "$1" >"$tmp"
    if grep -n '@[A-Z_]*@' "$tmp" >&2; then
        rm -f "$tmp"
        die "unreplaced placeholder in $1"
    fi
    mv -f "$tmp" "$2"
}

nginx_render() {
    mkdir -p "$LOG_DIR"
    ensure_sock_dir
    local f
    for f in nginx.conf ratelimit.conf json-errors.conf; do
        render "$ROOT/nginx/$f" "$RUN_DIR/$f"
    done
    # Static files nginx serves itself, where its www-data workers can read them.
    install -d -o root -g "$NGINX_USER" -m 0750 "$SOCK_DIR/static"
    install -o root -g "$NGINX_USER" -m 0640 "$ROOT/docs/openapi.json" "$SOCK_DIR/static/openapi.json"
    nginx_cmd -t -q || die "nginx configuration test failed ($RUN_DIR/nginx.conf)"
}

nginx_cmd() {
    "$NGINX_BIN" -e "$LOG_DIR/nginx-error.log" -p "$RUN_DIR/" -c "$RUN_DIR/nginx.conf" "$@"
}

nginx_pid() {  # the master of *this* config, else fail
    local pid cmd
    [ -f "$RUN_DIR/nginx.pid" ] || return 1
    pid=$(head -n1 "$RUN_DIR/nginx.pid")
    is_uint "$pid" || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    case "$cmd" in
        "nginx: master process"*"$RUN_DIR/nginx.conf"*) printf '%s\n' "$pid" ;;
        *) return 1 ;;
    esac
}

nginx_start() {
    local pid
    nginx_render
    if pid=$(nginx_pid); then
        log "nginx already running (pid $pid): reloading its configuration"
        nginx_cmd -s reload
        return 0
    fi
    if tcp_open 127.0.0.1 "$HTTP_PORT"; then
        die "127.0.0.1:$HTTP_PORT is already in use by something this stack did not start"
    fi
    log "starting nginx on 127.0.0.1:$HTTP_PORT"
    nginx_cmd || { tail -n 20 "$LOG_DIR/nginx-error.log" >&2; die "nginx did not start"; }
}

nginx_stop() {
    local pid
    if pid=$(nginx_pid); then
        stop_group nginx "$pid" QUIT 10
    fi
    rm -f "$RUN_DIR/nginx.pid"
}

# ---------------------------------------------------------------------------------------------
# Health and the environment file

health_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE_URL/api/v1/health" 2>/dev/null || true
}

wait_healthy() {
    local timeout=${STACK_UP_TIMEOUT:-60} code="" pid
    local deadline=$((SECONDS + timeout))
    log "waiting for $BASE_URL/api/v1/health (up to ${timeout}s)"
    while :; do
        code=$(health_code)
        [ "$code" = 200 ] && { log "healthy"; return 0; }
        if ! pid=$(pidfile_alive "$RUN_DIR/pool.pid"); then
            log "the trading-api pool exited; last lines of $LOG_DIR/pool.log:"
            tail -n 40 "$LOG_DIR/pool.log" >&2 || true
            die "stack is not healthy"
        fi
        if [ $SECONDS -ge "$deadline" ]; then
            log "health check still answers '$code' after ${timeout}s; last lines of $LOG_DIR/pool.log:"
            tail -n 40 "$LOG_DIR/pool.log" >&2 || true
            log "socket: $(ls -l "$FCGI_SOCKET" 2>&1)"
            log "last lines of $LOG_DIR/nginx-error.log:"
            tail -n 10 "$LOG_DIR/nginx-error.log" >&2 || true
            die "stack is not healthy"
        fi
        sleep 0.25
    done
}

env_line() {  # KEY VALUE, shell-quoted only when needed
    if [[ $2 =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
        printf '%s=%s\n' "$1" "$2"
    else
        printf '%s=%q\n' "$1" "$2"
    fi
}

write_env() {
    local k tmp="$ENV_FILE.tmp"
    (
        umask 077
        for k in BASE_URL DATABASE_URL JWT_SECRET_KEY MEMCACHED_SERVERS CACHE_TTL_SECONDS \
                 HTTP_PORT PG_PORT MC_PORT RUN_DIR RATE_LIMIT_PER_TOKEN RATE_BURST_PER_TOKEN \
                 RATE_LIMIT_PER_ADDR RATE_BURST_PER_ADDR WORKERS; do
            env_line "$k" "${!k}"
        done >"$tmp"
    )
    mv -f "$tmp" "$ENV_FILE"
    log "wrote $ENV_FILE"
}

# ---------------------------------------------------------------------------------------------
# Commands

any_running() {
    pidfile_alive "$RUN_DIR/pool.pid" >/dev/null && return 0
    pidfile_alive "$RUN_DIR/memcached.pid" >/dev/null && return 0
    nginx_pid >/dev/null && return 0
    pg_running && return 0
    return 1
}

check_not_reconfigured() {
    # A running stack is restarted in place, but not moved to other ports or services.
    [ -f "$CONF_FILE" ] || return 0
    local k old changed=""
    for k in HTTP_PORT PG_PORT MC_PORT PG_MANAGED MC_MANAGED; do
        old=$(conf_get "$k")
        [ -z "$old" ] || [ "$old" = "${!k}" ] || changed="$changed $k($old->${!k})"
    done
    [ -z "$changed" ] && return 0
    (
        load_conf
        any_running
    ) || return 0
    die "the stack in $RUN_DIR is running with other settings:$changed; run 'down' first"
}

cmd_up() {
    config_from_env
    check_not_reconfigured
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    chmod 0700 "$RUN_DIR"   # pg_prepare_dirs opens it to the postgres group when needed

    if [ -n "${JWT_SECRET_KEY:-}" ]; then
        [ "${#JWT_SECRET_KEY}" -ge 32 ] || die "JWT_SECRET_KEY must be at least 32 bytes"
    else
        JWT_SECRET_KEY=$(secret_file "$RUN_DIR/jwt_secret" 32)
    fi

    # shellcheck disable=SC2034  # recorded by write_conf (indirect)
    MANAGED_DATABASE_URL=""
    # shellcheck disable=SC2034
    MANAGED_MEMCACHED_SERVERS=""
    if [ "$PG_MANAGED" = 1 ]; then
        pg_start
        pg_bootstrap
        # shellcheck disable=SC2034
        MANAGED_DATABASE_URL=$DATABASE_URL
    else
        log "using DATABASE_URL from the environment"
    fi
    if [ "$MC_MANAGED" = 1 ]; then
        MEMCACHED_SERVERS="127.0.0.1:$MC_PORT"
        # shellcheck disable=SC2034
        MANAGED_MEMCACHED_SERVERS=$MEMCACHED_SERVERS
    else
        log "using MEMCACHED_SERVERS=$MEMCACHED_SERVERS from the environment"
    fi
    write_conf

    if [ "$MC_MANAGED" = 1 ]; then mc_start; fi
    wait_for_database
    migrate

    if [ "${DEMO_DATA:-1}" != 0 ]; then
        # Demo timestamps are relative to the load: refreshed when older than DEMO_MAX_AGE.
        DATABASE_URL=$DATABASE_URL MAX_AGE=${DEMO_MAX_AGE:-3600} "$ROOT/scripts/generate-data.sh" \
            "${DEMO_USERS:-100}" "${DEMO_ROWS_PER_USER:-200}"
    fi

    pool_start
    nginx_start
    wait_healthy
    write_env
    log "up: $BASE_URL (state in $RUN_DIR)"
}

cmd_down() {
    if [ ! -f "$CONF_FILE" ]; then
        log "nothing recorded in $RUN_DIR"
        return 0
    fi
    load_conf
    nginx_stop
    pool_stop
    if [ "$MC_MANAGED" = 1 ]; then mc_stop; fi
    if [ "$PG_MANAGED" = 1 ]; then pg_stop; fi
    rm -f "$ENV_FILE"
    if [ -d "$SOCK_DIR" ]; then rm -rf "$SOCK_DIR"; fi
    if [ "$PG_MANAGED" = 1 ] && [ -d "$PG_SOCK_DIR" ]; then rmdir "$PG_SOCK_DIR" 2>/dev/null || true; fi
    log "down ($RUN_DIR; data kept)"
}

cmd_status() {
    load_conf
    local pid rc=0 code
    printf 'stack    %s\n' "$RUN_DIR"
    if [ "$PG_MANAGED" = 1 ]; then
        if pg_running; then
            printf 'postgres running  127.0.0.1:%s  pid %s\n' "$PG_PORT" "$(head -n1 "$PGDATA/postmaster.pid")"
        else
            printf 'postgres stopped\n'; rc=3
        fi
    else
        printf 'postgres external (DATABASE_URL)\n'
    fi
    if [ "$MC_MANAGED" = 1 ]; then
        if pid=$(pidfile_alive "$RUN_DIR/memcached.pid"); then
            printf 'memcached running 127.0.0.1:%s  pid %s\n' "$MC_PORT" "$pid"
        else
            printf 'memcached stopped\n'; rc=3
        fi
    else
        printf 'memcached external (MEMCACHED_SERVERS)\n'
    fi
    if pid=$(pidfile_alive "$RUN_DIR/pool.pid"); then
        printf 'pool     running  %s  pid %s\n' "$FCGI_SOCKET" "$pid"
    else
        printf 'pool     stopped\n'; rc=3
    fi
    if pid=$(nginx_pid); then
        printf 'nginx    running  127.0.0.1:%s  pid %s\n' "$HTTP_PORT" "$pid"
    else
        printf 'nginx    stopped\n'; rc=3
    fi
    code=$(health_code)
    printf 'health   %s  %s/api/v1/health\n' "${code:-000}" "$BASE_URL"
    [ "$code" = 200 ] || rc=3
    return $rc
}

cmd_pg() {
    load_conf
    [ "$PG_MANAGED" = 1 ] || die "this stack uses an external DATABASE_URL"
    case "$1" in
        stop)  pg_stop ;;
        start) pg_start ;;
    esac
}

cmd_mc() {
    load_conf
    [ "$MC_MANAGED" = 1 ] || die "this stack uses external MEMCACHED_SERVERS"
    case "$1" in
        stop)  mc_stop ;;
        start) mc_start ;;
    esac
}

cmd_reload_nginx() {
    # Rate limits may be changed for a running stack: the environment wins, else recorded.
    local v envval
    local -A from_env=()
    for v in RATE_LIMIT_PER_ADDR RATE_BURST_PER_ADDR RATE_LIMIT_PER_TOKEN RATE_BURST_PER_TOKEN; do
        from_env[$v]=${!v:-}
    done
    load_conf
    for v in RATE_LIMIT_PER_ADDR RATE_BURST_PER_ADDR RATE_LIMIT_PER_TOKEN RATE_BURST_PER_TOKEN; do
        envval=${from_env[$v]}
        [ -n "$envval" ] || continue
        case "$v" in
            RATE_LIMIT_*) envval=$(normalize_rate "$v" "$envval") ;;
            *) is_uint "$envval" || die "$v must be an integer (got '$envval')" ;;
        esac
        printf -v "$v" '%s' "$envval"
    done
    RATE_LIMIT_PER_ADDR=$(normalize_rate RATE_LIMIT_PER_ADDR "$RATE_LIMIT_PER_ADDR")
    RATE_LIMIT_PER_TOKEN=$(normalize_rate RATE_LIMIT_PER_TOKEN "$RATE_LIMIT_PER_TOKEN")
    local pid
    pid=$(nginx_pid) || die "nginx of $RUN_DIR is not running"
    nginx_render
    nginx_cmd -s reload
    write_conf
    if [ -f "$ENV_FILE" ]; then
        local k
        for k in RATE_LIMIT_PER_ADDR RATE_BURST_PER_ADDR RATE_LIMIT_PER_TOKEN RATE_BURST_PER_TOKEN; do
            sed -i "s|^$k=.*|$(env_line "$k" "${!k}")|" "$ENV_FILE"
        done
    fi
    log "nginx (pid $pid) reloaded: per address $RATE_LIMIT_PER_ADDR burst $RATE_BURST_PER_ADDR," \
        "per token $RATE_LIMIT_PER_TOKEN burst $RATE_BURST_PER_TOKEN"
}

cmd_pool_pid() {
    load_conf
    pidfile_alive "$RUN_DIR/pool.pid" || die "the trading-api pool of $RUN_DIR is not running"
}

cmd_logs() {
    local lines=${LINES_SHOWN:-50} name f
    local -a files=()
    case "${1:-all}" in
        all)       files=(pool.log nginx-error.log nginx-access.log postgres.log memcached.log) ;;
        pool)      files=(pool.log) ;;
        nginx)     files=(nginx-error.log nginx-access.log) ;;
        access)    files=(nginx-access.log) ;;
        postgres)  files=(postgres.log) ;;
        memcached) files=(memcached.log) ;;
        -f|follow) exec tail -F "$LOG_DIR/pool.log" "$LOG_DIR/nginx-error.log" "$LOG_DIR/nginx-access.log" ;;
        *) die "logs [all|pool|nginx|access|postgres|memcached|-f]" ;;
    esac
    for name in "${files[@]}"; do
        f="$LOG_DIR/$name"
        [ -f "$f" ] || continue
        printf '==> %s <==\n' "$f"
        tail -n "$lines" "$f"
    done
}

case "${1:-}" in
    ""|-h|--help|help) usage ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (nginx master, postgres via runuser, /run/trading-api-*)"

case "${1:-}" in
    up)           cmd_up ;;
    down)         cmd_down ;;
    status)       cmd_status ;;
    pg-stop)      cmd_pg stop ;;
    pg-start)     cmd_pg start ;;
    mc-stop)      cmd_mc stop ;;
    mc-start)     cmd_mc start ;;
    reload-nginx) cmd_reload_nginx ;;
    pool-pid)     cmd_pool_pid ;;
    logs)         shift; cmd_logs "$@" ;;
    *)            usage ;;
esac

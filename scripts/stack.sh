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
#     pids          "NAME PID" of each running process of the stack, checked like `status`:
#                   postgres, memcached, pool (the supervisor), worker (each), nginx (the master)
#     logs [all|pool|nginx|access|postgres|memcached|-f]   tails of RUN_DIR/logs/*
#
# Environment (read by `up`; the other commands use what `up` recorded in RUN_DIR/stack.conf):
#   RUN_DIR (.run, relative to the repository)   HTTP_PORT (8080)  PG_PORT (54329)  MC_PORT (11219)
#   MC_LISTEN (unix)   unix: memcached listens only on /run/trading-api-mc-MC_PORT/memcached.sock
#                      and the pool uses that socket; tcp: 127.0.0.1:MC_PORT
#   DATABASE_URL       use this database instead of a cluster in RUN_DIR/pgdata
#   MEMCACHED_SERVERS  use these instead of starting memcached
#   JWT_SECRET_KEY     else generated once into RUN_DIR/jwt_secret
#   TRADING_API_BIN (.build/release/trading-api)  WORKERS (one per CPU, at least 2: bench/README.md)  MAX_REQUESTS
#   CACHE_TTL_SECONDS (5)  LOG_LEVEL (info)
#   PG_CONNECT_TIMEOUT_SECONDS  PG_STATEMENT_TIMEOUT_MS  MEMCACHED_TIMEOUT_MS  (the pool's defaults: README)
#   RATE_LIMIT_PER_ADDR (50) RATE_BURST_PER_ADDR (100) RATE_LIMIT_PER_TOKEN (20) RATE_BURST_PER_TOKEN (40)
#     (rates in requests/second, "20" or nginx's "20r/s" / "600r/m"; stack.env has "20r/s")
#   RATE_LIMITS_LIFTED=1  every rate limit and burst 1000000 instead (up and reload-nginx)
#   DEMO_DATA (1; 0 = none)  DEMO_USERS (100)  DEMO_ROWS_PER_USER (200)
#     DEMO_MAX_AGE (3600 s: older demo data is regenerated, its times are relative to the load)
#   DEMO_WRITER (0; `make run`: 1)  1 = run scripts/demo_writer.py in the background (moves the
#     demo user's prices through the API; log RUN_DIR/logs/demo-writer.log; stopped by `down`)
#   CORS_ORIGINS  origins whose pages may call the API (nginx/cors.conf), space-separated
#   STACK_UP_TIMEOUT (60 s: how long `up` waits for the health check)
#   PG_BINDIR (/usr/lib/postgresql/15/bin)
# The pieces, one file per mechanism, are in scripts/lib/ (bench/run.sh uses them too):
#   proc.sh (pid files with start times, stopping), config.sh (settings, stack.conf/stack.env,
#   templates), postgres.sh, memcached.sh, pool.sh, nginx.sh, demo.sh (the demo writer).
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

for lib in proc config postgres memcached pool nginx demo; do
    # shellcheck disable=SC1090
    . "$ROOT/scripts/lib/$lib.sh"
done
stack_dirs

# ---------------------------------------------------------------------------------------------
# Health

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
        if ! pid=$(pool_pid); then
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

# ---------------------------------------------------------------------------------------------
# Commands

any_running() {
    pool_pid >/dev/null || mc_pid >/dev/null || nginx_pid "$RUN_DIR" >/dev/null || pg_running
}

check_not_reconfigured() {
    # A running stack is restarted in place, but not moved to other ports or services.
    [ -f "$CONF_FILE" ] || return 0
    local k old changed=""
    for k in HTTP_PORT PG_PORT MC_PORT MC_LISTEN PG_MANAGED MC_MANAGED; do
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
        MEMCACHED_SERVERS=$(mc_address)
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
    nginx_render
    nginx_up "$RUN_DIR" "$HTTP_PORT"
    wait_healthy
    write_env
    if [ "${DEMO_WRITER:-0}" = 1 ]; then demo_writer_start; else demo_writer_stop; fi
    log "up: $BASE_URL (state in $RUN_DIR)"
}

cmd_down() {
    if [ ! -f "$CONF_FILE" ]; then
        log "nothing recorded in $RUN_DIR"
        return 0
    fi
    load_conf
    demo_writer_stop
    nginx_down "$RUN_DIR"
    pool_stop
    if [ "$MC_MANAGED" = 1 ]; then mc_stop; fi
    if [ "$PG_MANAGED" = 1 ]; then pg_stop; fi
    rm -f "$ENV_FILE"
    if [ -d "$SOCK_DIR" ]; then rm -rf "$SOCK_DIR"; fi
    if [ -d "$PUBLISH_SOCKET_DIR" ]; then rm -rf "$PUBLISH_SOCKET_DIR"; fi
    if [ "$PG_MANAGED" = 1 ] && [ -d "$PG_SOCK_DIR" ]; then rmdir "$PG_SOCK_DIR" 2>/dev/null || true; fi
    if [ "$MC_MANAGED" = 1 ] && [ -d "$MC_SOCK_DIR" ]; then rm -rf "$MC_SOCK_DIR"; fi
    log "down ($RUN_DIR; data kept)"
}

cmd_status() {
    load_conf
    local pid rc=0 code
    printf 'stack    %s\n' "$RUN_DIR"
    if [ "$PG_MANAGED" = 1 ]; then
        if pid=$(pg_pid); then
            printf 'postgres running  127.0.0.1:%s  pid %s\n' "$PG_PORT" "$pid"
        else
            printf 'postgres stopped\n'; rc=3
        fi
    else
        printf 'postgres external (DATABASE_URL)\n'
    fi
    if [ "$MC_MANAGED" = 1 ]; then
        if pid=$(mc_pid); then
            printf 'memcached running %s  pid %s\n' "$(mc_address)" "$pid"
        else
            printf 'memcached stopped\n'; rc=3
        fi
    else
        printf 'memcached external (MEMCACHED_SERVERS)\n'
    fi
    if pid=$(pool_pid); then
        printf 'pool     running  %s  pid %s\n' "$FCGI_SOCKET" "$pid"
    else
        printf 'pool     stopped\n'; rc=3
    fi
    if pid=$(nginx_pid "$RUN_DIR"); then
        printf 'nginx    running  127.0.0.1:%s  pid %s\n' "$HTTP_PORT" "$pid"
    else
        printf 'nginx    stopped\n'; rc=3
    fi
    if pid=$(demo_writer_pid); then printf 'demo     writer running  pid %s\n' "$pid"; fi
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
    local k pid
    for k in "${RATE_KEYS[@]}"; do RATE_ENV[$k]=${!k:-}; done
    load_conf
    rate_limits
    pid=$(nginx_pid "$RUN_DIR") || die "nginx of $RUN_DIR is not running"
    nginx_render
    nginx_reload "$RUN_DIR"
    write_conf
    update_env "${RATE_KEYS[@]}"
    log "nginx (pid $pid) reloaded: per address $RATE_LIMIT_PER_ADDR burst $RATE_BURST_PER_ADDR," \
        "per token $RATE_LIMIT_PER_TOKEN burst $RATE_BURST_PER_TOKEN"
}

cmd_pool_pid() {
    load_conf
    pool_pid || die "the trading-api pool of $RUN_DIR is not running"
}

cmd_pids() {  # NAME PID lines of what runs (bench/run.sh samples them; the fault tests use them)
    load_conf
    local pid w
    if [ "$PG_MANAGED" = 1 ] && pid=$(pg_pid); then echo "postgres $pid"; fi
    if [ "$MC_MANAGED" = 1 ] && pid=$(mc_pid); then echo "memcached $pid"; fi
    if pid=$(pool_pid); then
        echo "pool $pid"
        for w in $(children_of "$pid"); do echo "worker $w"; done
    fi
    if pid=$(nginx_pid "$RUN_DIR"); then echo "nginx $pid"; fi
    return 0
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
    pids)         cmd_pids ;;
    logs)         shift; cmd_logs "$@" ;;
    *)            usage ;;
esac

#!/usr/bin/env bash
# A trading-api cluster on one machine, each host a network namespace (docs/SCALING.md): nginx
# on `web`, a pool on each worker host `w1`, `w2` (FastCGI over TCP, only from web's address),
# Postgres on `db` and its streaming replica on `db2` (the pools read views from it:
# DATABASE_READ_URL), memcached on `mc1` and `mc2` (the pools hash keys over both), all on one
# bridge that the root namespace (the clients: the tests, wrk) reaches at CLUSTER_GATEWAY. Each host runs what scripts/stack.sh runs, from the
# same scripts/lib/ pieces, with its own state folder CLUSTER_DIR/HOST.
#
#   scripts/cluster.sh COMMAND
#     up                 namespaces, bridge, then db, db2, mc1, mc2, w1, w2, web; writes CLUSTER_DIR/cluster.env
#     down               stops every process it started (by recorded PID), removes the namespaces
#     cut HOST | restore HOST       pull / put back a host's cable (its link down / up)
#     pool-stop HOST | pool-start HOST   stop / start the pool of a worker host
#     mc-stop HOST | mc-start HOST       stop / start the memcached of a memcached host
#     replay-pause | replay-resume       pause / resume the replica's WAL replay (it lags)
#     replica-stop | replica-start       stop / start the replica's Postgres
#     pids HOST          "NAME PID" of what runs on that host
#
# Environment: CLUSTER_DIR (.cluster-run), WORKERS (per worker host, 2), CACHE_TTL_SECONDS (300),
# LOG_LEVEL (info). Needs root (namespaces, nginx master, postgres via runuser).
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG="cluster"
log()  { printf '[%s %s] %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2; }
die()  { log "error: $*"; exit 1; }

for lib in proc config postgres memcached pool nginx netns; do
    # shellcheck disable=SC1090
    . "$ROOT/scripts/lib/$lib.sh"
done

CLUSTER_DIR=$(abs_path "${CLUSTER_DIR:-.cluster-run}")
CLUSTER_NET=10.77.0.0/24
CLUSTER_GATEWAY=10.77.0.1
declare -A HOST_ADDRS=([web]=10.77.0.10 [w1]=10.77.0.21 [w2]=10.77.0.22 [db]=10.77.0.30 [db2]=10.77.0.31
                      [mc1]=10.77.0.41 [mc2]=10.77.0.42)
HOSTS=(db db2 mc1 mc2 w1 w2 web)    # in start order
WORKER_HOSTS=(w1 w2)
MEMCACHED_HOSTS=(mc1 mc2)
FCGI_PORT=9000
CLUSTER_PG_PORT=5432
CLUSTER_MC_PORT=11211
CLUSTER_HTTP_PORT=80
CLUSTER_PUBLISH_PORT=8091   # nchan's publisher on web, for the worker hosts' supervisors
ENV_OUT="$CLUSTER_DIR/cluster.env"

# ---------------------------------------------------------------------------------------------
# One host's settings: what config.sh would derive, for that host's address and folder. Ports
# name the /run folders (derive_paths), so each host gets its own by a port of its own.

host_settings() {  # HOST
    local h=$1
    RUN_DIR="$CLUSTER_DIR/$h"
    LOG_DIR="$RUN_DIR/logs"
    PGDATA="$RUN_DIR/pgdata"
    CONF_FILE="$RUN_DIR/stack.conf"
    HOST_ADDR=${HOST_ADDRS[$h]}
    CLIENT_NET=$CLUSTER_NET
    PG_PORT=$CLUSTER_PG_PORT
    MC_PORT=$CLUSTER_MC_PORT
    MC_LISTEN=tcp
    case "$h" in
        web) HTTP_PORT=$CLUSTER_HTTP_PORT ;;
        *)   HTTP_PORT=$((29000 + ${HOST_ADDR##*.})) ;;   # only names this host's /run folders
    esac
    derive_paths
    PG_SOCK_DIR="/run/trading-api-pg-$HTTP_PORT"   # one per host: both database hosts use port 5432
    mkdir -p "$LOG_DIR"
}

cluster_env() {  # the values every host shares, from CLUSTER_DIR
    JWT_SECRET_KEY=$(secret_file "$CLUSTER_DIR/jwt_secret" 32)
    DATABASE_URL=$(file_value "$ENV_OUT" DATABASE_URL)
    DATABASE_READ_URL=${DATABASE_URL/@${HOST_ADDRS[db]}:/@${HOST_ADDRS[db2]}:}   # same role and password
    local h
    MEMCACHED_SERVERS=""
    for h in "${MEMCACHED_HOSTS[@]}"; do MEMCACHED_SERVERS+="${MEMCACHED_SERVERS:+,}${HOST_ADDRS[$h]}:$CLUSTER_MC_PORT"; done
}

# ---------------------------------------------------------------------------------------------
# The roles, each run inside its host's namespace (`cluster.sh role HOST`)

role_db() {
    PG_REPLICATION=1
    pg_start
    pg_bootstrap
    pg_replication_role
    wait_for_database
    migrate
    { printf 'DATABASE_URL=%s\n' "$DATABASE_URL"; } >"$ENV_OUT.db"
}

role_replica() {
    pg_start_replica "${HOST_ADDRS[db]}" "$CLUSTER_PG_PORT" "$CLUSTER_DIR/db/pg_replication_password"
}

replica_query() {  # SQL: as postgres on the replica (its socket is reachable from any namespace)
    host_settings db2
    pg_query postgres "$1"
}

role_mc() { mc_start; }

role_pool() {
    cluster_env
    WORKERS=${WORKERS:-2}
    CACHE_TTL_SECONDS=${CACHE_TTL_SECONDS:-300}
    LOG_LEVEL=${LOG_LEVEL:-info}
    TRADING_API_BIN=$(abs_path "${TRADING_API_BIN:-.build/release/trading-api}")
    FCGI_SOCKET="$HOST_ADDR:$FCGI_PORT"
    FCGI_WEB_SERVER_ADDRS=${HOST_ADDRS[web]}
    NCHAN_PUBLISH_SOCKET="${HOST_ADDRS[web]}:$CLUSTER_PUBLISH_PORT"   # nchan's publisher on the web host
    export FCGI_WEB_SERVER_ADDRS
    pool_start
    local deadline=$((SECONDS + 20))
    until tcp_open "$HOST_ADDR" "$FCGI_PORT"; do
        pool_pid >/dev/null || { tail -n 20 "$LOG_DIR/pool.log" >&2; die "the pool of $RUN_DIR exited"; }
        [ $SECONDS -lt $deadline ] || die "the pool of $RUN_DIR does not listen on $FCGI_SOCKET"
        sleep 0.1
    done
}

role_web() {
    RATE_LIMITS_LIFTED=1
    rate_limits
    OPS_ALLOW=$CLUSTER_NET
    CORS_ORIGINS=""
    local h
    NCHAN_PUBLISH_LISTEN="$HOST_ADDR:$CLUSTER_PUBLISH_PORT"
    NCHAN_PUBLISH_ALLOW=""
    for h in "${WORKER_HOSTS[@]}"; do NCHAN_PUBLISH_ALLOW+="${HOST_ADDRS[$h]} "; done
    FCGI_UPSTREAMS=""
    for h in "${WORKER_HOSTS[@]}"; do FCGI_UPSTREAMS+="${HOST_ADDRS[$h]}:$FCGI_PORT "; done
    pool_user_ensure
    nginx_render
    nginx_up "$RUN_DIR" "$HTTP_PORT"
}

run_role() {  # HOST: the role of that host, in this (its) namespace
    local h=$1
    host_settings "$h"
    case "$h" in
        db)   role_db ;;
        db2)  role_replica ;;
        mc1|mc2) role_mc ;;
        w1|w2) role_pool ;;
        web)  role_web ;;
        *)    die "no such host: $h" ;;
    esac
}

stop_host() {  # HOST: what its role started (PIDs work from any namespace)
    local h=$1
    host_settings "$h"
    case "$h" in
        db|db2) pg_stop; rmdir "$PG_SOCK_DIR" 2>/dev/null || true ;;
        mc1|mc2) mc_stop ;;
        w1|w2) pool_stop; rm -rf "$SOCK_DIR" ;;
        web)  nginx_down "$RUN_DIR"; rm -rf "$SOCK_DIR" "$PUBLISH_SOCKET_DIR" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Commands

cmd_up() {
    mkdir -p "$CLUSTER_DIR"
    chmod 0755 "$CLUSTER_DIR"
    secret_file "$CLUSTER_DIR/jwt_secret" 32 >/dev/null
    netns_bridge_up "$CLUSTER_GATEWAY/24"
    local h
    for h in "${HOSTS[@]}"; do netns_host_up "$h" "${HOST_ADDRS[$h]}/24"; done
    for h in "${HOSTS[@]}"; do
        log "host $h (${HOST_ADDRS[$h]})"
        netns_exec "$h" "$ROOT/scripts/cluster.sh" role "$h"
        if [ "$h" = db ]; then mv -f "$ENV_OUT.db" "$ENV_OUT"; fi
    done
    cluster_env
    {
        printf 'BASE_URL=http://%s:%s\n' "${HOST_ADDRS[web]}" "$CLUSTER_HTTP_PORT"
        printf 'DATABASE_URL=%s\n' "$DATABASE_URL"
        printf 'DATABASE_READ_URL=%s\n' "$DATABASE_READ_URL"
        printf 'MEMCACHED_SERVERS=%s\n' "$MEMCACHED_SERVERS"
        printf 'JWT_SECRET_KEY=%s\n' "$JWT_SECRET_KEY"
        printf 'CLUSTER_DIR=%s\n' "$CLUSTER_DIR"
        printf 'WORKER_HOSTS="%s"\n' "${WORKER_HOSTS[*]}"
        printf 'MEMCACHED_HOSTS="%s"\n' "${MEMCACHED_HOSTS[*]}"
        for h in "${HOSTS[@]}"; do printf 'ADDR_%s=%s\n' "$h" "${HOST_ADDRS[$h]}"; done
    } >"$ENV_OUT.tmp"
    mv -f "$ENV_OUT.tmp" "$ENV_OUT"
    log "up: http://${HOST_ADDRS[web]}:$CLUSTER_HTTP_PORT (state in $CLUSTER_DIR, settings in $ENV_OUT)"
}

cmd_down() {
    local i
    for ((i = ${#HOSTS[@]} - 1; i >= 0; i--)); do
        [ -d "$CLUSTER_DIR/${HOSTS[i]}" ] && stop_host "${HOSTS[i]}"
    done
    netns_down "${HOSTS[@]}"
    rm -f "$ENV_OUT"
    log "down (data kept in $CLUSTER_DIR)"
}

one_of() {  # HOST KIND HOSTS...: HOST must be one of HOSTS
    case " ${*:3} " in *" $1 "*) ;; *) die "$1 is not a $2 (${*:3})" ;; esac
}

cmd_pids() {
    local h=$1 pid w
    host_settings "$h"
    case "$h" in
        db|db2) if pid=$(pg_pid); then echo "postgres $pid"; fi ;;
        mc1|mc2) if pid=$(mc_pid); then echo "memcached $pid"; fi ;;
        web) if pid=$(nginx_pid "$RUN_DIR"); then echo "nginx $pid"; fi ;;
        *)   if pid=$(pool_pid); then echo "pool $pid"; for w in $(children_of "$pid"); do echo "worker $w"; done; fi ;;
    esac
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, nginx master, postgres via runuser)"
case "${1:-}" in
    up)          cmd_up ;;
    down)        cmd_down ;;
    role)        run_role "${2:?host}" ;;
    cut)         netns_link "${2:?host}" down; log "cut ${2}'s link" ;;
    restore)     netns_link "${2:?host}" up; log "restored ${2}'s link" ;;
    pool-stop)   one_of "${2:?host}" "worker host" "${WORKER_HOSTS[@]}"; stop_host "$2" ;;
    pool-start)  one_of "${2:?host}" "worker host" "${WORKER_HOSTS[@]}"; netns_exec "$2" "$ROOT/scripts/cluster.sh" role "$2" ;;
    mc-stop)     one_of "${2:?host}" "memcached host" "${MEMCACHED_HOSTS[@]}"; stop_host "$2" ;;
    mc-start)    one_of "${2:?host}" "memcached host" "${MEMCACHED_HOSTS[@]}"; netns_exec "$2" "$ROOT/scripts/cluster.sh" role "$2" ;;
    pids)        cmd_pids "${2:?host}" ;;
    replay-pause)  replica_query "SELECT pg_wal_replay_pause()" >/dev/null; log "replica replay paused" ;;
    replay-resume) replica_query "SELECT pg_wal_replay_resume()" >/dev/null; log "replica replay resumed" ;;
    replica-stop)  stop_host db2 ;;
    replica-start) netns_exec db2 "$ROOT/scripts/cluster.sh" role db2 ;;
    *)           sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac

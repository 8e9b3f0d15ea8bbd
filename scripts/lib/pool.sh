# shellcheck shell=bash
# The trading-api pool, sourced by scripts/stack.sh: the supervisor started in its own session
# with exactly the settings of POOL_SETTINGS, recorded in RUN_DIR/pool.pid (PID plus start time,
# proc.sh), and restarted by `up` only when its binary or one of those settings changed.
# Least privilege: the pool runs as POOL_USER (a system user of its own, no login, no home) with
# no capabilities, from a copy of the binary in POOL_BIN_DIR (root:POOL_USER 0750); it creates its
# socket in FCGI_SOCKET_DIR (POOL_USER:www-data 2750) and reaches memcached through a socket its
# group may use (memcached.sh). Nothing in the request path runs as root.
# Needs: log, die; RUN_DIR, LOG_DIR, TRADING_API_BIN and the settings (config.sh); proc.sh.

# Every variable the binary reads (Sources/TradingAPI/ServiceConfiguration.swift). The pool gets
# these and no others of them (an empty one is unset: the binary's default applies), and the
# restart fingerprint covers each one.
POOL_SETTINGS=(DATABASE_URL JWT_SECRET_KEY JWT_KEYS JWT_KEYS_FILE JWT_AUDIENCE JWT_ISSUER LOG_LEVEL MEMCACHED_SERVERS WORKERS FCGI_LOOPS MAX_REQUESTS FCGI_WEB_SERVER_ADDRS
               CACHE_TTL_SECONDS FCGI_SOCKET FCGI_SOCKET_GROUP PG_CONNECT_TIMEOUT_SECONDS
               PG_STATEMENT_TIMEOUT_MS MEMCACHED_TIMEOUT_MS SLOW_REQUEST_MS NCHAN_PUBLISH_SOCKET
               DATABASE_READ_URL REPLICA_MAX_LAG_MS)

pool_pid() { pidfile_alive "$RUN_DIR/pool.pid"; }

pool_user_ensure() {  # the pool's system user and group, made once
    id -u "$POOL_USER" >/dev/null 2>&1 && return 0
    log "creating system user $POOL_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$POOL_USER"
}

pool_fingerprint() {
    local bin_id k
    bin_id=$(stat -c '%s %Y %i' "$TRADING_API_BIN" 2>/dev/null || echo missing)
    {
        printf '%s\n' "$TRADING_API_BIN $bin_id"
        for k in "${POOL_SETTINGS[@]}"; do printf '%s=%s\n' "$k" "${!k:-}"; done
    } | cksum | cut -d' ' -f1
}

pool_start() {
    local pid fp k
    local -a env_args=()   # for env(1): -u of the empty settings first, then NAME=value
    [ -x "$TRADING_API_BIN" ] || die "$TRADING_API_BIN not found or not executable (swift build first)"
    fp=$(pool_fingerprint)
    if pid=$(pool_pid); then
        if [ "$(cat "$RUN_DIR/pool.fingerprint" 2>/dev/null)" = "$fp" ]; then
            log "trading-api pool already running (pid $pid)"
            return 0
        fi
        log "binary or settings changed: restarting the pool"
        pool_stop
    fi
    ensure_sock_dir
    pool_user_ensure
    mkdir -p "$LOG_DIR"
    rm -rf "$FCGI_SOCKET_DIR"   # and a stale socket from a crash with it; the pool creates its own
    install -d -o "$POOL_USER" -g "$NGINX_USER" -m 2750 "$FCGI_SOCKET_DIR"
    install -d -o root -g "$POOL_USER" -m 0750 "$POOL_BIN_DIR"
    install -o root -g "$POOL_USER" -m 0750 "$TRADING_API_BIN" "$POOL_BIN_DIR/trading-api"
    if [ -n "${JWT_KEYS_FILE:-}" ]; then   # read by every worker as it starts
        [ -f "$JWT_KEYS_FILE" ] || die "JWT_KEYS_FILE=$JWT_KEYS_FILE is not a file"
        chgrp "$POOL_USER" "$JWT_KEYS_FILE" && chmod g+r,o-rwx "$JWT_KEYS_FILE"
    fi
    log "starting $TRADING_API_BIN (WORKERS=$WORKERS, socket $FCGI_SOCKET)"
    echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) stack.sh: starting $TRADING_API_BIN" >>"$LOG_DIR/pool.log"
    for k in "${POOL_SETTINGS[@]}"; do
        if [ -n "${!k:-}" ]; then env_args+=("$k=${!k}"); else env_args=(-u "$k" "${env_args[@]}"); fi
    done
    env "${env_args[@]}" setsid setpriv --reuid="$POOL_USER" --regid="$POOL_USER" --init-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs \
        "$POOL_BIN_DIR/trading-api" </dev/null >>"$LOG_DIR/pool.log" 2>&1 &
    pid=$!
    record_pid "$RUN_DIR/pool.pid" "$pid"
    printf '%s\n' "$fp" >"$RUN_DIR/pool.fingerprint"
}

pool_stop() {
    local pid
    if pid=$(pool_pid); then
        stop_group "trading-api pool" "$pid" TERM "${POOL_STOP_TIMEOUT:-20}"
    fi
    forget_pid "$RUN_DIR/pool.pid"
    rm -f "$RUN_DIR/pool.fingerprint"
    rm -rf "$POOL_BIN_DIR" "$FCGI_SOCKET_DIR"
}

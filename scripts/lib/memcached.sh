# shellcheck shell=bash
# memcached, sourced by scripts/stack.sh: one server on 127.0.0.1:MC_PORT started in its own
# session and recorded in RUN_DIR/memcached.pid (PID plus start time, proc.sh).
# Needs: log, die; RUN_DIR, LOG_DIR, MC_PORT (config.sh); proc.sh.

MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}

mc_pid() { pidfile_alive "$RUN_DIR/memcached.pid"; }

mc_start() {
    local pid user
    if pid=$(mc_pid); then
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
    if pid=$(mc_pid); then
        stop_group memcached "$pid" TERM 10
    fi
    forget_pid "$RUN_DIR/memcached.pid"
}

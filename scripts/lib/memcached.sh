# shellcheck shell=bash
# memcached, sourced by scripts/stack.sh: one server started in its own session and recorded in
# RUN_DIR/memcached.pid (PID plus start time, proc.sh). It listens where MC_LISTEN says: `unix`
# (the default: the pool is on the same host) on the socket MC_SOCK_DIR/memcached.sock only,
# which spares every request the TCP stack's work; `tcp` on 127.0.0.1:MC_PORT.
# Needs: log, die; RUN_DIR, LOG_DIR, MC_PORT, MC_LISTEN, MC_SOCK_DIR (config.sh); proc.sh.

MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}

mc_pid() { pidfile_alive "$RUN_DIR/memcached.pid"; }

mc_address() {  # what MEMCACHED_SERVERS says to reach it
    if [ "$MC_LISTEN" = unix ]; then printf '%s\n' "$MC_SOCK_DIR/memcached.sock"; else printf '%s:%s\n' "$HOST_ADDR" "$MC_PORT"; fi
}

mc_listening() {  # the socket file is there, or the port accepts
    if [ "$MC_LISTEN" = unix ]; then [ -S "$MC_SOCK_DIR/memcached.sock" ]; else tcp_open "$HOST_ADDR" "$MC_PORT"; fi
}

mc_start() {
    local pid user
    local -a listen
    if pid=$(mc_pid); then
        log "memcached already running (pid $pid)"
        return 0
    fi
    mkdir -p "$LOG_DIR"
    user=memcache
    id -u "$user" >/dev/null 2>&1 || user=nobody
    if [ "$MC_LISTEN" = unix ]; then
        # memcached creates its socket after dropping to $user: a directory of that user's,
        # setgid to the pool's group, which only memcached, the pool (and root) may enter; the
        # socket is 0660 of that group. A socket left by a crash is removed.
        pool_user_ensure
        rm -rf "$MC_SOCK_DIR"
        install -d -o "$user" -g "$POOL_USER" -m 2750 "$MC_SOCK_DIR"
        listen=(-s "$MC_SOCK_DIR/memcached.sock" -a 0660)
    else
        tcp_open "$HOST_ADDR" "$MC_PORT" && die "$HOST_ADDR:$MC_PORT is already in use by something this stack did not start"
        listen=(-l "$HOST_ADDR" -p "$MC_PORT" -U 0)
    fi
    log "starting memcached on $(mc_address)"
    # memcached's own -d/-P writes the pid file after dropping to $user, which may not be
    # able to write RUN_DIR: it runs in the background of its own session and we record it.
    setsid "$MEMCACHED_BIN" "${listen[@]}" -m 64 -c 1024 -u "$user" \
        </dev/null >>"$LOG_DIR/memcached.log" 2>&1 &
    pid=$!
    record_pid "$RUN_DIR/memcached.pid" "$pid"
    local deadline=$((SECONDS + 10))
    until mc_listening; do
        kill -0 "$pid" 2>/dev/null || { tail -n 5 "$LOG_DIR/memcached.log" >&2; die "memcached exited"; }
        [ $SECONDS -lt "$deadline" ] || die "memcached not listening on $(mc_address)"
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

# shellcheck shell=bash
# nginx, sourced by scripts/stack.sh and bench/run.sh. One nginx per directory DIR: its config
# DIR/nginx.conf, its logs DIR/logs/, its pid file DIR/nginx.pid (written by nginx; the master's
# start time recorded beside it, proc.sh), its master started as root, reloaded and stopped by
# that verified PID. The stack's is RUN_DIR (rendered from nginx/ by nginx_render); the bench's
# ceiling nginx is RUN_DIR/bench/ceiling (rendered from bench/ceiling-nginx.conf by bench/run.sh).
# Needs: ROOT, log, die; proc.sh; config.sh (render, and RUN_DIR, ports and paths for nginx_render).

NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}

nginx_argv() {  # DIR ARRAY: sets the array named ARRAY to nginx with that directory's configuration
    local -n nginx_argv_out=$2
    nginx_argv_out=("$NGINX_BIN" -e "$1/logs/nginx-error.log" -p "$1/" -c "$1/nginx.conf")
}

nginx_cmd() {  # DIR ARGS...: runs nginx_argv's command with ARGS
    local -a cmd
    nginx_argv "$1" cmd
    "${cmd[@]}" "${@:2}"
}

nginx_is_master() {  # PID DIR: the master process of DIR/nginx.conf
    local cmd
    is_uint "$1" || return 1
    cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ $cmd == "nginx: master process"*"$2/nginx.conf"* ]]
}

nginx_pid() {  # DIR -> the PID of its master (recorded start time and command line agree)
    local f="$1/nginx.pid" pid
    # A master started before start times were recorded for nginx: taken by its command line.
    if [ ! -f "$f.start" ] && nginx_is_master "$(head -n1 "$f" 2>/dev/null)" "$1"; then
        record_start "$f"
    fi
    pid=$(pidfile_alive "$f") && nginx_is_master "$pid" "$1" && printf '%s\n' "$pid"
}

nginx_up() {  # DIR PORT: start nginx on HOST_ADDR:PORT (127.0.0.1) with DIR/nginx.conf, or reload it
    local dir=$1 port=$2 pid deadline
    mkdir -p "$dir/logs"
    nginx_cmd "$dir" -t -q || die "nginx configuration test failed ($dir/nginx.conf)"
    if pid=$(nginx_pid "$dir"); then
        log "nginx already running (pid $pid): reloading its configuration"
        kill -HUP "$pid"
        return 0
    fi
    if tcp_open "${HOST_ADDR:-127.0.0.1}" "$port"; then
        die "${HOST_ADDR:-127.0.0.1}:$port is already in use by something this stack did not start"
    fi
    forget_pid "$dir/nginx.pid"
    log "starting nginx on ${HOST_ADDR:-127.0.0.1}:$port ($dir/nginx.conf)"
    # The workers (www-data) may raise their descriptor limit (worker_rlimit_nofile: live streams)
    # only up to the hard limit they inherit: raise it here, as root, where the system lets us.
    (ulimit -n 65536 2>/dev/null || true; nginx_cmd "$dir" </dev/null >/dev/null) \
        || { tail -n 20 "$dir/logs/nginx-error.log" >&2; die "nginx did not start"; }
    # The daemonized master writes its pid file a moment after the command returns.
    deadline=$((SECONDS + 10))
    until nginx_is_master "$(head -n1 "$dir/nginx.pid" 2>/dev/null)" "$dir"; do
        [ $SECONDS -lt "$deadline" ] || die "nginx wrote no pid file ($dir/nginx.pid)"
        sleep 0.05
    done
    record_start "$dir/nginx.pid"
}

nginx_reload() {  # DIR: test the configuration, then SIGHUP to the master; fails when not running
    local pid
    pid=$(nginx_pid "$1") || die "nginx of $1 is not running"
    nginx_cmd "$1" -t -q || die "nginx configuration test failed ($1/nginx.conf)"
    kill -HUP "$pid"
}

nginx_down() {  # DIR: graceful stop (SIGQUIT), then SIGKILL to its process group
    local pid
    if pid=$(nginx_pid "$1"); then
        stop_group nginx "$pid" QUIT 10
    fi
    forget_pid "$1/nginx.pid"
}

nginx_render() {  # the stack's configuration from nginx/ into RUN_DIR
    mkdir -p "$LOG_DIR"
    ensure_sock_dir
    # The workers' descriptor limit: what nginx_up's raise gets (the hard limit), at most 40000.
    local NGINX_NOFILE
    NGINX_NOFILE=$( (ulimit -n 65536 2>/dev/null; ulimit -Hn) )
    [[ $NGINX_NOFILE =~ ^[0-9]+$ ]] && [ "$NGINX_NOFILE" -le 40000 ] || NGINX_NOFILE=40000
    render "$ROOT/nginx/nginx.conf" "$RUN_DIR/nginx.conf" RUN_DIR SOCK_DIR NGINX_USER NGINX_NOFILE
    CONF_DIR=$RUN_DIR ACCESS_LOG="$LOG_DIR/nginx-access.log" STATIC_DIR="$SOCK_DIR/static" \
        LISTEN="listen $HOST_ADDR:$HTTP_PORT default_server backlog=4096;" \
        nginx_render_site "$RUN_DIR/trading-api.conf" "$RUN_DIR"
    # The publisher socket's directory: nginx (root) makes the socket, the pool's group reaches it.
    install -d -o root -g "$POOL_USER" -m 0750 "$PUBLISH_SOCKET_DIR"
    # Static files nginx serves itself, where its www-data workers can read them: the OpenAPI
    # document and the dashboard (web/, replaced whole so a removed file is gone).
    install -d -o root -g "$NGINX_USER" -m 0750 "$SOCK_DIR/static"
    install -o root -g "$NGINX_USER" -m 0640 "$ROOT/docs/openapi.json" "$SOCK_DIR/static/openapi.json"
    rm -rf "$SOCK_DIR/static/web.new"
    cp -r "$ROOT/web" "$SOCK_DIR/static/web.new"
    chown -R root:"$NGINX_USER" "$SOCK_DIR/static/web.new"
    find "$SOCK_DIR/static/web.new" -type d -exec chmod 0750 {} + -o -type f -exec chmod 0640 {} +
    rm -rf "$SOCK_DIR/static/web"
    mv "$SOCK_DIR/static/web.new" "$SOCK_DIR/static/web"
}

# The files nginx's site for the pool is made of, rendered from nginx/ (trading-api.conf says
# what each placeholder is). The stack's RUN_DIR and the Debian package's /etc/nginx get these.
NGINX_SITE_INCLUDES=(server.conf ratelimit.conf log-format.conf json-errors.conf fastcgi-pool.conf stream.conf
                     stream-subscriber.conf response-headers.conf cors.conf web.conf api.conf operations.conf)

nginx_render_site() {  # SITE DIR: the site as SITE, its includes in DIR (which nginx will
                       # read as CONF_DIR); needs CONF_DIR, ACCESS_LOG, STATIC_DIR, FCGI_SOCKET,
                       # LISTEN (listen directives), OPS_ALLOW, CORS_ORIGINS, the rate limits
                       # (config.sh), FCGI_UPSTREAMS (the pools: default unix:FCGI_SOCKET) and
                       # NCHAN_PUBLISH_LISTEN/NCHAN_PUBLISH_ALLOW (the publisher over TCP: default none)
    local f a
    render "$ROOT/nginx/trading-api.conf" "$1" CONF_DIR ACCESS_LOG STATIC_DIR PUBLISH_SOCKET STREAMS_PER_ADDR
    for f in "${NGINX_SITE_INCLUDES[@]}"; do
        render "$ROOT/nginx/$f" "$2/$f" CONF_DIR STATIC_DIR "${RATE_KEYS[@]}"
    done
    {
        echo "# Where and as what the site listens (server context)."
        echo "$LISTEN"
        echo "server_name _;"
    } >"$2/listen.conf"
    {
        echo "# The pools nginx passes requests to (FCGI_UPSTREAMS; upstream context): one unix socket"
        echo "# on one host; TCP pools on worker hosts (docs/SCALING.md). A pool that fails is left out"
        echo "# for fail_timeout (ignored with a single server)."
        for a in ${FCGI_UPSTREAMS:-unix:$FCGI_SOCKET}; do echo "server $a max_fails=1 fail_timeout=5s;"; done
    } >"$2/upstream-servers.conf"
    {
        echo "# Who may read /metrics and /status (OPS_ALLOW, docs/OPERATIONS.md); everyone else 403."
        for a in ${OPS_ALLOW:-127.0.0.1 ::1}; do echo "allow $a;"; done
        echo "deny all;"
    } >"$2/operations-allow.conf"
    {
        echo "# The live stream's publisher over TCP for worker hosts (server context; docs/SCALING.md):"
        echo "# where it listens (NCHAN_PUBLISH_LISTEN, a private address:port) and the worker hosts"
        echo "# allowed to publish (NCHAN_PUBLISH_ALLOW). Empty: the unix socket only."
        if [ -n "${NCHAN_PUBLISH_LISTEN:-}" ]; then
            echo "listen $NCHAN_PUBLISH_LISTEN;"
            for a in ${NCHAN_PUBLISH_ALLOW:-}; do echo "allow $a;"; done
        fi
    } >"$2/publish-tcp.conf"
    {
        echo "# Origins whose pages may call the API (CORS_ORIGINS, docs/OPERATIONS.md): entries of"
        echo "# cors.conf's map, each \"origin\" \"origin\"; exactly scheme://host[:port]. Empty: none."
        for a in ${CORS_ORIGINS:-}; do echo "\"$a\" \"$a\";"; done
    } >"$2/cors-origins.conf"
}

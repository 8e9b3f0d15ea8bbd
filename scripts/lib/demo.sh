# shellcheck shell=bash
# The demo writer (scripts/demo_writer.py), sourced by scripts/stack.sh: `make run` starts it
# after the stack is healthy (DEMO_WRITER=1) so the dashboard has prices that move; `down` stops
# it. It runs as the pool's user (which holds the signing secret already: no one new learns it),
# without capabilities, from a copy in /run/trading-api-demo-PORT (the checkout may be 0700), in
# its own session, with only BASE_URL and JWT_SECRET_KEY; its PID (with start time, proc.sh) in
# RUN_DIR.
# Needs: log, die; RUN_DIR, LOG_DIR, HTTP_PORT, BASE_URL, JWT_SECRET_KEY, POOL_USER; proc.sh.

demo_dir() { printf '/run/trading-api-demo-%s\n' "$HTTP_PORT"; }
demo_writer_pid() { pidfile_alive "$RUN_DIR/demo-writer.pid"; }

demo_writer_start() {
    local pid dir
    if pid=$(demo_writer_pid); then
        log "demo writer already running (pid $pid)"
        return 0
    fi
    dir=$(demo_dir)
    install -d -o root -g "$POOL_USER" -m 0750 "$dir"
    install -o root -g "$POOL_USER" -m 0640 "$ROOT/scripts/demo_writer.py" "$ROOT/scripts/jwt_token.py" "$dir/"
    log "starting the demo writer (moves the demo user's prices every 2 s; $LOG_DIR/demo-writer.log)"
    env -i PATH=/usr/bin:/bin BASE_URL="$BASE_URL" JWT_SECRET_KEY="$JWT_SECRET_KEY" \
        setsid setpriv --reuid="$POOL_USER" --regid="$POOL_USER" --clear-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs \
        python3 "$dir/demo_writer.py" </dev/null >>"$LOG_DIR/demo-writer.log" 2>&1 &
    pid=$!
    record_pid "$RUN_DIR/demo-writer.pid" "$pid"
}

demo_writer_stop() {
    local pid
    if pid=$(demo_writer_pid); then
        stop_group "demo writer" "$pid" TERM 5
    fi
    forget_pid "$RUN_DIR/demo-writer.pid"
    rm -rf "$(demo_dir)"
}

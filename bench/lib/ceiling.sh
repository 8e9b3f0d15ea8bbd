# shellcheck shell=bash
# The ceiling, sourced by bench/run.sh: a second nginx with the stack's configuration that answers
# `return 200` with a fixed 1 KB JSON body, the most any request through this nginx can reach.
# Needs: log, die, PYTHON; CEIL_DIR, CEIL_PORT, CEIL_TEMP, CEIL_URL, RUN_DIR (bench/run.sh);
# render (scripts/lib/config.sh), nginx_up, nginx_down, nginx_pid (scripts/lib/nginx.sh).

# Started, reloaded and stopped as the stack's nginx is (scripts/lib/nginx.sh), in its own
# directory CEIL_DIR.
ceiling_start() {
    local BODY TEMP_DIR=$CEIL_TEMP STACK_DIR=$RUN_DIR
    mkdir -p "$CEIL_DIR/logs"
    install -d -o root -g "$NGINX_USER" -m 0750 "$CEIL_TEMP"
    # {"user_id":…,"status":"healthy",…,"padding":"xxxx"}: exactly 1024 bytes, no quote or $
    BODY=$("$PYTHON" -c '
import json
head = {"user_id": "00000000-0000-4000-8000-000000000001", "status": "healthy",
        "last_sync_at": "2026-01-01T00:00:00Z", "total_syncs": 850, "open_positions_count": 2}
s = json.dumps(dict(head, padding=""), separators=(",", ":"))
s = s[:-2] + "x" * (1024 - len(s)) + "\"}"
assert len(s) == 1024, len(s)
print(s)')
    render bench/ceiling-nginx.conf "$CEIL_DIR/nginx.conf" CEIL_DIR CEIL_PORT TEMP_DIR STACK_DIR BODY
    nginx_up "$CEIL_DIR" "$CEIL_PORT"
    local deadline=$((SECONDS + 10))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$CEIL_URL/api/v1/reconciliation/status")" = 200 ]; do
        [ $SECONDS -lt "$deadline" ] || die "ceiling nginx does not answer on $CEIL_URL"
        sleep 0.1
    done
    log "ceiling nginx on $CEIL_URL (pid $(nginx_pid "$CEIL_DIR"), 1 KB body, $CEIL_DIR/nginx.conf)"
}

ceiling_stop() {
    nginx_down "$CEIL_DIR"
    [ -d "$CEIL_TEMP" ] && rm -rf "$CEIL_TEMP"
    # ~150k lines/s: nothing in it is needed once the runs are counted
    [ -f "$CEIL_DIR/logs/nginx-access.log" ] && : >"$CEIL_DIR/logs/nginx-access.log"
    return 0
}

#!/usr/bin/env bash
# Instructions per request in one worker, counted by callgrind: repeatable where req/s on a noisy
# machine is not (bench/README.md, "Where a worker's time goes").
#
#   bench/profile.sh [REQUESTS]        (default 1000) against a running stack
#
# Starts one release worker (`trading-api worker`) under `valgrind --tool=callgrind` on a
# listening socket of its own (not the pool's), with the stack's DATABASE_URL, MEMCACHED_SERVERS
# and JWT secret from RUN_DIR/stack.env. Sends WARMUP requests through `cgi-fcgi` with the
# parameters nginx sends (nginx/fastcgi-pool.conf, in its order) (connections,
# prepared statements and the cache warm up), zeroes the counters, sends REQUESTS, dumps the
# counters and stops the worker. Prints instructions per request and the functions that cost
# the most; the callgrind file stays in RUN_DIR/profile/ for `callgrind_annotate`.
#
# Environment:
#   RUN_DIR (.bench-run)   the stack (scripts/stack.sh up, or `KEEP_STACK=1 make bench`)
#   PROFILE_PATH (/api/v1/guards/status)   PROFILE_USER (…0001, a user of the demo and bench data)
#   PROFILE_TTL (60)       CACHE_TTL_SECONDS of the profiled worker: 60 counts hits, 0 misses
#   WARMUP (50)            TOP (25) functions shown
#   TRADING_API_BIN (.build/release/trading-api), copied without debug info: valgrind 3.19
#                          cannot read Swift's DWARF 5
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[profile] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

REQUESTS=${1:-1000}
WARMUP=${WARMUP:-50}
TOP=${TOP:-25}
RUN_DIR=${RUN_DIR:-.bench-run}
PROFILE_PATH=${PROFILE_PATH:-/api/v1/guards/status}
PROFILE_USER=${PROFILE_USER:-00000000-0000-4000-8000-000000000001}
PROFILE_TTL=${PROFILE_TTL:-60}
BIN=${TRADING_API_BIN:-.build/release/trading-api}
for v in REQUESTS WARMUP TOP PROFILE_TTL; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[ -f "$RUN_DIR/stack.env" ] || die "no running stack in $RUN_DIR (scripts/stack.sh up, or KEEP_STACK=1 make bench)"
[ -x "$BIN" ] || die "$BIN missing (swift build -c release)"
for tool in valgrind callgrind_control callgrind_annotate cgi-fcgi objcopy; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh)"
done

. scripts/lib/config.sh   # file_value
env_of() { file_value "$RUN_DIR/stack.env" "$1"; }

OUT="$RUN_DIR/profile"
mkdir -p "$OUT"
SOCKET="$OUT/worker.sock"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
CALLGRIND="$OUT/callgrind.$STAMP"
objcopy --strip-debug "$BIN" "$OUT/trading-api"
TOKEN=$(JWT_SECRET_KEY=$(env_of JWT_SECRET_KEY) python3 scripts/jwt_token.py "$PROFILE_USER" --ttl 3600)

# The worker: fd 0 is a listening unix socket (the FastCGI convention), made by python, which
# then becomes valgrind.
rm -f "$SOCKET"
env -i PATH="$PATH" DATABASE_URL="$(env_of DATABASE_URL)" MEMCACHED_SERVERS="$(env_of MEMCACHED_SERVERS)" \
    JWT_SECRET_KEY="$(env_of JWT_SECRET_KEY)" CACHE_TTL_SECONDS="$PROFILE_TTL" LOG_LEVEL=warning \
    python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(64)
os.dup2(s.fileno(), 0)
os.execvp(sys.argv[2], sys.argv[2:])' "$SOCKET" \
    valgrind --tool=callgrind --callgrind-out-file="$CALLGRIND.%p" "$OUT/trading-api" worker \
    </dev/null >"$OUT/worker.log" 2>&1 &
WORKER=$!
trap 'kill -TERM "$WORKER" 2>/dev/null || true' EXIT

# The parameters nginx sends, in its order: nginx/fastcgi-pool.conf's fastcgi_param lines with
# their variables given a request's values, then the request headers wrk sends (HTTP_*). The
# order matters: libfcgi's FCGX_GetParam scans the list for each name a worker reads.
nginx_params() {  # -> NAME=value lines
    local name value optional
    while read -r _ name value; do
        value=${value%%;*}
        optional=0   # `if_not_empty`: nginx leaves the parameter out when its value is empty
        case "$value" in *[[:space:]]if_not_empty) optional=1; value=${value%%[[:space:]]*if_not_empty} ;; esac
        case "$value" in
            '$request_method') value=GET ;;
            '$uri' | '$request_uri') value=$PROFILE_PATH ;;
            '$request_id') value=0123456789abcdef0123456789abcdef ;;
            '$msec') value=@MSEC@ ;;
            '$server_protocol') value=HTTP/1.1 ;;
            '$remote_addr' | '$server_addr') value=127.0.0.1 ;;
            '$remote_port') value=40000 ;;
            '$server_port') value=8080 ;;
            '$server_name') value=_ ;;
            '""' | '$query_string' | '$content_type' | '$content_length' | '$https') value= ;;
            '$'*) die "nginx/fastcgi-pool.conf: no profile value for $value (bench/profile.sh)" ;;
        esac
        [ "$optional" = 1 ] && [ -z "$value" ] && continue
        printf '%s=%s\n' "$name" "$value"
    done < <(grep '^fastcgi_param ' nginx/fastcgi-pool.conf)
    printf '%s\n' HTTP_HOST=127.0.0.1:8080 HTTP_USER_AGENT=wrk HTTP_ACCEPT='*/*' "HTTP_AUTHORIZATION=Bearer $TOKEN"
}
mapfile -t PARAMS < <(nginx_params)

request() {  # N: N requests of PROFILE_PATH, one cgi-fcgi connection each
    local i
    for ((i = 0; i < $1; i++)); do
        env -i "${PARAMS[@]/@MSEC@/$(date +%s.%3N)}" \
            cgi-fcgi -bind -connect "$SOCKET" >"$OUT/last-response" 2>&1 || die "cgi-fcgi failed: $(cat "$OUT/last-response")"
    done
}

deadline=$((SECONDS + 60))
until [ -S "$SOCKET" ] && callgrind_control "$WORKER" >/dev/null 2>&1; do
    kill -0 "$WORKER" 2>/dev/null || die "the worker exited: $(tail -n 5 "$OUT/worker.log")"
    [ $SECONDS -lt "$deadline" ] || die "the worker did not come up"
    sleep 0.2
done
log "worker $WORKER under callgrind (CACHE_TTL_SECONDS=$PROFILE_TTL): $WARMUP warm-up requests of $PROFILE_PATH"
request "$WARMUP"
grep -q '^Status: 200\|^X-Cache' "$OUT/last-response" || die "the warm-up's answer was not a 200: $(head -c 300 "$OUT/last-response")"
callgrind_control --zero "$WORKER" >/dev/null 2>&1
log "$REQUESTS counted requests"
request "$REQUESTS"
callgrind_control --dump "$WORKER" >/dev/null 2>&1
kill -TERM "$WORKER"
wait "$WORKER" 2>/dev/null || true
trap - EXIT

dump=$(ls -t "$CALLGRIND".*.1 2>/dev/null | head -n1) || true
[ -n "$dump" ] || die "callgrind wrote no dump ($CALLGRIND.*)"
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
[ -n "$total" ] || die "no totals in $dump"
printf '%s: %s requests, %s instructions, %d per request (X-Cache of the last: %s)\n' \
    "$PROFILE_PATH" "$REQUESTS" "$total" $((total / REQUESTS)) \
    "$(sed -n 's/^X-Cache: *//p' "$OUT/last-response" | tr -d '\r')"
callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null | sed -n '/file:function/,$p' \
    | grep -v -e '(100.0%)' -e '^--' | head -n "$TOP"   # the functions on the stack at --zero read 100 %
log "callgrind file: $dump"

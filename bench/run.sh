#!/usr/bin/env bash
# The trading-api benchmark (`make bench`). See bench/README.md for what it measures.
#
#   bench/run.sh            the default suite (about 7 minutes on 2 cores)
#   SOAK=300 bench/run.sh   instead: mixed@100 for 300 s, worker RSS and p99 per 10-s window
#
# It starts its own stack (scripts/stack.sh, RUN_DIR=.bench-run, HTTP 28180, Postgres 54359,
# memcached 11249; rate limits lifted), loads the benchmark dataset once (1,000 users x 1,000
# rows, sql/generate.sql; kept in .bench-run/pgdata and reused), starts the ceiling nginx
# (28181), runs wrk/ab, writes bench/results/<timestamp>.{md,json,png} and updates the latest
# table in bench/README.md. The stack is brought down at the end (KEEP_STACK=1 keeps it).
#
# Environment:
#   DURATION (15)       seconds per measured run      WARMUP (5)   seconds of warm-up before each
#   CONNS ("10 50 100 200")   concurrencies of the mixed workload and the ceiling
#   THREADS (2)         wrk threads                   AB_ENDPOINT (guards)  status|open|guards
#   SOAK (0)            seconds: run the soak instead of the suite   SOAK_WINDOW (10) seconds
#   BENCH_USERS (1000) BENCH_ROWS (1000)   the dataset (scripts/generate-data.sh)
#   BENCH_CACHE_TTL (5) CACHE_TTL_SECONDS of the cached runs
#   WORKERS, MAX_REQUESTS, LOG_LEVEL   passed to the pool (stack.sh defaults otherwise; the
#                       soak sets MAX_REQUESTS=0 unless given: recycling would hide a leak)
#   BENCH_HTTP_PORT (28180) BENCH_CEIL_PORT (28181) BENCH_PG_PORT (54359) BENCH_MC_PORT (11249)
#   SKIP_BUILD=1        use the existing .build/release/trading-api (else swift build -c release)
#   SKIP_DEPS=1         do not run scripts/install-deps.sh (packages and the .venv of bench/requirements.txt)
#   KEEP_STACK=1        leave the bench stack running afterwards (scripts/stack.sh down to stop)
#   BENCH_RESULTS (bench/results)  where the report goes; BENCH_NO_README=1 leaves README alone
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v swift >/dev/null 2>&1 || PATH="$PATH:/opt/swift/usr/bin"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}   # scripts/install-deps.sh makes it

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (scripts/stack.sh needs it)"

# ---------------------------------------------------------------------------------------------
# Settings

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
CONNS=${CONNS:-"10 50 100 200"}
THREADS=${THREADS:-2}
SOAK=${SOAK:-0}
SOAK_WINDOW=${SOAK_WINDOW:-10}
AB_ENDPOINT=${AB_ENDPOINT:-guards}
BENCH_USERS=${BENCH_USERS:-1000}
BENCH_ROWS=${BENCH_ROWS:-1000}
BENCH_CACHE_TTL=${BENCH_CACHE_TTL:-5}
CEIL_PORT=${BENCH_CEIL_PORT:-28181}
RESULTS_DIR=${BENCH_RESULTS:-$ROOT/bench/results}
for v in DURATION WARMUP THREADS SOAK SOAK_WINDOW BENCH_USERS BENCH_ROWS BENCH_CACHE_TTL CEIL_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
for c in $CONNS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONNS must be positive integers (got '$CONNS')"; done
[ "$DURATION" -ge 1 ] && [ "$SOAK_WINDOW" -ge 1 ] && [ "$BENCH_CACHE_TTL" -ge 1 ] \
    || die "DURATION, SOAK_WINDOW and BENCH_CACHE_TTL must be at least 1"

case "$AB_ENDPOINT" in
    status) AB_PATH=/api/v1/reconciliation/status ;;
    open)   AB_PATH=/api/v1/positions/open ;;
    guards) AB_PATH=/api/v1/guards/status ;;
    *) die "AB_ENDPOINT must be status, open or guards (got '$AB_ENDPOINT')" ;;
esac

# The stack (scripts/stack.sh reads these). A sourced stack.env of another stack must not leak in.
unset DATABASE_URL MEMCACHED_SERVERS JWT_SECRET_KEY BASE_URL
export RUN_DIR="$ROOT/.bench-run"
export HTTP_PORT=${BENCH_HTTP_PORT:-28180}
export PG_PORT=${BENCH_PG_PORT:-54359}
export MC_PORT=${BENCH_MC_PORT:-11249}
export DEMO_DATA=0
export TRADING_API_BIN="$ROOT/.build/release/trading-api"
export RATE_LIMIT_PER_ADDR=1000000 RATE_BURST_PER_ADDR=1000000
export RATE_LIMIT_PER_TOKEN=1000000 RATE_BURST_PER_TOKEN=1000000

# The soak looks for leaks: worker recycling (MAX_REQUESTS, 1000000 by default) would hide them,
# so it is off there unless MAX_REQUESTS is given.
if [ "$SOAK" -gt 0 ] && [ -z "${MAX_REQUESTS:-}" ]; then export MAX_REQUESTS=0; fi

BENCH_DIR="$RUN_DIR/bench"                 # tokens, the ceiling, raw outputs (not committed)
CEIL_DIR="$BENCH_DIR/ceiling"
CEIL_TEMP="/run/trading-api-bench-ceiling-$CEIL_PORT"
TOKENS="$BENCH_DIR/tokens.txt"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
[ "$SOAK" = 0 ] || STAMP="$STAMP-soak"
OUT="$BENCH_DIR/out/$STAMP"

# The stack's own pieces (scripts/lib): its paths (BASE_URL, PG_SOCK_DIR, stack.env), pid files,
# nginx (the ceiling is one more nginx directory), psql as the superuser.
for lib in proc config postgres nginx; do
    # shellcheck disable=SC1090
    . "scripts/lib/$lib.sh"
done
stack_dirs
derive_paths
CEIL_URL="http://127.0.0.1:$CEIL_PORT"

for tool in wrk ab nginx curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install wrk apache2-utils nginx curl)"
done

# ---------------------------------------------------------------------------------------------
# Clean-up: the ceiling nginx always, the stack unless KEEP_STACK=1. Only what we started.

STACK_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    ceiling_stop || true
    if [ "$STACK_STARTED" = 1 ] && [ "${KEEP_STACK:-0}" != 1 ]; then
        log "bringing the bench stack down (KEEP_STACK=1 keeps it)"
        scripts/stack.sh down >/dev/null 2>&1 || log "warning: scripts/stack.sh down failed"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Preparation

prepare() {
    if [ "${SKIP_DEPS:-0}" != 1 ]; then
        scripts/install-deps.sh >&2 || die "scripts/install-deps.sh failed"
    fi
    "$PYTHON" -c 'import matplotlib' 2>/dev/null || die "matplotlib missing from $PYTHON (scripts/install-deps.sh)"
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "swift build -c release"
        swift build -c release >&2 || die "release build failed"
    fi
    [ -x "$TRADING_API_BIN" ] || die "$TRADING_API_BIN missing (swift build -c release)"
    mkdir -p "$BENCH_DIR" "$OUT" "$RESULTS_DIR"
    chmod 0700 "$BENCH_DIR"
}

# stack_up TTL: (re)start the stack with that cache TTL; stack.sh restarts only the pool when
# only its settings changed (pool fingerprint) and reloads nginx.
stack_up() {
    log "scripts/stack.sh up (CACHE_TTL_SECONDS=$1)"
    STACK_STARTED=1
    # Output to a file, not a pipe: the daemons stack.sh starts would inherit the pipe.
    if ! CACHE_TTL_SECONDS=$1 scripts/stack.sh up >>"$OUT/stack.log" 2>&1 </dev/null; then
        tail -n 30 "$OUT/stack.log" >&2
        die "scripts/stack.sh up failed (logs: $OUT/stack.log, $RUN_DIR/logs)"
    fi
    STACK_DATABASE_URL=$(file_value "$ENV_FILE" DATABASE_URL)
    STACK_JWT=$(file_value "$ENV_FILE" JWT_SECRET_KEY)
    [ "$(file_value "$ENV_FILE" CACHE_TTL_SECONDS)" = "$1" ] || die "the pool did not take CACHE_TTL_SECONDS=$1"
    # Workers log nothing per request at info; wait for all of them to be up.
    wait_workers
}

wait_workers() {
    local want n deadline=$((SECONDS + 20))
    want=$(file_value "$ENV_FILE" WORKERS)
    while :; do
        n=$(scripts/stack.sh pids 2>/dev/null | grep -c '^worker ') || n=0
        [ "$n" -ge "$want" ] && return 0
        [ $SECONDS -lt "$deadline" ] || die "only $n of $want workers running"
        sleep 0.2
    done
}

load_dataset() {
    log "dataset: $BENCH_USERS users x $BENCH_ROWS rows (scripts/generate-data.sh; skipped when loaded)"
    DATABASE_URL=$STACK_DATABASE_URL scripts/generate-data.sh "$BENCH_USERS" "$BENCH_ROWS" \
        </dev/null 2>&1 | sed 's/^/    /' >&2 || die "data generation failed"
    DATASET=$(pg_query trading "SELECT users || ' users x ' || rows_per_user || ' rows/user (seed '
        || seed || '), generated ' || to_char(generated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI\"Z\"')
        || ', reconciliation_logs ' || (SELECT count(*) FROM reconciliation_logs)
        || ' rows, position_state ' || (SELECT count(*) FROM position_state) || ' rows'
        FROM demo_dataset")
    log "  $DATASET"
}

make_tokens() {
    JWT_SECRET_KEY=$STACK_JWT "$PYTHON" bench/make_tokens.py "$BENCH_USERS" "$TOKENS" --ttl $((7 * 86400))
    AB_TOKEN=$(sed -n 7p "$TOKENS")   # user 7 (sql/generate.sql: an ordinary healthy user)
}

pg_xacts() {
    pg_query postgres "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'trading'"
}

# ---------------------------------------------------------------------------------------------
# The ceiling: a second nginx, same configuration, `return 200` with a fixed 1 KB JSON body

# Started, reloaded and stopped as the stack's nginx is (scripts/lib/nginx.sh), in its own
# directory CEIL_DIR.
ceiling_start() {
    local BODY TEMP_DIR=$CEIL_TEMP RATELIMIT="$RUN_DIR/ratelimit.conf" JSON_ERRORS="$RUN_DIR/json-errors.conf"
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
    render bench/ceiling-nginx.conf "$CEIL_DIR/nginx.conf" CEIL_DIR CEIL_PORT TEMP_DIR RATELIMIT JSON_ERRORS BODY
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

# ---------------------------------------------------------------------------------------------
# Sampling

snapshot() {  # OUT_FILE: CPU ticks of each part and each worker's RSS (bench/sample.py)
    local name pid
    local -a roots=()   # the stack's checked pids (scripts/stack.sh pids), and the ceiling's
    while read -r name pid; do
        case "$name" in pool|nginx|postgres|memcached) roots+=("--$name" "$pid") ;; esac
    done < <(scripts/stack.sh pids 2>/dev/null)
    if pid=$(nginx_pid "$CEIL_DIR"); then roots+=(--ceiling "$pid"); fi
    "$PYTHON" bench/sample.py "${roots[@]}" --bench $$ >"$1"
}

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

RUN_NO=0
CURRENT_TTL=$BENCH_CACHE_TTL

# measure NAME KIND CONNS TARGET ENDPOINT TOOL: warm-up, then the measured run with its samples.
#   KIND: mixed | single | uncached | ceiling | ab | ab-ceiling | soak
#   TARGET: stack | ceiling; ENDPOINT: mixed | status | open | guards; TOOL: wrk | ab
measure() {
    local name=$1 kind=$2 conns=$3 target=$4 endpoint=$5 tool=$6
    local url access id meta secs=$DURATION
    [ "$kind" != soak ] || secs=$SOAK_WINDOW
    if [ "$target" = ceiling ]; then
        url=$CEIL_URL; access="$CEIL_DIR/logs/nginx-access.log"
    else
        url=$BASE_URL; access="$RUN_DIR/logs/nginx-access.log"
    fi
    RUN_NO=$((RUN_NO + 1))
    id=$(printf '%02d-%s' "$RUN_NO" "$name")
    meta="$OUT/$id.meta"

    if [ "$WARMUP" -gt 0 ] && [ "${NO_WARMUP:-0}" != 1 ]; then
        run_tool "$tool" "$endpoint" "$conns" "$WARMUP" "$url" >/dev/null 2>"$OUT/$id.warmup.err" \
            || log "  warm-up of $id exited non-zero (see $OUT/$id.warmup.err)"
        sleep 1.5   # nginx flushes its buffered access log every second; see pg_nudge
    fi
    # Postgres counters of stack runs: flushed before reading them (pg_nudge). Soak windows
    # follow each other without a pause: each one's late counts land in the next.
    local pg=0 x0=0 x1=0 nudge=0
    if [ "$target" = stack ] && [ "$kind" != soak ]; then pg=1; fi
    if [ "$pg" = 1 ]; then pg_nudge; nudge=$NUDGE_REQUESTS; fi
    # Only this run's lines in the access log (keeps the disk bounded too). A soak window's log
    # was emptied at the end of the one before.
    [ "$kind" = soak ] || : >"$access"
    if [ "$target" = stack ]; then x0=$(pg_xacts); fi
    local t0 t1 off1 rc=0
    # The command is built once: run as it is, and recorded as it is (the report prints it).
    tool_argv "$tool" "$endpoint" "$conns" "$secs" "$url"
    local -a argv=("${TOOL_ARGV[@]}")
    printf '%s\n' "${argv[@]//"$AB_TOKEN"/\$TOKEN}" >"$OUT/$id.argv"
    snapshot "$OUT/$id.before.json"
    t0=$(date +%s.%N)
    timeout -k 5 $((secs + 30)) "${argv[@]}" >"$OUT/$id.out" 2>"$OUT/$id.err" || rc=$?
    t1=$(date +%s.%N)
    snapshot "$OUT/$id.after.json"
    [ "$kind" = soak ] || sleep 1.5
    off1=$(file_size "$access")
    {
        printf 'id=%s\nname=%s\nkind=%s\nconns=%s\ntarget=%s\nendpoint=%s\ntool=%s\n' \
            "$id" "$name" "$kind" "$conns" "$target" "$endpoint" "$tool"
        printf 'threads=%s\nduration=%s\nwarmup=%s\nurl=%s\ncache_ttl=%s\n' \
            "$THREADS" "$secs" "$WARMUP" "$url" "$([ "$target" = ceiling ] && echo - || echo "$CURRENT_TTL")"
        printf 'users=%s\nt_start=%s\nt_end=%s\nexit=%s\n' "$BENCH_USERS" "$t0" "$t1" "$rc"
        printf 'access_log=%s\naccess_from=0\naccess_to=%s\n' "$access" "$off1"
        # ab's token is recorded as $TOKEN in NN-name.argv; this is where it came from (make_tokens)
        [ "$tool" = wrk ] || printf 'token_from=sed -n 7p %s\n' "${TOKENS#"$ROOT"/}"
    } >"$meta"
    # Count the X-Cache values of this run now: the log is emptied before the next one.
    "$PYTHON" bench/report.py count "$meta" || log "  could not count $access"
    [ "$kind" != soak ] || : >"$access"
    if [ "$pg" = 1 ]; then pg_nudge; fi
    if [ "$target" = stack ]; then x1=$(pg_xacts); fi
    printf 'xacts_before=%s\nxacts_after=%s\nxacts_nudge=%s\n' "$x0" "$x1" "$nudge" >>"$meta"
    [ "$rc" = 0 ] || log "  $id: $tool exited with status $rc (see $OUT/$id.err)"
    "$PYTHON" bench/report.py progress "$meta" >&2 || true
}

# pg_stat_database lags: a backend publishes its counters when it goes idle, at most once a
# second, and otherwise 10 s later. After a pause of more than a second, a health check
# (SELECT 1 on the worker's own connection) makes the worker's backend publish everything.
# NUDGE_REQUESTS health checks, in turn over the workers (they queue in accept()), before
# reading the counters; report.py subtracts them from the run's count.
NUDGE_REQUESTS=16
pg_nudge() {
    local -a urls=() i
    for ((i = 0; i < NUDGE_REQUESTS; i++)); do urls+=("$BASE_URL/api/v1/health"); done
    curl -s --max-time 10 "${urls[@]}" >/dev/null || true
}

# requests_file ENDPOINT: bench/load.lua's request list ("PATH TOKEN" lines, one token per
# user from tokens.txt) for one endpoint, or for the mix: status 50 %, open 30 %, guards 20 % as
# 5, 3 and 2 lines per user. Written again when tokens.txt is newer; prints its path.
requests_file() {
    local file="${BENCH_DIR#"$ROOT"/}/requests-$1.txt"
    if [ ! "$file" -nt "$TOKENS" ]; then
        awk -v which="$1" 'BEGIN {
                path["status"] = "/api/v1/reconciliation/status"; weight["status"] = 5
                path["open"] = "/api/v1/positions/open"; weight["open"] = 3
                path["guards"] = "/api/v1/guards/status"; weight["guards"] = 2 }
            NF { for (e in path) if (which == "mixed" || which == e)
                     for (i = 0; i < (which == "mixed" ? weight[e] : 1); i++) print path[e], $1 }' \
            "$TOKENS" >"$file"
    fi
    printf '%s\n' "$file"
}

# tool_argv TOOL ENDPOINT CONNS SECONDS URL: the command of one run, into the array TOOL_ARGV.
# wrk: bench/load.lua over requests_file ENDPOINT. ab: one user's token (AB_TOKEN), on AB_PATH;
# -n after -t: -t alone caps the run at 50000 requests; -l: bodies vary in length
# (timestamps); -r: a socket error is counted, not fatal.
tool_argv() {
    local tool=$1 endpoint=$2 conns=$3 secs=$4 url=$5
    if [ "$tool" = wrk ]; then
        TOOL_ARGV=(env "LOAD_REQUESTS=$(requests_file "$endpoint")"
                   wrk "-t$THREADS" "-c$conns" "-d${secs}s" --latency -s bench/load.lua "$url")
    else
        TOOL_ARGV=(ab -k -l -r -c "$conns" -t "$secs" -n 100000000
                   -H "Authorization: Bearer $AB_TOKEN" "$url$AB_PATH")
    fi
}

run_tool() {  # TOOL ENDPOINT CONNS SECONDS URL: tool_argv's command, bounded in time (timeout)
    tool_argv "$@"
    timeout -k 5 $(($4 + 30)) "${TOOL_ARGV[@]}"
}

# ---------------------------------------------------------------------------------------------
# Environment notes for the report

write_environment() {
    local f="$OUT/environment"
    {
        printf 'stamp=%s\n' "$STAMP"
        printf 'date=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf 'host_cpus=%s\n' "$(nproc)"
        printf 'cpu_model=%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
        printf 'mem_total=%s\n' "$(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)"
        printf 'kernel=%s\n' "$(uname -r)"
        printf 'nginx=%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
        printf 'wrk=%s\n' "$(wrk -v 2>&1 | head -n1 | awk '{print $2}')"
        printf 'ab=%s\n' "$(ab -V 2>&1 | head -n1 | sed 's/^This is ApacheBench, //')"
        printf 'postgres=%s\n' "$(pg_query postgres 'SHOW server_version')"
        printf 'memcached=%s\n' "$(memcached -V 2>/dev/null || echo '?')"
        printf 'git_head=%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
        printf 'git_dirty_sources=%s\n' "$(git status --porcelain -- Sources Package.swift 2>/dev/null | wc -l)"
        printf 'binary=%s\n' "${TRADING_API_BIN#"$ROOT"/}"
        printf 'binary_built=%s\n' "$(date -u -r "$TRADING_API_BIN" +%Y-%m-%dT%H:%M:%SZ)"
        printf 'binary_sha256=%s\n' "$(sha256sum "$TRADING_API_BIN" | cut -c1-12)"
        printf 'workers=%s\n' "$(file_value "$ENV_FILE" WORKERS)"
        printf 'max_requests=%s\n' "${MAX_REQUESTS:-default (1000000)}"
        printf 'cache_ttl=%s\n' "$BENCH_CACHE_TTL"
        printf 'users=%s\nrows_per_user=%s\n' "$BENCH_USERS" "$BENCH_ROWS"
        printf 'dataset=%s\n' "$DATASET"
        printf 'threads=%s\nduration=%s\nwarmup=%s\nconns=%s\nsoak=%s\nsoak_window=%s\n' \
            "$THREADS" "$DURATION" "$WARMUP" "$CONNS" "$SOAK" "$SOAK_WINDOW"
        printf 'ab_endpoint=%s\n' "$AB_PATH"
        printf 'ports=HTTP %s, ceiling %s, Postgres %s, memcached %s\n' "$HTTP_PORT" "$CEIL_PORT" "$PG_PORT" "$MC_PORT"
        printf 'loadavg_start=%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
        # where this benchmark's part of the stack's logs starts (report.py scans them)
        printf 'log_dir=%s\n' "$RUN_DIR/logs"
        printf 'pool_log_from=%s\n' "$(file_size "$RUN_DIR/logs/pool.log")"
        printf 'nginx_error_log_from=%s\n' "$(file_size "$RUN_DIR/logs/nginx-error.log")"
        printf 'postgres_log_from=%s\n' "$(file_size "$RUN_DIR/logs/postgres.log")"
        # Other processes share the cores: how busy the machine was just before the first run.
        printf 'busy_before=%s\n' "$(machine_busy 2)"
    } >"$f"
}

machine_busy() {  # SECONDS: cores in use over that interval (/proc/stat), and the top processes
    local a b
    a=$(head -n1 /proc/stat)
    sleep "$1"
    b=$(head -n1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ");
        for (i = 2; i <= 9 && i <= n; i++) { t += y[i] - x[i]; if (i == 5 || i == 6) idle += y[i] - x[i] }
        printf "%.2f cores busy", (t > 0 ? (t - idle) / t : 0) * '"$(nproc)"' }'
    top -b -n 1 -w 200 2>/dev/null | awk 'NR > 7 && $9 + 0 >= 10 {printf "%s%s %s%%", (k++ ? ", " : " (top: "), $12, $9} END {if (k) printf ")"}'
}

finish_environment() {
    {
        printf 'loadavg_end=%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf 'pool_log_to=%s\n' "$(file_size "$RUN_DIR/logs/pool.log")"
        printf 'nginx_error_log_to=%s\n' "$(file_size "$RUN_DIR/logs/nginx-error.log")"
        printf 'postgres_log_to=%s\n' "$(file_size "$RUN_DIR/logs/postgres.log")"
        printf 'finished=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >>"$OUT/environment"
}

# ---------------------------------------------------------------------------------------------
# The suite and the soak

suite() {
    local c
    for c in $CONNS; do
        measure "ceiling-c$c" ceiling "$c" ceiling mixed wrk
        measure "mixed-c$c" mixed "$c" stack mixed wrk
    done
    local e
    for e in status open guards; do
        measure "$e-c100" single 100 stack "$e" wrk
    done
    measure "ab-$AB_ENDPOINT-c100" ab 100 stack "$AB_ENDPOINT" ab
    measure "ab-ceiling-c100" ab-ceiling 100 ceiling "$AB_ENDPOINT" ab
    if ! grep -qw 100 <<<"$CONNS"; then
        measure "ceiling-c100" ceiling 100 ceiling mixed wrk
    fi
    # Caching off: the pool restarts with CACHE_TTL_SECONDS=0, then back.
    stack_up 0
    CURRENT_TTL=0
    measure "mixed-uncached-c100" uncached 100 stack mixed wrk
    stack_up "$BENCH_CACHE_TTL"
    CURRENT_TTL=$BENCH_CACHE_TTL
}

soak() {
    local windows=$(( (SOAK + SOAK_WINDOW - 1) / SOAK_WINDOW )) i
    log "soak: mixed@100 for ${SOAK}s in $windows windows of ${SOAK_WINDOW}s"
    measure "ceiling-c100" ceiling 100 ceiling mixed wrk
    # one warm-up, then the windows back to back
    run_tool wrk mixed 100 "$WARMUP" "$BASE_URL" >/dev/null 2>&1 || true
    sleep 1.5
    : >"$RUN_DIR/logs/nginx-access.log"
    for ((i = 1; i <= windows; i++)); do
        NO_WARMUP=1 measure "soak-w$(printf '%03d' "$i")" soak 100 stack mixed wrk
    done
}

main() {
    log "results: $RESULTS_DIR/$STAMP.{md,json,png}; raw outputs: ${OUT#"$ROOT"/}"
    prepare
    stack_up "$BENCH_CACHE_TTL"
    load_dataset
    make_tokens
    ceiling_start
    write_environment
    if [ "$SOAK" -gt 0 ]; then
        soak
    else
        suite
    fi
    finish_environment
    local -a args=(write "$OUT" --results "$RESULTS_DIR")
    [ "${BENCH_NO_README:-0}" = 1 ] || args+=(--readme bench/README.md)
    "$PYTHON" bench/report.py "${args[@]}"
}

main "$@"

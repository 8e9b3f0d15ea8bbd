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
#   LIVE_SUBSCRIBERS (10000)  live streams bench/live.py holds open (issue 11)
#   WORKERS, MAX_REQUESTS, LOG_LEVEL   passed to the pool (stack.sh defaults otherwise; the
#                       soak sets MAX_REQUESTS=0 unless given: recycling would hide a leak)
#   BENCH_HTTP_PORT (28180) BENCH_CEIL_PORT (28181) BENCH_PG_PORT (54359) BENCH_MC_PORT (11249)
#   MC_LISTEN (unix)    memcached on its unix socket, or tcp (127.0.0.1:BENCH_MC_PORT): scripts/stack.sh
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
LIVE_SUBSCRIBERS=${LIVE_SUBSCRIBERS:-10000}
CEIL_PORT=${BENCH_CEIL_PORT:-28181}
RESULTS_DIR=${BENCH_RESULTS:-$ROOT/bench/results}
for v in DURATION WARMUP THREADS SOAK SOAK_WINDOW BENCH_USERS BENCH_ROWS BENCH_CACHE_TTL LIVE_SUBSCRIBERS CEIL_PORT; do
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

# The stack's settings: exported for scripts/stack.sh, and recorded as the report's command.
# A sourced stack.env of another stack must not leak in.
unset DATABASE_URL MEMCACHED_SERVERS JWT_SECRET_KEY BASE_URL
STACK_SETTINGS=(RUN_DIR=.bench-run HTTP_PORT="${BENCH_HTTP_PORT:-28180}" PG_PORT="${BENCH_PG_PORT:-54359}"
                MC_PORT="${BENCH_MC_PORT:-11249}" MC_LISTEN="${MC_LISTEN:-unix}" DEMO_DATA=0
                TRADING_API_BIN=.build/release/trading-api
                RATE_LIMITS_LIFTED=1)
export "${STACK_SETTINGS[@]}"
RUN_DIR="$ROOT/$RUN_DIR"
TRADING_API_BIN="$ROOT/$TRADING_API_BIN"

# The soak looks for leaks: worker recycling (MAX_REQUESTS, 1000000 by default) would hide them,
# so it is off there unless MAX_REQUESTS is given.
if [ "$SOAK" -gt 0 ] && [ -z "${MAX_REQUESTS:-}" ]; then export MAX_REQUESTS=0; fi

TOKEN_TTL=$((7 * 86400))                   # seconds: the tokens outlive any run
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
# The benchmark's own pieces: the ceiling nginx, one measured run, the environment notes.
for lib in ceiling measure environment; do
    # shellcheck disable=SC1090
    . "bench/lib/$lib.sh"
done
RUN_NO=0                         # measure numbers the runs
CURRENT_TTL=$BENCH_CACHE_TTL     # the pool's CACHE_TTL_SECONDS, recorded in each run's meta
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
    JWT_SECRET_KEY=$STACK_JWT "$PYTHON" bench/make_tokens.py "$BENCH_USERS" "$TOKENS" --ttl "$TOKEN_TTL"
    AB_TOKEN=$(sed -n 7p "$TOKENS")   # user 7 (sql/generate.sql: an ordinary healthy user)
}

pg_xacts() {
    pg_query postgres "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'trading'"
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
    # Issue 9's figures: commit → fresh view, ingest rows/s, recomputes of a hot view.
    log "freshness: invalidation delay, ingest rate, stampede (bench/freshness.py)"
    BASE_URL=$BASE_URL DATABASE_URL=$STACK_DATABASE_URL JWT_SECRET_KEY=$STACK_JWT \
        "$PYTHON" bench/freshness.py --out "$OUT/freshness.json" </dev/null >&2 || die "bench/freshness.py failed"
    live
}

# Issue 11's figures: LIVE_SUBSCRIBERS streams held open by bench/live.py (nginx's memory, the
# commit-to-event delay), and the mixed workload @100 again while they are open.
live() {
    local ready="$OUT/live.ready" pid deadline
    rm -f "$ready"
    log "live: $LIVE_SUBSCRIBERS streams held open, commit-to-event delay (bench/live.py)"
    BASE_URL=$BASE_URL DATABASE_URL=$STACK_DATABASE_URL JWT_SECRET_KEY=$STACK_JWT RUN_DIR=$RUN_DIR \
        "$PYTHON" bench/live.py --subscribers "$LIVE_SUBSCRIBERS" --out "$OUT/live.json" --ready "$ready" \
        </dev/null >&2 &
    pid=$!
    deadline=$((SECONDS + 300))
    until [ -f "$ready" ]; do
        kill -0 "$pid" 2>/dev/null || die "bench/live.py failed"
        [ $SECONDS -lt "$deadline" ] || { kill "$pid"; die "bench/live.py did not open its streams in 300 s"; }
        sleep 1
    done
    measure "streams-c100" streams 100 stack mixed wrk
    kill -TERM "$pid"
    wait "$pid" || die "bench/live.py failed while closing its streams"
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

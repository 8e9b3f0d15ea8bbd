# shellcheck shell=bash
# One measured run, sourced by bench/run.sh: the request lists of bench/load.lua, the exact
# command (built once, run, recorded), warm-up, CPU and RSS samples before and after
# (bench/sample.py), the access log's byte range, the Postgres transaction counters, and the
# progress line (bench/report.py progress).
# Needs: log, die, PYTHON, the settings and paths of bench/run.sh; pg_query (scripts/lib/postgres.sh),
# nginx_pid (scripts/lib/nginx.sh).

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

# shellcheck shell=bash
# What the report says of the machine and the run, sourced by bench/run.sh: versions, the
# binary, the dataset, the settings, how busy the machine was, and where this run's part of the
# stack's logs starts and ends. Written to OUT/environment as key=value lines.
# Needs: the settings and paths of bench/run.sh; pg_query (scripts/lib/postgres.sh).

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
        printf 'fcgi_loops=%s\n' "${FCGI_LOOPS:-default (2)}"
        printf 'max_requests=%s\n' "${MAX_REQUESTS:-default (1000000)}"
        printf 'cache_ttl=%s\n' "$BENCH_CACHE_TTL"
        printf 'users=%s\nrows_per_user=%s\n' "$BENCH_USERS" "$BENCH_ROWS"
        printf 'dataset=%s\n' "$DATASET"
        printf 'threads=%s\nduration=%s\nwarmup=%s\nconns=%s\nsoak=%s\nsoak_window=%s\n' \
            "$THREADS" "$DURATION" "$WARMUP" "$CONNS" "$SOAK" "$SOAK_WINDOW"
        printf 'ab_endpoint=%s\n' "$AB_PATH"
        printf 'ports=HTTP %s, ceiling %s, Postgres %s, memcached %s\n' "$HTTP_PORT" "$CEIL_PORT" "$PG_PORT" "$MC_PORT"
        printf 'stack_settings=%s\n' "${STACK_SETTINGS[*]}"   # how scripts/stack.sh up ran (with CACHE_TTL_SECONDS)
        printf 'token_ttl=%s\n' "$TOKEN_TTL"
        local -a ceiling_argv
        nginx_argv "${CEIL_DIR#"$ROOT"/}" ceiling_argv
        printf 'ceiling_command=%s\n' "${ceiling_argv[*]}"
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

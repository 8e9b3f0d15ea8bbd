# shellcheck shell=bash
# A stack's configuration, sourced by scripts/stack.sh and bench/run.sh: where its state lives
# (RUN_DIR and the paths derived from it and the ports), the settings `up` takes from the
# environment (config_from_env) and records in RUN_DIR/stack.conf for the other commands, the
# rate limits (named only here), the RUN_DIR/stack.env written for clients, @NAME@ template
# rendering, and the secrets generated once into RUN_DIR.
# Needs from the sourcing script: ROOT, log, die (and is_uint from proc.sh).

NGINX_USER=www-data
# The pool's own unprivileged system user and group (created by pool_user_ensure, pool.sh).
POOL_USER=trading-api

abs_path() {  # relative paths are relative to the repository
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *)  printf '%s\n' "$ROOT/${1#./}" ;;
    esac
}

stack_dirs() {  # RUN_DIR (.run) made absolute, and the files in it
    RUN_DIR=$(abs_path "${RUN_DIR:-.run}")
    RUN_DIR=${RUN_DIR%/}
    CONF_FILE="$RUN_DIR/stack.conf"
    ENV_FILE="$RUN_DIR/stack.env"
    LOG_DIR="$RUN_DIR/logs"
    PGDATA="$RUN_DIR/pgdata"
}

derive_paths() {  # what follows from the ports (outside RUN_DIR: see ensure_sock_dir)
    # The address this host's services listen on, and the network allowed to reach Postgres:
    # loopback for one host; scripts/cluster.sh gives each host of a cluster its own.
    HOST_ADDR=${HOST_ADDR:-127.0.0.1}
    CLIENT_NET=${CLIENT_NET:-127.0.0.1/32}
    SOCK_DIR="/run/trading-api-$HTTP_PORT"
    # The pool's socket directory: the pool user's, setgid www-data, so the socket it creates
    # belongs to nginx's group (mode 0660) without the pool being a member of that group.
    FCGI_SOCKET_DIR="/run/trading-api-fcgi-$HTTP_PORT"
    FCGI_SOCKET="$FCGI_SOCKET_DIR/fcgi.sock"
    # The pool's binary, copied where its user can run it (RUN_DIR and the checkout may be 0700).
    POOL_BIN_DIR="/run/trading-api-pool-$HTTP_PORT"
    FCGI_SOCKET_GROUP=$NGINX_USER
    # The live stream's publisher socket (nginx/nchan): root:POOL_USER 0750, nginx makes it 0666.
    PUBLISH_SOCKET_DIR="/run/trading-api-pub-$HTTP_PORT"
    NCHAN_PUBLISH_SOCKET="$PUBLISH_SOCKET_DIR/publish.sock"
    PUBLISH_SOCKET=$NCHAN_PUBLISH_SOCKET
    PG_SOCK_DIR="/run/trading-api-pg-$PG_PORT"
    MC_SOCK_DIR="/run/trading-api-mc-$MC_PORT"
    MC_LISTEN=${MC_LISTEN:-tcp}   # a stack recorded before MC_LISTEN existed listens on TCP
    BASE_URL="http://$HOST_ADDR:$HTTP_PORT"
}

# Values `up` computes from the environment. Other commands load the recorded ones.
config_from_env() {
    HTTP_PORT=${HTTP_PORT:-8080}
    PG_PORT=${PG_PORT:-54329}
    MC_PORT=${MC_PORT:-11219}
    MC_LISTEN=${MC_LISTEN:-unix}
    [[ $MC_LISTEN == unix || $MC_LISTEN == tcp ]] || die "MC_LISTEN must be unix or tcp (got '$MC_LISTEN')"
    local cpus v
    cpus=$(nproc 2>/dev/null || echo 2)
    WORKERS=${WORKERS:-$((cpus < 2 ? 2 : cpus))}
    CACHE_TTL_SECONDS=${CACHE_TTL_SECONDS:-300}
    LOG_LEVEL=${LOG_LEVEL:-info}
    # Who may read /metrics and /status (nginx allow rules): addresses or CIDRs, space-separated.
    OPS_ALLOW=${OPS_ALLOW:-127.0.0.1 ::1}
    [[ $OPS_ALLOW =~ ^[0-9A-Fa-f:./\ ]+$ ]] || die "OPS_ALLOW must list addresses or CIDRs (got '$OPS_ALLOW')"
    # Origins whose pages may call the API (CORS, nginx/cors.conf), space-separated; none by default.
    CORS_ORIGINS=${CORS_ORIGINS:-}
    cors_origins_check
    TRADING_API_BIN=$(abs_path "${TRADING_API_BIN:-.build/release/trading-api}")
    for v in HTTP_PORT PG_PORT MC_PORT WORKERS CACHE_TTL_SECONDS; do
        is_uint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
    done
    [ "$WORKERS" -ge 1 ] || die "WORKERS must be at least 1"
    rate_limits

    # A DATABASE_URL / MEMCACHED_SERVERS that is this stack's own (e.g. exported from
    # stack.env) still means "managed here".
    PG_MANAGED=1 MC_MANAGED=1
    if [ -n "${DATABASE_URL:-}" ] && [ "$DATABASE_URL" != "$(conf_get MANAGED_DATABASE_URL)" ]; then
        PG_MANAGED=0
    fi
    if [ -n "${MEMCACHED_SERVERS:-}" ] && [ "$MEMCACHED_SERVERS" != "$(conf_get MANAGED_MEMCACHED_SERVERS)" ]; then
        MC_MANAGED=0
    fi
    derive_paths
}

cors_origins_check() {  # each of CORS_ORIGINS is an origin as browsers send it: scheme://host[:port]
    local o
    for o in $CORS_ORIGINS; do
        [[ $o =~ ^https?://([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$ ]] \
            || die "CORS_ORIGINS: '$o' is not an origin like https://dash.example.com or http://127.0.0.1:8081 (lowercase, no path)"
    done
}

ensure_sock_dir() {
    # Outside RUN_DIR: nginx's www-data workers must reach the socket even when RUN_DIR is in
    # a 0700 directory. root:www-data 0750: the workers may enter, nobody else.
    install -d -o root -g "$NGINX_USER" -m 0750 "$SOCK_DIR"
}

# ---------------------------------------------------------------------------------------------
# Rate limits: the only list of them (rendered into nginx/ratelimit.conf, server.conf and
# trading-api.conf). NAME=default; a RATE_LIMIT_* is requests/second ("20", or nginx's "20r/s" /
# "600r/m"), a RATE_BURST_* a count, STREAMS_PER_ADDR open live streams per client address.

RATE_SETTINGS=(RATE_LIMIT_PER_ADDR=50 RATE_BURST_PER_ADDR=100 RATE_LIMIT_PER_TOKEN=20 RATE_BURST_PER_TOKEN=40
               STREAMS_PER_ADDR=20)
RATE_KEYS=("${RATE_SETTINGS[@]%%=*}")
declare -gA RATE_ENV=()   # values given for a running stack (reload-nginx), over the recorded

rate_set() {  # NAME VALUE: checked, and a bare rate made nginx's "20r/s", into $NAME
    local v=$2
    case "$1" in
        RATE_LIMIT_*)
            if [[ $v =~ ^[1-9][0-9]*$ ]]; then
                v="${v}r/s"
            elif ! [[ $v =~ ^[1-9][0-9]*r/[sm]$ ]]; then
                die "$1 must be requests per second (20), or nginx's 20r/s or 600r/m (got '$v')"
            fi ;;
        *) is_uint "$v" || die "$1 must be a non-negative integer (got '$v')" ;;
    esac
    printf -v "$1" '%s' "$v"
}

# RATE_LIMITS_LIFTED=1 sets every limit to this (the benchmark and the fault suite measure the
# stack, not limit_req).
RATE_LIFTED=1000000

rate_limits() {  # each rate limit: RATE_LIFTED when RATE_LIMITS_LIFTED=1, else the first
                 # non-empty of RATE_ENV[NAME], $NAME, its default
    local s k
    for s in "${RATE_SETTINGS[@]}"; do
        k=${s%%=*}
        if [ "${RATE_LIMITS_LIFTED:-0}" = 1 ]; then
            # nginx's limit_conn takes at most 65535.
            if [ "$k" = STREAMS_PER_ADDR ]; then rate_set "$k" 65535; else rate_set "$k" "$RATE_LIFTED"; fi
        else
            rate_set "$k" "${RATE_ENV[$k]:-${!k:-${s#*=}}}"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# stack.conf: what `up` recorded

CONF_KEYS=(HTTP_PORT PG_PORT MC_PORT MC_LISTEN PG_MANAGED MC_MANAGED WORKERS CACHE_TTL_SECONDS LOG_LEVEL OPS_ALLOW CORS_ORIGINS
           "${RATE_KEYS[@]}" TRADING_API_BIN MANAGED_DATABASE_URL MANAGED_MEMCACHED_SERVERS)

file_value() {  # FILE KEY -> the value FILE (KEY=value lines, shell syntax) gives KEY, or empty
    [ -f "$1" ] || return 0
    (
        # shellcheck disable=SC1090
        . "$1"
        printf '%s' "${!2:-}"
    )
}

conf_get() { file_value "$CONF_FILE" "$1"; }

write_conf() {
    local k tmp="$CONF_FILE.tmp"
    (
        umask 077
        for k in "${CONF_KEYS[@]}"; do printf '%s=%q\n' "$k" "${!k:-}"; done >"$tmp"
    )
    mv -f "$tmp" "$CONF_FILE"
}

load_conf() {
    [ -f "$CONF_FILE" ] || die "no stack recorded in $RUN_DIR (run 'up' first)"
    local k
    for k in "${CONF_KEYS[@]}"; do unset "$k"; done
    # shellcheck disable=SC1090
    . "$CONF_FILE"
    derive_paths
}

# ---------------------------------------------------------------------------------------------
# stack.env: what clients of the stack need (sourced by scripts/test.sh, read by the tests)

ENV_KEYS=(BASE_URL DATABASE_URL JWT_SECRET_KEY MEMCACHED_SERVERS CACHE_TTL_SECONDS NCHAN_PUBLISH_SOCKET
          HTTP_PORT PG_PORT MC_PORT RUN_DIR "${RATE_KEYS[@]}" WORKERS CORS_ORIGINS)

env_line() {  # KEY VALUE, shell-quoted only when needed
    if [[ $2 =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
        printf '%s=%s\n' "$1" "$2"
    else
        printf '%s=%q\n' "$1" "$2"
    fi
}

write_env() {
    local k tmp="$ENV_FILE.tmp"
    (
        umask 077
        for k in "${ENV_KEYS[@]}"; do env_line "$k" "${!k}"; done >"$tmp"
    )
    mv -f "$tmp" "$ENV_FILE"
    log "wrote $ENV_FILE"
}

update_env() {  # KEY...: rewrite those lines of an existing stack.env with the current values
    [ -f "$ENV_FILE" ] || return 0
    local k
    for k in "$@"; do
        sed -i "s|^$k=.*|$(env_line "$k" "${!k}")|" "$ENV_FILE"
    done
}

# ---------------------------------------------------------------------------------------------
# Templates and secrets

render() {  # TEMPLATE OUT NAME...: OUT is TEMPLATE with each @NAME@ replaced by $NAME
    local tmp="$2.tmp" name value
    local -a expr=()
    for name in "${@:3}"; do
        value=${!name}
        value=${value//\\/\\\\}; value=${value//|/\\|}; value=${value//&/\\&}   # sed-safe
        expr+=(-e "s|@$name@|$value|g")
    done
    sed "${expr[@]}" "$1" >"$tmp"
    if grep -n '@[A-Z_]*@' "$tmp" >&2; then
        rm -f "$tmp"
        die "unreplaced placeholder in $1"
    fi
    mv -f "$tmp" "$2"
}

random_token() {  # N random bytes as hex
    od -An -tx1 -N "$1" /dev/urandom | tr -d ' \n'
}

secret_file() {  # FILE BYTES: read, or create once (0600)
    local f=$1
    if [ ! -s "$f" ]; then
        (umask 077 && random_token "$2" >"$f.tmp" && mv -f "$f.tmp" "$f")
        log "generated $f"
    fi
    chmod 600 "$f"
    cat "$f"
}

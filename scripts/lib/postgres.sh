# shellcheck shell=bash
# Postgres, sourced by scripts/stack.sh and bench/run.sh: the stack's own cluster in PGDATA
# (RUN_DIR/pgdata) run by the postgres user through pg_ctl (which keeps postmaster.pid), its
# configuration, the role and database, the migrations, and superuser queries over its socket.
# Needs: ROOT, log, die; RUN_DIR, LOG_DIR, PGDATA, PG_PORT, PG_SOCK_DIR, HOST_ADDR, CLIENT_NET (config.sh);
# secret_file (config.sh).

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}   # not /usr/local/bin: those are something else
PSQL="$PG_BINDIR/psql"
PG_ROLE=trading
PG_DB=trading
PG_REPLICATION_ROLE=replicator   # what a streaming replica connects as (PG_REPLICATION=1)

as_postgres() {  # run a command as postgres from a directory it can enter
    (cd / && runuser -u postgres -- "$@")
}

pg_query() {  # DB SQL: as the postgres superuser over the stack's socket; rows unaligned
    as_postgres "$PSQL" -X -At -q -h "$PG_SOCK_DIR" -p "$PG_PORT" -d "$1" -c "$2"
}

# The postgres user must be able to reach RUN_DIR/pgdata. CI clones into `mktemp -d` (0700):
# add o+x (traverse, not list) to each ancestor postgres cannot enter, and say so.
ensure_postgres_can_traverse() {
    local path=$1 d="" part
    local -a parts
    IFS=/ read -r -a parts <<<"${path#/}"
    for part in "${parts[@]}"; do
        d="$d/$part"
        [ -d "$d" ] || break
        if ! as_postgres test -x "$d"; then
            chmod o+x "$d"
            log "postgres could not traverse $d: added o+x (mode now $(stat -c %a "$d"))"
            as_postgres test -x "$d" || die "postgres still cannot traverse $d (owner/group ACL?)"
        fi
    done
}

pg_running() {
    [ -f "$PGDATA/PG_VERSION" ] && as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

pg_pid() {  # the postmaster's PID, when pg_ctl finds it running (it checks postmaster.pid)
    pg_running || return 1
    head -n1 "$PGDATA/postmaster.pid"
}

pg_prepare_dirs() {
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    # RUN_DIR and logs/: group postgres so the server can reach pgdata and its log; nobody else.
    chgrp postgres "$RUN_DIR" "$LOG_DIR"
    chmod 0750 "$RUN_DIR" "$LOG_DIR"
    ensure_postgres_can_traverse "$RUN_DIR"
    install -d -o postgres -g postgres -m 0700 "$PGDATA"
    install -d -o postgres -g postgres -m 0755 "$PG_SOCK_DIR"
    touch "$LOG_DIR/postgres.log"
    chown postgres:postgres "$LOG_DIR/postgres.log"
    chmod 0640 "$LOG_DIR/postgres.log"
}

pg_init() {
    [ -f "$PGDATA/PG_VERSION" ] && return 0
    [ -x "$PG_BINDIR/initdb" ] || die "$PG_BINDIR/initdb not found (apt-get install postgresql)"
    log "initdb $PGDATA"
    touch "$LOG_DIR/initdb.log" && chown postgres:postgres "$LOG_DIR/initdb.log"
    if ! as_postgres "$PG_BINDIR/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale \
            --auth-local=peer --auth-host=scram-sha-256 >>"$LOG_DIR/initdb.log" 2>&1; then
        tail -n 20 "$LOG_DIR/initdb.log" >&2
        die "initdb failed"
    fi
    echo "include_if_exists = 'trading.conf'" >>"$PGDATA/postgresql.conf"
}

pg_configure() {
    # Rewritten on every start: ports and paths follow the current configuration.
    cat >"$PGDATA/trading.conf" <<EOF
# Written by scripts/stack.sh: a small box, this stack only.
listen_addresses = '$HOST_ADDR'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK_DIR'
max_connections = 100
shared_buffers = 128MB
effective_cache_size = 512MB
work_mem = 4MB
maintenance_work_mem = 64MB
max_wal_size = 1GB
password_encryption = scram-sha-256
log_min_duration_statement = 500
# A client host that vanishes (cable, power) loses its sessions within ~11 s, and with them its
# advisory locks (the live stream's publisher, docs/SCALING.md).
tcp_keepalives_idle = 5
tcp_keepalives_interval = 2
tcp_keepalives_count = 3
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    cat >"$PGDATA/pg_hba.conf" <<EOF
# Written by scripts/stack.sh
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer
host    $PG_DB    $PG_ROLE  $CLIENT_NET   scram-sha-256
EOF
    if [ -n "${PG_REPLICATION:-}" ]; then   # streaming replicas may connect (pg_replication_role)
        printf 'host    replication  %s  %s   scram-sha-256\n' "$PG_REPLICATION_ROLE" "$CLIENT_NET" >>"$PGDATA/pg_hba.conf"
    fi
    chown postgres:postgres "$PGDATA/trading.conf" "$PGDATA/pg_hba.conf"
    chmod 0600 "$PGDATA/trading.conf" "$PGDATA/pg_hba.conf"
}

pg_start() {
    pg_prepare_dirs
    pg_init
    if pg_running; then
        log "postgres already running ($PGDATA)"
        return 0
    fi
    pg_configure
    log "starting postgres on $HOST_ADDR:$PG_PORT"
    if ! as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$LOG_DIR/postgres.log" -w -t 60 \
            start >/dev/null; then
        tail -n 20 "$LOG_DIR/postgres.log" >&2
        die "postgres did not start"
    fi
}

pg_stop() {
    if pg_running; then
        log "stopping postgres ($PGDATA)"
        as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
    fi
}

pg_ensure_role() {  # ROLE ATTRIBUTES PASSWORD: the role exists, with those attributes and that
                    # password (it travels on stdin, not the command line)
    as_postgres "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -d postgres <<EOF
SET client_min_messages = warning;
\\set pw '$3'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$1') AS need_role \\gset
\\if :need_role
CREATE ROLE $1 $2 PASSWORD :'pw';
\\else
ALTER ROLE $1 $2 PASSWORD :'pw';
\\endif
EOF
}

pg_bootstrap() {  # role and database; sets DATABASE_URL
    local pw
    pw=$(secret_file "$RUN_DIR/pg_password" 18)
    pg_ensure_role "$PG_ROLE" LOGIN "$pw"
    as_postgres "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -d postgres <<EOF
SET client_min_messages = warning;
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') AS need_db \\gset
\\if :need_db
CREATE DATABASE $PG_DB OWNER $PG_ROLE;
\\endif
EOF
    DATABASE_URL="postgresql://$PG_ROLE:$pw@$HOST_ADDR:$PG_PORT/$PG_DB"
}

wait_for_database() {
    local deadline=$((SECONDS + 30))
    until "$PSQL" -X -q -d "$DATABASE_URL" -c 'SELECT 1' >/dev/null 2>&1; do
        if [ $SECONDS -ge "$deadline" ]; then
            "$PSQL" -X -q -d "$DATABASE_URL" -c 'SELECT 1' >/dev/null || true
            die "database not reachable"
        fi
        sleep 0.5
    done
}

migrate() {  # the migrations this database lacks (scripts/migrate.sh)
    PSQL=$PSQL MIGRATIONS_DIR="$ROOT/sql/migrations" "$ROOT/scripts/migrate.sh" "$DATABASE_URL" || die "migrations failed"
}

# ---------------------------------------------------------------------------------------------
# Streaming replication (scripts/cluster.sh: the read replica of DATABASE_READ_URL)

pg_replication_role() {  # on the primary: the replication role; its password in RUN_DIR/pg_replication_password
    pg_ensure_role "$PG_REPLICATION_ROLE" "REPLICATION LOGIN" "$(secret_file "$RUN_DIR/pg_replication_password" 18)"
}

pg_start_replica() {  # PRIMARY_ADDR PRIMARY_PORT PASSWORD_FILE: a hot standby of that primary in
                      # PGDATA (pg_basebackup once, then it streams), started
    local primary=$1 port=$2 passfile="$RUN_DIR/pg_replication.pgpass"
    pg_prepare_dirs
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        # libpq's password file, readable by postgres only; primary_conninfo names it (-R).
        (umask 077; printf '%s:%s:*:%s:%s\n' "$primary" "$port" "$PG_REPLICATION_ROLE" "$(cat "$3")" >"$passfile")
        chown postgres:postgres "$passfile"
        log "pg_basebackup from $primary:$port into $PGDATA"
        touch "$LOG_DIR/pg_basebackup.log" && chown postgres:postgres "$LOG_DIR/pg_basebackup.log"
        if ! as_postgres env PGPASSFILE="$passfile" "$PG_BINDIR/pg_basebackup" -h "$primary" -p "$port" \
                -U "$PG_REPLICATION_ROLE" -D "$PGDATA" -R -X stream -c fast >>"$LOG_DIR/pg_basebackup.log" 2>&1; then
            tail -n 20 "$LOG_DIR/pg_basebackup.log" >&2
            die "pg_basebackup failed"
        fi
    fi
    if pg_running; then
        log "postgres replica already running ($PGDATA)"
        return 0
    fi
    pg_configure
    log "starting postgres replica of $primary:$port on $HOST_ADDR:$PG_PORT"
    if ! as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$LOG_DIR/postgres.log" -w -t 60 start >/dev/null; then
        tail -n 20 "$LOG_DIR/postgres.log" >&2
        die "postgres replica did not start"
    fi
}

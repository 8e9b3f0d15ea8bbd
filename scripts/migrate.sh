#!/usr/bin/env bash
# Applies the schema migrations (sql/migrations/NNN_*.sql, in name order) that a database lacks,
# each once, in its own transaction, recorded in schema_migrations. Concurrent runs wait for
# each other (an advisory lock). Used by scripts/stack.sh; installed by the Debian package as
# /usr/sbin/trading-api-migrate (migrations in /usr/share/trading-api/migrations).
#
#   migrate.sh [DATABASE_URL]     a libpq URI or connection string; default $DATABASE_URL
#   MIGRATIONS_DIR   the .sql files (default: sql/migrations beside this script's checkout,
#                    else /usr/share/trading-api/migrations)
#   PSQL             psql to run (default: psql on PATH)
# Prints one line per migration applied; exits non-zero, applying nothing more, on an error.
set -euo pipefail

die() { printf 'migrate: %s\n' "$*" >&2; exit 1; }

url=${1:-${DATABASE_URL:-}}
[ -n "$url" ] || die "usage: $(basename "$0") DATABASE_URL (or DATABASE_URL in the environment)"
here=$(dirname "$(readlink -f "$0")")
if [ -z "${MIGRATIONS_DIR:-}" ]; then
    for d in "$here/../sql/migrations" /usr/share/trading-api/migrations; do
        if [ -d "$d" ]; then MIGRATIONS_DIR=$d; break; fi
    done
fi
[ -d "${MIGRATIONS_DIR:-}" ] || die "no migrations directory (set MIGRATIONS_DIR)"
PSQL=${PSQL:-psql}

script=$(mktemp)
trap 'rm -f "$script"' EXIT
{
    echo 'SET client_min_messages = warning;'
    echo "SELECT pg_advisory_lock(hashtext('trading-api schema_migrations')) \\g /dev/null"
    echo 'CREATE TABLE IF NOT EXISTS schema_migrations (filename text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());'
    for f in "$MIGRATIONS_DIR"/*.sql; do
        [ -e "$f" ] || continue
        name=$(basename "$f")
        [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "unexpected migration file name: $name"
        cat <<SQL
BEGIN;
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE filename = '$name') AS pending \\gset
\\if :pending
\\echo '[migrate] applying $name'
\\i '$f'
INSERT INTO schema_migrations (filename) VALUES ('$name');
\\endif
COMMIT;
SQL
    done
} >"$script"
# -o /dev/null: query results (e.g. a migration's final SELECT) are not shown; \echo is.
"$PSQL" -X -q -v ON_ERROR_STOP=1 -o /dev/null -d "$url" -f "$script" >&2 || die "migrations failed"

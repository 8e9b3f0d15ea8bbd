#!/usr/bin/env bash
# Loads demo/benchmark data (sql/generate.sql) into DATABASE_URL.
#
#   scripts/generate-data.sh USERS ROWS_PER_USER [SEED]
#
# DATABASE_URL from the environment, else from $RUN_DIR/stack.env (RUN_DIR default .run).
# Idempotent: the same (USERS, ROWS_PER_USER, SEED) is not loaded twice. Timestamps are
# relative to the load time ("latest sync", "guards of the last 15 min"): FORCE=1 regenerates
# the dataset, MAX_AGE=N (seconds) regenerates it when it is older than that.
# Another dataset replaces the previously generated users.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PSQL="$PG_BINDIR/psql"
[ -x "$PSQL" ] || PSQL=psql

die() { echo "generate-data: $*" >&2; exit 1; }

if [ $# -lt 2 ] || [ $# -gt 3 ]; then die "usage: $0 USERS ROWS_PER_USER [SEED]"; fi
USERS=$1
ROWS=$2
SEED=${3:-${SEED:-42}}
FORCE=${FORCE:-0}
MAX_AGE=${MAX_AGE:-0}
for v in USERS ROWS SEED FORCE MAX_AGE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
if [ "$USERS" -lt 1 ] || [ "$USERS" -gt 16777215 ]; then die "USERS must be 1..16777215"; fi
if [ "$ROWS" -lt 1 ] || [ "$ROWS" -gt 10000000 ]; then die "ROWS_PER_USER must be 1..10000000"; fi
[ "$SEED" -le 2147483647 ] || die "SEED must fit in an integer"

if [ -z "${DATABASE_URL:-}" ]; then
    run_dir=${RUN_DIR:-.run}
    case "$run_dir" in /*) ;; *) run_dir="$ROOT/${run_dir#./}" ;; esac
    [ -f "$run_dir/stack.env" ] || die "DATABASE_URL is not set and $run_dir/stack.env does not exist"
    DATABASE_URL=$(sed -n 's/^DATABASE_URL=//p' "$run_dir/stack.env")
    [ -n "$DATABASE_URL" ] || die "no DATABASE_URL in $run_dir/stack.env"
fi

echo "generate-data: $USERS users x $ROWS rows per user (seed $SEED$([ "$FORCE" = 0 ] || echo ', forced'))" >&2
start=$(date +%s.%N)
"$PSQL" -X -q -v ON_ERROR_STOP=1 -v users="$USERS" -v rows_per_user="$ROWS" -v seed="$SEED" \
    -v force="$FORCE" -v max_age="$MAX_AGE" -d "$DATABASE_URL" -f "$ROOT/sql/generate.sql" >&2
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "generate-data: finished in %.1f s\n", e - s }' >&2

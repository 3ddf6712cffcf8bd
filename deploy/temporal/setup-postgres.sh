#!/bin/sh
# One-shot (temporalio/admin-tools): create Temporal's two databases and bring their
# schemas to the version this image ships. Safe to run on every `docker compose up`:
# `create` ignores an existing database, `setup-schema -v 0.0` keeps a newer version,
# and `update-schema` applies only what is missing.
set -eu
: "${POSTGRES_SEEDS:=postgresql}" "${DB_PORT:=5432}" "${POSTGRES_USER:=temporal}"
export SQL_PASSWORD="${SQL_PASSWORD:-$POSTGRES_PWD}"
SCHEMA=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$DB_PORT"
i=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do
  i=$((i + 1))
  [ "$i" -lt 30 ] || { echo "PostgreSQL never answered" >&2; exit 1; }
  sleep 2
done

tool() {  # tool <database> <command...>
  db=$1
  shift
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
    -u "$POSTGRES_USER" --db "$db" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*}
  dir=${pair#*:}
  echo "database $db"
  tool "$db" create
  tool "$db" setup-schema -v 0.0
  tool "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo "Temporal schema is up to date"

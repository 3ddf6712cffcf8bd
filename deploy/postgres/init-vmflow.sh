#!/bin/sh
# Run once by the postgres image on an empty data directory
# (/docker-entrypoint-initdb.d): the vmflow role and database, beside the databases
# Temporal's schema job creates. Changing VMFLOW_DB_PASSWORD later does not change
# the role's password: ALTER ROLE vmflow PASSWORD '...' does.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v vmflow_password="$VMFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE vmflow LOGIN PASSWORD :'vmflow_password';
CREATE DATABASE vmflow OWNER vmflow;
SQL

#!/bin/sh
# Patroni's post_bootstrap hook: runs once, on the member that initialised the cluster,
# with a connection URL to it as $1.  Creates the scheduler's database and the
# extension; the replicas get both by replication.
set -eu
psql -X -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
CREATE DATABASE jobs;
\c jobs
CREATE EXTENSION pg_dispatch;
SQL

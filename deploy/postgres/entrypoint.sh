#!/bin/sh
# The entry point of the PostgreSQL image deploy/build-postgres-image.sh makes: the official
# `postgres` image's contract, for what docker-compose.yml uses of it. On first start (no
# PG_VERSION in $PGDATA) it runs initdb with POSTGRES_USER as the superuser and POSTGRES_PASSWORD
# as its password (scram-sha-256 over TCP, trust on the local socket), creates POSTGRES_DB, then
# runs `postgres` listening on every address (arguments are passed on). It starts as root, gives
# $PGDATA to the user `postgres`, and runs the server as that user. Another command runs as is.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"  # another command (psql, pg_dump...): as asked
fi

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres: set POSTGRES_PASSWORD (the password of $POSTGRES_USER)" >&2
    exit 1
  fi
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  # A private socket and no TCP while the database is made: pg_isready (the health check)
  # answers only once the real server is up.
  init_socket="$(mktemp -d)"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$init_socket" \
    start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -h "$init_socket" -U "$POSTGRES_USER" -d postgres -q \
      -c "CREATE DATABASE \"$POSTGRES_DB\""
  fi
  pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
  rmdir "$init_socket"
  echo "postgres: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi

shift
exec postgres -c listen_addresses='*' "$@"

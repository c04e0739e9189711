#!/usr/bin/env bash
# sandbox_dst.sh - the sandbox's servers for the database sinks, as a sink
# uses them: herald_sink over TCP with the password from its file, on the
# destination MariaDB (creates a database and a table, writes, reads back)
# and on PostgreSQL (a table in herald_dst, by HERALD_PG_DSN); a wrong
# password is refused. Then dst-stop/dst-start and pg-stop/pg-start: each
# server is down in between, and back on the same port with the same data.
# Whatever happens, both servers run again at the end (later tests use
# them).
set -u
SB=$HERALD_SOURCE/scripts/sandbox
# shellcheck disable=SC1090
. "$HERALD_SANDBOX_ENV"
sb() { timeout 120 "$SB" "$1" --dir "$HERALD_SANDBOX_DIR" "${@:2}"; }
fail=0
bad() { fail=1; echo "FAIL: $*" >&2; }
for k in HERALD_DST_PORT HERALD_DST_USER HERALD_DST_PASSWORD_FILE HERALD_PG_PORT \
  HERALD_PG_USER HERALD_PG_PASSWORD_FILE HERALD_PG_DATABASE HERALD_PG_DSN HERALD_PG_BINDIR; do
  [ -n "${!k:-}" ] || { echo "FAIL: $HERALD_SANDBOX_ENV has no $k (start --dest --pg)" >&2; exit 1; }
done
[ "$HERALD_PG_DSN" = "host=127.0.0.1 port=$HERALD_PG_PORT dbname=herald_dst user=herald_sink" ] ||
  bad "HERALD_PG_DSN is '$HERALD_PG_DSN'"
db=sandbox_dst_$$
T=$(mktemp -d)
cleanup() {
  sb dst-start || fail=1
  sb pg-start || fail=1
  sb dst-sql -e "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  sb psql -q -c "DROP TABLE IF EXISTS $db" >/dev/null 2>&1
  rm -rf "$T"
}
trap 'cleanup; exit $fail' EXIT

# The passwords only from their files, never on a command line. libpq
# ignores a password file that others may read.
printf '[client]\npassword=%s\n' "$(cat "$HERALD_DST_PASSWORD_FILE")" >"$T/my.cnf"
printf '127.0.0.1:%s:%s:%s:%s\n' "$HERALD_PG_PORT" "$HERALD_PG_DATABASE" "$HERALD_PG_USER" \
  "$(cat "$HERALD_PG_PASSWORD_FILE")" >"$T/pgpass"
chmod 600 "$T/my.cnf" "$T/pgpass"
dst() {
  timeout 60 mariadb --defaults-file="$T/my.cnf" --protocol=TCP -h 127.0.0.1 -P "$HERALD_DST_PORT" \
    -u "$HERALD_DST_USER" --default-character-set=utf8mb4 -N "$@"
}
pg() {
  PGPASSFILE=$T/pgpass PGCLIENTENCODING=UTF8 timeout 60 "$HERALD_PG_BINDIR/psql" -X -w -q -A -t \
    -v ON_ERROR_STOP=1 -d "$HERALD_PG_DSN" "$@"
}
want_rows=$(printf '1\t😀\n2\tb')
check_data() { # when
  local got
  got=$(dst -e "SELECT @@port, @@server_id, @@log_bin")
  [ "$got" = "$(printf '%s\t2\t0' "$HERALD_DST_PORT")" ] ||
    bad "$1: destination port, server_id, log_bin are '$got', expected $HERALD_DST_PORT, 2, 0"
  got=$(dst -e "SELECT id, s FROM $db.t ORDER BY id")
  [ "$got" = "$want_rows" ] || bad "$1: destination rows '$got', expected '$want_rows'"
  got=$(pg -F "$(printf '\t')" -c "SELECT current_setting('port'), current_user, current_database()")
  [ "$got" = "$(printf '%s\therald_sink\therald_dst' "$HERALD_PG_PORT")" ] ||
    bad "$1: PostgreSQL port, user, database are '$got'"
  got=$(pg -F "$(printf '\t')" -c "SELECT id, s FROM $db ORDER BY id")
  [ "$got" = "$want_rows" ] || bad "$1: PostgreSQL rows '$got', expected '$want_rows'"
}

dst -e "CREATE DATABASE $db; CREATE TABLE $db.t (id INT PRIMARY KEY, s VARCHAR(20))
        CHARACTER SET utf8mb4; INSERT INTO $db.t VALUES (1, '😀'), (2, 'b')" ||
  bad "herald_sink could not create and fill a database on the destination"
pg -c "CREATE TABLE $db (id INT PRIMARY KEY, s TEXT)" \
  -c "INSERT INTO $db VALUES (1, '😀'), (2, 'b')" ||
  bad "herald_sink could not create and fill a table in herald_dst"
check_data "after start"
PGPASSWORD=wrong timeout 30 "$HERALD_PG_BINDIR/psql" -X -w -d "$HERALD_PG_DSN" -c 'SELECT 1' \
  >/dev/null 2>&1 && bad "PostgreSQL let herald_sink in with a wrong password"
timeout 30 mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$HERALD_DST_PORT" \
  -u "$HERALD_DST_USER" -pwrong -e 'SELECT 1' >/dev/null 2>&1 &&
  bad "the destination let herald_sink in with a wrong password"

sb dst-stop || bad "dst-stop failed"
dst -e 'SELECT 1' >/dev/null 2>&1 && bad "the destination still answers after dst-stop"
sb status >/dev/null 2>&1 && bad "status exits 0 with the destination stopped"
sb dst-start || bad "dst-start failed"
sb pg-stop || bad "pg-stop failed"
"$HERALD_PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$HERALD_PG_PORT" &&
  bad "PostgreSQL still accepts connections after pg-stop"
sb status >/dev/null 2>&1 && bad "status exits 0 with PostgreSQL stopped"
sb pg-start || bad "pg-start failed"
sb status >/dev/null || bad "status after dst-start and pg-start: $(sb status 2>&1 | tr '\n' ' ')"
check_data "after the restarts"

[ $fail = 0 ] && echo "sandbox dst and pg: ok"

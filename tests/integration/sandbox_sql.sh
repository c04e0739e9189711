#!/usr/bin/env bash
# sandbox_sql.sh - `scripts/sandbox sql` speaks utf8mb4: an emoji (outside
# the BMP, so not utf8mb3) goes in and comes back out, on the command line
# and on stdin; and a failing statement is a failing command.
set -u
SB=$HERALD_SOURCE/scripts/sandbox
db=sandbox_sql_$$
sql() { timeout 60 "$SB" sql --dir "$HERALD_SANDBOX_DIR" "$@"; }
trap 'sql -e "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
fail=0
bad() { fail=1; echo "FAIL: $*" >&2; }

sql -e "CREATE DATABASE $db; CREATE TABLE $db.t (id INT PRIMARY KEY,
        s VARCHAR(20)) CHARACTER SET utf8mb4" || bad "create"
sql -e "INSERT INTO $db.t VALUES (1, '😀 ok')" || bad "insert on the command line"
printf "INSERT INTO %s.t VALUES (2, '🦆');\n" "$db" | sql || bad "insert on stdin"
got=$(sql -N -e "SELECT id, s, HEX(s) FROM $db.t ORDER BY id")
want=$(printf '1\t😀 ok\tF09F9880206F6B\n2\t🦆\tF09FA686')
[ "$got" = "$want" ] || bad "read back '$got', expected '$want'"
sql -e "SELECT * FROM $db.no_such_table" 2>/dev/null && bad "a failing statement exited 0"
[ $fail = 0 ] && echo "sandbox sql: utf8mb4 ok"
exit $fail

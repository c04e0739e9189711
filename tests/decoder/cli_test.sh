#!/bin/sh
# cli_test.sh HERALDCTL DATA_DIR
#
# heraldctl decode's command line: usage errors, --tables, --from-pos,
# several files, gzip input, and the error report for missing, foreign,
# corrupt (checksum) and truncated files. DATA_DIR is tests/decoder/data.
set -u
H=$1
D=$2
T=$D/mariadb-10.11_types-fullmeta.000001
C=$D/mariadb-10.11_compressed.000003
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}
# run NAME EXPECTED_STATUS ARGS...: output in $tmp/out, $tmp/err
run() {
  name=$1 want=$2
  shift 2
  "$H" decode "$@" >"$tmp/out" 2>"$tmp/err"
  got=$?
  [ "$got" = "$want" ] || fail "$name: exit $got, want $want ($(head -c 300 "$tmp/err"))"
}
lines() { wc -l <"$1" | tr -d ' '; }

# --- usage ---
run help 0 --help
grep -q '^Usage: heraldctl decode' "$tmp/out" || fail "help: no usage text"
run bad-option 2 --bogus "$T"
[ "$(lines "$tmp/err")" = 1 ] || fail "bad-option: want one line on stderr"
grep -q "unknown option '--bogus'" "$tmp/err" || fail "bad-option: message"
run no-file 2
grep -q 'needs at least one FILE' "$tmp/err" || fail "no-file: message"
run bad-pos 2 --from-pos 12x "$T"
grep -q "from-pos" "$tmp/err" || fail "bad-pos: message"
run empty-pattern 2 --tables 'hbt.ck,' "$T"

# --- --tables ---
run tables-one 0 --tables hbt.ck "$T"
[ "$(lines "$tmp/out")" = 4 ] || fail "tables-one: want 4 lines, got $(lines "$tmp/out")"
[ "$(grep -c '"table":"ck"' "$tmp/out")" = 4 ] || fail "tables-one: other tables"
run tables-glob 0 --tables 'hbt.n*,hbt.t*' "$T"
# nums 4 + 1 delete, nopk 2, temporal 3, texts 2 + 1 update
[ "$(lines "$tmp/out")" = 13 ] || fail "tables-glob: want 13 lines, got $(lines "$tmp/out")"
grep -q '"table":"ints"' "$tmp/out" && fail "tables-glob: ints shown"
run tables-db 0 --tables hbt "$T"
[ "$(lines "$tmp/out")" = 26 ] || fail "tables-db: want 26 lines"
run tables-none 0 --ddl --tables 'other.*' "$T"
[ "$(lines "$tmp/out")" = 0 ] || fail "tables-none: want no lines"
# Schema changes by the tables they name: of the 12 statements of db hbt,
# DROP and CREATE DATABASE hbt (no table, database hbt) and CREATE TABLE ck;
# a whole-database pattern takes all 12.
run tables-ddl 0 --ddl --tables 'hbt.ck' "$T"
[ "$(grep -c '"op":"ddl"' "$tmp/out")" = 3 ] || fail "tables-ddl: want the 3 statements about hbt.ck"
grep -q '"statement":"CREATE TABLE ck ' "$tmp/out" || fail "tables-ddl: CREATE TABLE ck missing"
grep -q '"statement":"CREATE TABLE ints' "$tmp/out" && fail "tables-ddl: CREATE TABLE ints shown"
run tables-ddl-db 0 --ddl --tables 'hbt' "$T"
[ "$(grep -c '"op":"ddl"' "$tmp/out")" = 12 ] || fail "tables-ddl-db: want the 12 statements of db hbt"

# --- --from-pos: 13212 is the GTID event of 0-7-17, 13310 its TABLE_MAP ---
run from-start 0 --from-pos 13212 "$T"
head -1 "$tmp/out" | grep -q '"gtid":"0-7-17"' || fail "from-start: first transaction should be 0-7-17"
[ "$(lines "$tmp/out")" = 6 ] || fail "from-start: want 6 lines"
run from-inside 0 --from-pos 13310 "$T"
head -1 "$tmp/out" | grep -q '"gtid":"0-7-18"' || fail "from-inside: the cut transaction must be skipped"
[ "$(lines "$tmp/out")" = 5 ] || fail "from-inside: want 5 lines"

# --- several files, gzip ---
"$H" decode --ddl "$T" >"$tmp/t1" 2>/dev/null
"$H" decode --ddl "$C" >"$tmp/t2" 2>/dev/null
run two-files 0 --ddl "$T" "$C"
cat "$tmp/t1" "$tmp/t2" | cmp -s - "$tmp/out" || fail "two-files: not the concatenation"
grep -q '2 files' "$tmp/err" || fail "two-files: summary"
gzip -c "$T" >"$tmp/mariadb-10.11_types-fullmeta.000001.gz"
run gzip 0 --ddl "$tmp/mariadb-10.11_types-fullmeta.000001.gz"
cmp -s "$tmp/t1" "$tmp/out" || fail "gzip: output differs from the plain file's"

# --- errors: FILE:OFFSET: message, exit 1 ---
run missing 1 "$tmp/nonexistent.000001"
grep -q 'nonexistent.000001:0: cannot open' "$tmp/err" || fail "missing: message"
run foreign 1 "$0"
grep -q 'cli_test.sh:0: not a binlog file' "$tmp/err" || fail "foreign: message"

# A flipped byte inside the rows event at 13376 (transaction 0-7-17). The
# copy keeps the file name, which is part of the output.
mkdir "$tmp/bad"
B=$tmp/bad/mariadb-10.11_types-fullmeta.000001
cp "$T" "$B"
printf '\377' | dd of="$B" bs=1 seek=13400 conv=notrunc 2>/dev/null
run checksum 1 --ddl "$B"
grep -q '^mariadb-10.11_types-fullmeta.000001:13376: checksum mismatch in event type 23: stored 0x' "$tmp/err" ||
  fail "checksum: message ($(head -1 "$tmp/err"))"
# everything before the damaged transaction is printed
n=$(lines "$tmp/out")
head -n "$n" "$tmp/t1" | cmp -s - "$tmp/out" || fail "checksum: output is not a prefix"
grep -q '"gtid":"0-7-16"' "$tmp/out" || fail "checksum: 0-7-16 missing"
grep -q '"gtid":"0-7-17"' "$tmp/out" && fail "checksum: 0-7-17 printed"

# Truncated inside an event.
head -c 13400 "$T" >"$tmp/cut.000001"
run truncated 1 "$tmp/cut.000001"
grep -q '^cut.000001:13376: binlog ends inside an event (24 of ' "$tmp/err" ||
  fail "truncated: message ($(head -1 "$tmp/err"))"

# Ends on an event boundary inside a transaction: a warning for the last
# file, an error for an earlier one.
head -c 13376 "$T" >"$tmp/open.000001"
run open-last 0 "$tmp/open.000001"
grep -q 'open.000001:13376: binlog ends inside the transaction that began at offset 13212 (0 row changes not emitted) (warning' "$tmp/err" ||
  fail "open-last: warning ($(head -1 "$tmp/err"))"
run open-earlier 1 "$tmp/open.000001" "$C"
grep -q 'open.000001:13376: binlog ends inside the transaction' "$tmp/err" ||
  fail "open-earlier: message"

if [ "$fails" -ne 0 ]; then
  echo "$fails failures" >&2
  exit 1
fi
echo "ok: all heraldctl decode command-line checks passed"

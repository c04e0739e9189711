#!/usr/bin/env bash
# demo.sh BIN_DIR SOURCE_DIR - scripts/demo as a new user runs it: it
# prints changes and exits 0, stops everything it started, and when a part
# fails it says which, exits 1 and keeps the logs.
set -u
BIN=$1
SRC=$2
# Short, under /tmp: the sandbox's MariaDB socket lives below it.
T=$(mktemp -d /tmp/herald-demo-test.XXXXXX)
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# leftovers: the processes whose command line names $T (the demo passes
# its directory, under $T, to everything it starts).
leftovers() {
  local d p
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = $$ ] && continue
    tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF "$T/" && echo "$p"
  done
  return 0
}
cleanup() {
  local d p
  # Only if a demo failed to clean up after itself.
  for d in "$T"/herald-demo.*/sandbox; do
    [ -d "$d" ] && "$SRC/scripts/sandbox" stop --dir "$d" >/dev/null 2>&1
  done
  for p in $(leftovers); do kill -9 "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

# demo RC ARGS...: runs the demo (at most 180 s) with stdout in $T/out and
# stderr in $T/err.
demo() {
  local want=$1
  shift
  TMPDIR=$T timeout -k 30 180 "$SRC/scripts/demo" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "demo $* exited $rc, expected $want: $(tail -20 "$T/err")"; fi
  local left
  left=$(leftovers)
  if [ -z "$left" ]; then ok; else bad "demo $* left processes behind: $(ps -o pid,args -p "$(echo $left | tr ' ' ,)")"; fi
}

demo 0 --bin "$BIN" --seconds 8
# Every line is a change of shop.orders, inserts among them.
python3 - "$T/out" <<'EOF' && ok || bad "demo output: $(head -3 "$T/out")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 3, "only %d lines" % len(lines)
ops = set()
for l in lines:
    c = json.loads(l)
    assert c["source"]["db"] == "shop" and c["source"]["table"] == "orders", l
    ops.add(c["op"])
assert "c" in ops, ops
print("demo: %d changes, ops %s" % (len(lines), sorted(ops)))
EOF
grep -q '^demo: stopped everything$' "$T/err" && ok || bad "demo did not say it stopped: $(tail -3 "$T/err")"
[ -z "$(ls -d "$T"/herald-demo.* 2>/dev/null)" ] && ok || bad "demo left its directory: $(ls "$T")"

# A relay that cannot start: exit 1, its message shown, logs kept, and
# the sandbox stopped all the same.
mkdir -p "$T/fakebin"
ln -s "$BIN/heraldctl" "$T/fakebin/heraldctl"
printf '#!/bin/sh\necho "herald-relay: cannot open the log store (test)" >&2\nexit 1\n' >"$T/fakebin/herald-relay"
chmod +x "$T/fakebin/herald-relay"
demo 1 --bin "$T/fakebin" --seconds 8
grep -q 'cannot open the log store (test)' "$T/err" && ok || bad "the relay's message is not shown: $(tail -5 "$T/err")"
grep -q '^demo: relay-1 exited while starting' "$T/err" && ok || bad "the failing part is not named: $(tail -5 "$T/err")"
kept=$(ls -d "$T"/herald-demo.* 2>/dev/null | head -1)
[ -n "$kept" ] && [ -s "$kept/relay1.log" ] && [ -s "$kept/sandbox-logs/mariadb.log" ] && [ ! -e "$kept/sandbox" ] && ok ||
  bad "logs not kept, or the sandbox not stopped: $(ls -R "$T" | head -20)"

# Usage errors come before any work.
demo 2 --seconds
demo 2 --seconds 0
demo 2 --bogus
demo 0 --help
grep -q '^Usage: scripts/demo' "$T/out" && ok || bad "demo --help: $(head -2 "$T/out")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

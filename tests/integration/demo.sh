#!/usr/bin/env bash
# demo.sh BIN_DIR SOURCE_DIR - scripts/demo as a new user runs it: the
# whole pipeline for 20 s with an agent killed (kill -9) and restarted on
# the way, then the destination equal to the source, the lag table shown,
# exit 0 and nothing left running; when a part fails it says which, exits
# 1, keeps the logs and stops the rest.
set -u
BIN=$1
SRC=$2
# Short, under /tmp: the sandbox's MariaDB sockets live below it.
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
    tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF "$T/" && echo "$p"
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

# demo RC ARGS...: runs the demo (at most 240 s) with stdout in $T/out and
# stderr in $T/err; while it runs, console_check (when set) looks at the
# console whose URL it prints.
console_check=0
demo() {
  local want=$1
  shift
  TMPDIR=$T timeout -k 30 240 "$SRC/scripts/demo" "$@" >"$T/out" 2>"$T/err" &
  local pid=$! url=""
  if [ "$console_check" = 1 ]; then
    for _ in $(seq 1 600); do
      url=$(sed -n 's|^console: *\(http://127\.0\.0\.1:[0-9]*/\)$|\1|p' "$T/out" | head -1)
      [ -n "$url" ] || ! kill -0 "$pid" 2>/dev/null && break
      sleep 0.2
    done
    # The page the URL names is the console (HTML that loads its script).
    curl -sf --max-time 5 "$url" | grep -q 'console.js' && ok || bad "no console at '$url'"
  fi
  local rc=0
  wait "$pid" || rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "demo $* exited $rc, expected $want: $(tail -20 "$T/err"; tail -5 "$T/out")"; fi
  local left
  left=$(leftovers)
  if [ -z "$left" ]; then ok; else bad "demo $* left processes behind: $(ps -o pid,args -p "$(echo $left | tr ' ' ,)")"; fi
}

console_check=1
demo 0 --bin "$BIN" --seconds 20 --kill-agent-at 6
console_check=0
# The last line: every table of the shop equal, with rows in each.
last=$(tail -1 "$T/out")
[[ $last =~ ^destination\ equals\ source:\ customers\ [1-9][0-9]*\ rows.*products\ 50\ rows.*orders\ [1-9][0-9]*\ rows.*order_lines\ [1-9][0-9]*\ rows ]] && ok ||
  bad "no equality line: $last"
# Frames every 2 s (not a terminal: plain blocks), each with the console's
# URL, heraldctl lag's table and the row counts; changes flowed (the
# destination had order lines before the writer stopped).
frames=$(grep -c '^--- herald demo, [0-9]* s:' "$T/out")
[ "$frames" -ge 8 ] && ok || bad "only $frames frames: $(head -12 "$T/out")"
grep -Eq '^console: +http://127\.0\.0\.1:[0-9]+/$' "$T/out" && ok || bad "no console URL: $(head -4 "$T/out")"
grep -Eq '^rows, source/destination: .*order_lines [1-9][0-9]*/[1-9][0-9]*;' "$T/out" && ok ||
  bad "no rows at the destination while writing: $(grep '^rows' "$T/out" | tail -3)"
# heraldctl lag answered every time after the start (a leader elected),
# and its table shows partitions OK.
errs=$(grep -c '^(heraldctl lag exited' "$T/out")
[ "$errs" -le 1 ] && ok || bad "heraldctl lag failed $errs times: $(grep -B3 -m2 '^(heraldctl lag exited' "$T/out")"
grep -q 'OK' <(sed -n '/^\$ heraldctl lag/,/^rows/p' "$T/out") && ok ||
  bad "no lag table with a partition OK: $(sed -n '/^\$ heraldctl lag/,/^rows/p' "$T/out" | tail -12)"
sed -n '/(after the catch-up)$/,$p' "$T/out" | grep -q '^(heraldctl lag exited' && bad "heraldctl lag failed after the catch-up" || ok
# The kill -9 and its figures (the console's lag, the time until OK).
grep -q '^demo: [0-9]* s: kill -9 of agent-2' "$T/err" && grep -q '^demo: [0-9]* s: agent-2 started again' "$T/err" && ok ||
  bad "no kill -9 and restart of agent-2: $(grep kill "$T/err")"
grep -Eq '^kill -9 of agent-2: the console showed lag up to [0-9.]+ s' "$T/out" && ok ||
  bad "no figures for the kill -9: $(grep 'kill -9' "$T/out" | tail -2)"
grep '^kill -9 of agent-2:' "$T/out" | tail -1 | sed 's/^/demo: /'
grep -q '^demo: stopped everything$' "$T/err" && ok || bad "demo did not say it stopped: $(tail -3 "$T/err")"
[ -z "$(ls -d "$T"/herald-demo.* 2>/dev/null)" ] && ok || bad "demo left its directory: $(ls "$T")"

# fakebin PROGRAM: a directory of the real programs but PROGRAM, which
# fails at once with a message.
fakebin() {
  rm -rf "$T/fakebin"
  mkdir -p "$T/fakebin"
  local p
  for p in herald-relay herald-coordinator herald-agent heraldctl; do
    ln -s "$BIN/$p" "$T/fakebin/$p"
  done
  rm "$T/fakebin/$1"
  printf '#!/bin/sh\necho "%s: cannot start (test)" >&2\nexit 1\n' "$1" >"$T/fakebin/$1"
  chmod +x "$T/fakebin/$1"
}
# failed PART PROGRAM LOGS...: the demo's message names PART and shows
# PROGRAM's; PART's log (with the message) and the others (the parts that
# were running, quiet by default, so perhaps empty) are kept, the sandbox
# stopped; the kept directory is removed afterwards.
failed() {
  local part=$1 prog=$2 kept f
  shift 2
  grep -q "$prog: cannot start (test)" "$T/err" && ok || bad "$prog's message is not shown: $(tail -5 "$T/err")"
  grep -q "^demo: $part exited while starting" "$T/err" && ok || bad "the failing part is not named: $(tail -5 "$T/err")"
  kept=$(ls -d "$T"/herald-demo.* 2>/dev/null | head -1)
  [ -n "$kept" ] && grep -q "$prog: cannot start (test)" "$kept/$part.log" && ok || bad "$part.log not kept: $(ls -R "$T" | head -20)"
  for f in "$@" sandbox-logs/mariadb.log sandbox-logs/destination.log sandbox-logs/zk1.log; do
    [ -n "$kept" ] && [ -f "$kept/$f" ] && ok || bad "log $f not kept: $(ls -R "$T" | head -20)"
  done
  [ -n "$kept" ] && [ ! -e "$kept/sandbox" ] && ok || bad "the sandbox not stopped: $(ls "$kept")"
  rm -rf "$kept"
}
# A relay that cannot start: the first part after the sandbox.
fakebin herald-relay
demo 1 --bin "$T/fakebin" --seconds 8
failed relay-1 herald-relay
# An agent that cannot start: the relays and coordinators are stopped too.
fakebin herald-agent
demo 1 --bin "$T/fakebin" --seconds 8
failed agent-1 herald-agent relay-1.log relay-2.log coord-1.log coord-2.log

# Usage errors come before any work.
demo 2 --seconds
demo 2 --seconds 0
demo 2 --bogus
demo 2 --seconds 10 --kill-agent-at 10
demo 0 --help
grep -q '^Usage: scripts/demo' "$T/out" && ok || bad "demo --help: $(head -2 "$T/out")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

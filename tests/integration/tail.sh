#!/usr/bin/env bash
# tail.sh BIN_DIR - heraldctl tail's usage errors and what it says about a
# peer that is not a relay. Needs no sandbox: the relay it starts points at
# a source port nothing listens on, which still brings up its consumer and
# HTTP ports.
set -u
BIN=$1
T=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# run EXPECTED_RC CMD... : runs CMD (at most 30 s), keeps stdout/stderr in
# $T/out and $T/err
run() {
  local want=$1
  shift
  timeout 30 "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$* exited $rc, expected $want: $(head -3 "$T/err")"; fi
}
one_line_err() {
  if [ "$(wc -l <"$T/err")" = 1 ]; then ok; else bad "$1: stderr is not one line: $(cat "$T/err")"; fi
}
err_matches() {
  if grep -Eq -- "$2" "$T/err"; then ok; else bad "$1: stderr '$(cat "$T/err")' does not match '$2'"; fi
}

# --columns: every malformed spec is a one-line usage error, never a crash
# (a spec without ':' used to free protobuf-c's static empty string).
for spec in t1.items t1.items: :a items:a 't1.items:a,,b' 'a.b:x' ; do
  args=(--columns "$spec")
  # A good spec after a bad one, and a bad one after a good one.
  [ "$spec" = a.b:x ] && args=(--columns a.b:x --columns t1.items)
  run 2 "$BIN/heraldctl" tail --relay 127.0.0.1:1 "${args[@]}"
  one_line_err "tail ${args[*]}"
  err_matches "tail ${args[*]}" "^heraldctl tail: --columns: "
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

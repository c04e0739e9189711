#!/usr/bin/env bash
# cli.sh BIN_DIR SOURCE_DIR - every program's command-line conventions and
# the config validator, run as a user would run them.
set -u
BIN=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# run EXPECTED_RC CMD... : runs CMD, keeps stdout/stderr in $T/out, $T/err
run() {
  local want=$1
  shift
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$* exited $rc, expected $want: $(head -3 "$T/err")"; fi
}
one_line_err() { # the error is exactly one line
  if [ "$(wc -l <"$T/err")" = 1 ]; then ok; else bad "$1: stderr is not one line: $(cat "$T/err")"; fi
}
err_matches() {
  if grep -Eq -- "$2" "$T/err"; then ok; else bad "$1: stderr '$(cat "$T/err")' does not match '$2'"; fi
}

for p in herald-relay herald-agent herald-coordinator heraldctl; do
  run 0 "$BIN/$p" --help
  grep -q '^Usage: ' "$T/out" && ok || bad "$p --help: no usage"
  run 0 "$BIN/$p" --version
  grep -Eq "^$p \(herald\) [0-9]+\.[0-9]+\.[0-9]+$" "$T/out" && ok || bad "$p --version: $(cat "$T/out")"
  run 2 "$BIN/$p" --no-such-option
  one_line_err "$p --no-such-option"
  err_matches "$p --no-such-option" "^$p: unknown option '--no-such-option'"
  run 2 "$BIN/$p" -Z
  one_line_err "$p -Z"
done

# Daemons: --config is required; a missing argument is a usage error.
for p in herald-relay herald-agent herald-coordinator; do
  run 2 "$BIN/$p"
  one_line_err "$p without --config"
  run 2 "$BIN/$p" --config
  one_line_err "$p --config without FILE"
  err_matches "$p --config" "needs an argument"
done
run 0 "$BIN/herald-relay" --check-config -c "$SRC/config/relay.yaml"
run 0 "$BIN/herald-agent" --check-config -c "$SRC/config/agent.yaml"
run 0 "$BIN/herald-coordinator" --check-config -c "$SRC/config/coordinator.yaml"
# A relay config is not an agent config.
run 2 "$BIN/herald-agent" --check-config -c "$SRC/config/relay.yaml"
err_matches "agent with relay config" "relay.yaml:[0-9]+:[0-9]+: unknown key"

# heraldctl validate-config: every example passes; each broken file gets
# FILE:LINE:COLUMN on one line and exit 2.
run 0 "$BIN/heraldctl" validate-config "$SRC"/config/*.yaml
[ "$(grep -c ': ok (' "$T/out")" = 3 ] && ok || bad "validate-config examples: $(cat "$T/out")"
run 2 "$BIN/heraldctl" frobnicate
one_line_err "heraldctl frobnicate"

# Every subcommand: --help anywhere is usage on stdout and exit 0; an
# unknown option is one line on stderr and exit 2.
for sub in validate-config config-doc decode tail status lag checkpoint drain zk-secure; do
  run 0 "$BIN/heraldctl" "$sub" --help
  grep -q "^Usage: heraldctl $sub" "$T/out" && ok || bad "heraldctl $sub --help: no usage: $(head -2 "$T/out")"
  for o in --no-such-option -Z; do
    run 2 "$BIN/heraldctl" "$sub" "$o"
    one_line_err "heraldctl $sub $o"
    err_matches "heraldctl $sub $o" "^heraldctl $sub: unknown option '$o'"
  done
done
run 0 "$BIN/heraldctl" config-doc relay --help
run 0 "$BIN/heraldctl" validate-config "$SRC/config/relay.yaml" --help
run 2 "$BIN/heraldctl" config-doc relay agent
one_line_err "config-doc relay agent"
run 2 "$BIN/heraldctl" config-doc nosuchkind
err_matches "config-doc nosuchkind" "unknown kind 'nosuchkind'"
run 0 "$BIN/heraldctl" config-doc coordinator
grep -q '^# coordinator configuration' "$T/out" && ok || bad "config-doc coordinator: $(head -1 "$T/out")"
# docs/configuration.md is config-doc's output, unedited.
run 0 "$BIN/heraldctl" config-doc
cmp -s "$T/out" "$SRC/docs/configuration.md" && ok ||
  bad "docs/configuration.md differs from heraldctl config-doc (regenerate it): $(diff "$T/out" "$SRC/docs/configuration.md" | head -5)"
run 2 "$BIN/heraldctl" tail --relay 127.0.0.1:1 stray
one_line_err "tail with a stray argument"
run 2 "$BIN/heraldctl" validate-config
one_line_err "validate-config without FILE"

# The scripts (scripts/test aside): --help is usage on stdout and exit 0;
# an unknown argument is one line on stderr and exit 2, before any work.
for s in sandbox setup demo; do
  run 0 "$SRC/scripts/$s" --help
  grep -q "^Usage: scripts/$s" "$T/out" && ok || bad "scripts/$s --help: no usage: $(head -2 "$T/out")"
  run 2 "$SRC/scripts/$s" --no-such-option
  one_line_err "scripts/$s --no-such-option"
done
run 2 "$SRC/scripts/setup" --build-dir
one_line_err "setup --build-dir without DIR"
run 2 "$SRC/scripts/setup" stray
one_line_err "setup stray"
for a in --seconds "--seconds 0" "--seconds x" "--seconds 10 stray" --bin "--bin $T/nobin"; do
  # shellcheck disable=SC2086
  run 2 "$SRC/scripts/demo" $a
  one_line_err "demo $a"
done
run 2 "$SRC/scripts/sandbox"
one_line_err "sandbox without COMMAND"
run 2 "$SRC/scripts/sandbox" frobnicate
one_line_err "sandbox frobnicate"
for c in start stop status env dir sql zk-stop zk-start mdb-stop mdb-start \
  dst-sql dst-stop dst-start psql pg-stop pg-start; do
  run 0 "$SRC/scripts/sandbox" "$c" --help
  grep -q '^Usage: scripts/sandbox' "$T/out" && ok || bad "sandbox $c --help: no usage"
done
for c in start stop status env dir mdb-stop mdb-start dst-stop dst-start pg-stop pg-start; do
  run 2 "$SRC/scripts/sandbox" "$c" --bogus --dir "$T/nosb"
  one_line_err "sandbox $c --bogus"
  err_matches "sandbox $c --bogus" "^sandbox: $c: unknown argument '--bogus'"
done
run 2 "$SRC/scripts/sandbox" start --zk 2 --dir "$T/nosb"
one_line_err "sandbox start --zk 2"
run 2 "$SRC/scripts/sandbox" start --dir
one_line_err "sandbox start --dir without DIR"
run 2 "$SRC/scripts/sandbox" stop --zk 3 --dir "$T/nosb"
one_line_err "sandbox stop --zk 3"
for o in --dest --pg; do
  run 2 "$SRC/scripts/sandbox" stop "$o" --dir "$T/nosb"
  err_matches "sandbox stop $o" "^sandbox: stop: $o is an option of start"
done
run 2 "$SRC/scripts/sandbox" zk-stop --dir "$T/nosb"
one_line_err "sandbox zk-stop without N"
run 2 "$SRC/scripts/sandbox" zk-stop one --dir "$T/nosb"
one_line_err "sandbox zk-stop one"
[ ! -e "$T/nosb" ] && ok || bad "a refused sandbox command made $T/nosb"

# Each checkout has its own default sandbox directory (two copies of the
# script stand for two checkouts); --dir and HERALD_SANDBOX_DIR still win.
for co in co1 co2; do
  mkdir -p "$T/$co/scripts"
  cp "$SRC/scripts/sandbox" "$T/$co/scripts/"
done
d1=$(env -u HERALD_SANDBOX_DIR "$T/co1/scripts/sandbox" dir)
d2=$(env -u HERALD_SANDBOX_DIR "$T/co2/scripts/sandbox" dir)
d0=$(env -u HERALD_SANDBOX_DIR "$SRC/scripts/sandbox" dir)
[ -n "$d1" ] && [ "$d1" != "$d2" ] && [ "$d1" != "$d0" ] && [ "$d2" != "$d0" ] && ok ||
  bad "default sandbox dirs are not per checkout: '$d0' '$d1' '$d2'"
[ "$(env -u HERALD_SANDBOX_DIR "$T/co1/scripts/sandbox" dir)" = "$d1" ] && ok || bad "default sandbox dir is not stable"
[ "$("$T/co1/scripts/sandbox" dir --dir "$T/x")" = "$T/x" ] && ok || bad "sandbox dir --dir"
[ "$(HERALD_SANDBOX_DIR=$T/y "$T/co1/scripts/sandbox" dir)" = "$T/y" ] && ok || bad "HERALD_SANDBOX_DIR"

# stop refuses a sandbox that another checkout made: its "MariaDB" (a
# sleep) must survive, and its files stay; --force stops it.
mkdir -p "$T/other/mariadb"
printf 'checkout=/elsewhere/herald\n' >"$T/other/.herald-sandbox"
printf 'HERALD_MDB_PORT=1\n' >"$T/other/sandbox.env"
sleep 60 &
victim=$!
echo "$victim" >"$T/other/mariadb/mysqld.pid"
for c in stop mdb-stop dst-stop pg-stop; do
  run 1 "$SRC/scripts/sandbox" "$c" --dir "$T/other"
  one_line_err "sandbox $c of another checkout's sandbox"
  err_matches "sandbox $c of another checkout's" "belongs to the checkout /elsewhere/herald, not to "
done
kill -0 "$victim" 2>/dev/null && [ -f "$T/other/sandbox.env" ] && ok || bad "sandbox stop touched another checkout's sandbox"
run 0 "$SRC/scripts/sandbox" stop --force --dir "$T/other"
sleep 0.2
! kill -0 "$victim" 2>/dev/null && [ ! -e "$T/other" ] && ok || bad "sandbox stop --force did not stop it"
kill "$victim" 2>/dev/null
wait "$victim" 2>/dev/null
# A stale one (its servers gone) is not start's to clear away either.
mkdir -p "$T/other"
printf 'checkout=/elsewhere/herald\n' >"$T/other/.herald-sandbox"
printf 'HERALD_MDB_PORT=1\n' >"$T/other/sandbox.env"
run 1 "$SRC/scripts/sandbox" start --dir "$T/other"
err_matches "sandbox start over another checkout's stale sandbox" "belongs to the checkout /elsewhere/herald"
[ -f "$T/other/sandbox.env" ] && ok || bad "sandbox start removed another checkout's sandbox"

# Nor does it remove a directory that is not a sandbox at all.
mkdir -p "$T/notsb"
echo precious >"$T/notsb/file"
for c in stop start; do
  run 1 "$SRC/scripts/sandbox" "$c" --dir "$T/notsb"
  err_matches "sandbox $c of a plain directory" "has no .herald-sandbox marker"
done
[ -f "$T/notsb/file" ] && ok || bad "sandbox removed a directory that was not a sandbox"

check_bad() { # NAME EXPECTED_REGEX CONTENT
  printf '%b' "$3" >"$T/$1.yaml"
  run 2 "$BIN/heraldctl" validate-config "$T/$1.yaml"
  one_line_err "$1"
  err_matches "$1" "^$T/$1.yaml:$2"
}
check_bad syntax '3:1: YAML syntax error' 'cluster: x\nrelay: [\n'
check_bad tab '2:1: YAML syntax error' 'cluster: x\n\trelay: 1\n'
check_bad unknown_kind '1:1: cannot tell what this config is for' 'cluster: x\n'
check_bad size '4:17: relay.buffer_bytes: expected a size' 'cluster: x\nrelay:\n  id: r\n  buffer_bytes: lots\n'
check_bad duration '4:14: relay.retention: expected a duration' 'cluster: x\nrelay:\n  id: r\n  retention: 3 days\n'
check_bad unknown_key '3:3: unknown key .relay.idd.' 'cluster: x\nrelay:\n  idd: r\n'
check_bad missing '2:1: missing required key .relay.id.' 'cluster: x\nrelay:\n  listen: 127.0.0.1:1\n'
check_bad port '3:11: relay.listen: expected host:port' 'cluster: x\nrelay:\n  listen: 127.0.0.1:99999\n'
check_bad binary '1:1: ' '\0\1\2'
# A wildcard listen address with zookeeper needs relay.advertise: refused
# by the validator and by the relay itself (exit 2, before it starts).
relay_conf() { # ZK LISTEN [ADVERTISE]: a complete relay config on stdout
  printf 'cluster: x\n'
  [ "$1" = zk ] && printf 'zookeeper: {hosts: "127.0.0.1:2181"}\n'
  printf 'relay:\n  id: r\n  listen: "%s"\n' "$2"
  [ $# -ge 3 ] && printf '  advertise: "%s"\n' "$3"
  printf '  http: 127.0.0.1:7480\n  data_dir: %s/nodata\n' "$T"
  printf 'source: {name: s, host: h, user: u, password: p, server_id: 1}\n'
}
relay_conf zk 0.0.0.0:7400 >"$T/wild.yaml"
for cmd in "$BIN/heraldctl validate-config" "$BIN/herald-relay --check-config -c" "$BIN/herald-relay -c"; do
  # shellcheck disable=SC2086
  run 2 $cmd "$T/wild.yaml"
  one_line_err "$cmd with a wildcard listen and zookeeper"
  err_matches "$cmd with a wildcard listen" "^$T/wild.yaml:5:3: relay.listen: 0.0.0.0:7400 is a wildcard address, which no client can dial: with zookeeper, set relay.advertise to the host:port clients use$"
done
[ ! -e "$T/nodata" ] && ok || bad "herald-relay made its data dir before refusing the config"
relay_conf zk '[::]:7400' >"$T/wild6.yaml"
run 2 "$BIN/heraldctl" validate-config "$T/wild6.yaml"
err_matches "listen [::] with zookeeper" "relay.listen: \[::\]:7400 is a wildcard address.*relay.advertise"
relay_conf zk 0.0.0.0:7400 relay1.example.com:7400 >"$T/advertised.yaml"
run 0 "$BIN/heraldctl" validate-config "$T/advertised.yaml"
relay_conf nozk 0.0.0.0:7400 >"$T/alone.yaml"
run 0 "$BIN/heraldctl" validate-config "$T/alone.yaml"
relay_conf nozk 127.0.0.1:7400 0.0.0.0:7400 >"$T/wildadv.yaml"
run 2 "$BIN/heraldctl" validate-config "$T/wildadv.yaml"
err_matches "a wildcard advertise" "^$T/wildadv.yaml:5:3: relay.advertise: 0.0.0.0:7400 is a wildcard address"
check_bad handshake_range '4:22: relay.handshake_timeout: below the minimum of 100ms' 'cluster: x\nrelay:\n  id: r\n  handshake_timeout: 1ms\n'
check_bad budget_range '4:21: relay.disk_read_budget: below the minimum of 1MiB' 'cluster: x\nrelay:\n  id: r\n  disk_read_budget: 1KiB\n'
run 2 "$BIN/heraldctl" validate-config "$T/does-not-exist.yaml"
err_matches "missing file" "does-not-exist.yaml: cannot open: No such file"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

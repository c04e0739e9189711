#!/bin/sh
# check_decode.sh HERALDCTL BINLOG EXPECTED EVENTS [OPTIONS...]
#
# Decodes BINLOG with `heraldctl decode --ddl [OPTIONS]` and requires exit
# status 0, stdout byte-identical to EXPECTED (a .jsonl file, or .jsonl.gz
# for large outputs), and a summary on stderr saying that EVENTS events
# were decoded (so that every event of the file was read).
set -eu
heraldctl=$1 binlog=$2 expected=$3 events=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$heraldctl" decode --ddl "$@" "$binlog" >"$tmp/out" 2>"$tmp/err"; then
  echo "FAIL: heraldctl decode $binlog exited $?" >&2
  cat "$tmp/err" >&2
  exit 1
fi
case $expected in
*.gz) gzip -dc "$expected" >"$tmp/exp" ;;
*) cp "$expected" "$tmp/exp" ;;
esac
if ! cmp -s "$tmp/exp" "$tmp/out"; then
  echo "FAIL: output of $binlog differs from $expected:" >&2
  diff "$tmp/exp" "$tmp/out" | head -20 | cut -c1-300 >&2
  exit 1
fi
if ! grep -q "^heraldctl decode: 1 file, $events events, " "$tmp/err"; then
  echo "FAIL: want a summary with $events events on stderr" >&2
  cat "$tmp/err" >&2
  exit 1
fi
echo "ok: $(wc -l <"$tmp/out") lines as expected"

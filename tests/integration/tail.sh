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

# free_ports N: N loopback ports free right now (bound, then let go).
free_ports() {
  python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
# wait_port PORT PID: until PORT accepts connections (at most 20 s), or
# PID has exited.
wait_port() {
  local _
  for _ in $(seq 1 200); do
    nc -z 127.0.0.1 "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

read -r LISTEN HTTP SRC HTTPD SILENT <<<"$(free_ports 5)"
mkdir -p "$T/relay"
printf 'x' >"$T/relay/pw"
cat >"$T/relay/relay.yaml" <<EOF
cluster: tailtest
relay:
  id: tail-test
  listen: 127.0.0.1:$LISTEN
  http: 127.0.0.1:$HTTP
  data_dir: $T/relay/data
source:
  name: nothing
  host: 127.0.0.1
  port: $SRC
  user: nobody
  password_file: $T/relay/pw
  server_id: 77
EOF
"$BIN/herald-relay" -c "$T/relay/relay.yaml" 2>"$T/relay/log" &
PIDS+=($!)
if ! wait_port "$HTTP" "${PIDS[0]}" || ! wait_port "$LISTEN" "${PIDS[0]}"; then
  bad "the relay did not start: $(tail -5 "$T/relay/log")"
fi

# The relay's consumer port answers with heartbeats: no handshake error,
# only --timeout (which heartbeats do not satisfy) ends the tail.
run 1 "$BIN/heraldctl" tail --relay "127.0.0.1:$LISTEN" --connect-timeout 2 --timeout 3
err_matches "tail on the consumer port" "^heraldctl tail: nothing from 127.0.0.1:$LISTEN for 3 s"

# The relay's HTTP port waits for a request line and never answers a
# frame: tail gives up after --connect-timeout and names the address.
t0=$(date +%s)
run 1 "$BIN/heraldctl" tail --relay "127.0.0.1:$HTTP" --connect-timeout 2
one_line_err "tail on the HTTP port"
err_matches "tail on the HTTP port" "^heraldctl tail: 127.0.0.1:$HTTP sent nothing within 2 s of connecting: not a herald relay"
[ $(($(date +%s) - t0)) -le 5 ] && ok || bad "tail on the HTTP port took $(($(date +%s) - t0)) s"

# Servers that are not relays: one answers HTTP at once (a length prefix
# of 'HTTP', over 1 GiB) and hangs up, one sends a plausible length and
# then nothing.
python3 -c '
import socket, sys, threading
def serve(port, reply, close):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen()
    held = []
    while True:
        c, _ = ls.accept()
        c.sendall(reply)
        if close:
            c.close()
        else:
            held.append(c)
http, silent = int(sys.argv[1]), int(sys.argv[2])
threading.Thread(target=serve, daemon=True,
                 args=(silent, b"\x00\x00\x10\x00half a frame", False)).start()
serve(http, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", True)
' "$HTTPD" "$SILENT" &
PIDS+=($!)
wait_port "$HTTPD" "${PIDS[1]}" && wait_port "$SILENT" "${PIDS[1]}" || bad "the python servers did not start"
run 1 "$BIN/heraldctl" tail --relay "127.0.0.1:$HTTPD" --connect-timeout 5
one_line_err "tail on an HTTP server"
err_matches "tail on an HTTP server" "^heraldctl tail: 127.0.0.1:$HTTPD is not a herald relay: it sent 'HTTP/1.1 400 Bad Request'"
run 1 "$BIN/heraldctl" tail --relay "localhost:$HTTPD" --connect-timeout 5
err_matches "tail on localhost" "^heraldctl tail: localhost:$HTTPD is not a herald relay"
run 1 "$BIN/heraldctl" tail --relay "127.0.0.1:$SILENT" --connect-timeout 2
one_line_err "tail on a half frame"
err_matches "tail on a half frame" "^heraldctl tail: 127.0.0.1:$SILENT is not a herald relay: it sent '\\\\x00\\\\x00\\\\x10\\\\x00half a frame', then nothing for 2 s"

# Nothing listening, and usage errors of the option itself.
run 1 "$BIN/heraldctl" tail --relay "127.0.0.1:$SRC"
err_matches "tail on a closed port" "^heraldctl tail: cannot connect to 127.0.0.1:$SRC: Connection refused"
for v in 0 x -1 86401; do
  run 2 "$BIN/heraldctl" tail --relay 127.0.0.1:1 --connect-timeout "$v"
  one_line_err "tail --connect-timeout $v"
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env python3
"""The http sink (sink.type: http), format lines: a standalone agent with
four partitions POSTs a mixed workload to a test server (Python stdlib,
plain HTTP); every change since the start arrives, per key in SCN order
except for replays, through a kill -9 of the agent mid-stream.
First step: the Elasticsearch format, TLS, headers, token and fault
injection are not tested yet."""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import Relay, free_port, master_scn, run, setup_db, setup_pos  # noqa: E402,E501
import test_agent as ta  # noqa: E402


class LinesServer:
    """Keeps every JSON line POSTed to it, in arrival order."""

    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.lines += [json.loads(l) for l in
                                    body.decode().splitlines() if l]
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_lines(tmp):
    """Every change since the start arrives; kill -9 loses nothing."""
    start = setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9301, start=setup_pos()).start()
    relay.wait_scn(master_scn())
    srv = LinesServer()
    n = 4
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=n,
                  sink=["sink:", "  type: http",
                        "  url: http://127.0.0.1:%d/" % srv.port,
                        "  retry_max: 1s"])
    w = None
    try:
        ag.start()
        # start: latest is where each partition subscribes: the writer
        # begins after that, or its first rounds are before the start
        ta.wait_for(lambda: len([p for p in (ag.status() or {}).get(
            "partition_status", []) if p["relay"] and
            p["relay_newest_scn"] > 0]) == n,
            "every partition subscribed: " + ag.logtail())
        w = ta.Writer()
        time.sleep(3)
        ag.kill9()
        time.sleep(0.5)
        ag.start()
        time.sleep(2)
        w.stop()
        w = None
        head = master_scn()
        ta.wait_for(lambda: len(ag.checkpoints()) == n and
                    min(ag.checkpoints().values()) >= head,
                    "checkpoints at the head: " + ag.logtail())
        with srv.lock:
            got = list(srv.lines)
        have = {ta.identity(json.dumps(l)) for l in got}
        exp = ta.expected(start)
        missing = [l for l in exp if ta.identity(l) not in have]
        assert exp, "the workload wrote nothing"
        assert not missing, "%d of %d changes missing, first: %s" % (
            len(missing), len(exp), missing[0])
        extra = have - {ta.identity(l) for l in exp}
        assert not extra, "unexpected changes: %s" % sorted(extra)[:3]
    finally:
        if w:
            w.stop_ev.set()
        ag.stop()
        relay.stop()
        srv.stop()


TESTS = [test_lines]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-http-"))

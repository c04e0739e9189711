#!/usr/bin/env python3
"""The http sink (sink.type: http) against a test server of the test's own
(Python stdlib) that answers like Elasticsearch's _bulk API: it keeps
documents with external versions (version_type external_gte: a lower
version is a 409 conflict), answers per item, and fails on command:
whole-request 429 (with Retry-After) and 503, items rejected with 429
(a partial failure), an item refused for good (400, a mapping error), a
stall past sink.timeout, the server down, and https with a certificate
the test makes. Not tested against a real Elasticsearch: none is packaged
in Debian.

Every case checks what a user would: format lines, every change arrives
(replays allowed); format elasticsearch, the documents equal the source
tables row for row at the end, however the faults fell, and a failing
destination holds the partition's checkpoint back."""
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (BIN, Relay, free_port, master_scn, run,  # noqa: E402
                        setup_db, setup_pos, sql)
import test_agent as ta  # noqa: E402

SECRET = "s3cret-token-4711"


class EsServer:
    """Lines (any path) or an Elasticsearch-like _bulk (a path ending in
    /_bulk). faults: a queue of what the next requests get."""

    def __init__(self, port=None, tls=None):
        self.lines = []
        self.docs = {}   # (index, id) -> (version, doc)
        self.tomb = {}   # (index, id) -> version of the delete
        self.lock = threading.Lock()
        self.faults = []
        self.bad_value = None  # a field value refused for good (400)
        self.requests = 0
        self.statuses = Counter()
        self.items = Counter()
        self.headers = []
        self.port = port or free_port()
        self.tls = tls
        self.srv = None
        self.conns = set()
        self.start()

    def start(self):
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self, code, body, extra=()):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                with outer.lock:
                    outer.statuses[code] += 1

            def setup(self):
                super().setup()
                with outer.lock:
                    outer.conns.add(self.connection)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n).decode()
                with outer.lock:
                    outer.requests += 1
                    outer.headers.append(dict(self.headers))
                    fault = outer.faults.pop(0) if outer.faults else None
                if fault and fault[0] == "status":
                    extra = [("Retry-After", str(fault[2]))] if fault[2] else []
                    return self.answer(fault[1], {"error": "injected"}, extra)
                if fault and fault[0] == "stall":
                    time.sleep(fault[1])
                if not self.path.endswith("/_bulk"):
                    with outer.lock:
                        outer.lines += [json.loads(l) for l in body.splitlines() if l]
                    return self.answer(200, {})
                reject = fault[1] if fault and fault[0] == "items" else None
                items, errors = outer.bulk(body.splitlines(), reject)
                self.answer(200, {"took": 1, "errors": errors, "items": items})

            def log_message(self, *a):
                pass

        class S(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that timed out (the stall) closed the socket

        self.srv = S(("127.0.0.1", self.port), H)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()

    def stop(self):
        """Down: no listener, and the kept-alive connections cut."""
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None
        with self.lock:
            conns, self.conns = self.conns, set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def bulk(self, lines, reject):
        """Applies the actions in order; reject: a status for every other
        item (not applied), as an overloaded cluster answers."""
        items, errors, i = [], False, 0
        with self.lock:
            while i < len(lines):
                action = json.loads(lines[i])
                i += 1
                verb, meta = next(iter(action.items()))
                doc = None
                if verb == "index":
                    doc = json.loads(lines[i])
                    i += 1
                k = (meta["_index"], meta["_id"])
                res = {"_index": k[0], "_id": k[1]}
                assert meta.get("version_type") == "external_gte", meta
                v = meta["version"]
                have = max(self.docs.get(k, (0, None))[0], self.tomb.get(k, 0))
                if reject and len(items) % 2 == 1:
                    res.update(status=reject, error={
                        "type": "es_rejected_execution_exception",
                        "reason": "injected"})
                elif doc is not None and self.bad_value in doc.values():
                    res.update(status=400, error={
                        "type": "mapper_parsing_exception",
                        "reason": "failed to parse field [v]"})
                elif v < have:
                    res.update(status=409, error={
                        "type": "version_conflict_engine_exception",
                        "reason": "current version [%d] is higher" % have})
                elif verb == "index":
                    self.docs[k] = (v, doc)
                    self.tomb.pop(k, None)
                    res.update(status=200, result="updated")
                else:
                    found = self.docs.pop(k, None)
                    self.tomb[k] = v
                    res.update(status=200 if found else 404,
                               result="deleted" if found else "not_found")
                if res["status"] >= 300 and res["status"] != 404:
                    errors = True
                self.items[res["status"]] += 1
                items.append({verb: res})
        return items, errors

    def url(self, bulk=True):
        return "%s://127.0.0.1:%d/%s" % ("https" if self.tls else "http",
                                         self.port, "_bulk" if bulk else "in")


def source_docs():
    """The test's tables as the documents they must become."""
    docs = {}
    for line in sql("SELECT id, v FROM %s.a" % ta.DB).splitlines():
        i, v = line.split("\t")
        docs[("%s.a" % ta.DB, i)] = {"id": int(i), "v": None if v == "NULL" else v}
    for line in sql("SELECT k, n FROM %s.b" % ta.DB).splitlines():
        k, n = line.split("\t")
        docs[("%s.b" % ta.DB, k)] = {"k": k, "n": int(n)}
    return docs


def check_docs(srv):
    want = source_docs()
    with srv.lock:
        got = {k: d for k, (_, d) in srv.docs.items()}
    assert want, "the source tables are empty"
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [(k, got[k], want[k]) for k in want if k in got and got[k] != want[k]]
    assert not (missing or extra or wrong), \
        "documents differ from the source: %d missing %s, %d extra %s, " \
        "%d wrong %s" % (len(missing), missing[:2], len(extra), extra[:2],
                         len(wrong), wrong[:2])
    return len(got)


def http_sink(url, *more):
    return ["sink:", "  type: http", "  url: %s" % url, "  retry_max: 1s"] \
        + list(more)


def es_sink(srv, *more):
    return http_sink(srv.url(), "  format: elasticsearch",
                     "  index: '{db}.{table}'", *more)


def subscribed(ag, n):
    """start: latest is where each partition subscribes: a writer begins
    after that, or its first rounds are before the start."""
    ta.wait_for(lambda: len([p for p in (ag.status() or {}).get(
        "partition_status", []) if p["relay"] and
        p["relay_newest_scn"] > 0]) == n,
        "every partition subscribed: " + ag.logtail())


def at_head(ag, timeout=60):
    head = master_scn()
    ta.wait_for(lambda: ag.checkpoints() and
                min(ag.checkpoints().values()) >= head,
                "checkpoints at %d: %s %s" % (head, ag.checkpoints(),
                                              ag.logtail()), timeout)


def standalone(tmp, name, sink, n=4, server_id=9301):
    relay = Relay(tmp, "r-" + name, server_id, start=setup_pos()).start()
    relay.wait_scn(master_scn())
    ag = ta.Agent(tmp, name, relays=[relay], partitions=n, sink=sink)
    return relay, ag


def kill_under_load(ag, n):
    """Start ag; a write load once it subscribed, a kill -9 and a restart
    mid-stream; back at the head."""
    ag.start()
    subscribed(ag, n)
    w = ta.Writer()
    try:
        time.sleep(3)
        ag.kill9()
        time.sleep(0.5)
        ag.start()
        time.sleep(2)
    except BaseException:
        w.stop_ev.set()
        raise
    w.stop()
    at_head(ag)


def log_has(ag, word):
    try:
        with open(ag.log) as f:
            return word in f.read()
    except OSError:
        return False


def test_refused(tmp):
    """http keys with another sink, an http sink without a URL or with a
    header the sink sets itself: refused by validate-config."""
    ag = ta.Agent(tmp, "bad", partitions=2,
                  sink=http_sink("http://127.0.0.1:1/_bulk"))
    with open(ag.conf) as f:
        conf = f.read().replace("  checkpoint_file:",
                                "  relays: 127.0.0.1:1\n  checkpoint_file:")
    url = "  url: http://127.0.0.1:1/_bulk\n"
    stdout = conf.replace("type: http", "type: stdout").replace(url, "")
    cases = [(conf.replace(url, ""), "sink: type http needs 'url'"),
             (conf.replace(url, "  url: ftp://x/\n"), "is not an http:// or"),
             (stdout + "  format: elasticsearch\n",
              "sink.format: only used with type http"),
             (stdout + "  headers: {X-A: b}\n",
              "sink.headers: only used with type http"),
             (stdout + "  tls_verify: false\n",
              "sink.tls_verify: only used with type http"),
             (stdout + "  index: 'x-{table}'\n",
              "sink.index: only used with type http"),
             (conf + "  headers: {Content-Type: text/plain}\n",
              "Content-Type is set by the sink"),
             (conf + "  headers: {'X-A': \"a\\r\\nb\"}\n", "holds a line break"),
             (conf + "  headers: {Authorization: x}\n  token_file: /x\n",
              "Authorization and sink.token_file"),
             (conf + "  format: xml\n", "sink.format")]
    ta.refused(ag.conf, cases)


def test_lines(tmp):
    """Format lines: every change since the start arrives through a kill -9
    of the agent mid-stream; custom headers and the token are sent, and
    the token appears nowhere in the agent's log or /status."""
    start = setup_db(ta.DB, ta.DDL)
    srv = EsServer()
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write(SECRET + "\n")
    n = 4
    relay, ag = standalone(tmp, "a1", http_sink(
        srv.url(bulk=False), "  token_file: %s" % tok,
        "  headers: {X-Herald-Test: 'yes'}"), n)
    try:
        kill_under_load(ag, n)
        st = json.dumps(ag.status())
        with srv.lock:
            got = list(srv.lines)
            hdrs = list(srv.headers)
        have = {ta.identity(json.dumps(l)) for l in got}
        exp = ta.expected(start)
        missing = [l for l in exp if ta.identity(l) not in have]
        assert exp, "the workload wrote nothing"
        assert not missing, "%d of %d changes missing, first: %s" % (
            len(missing), len(exp), missing[0])
        extra = have - {ta.identity(l) for l in exp}
        assert not extra, "unexpected changes: %s" % sorted(extra)[:3]
        assert all(h.get("Authorization") == "Bearer " + SECRET and
                   h.get("X-Herald-Test") == "yes" and
                   h.get("Content-Type") == "application/x-ndjson"
                   for h in hdrs), hdrs[:1]
        assert SECRET not in st and not log_has(ag, SECRET), \
            "the token leaked into the log or /status"
    finally:
        ag.stop()
        relay.stop()
        srv.stop()


def test_es_standalone(tmp):
    """Format elasticsearch, four partitions, a mixed load (inserts,
    updates, deletes, key moves) with a kill -9 mid-stream: the documents
    equal the source. Then every checkpoint is set back to the start and
    the whole stream replays: the replay's older versions are conflicts
    (409, applied as a no-op) and the documents still equal the source."""
    start = setup_db(ta.DB, ta.DDL)
    srv = EsServer()
    n = 4
    relay, ag = standalone(tmp, "a1", es_sink(srv), n, 9302)
    try:
        kill_under_load(ag, n)
        # every row of a changed again, in a later window than its others
        sql("UPDATE %s.a SET v = CONCAT(v, '+')" % ta.DB)
        at_head(ag)
        ndocs = check_docs(srv)
        ag.term()
        path = os.path.join(ag.dir, "checkpoints.json")
        with open(path) as f:
            ck = json.load(f)
        for c in ck["checkpoints"].values():
            c["scn"] = start
        with open(path, "w") as f:
            json.dump(ck, f)
        conflicts, nreq = srv.items[409], srv.requests
        ag.start()
        at_head(ag)
        check_docs(srv)
        assert srv.requests > nreq, "nothing replayed"
        assert srv.items[409] > conflicts, "the replay met no newer version"
        print("es standalone: %d documents, %d conflicts in the replay"
              % (ndocs, srv.items[409] - conflicts))
    finally:
        ag.stop()
        relay.stop()
        srv.stop()


def test_es_faults(tmp):
    """Whole-request 429s (Retry-After) and a 503, items rejected with
    429, a stall past sink.timeout, the server down, and a document
    refused for good (400): each holds the partition back (its checkpoint
    does not pass what was not accepted), the failure is named in the
    log, and once it clears the documents equal the source."""
    setup_db(ta.DB, ta.DDL)
    srv = EsServer()
    n = 2
    relay, ag = standalone(tmp, "a1", es_sink(srv, "  timeout: 2s"), n, 9303)
    try:
        ag.start()
        subscribed(ag, n)
        # passing faults: retried inside the batch's time, or by the agent
        with srv.lock:
            srv.faults += [("status", 429, 1), ("status", 503, 0),
                           ("items", 429), ("items", 503), ("stall", 3)]
        ta.workload(5)
        at_head(ag)
        check_docs(srv)
        assert not srv.faults, "faults left unused: %s" % srv.faults
        assert srv.statuses[429] >= 1 and srv.statuses[503] >= 1
        assert srv.items[429] and srv.items[503], srv.items
        assert log_has(ag, "no answer") or log_has(ag, "Timeout") or \
            log_has(ag, "timed out"), "the stall was not named: " + ag.logtail()
        # a document refused for good: that partition stops short of it
        srv.bad_value = "poison"
        before = master_scn()
        sql("INSERT INTO %s.a VALUES (424242, 'poison')" % ta.DB)
        poison = master_scn()
        ta.workload(2, base=500)
        ta.wait_for(lambda: log_has(ag, "mapper_parsing_exception"),
                    "the refusal named: " + ag.logtail())
        time.sleep(2)
        cks = ag.checkpoints()
        assert min(cks.values()) < poison, \
            "a checkpoint passed the refused document: %s > %d" % (cks, poison)
        assert max(cks.values()) >= before, cks
        srv.bad_value = None
        at_head(ag)
        check_docs(srv)
        # the server down: checkpoints hold; back on the same port, on
        srv.stop()
        held = dict(ag.checkpoints())
        ta.workload(2, base=700)
        time.sleep(3)
        assert ag.checkpoints() == held, "checkpoints moved while down"
        assert log_has(ag, "Couldn't connect") or log_has(ag, "connect"), \
            ag.logtail()
        srv.start()
        at_head(ag)
        ag.term()
        print("es faults: %d documents; statuses %s; items %s"
              % (check_docs(srv), dict(srv.statuses), dict(srv.items)))
    finally:
        ag.stop()
        relay.stop()
        srv.stop()


def test_es_group(tmp):
    """Three agents of a group (ZooKeeper, two relays, two coordinators),
    format elasticsearch, a mixed load throughout and a kill -9 of one
    agent mid-stream: its partitions move and replay; the documents equal
    the source."""
    setup_db(ta.DB, ta.DDL)
    srv = EsServer()
    g = ta.Group(tmp, 6)
    try:
        for name in ("a1", "a2", "a3"):
            g.agent(name, sink=es_sink(srv))
        g.wait_settled()
        g.wait_head()
        g.kill_under_load()
        print("es group: %d documents, %d conflicts" % (check_docs(srv),
                                                       srv.items[409]))
    finally:
        g.close()
        srv.stop()


def make_cert(tmp):
    key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def test_tls(tmp):
    """https: without the test's CA the certificate does not verify and
    the partition holds (named in the log); with sink.ca_file, and with
    tls_verify false, the documents arrive."""
    setup_db(ta.DB, ta.DDL)
    crt, key = make_cert(tmp)
    srv = EsServer(tls=(crt, key))
    n = 2
    try:
        # the failing case last: its changes never reach the server
        for name, more, ok in (("ca", ["  ca_file: %s" % crt], True),
                               ("noverify", ["  tls_verify: false"], True),
                               ("noca", [], False)):
            relay, ag = standalone(tmp, name, es_sink(srv, *more), n,
                                   9304 + len(name))
            try:
                ag.start()
                subscribed(ag, n)
                ta.workload(2, base=1000 * len(name))
                if ok:
                    at_head(ag)
                    check_docs(srv)
                else:
                    head = master_scn()
                    ta.wait_for(lambda: log_has(ag, "certificate") or
                                log_has(ag, "SSL"),
                                "the TLS failure named: " + ag.logtail())
                    time.sleep(1)
                    assert all(c < head for c in ag.checkpoints().values()), \
                        "a checkpoint moved past an unverified server"
                ag.term()
            finally:
                ag.stop()
                relay.stop()
    finally:
        srv.stop()


TESTS = [test_refused, test_lines, test_es_standalone, test_es_faults,
         test_es_group, test_tls]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-http-"))

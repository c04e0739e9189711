#!/usr/bin/env python3
"""The nats sink (sink.type: nats) into the sandbox's nats-server with
JetStream (scripts/sandbox start --nats), read back with nats_dump: a
mixed workload arrives complete and in per-key order; replays after a
kill -9 are dropped by the duplicate window (each change once in the
stream); nats-server stopped under load stops the partitions without a
checkpoint moving past what JetStream acked, and after nats-start
everything arrives; a subject with no stream fails the partition with a
clear message and retries; config refusals exit non-zero."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import sandbox, BIN, ENV, SRC, Relay, Skip, master_scn, run, setup_db, setup_pos  # noqa: E402,E501
import test_agent as ta  # noqa: E402

URL = ENV.get("HERALD_NATS_URL")
SBX_DIR = os.environ.get("HERALD_SANDBOX_DIR") or ENV.get("HERALD_SANDBOX_DIR")
DUMP = os.path.join(BIN, "nats_dump")
STREAM = "HERALD_IT"


def need_nats():
    if not URL:
        raise Skip("no nats-server in the sandbox (start --nats)")


def nd(*args):
    r = subprocess.run([DUMP, URL] + list(args), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, "nats_dump %s: %s" % (args, r.stderr)
    return r.stdout


def fresh_stream(subject="herald.>"):
    nd("delete", STREAM)
    nd("create", STREAM, subject)


def nats_sink(subject=None):
    lines = ["sink:", "  type: nats", "  url: %s" % URL, "  retry_max: 1s",
             "  timeout: 5s"]
    if subject:
        lines.append("  subject: '%s'" % subject)
    return lines


def log_lines(agent, word):
    try:
        with open(agent.log) as f:
            return [l for l in f if word in l]
    except OSError:
        return []


def stream():
    return [json.loads(l) for l in nd("dump", STREAM).splitlines()]


def check_stream(exp, after=0):
    """Every expected change exactly once per partition that publishes it
    (a key move in two), the headers right, and per partition and key the
    SCNs in stream order never going back. Messages at or before SCN
    after (an earlier case's) are ignored."""
    msgs = [m for m in stream()
            if json.loads(m["data"])["scn"] > after]
    seen = set()
    where = {}
    last = {}
    for m in msgs:
        d = json.loads(m["data"])
        h = m["headers"]
        p = h.get("Herald-Partition")
        assert h.get("Herald-Scn") == str(d["scn"]), m
        assert h.get("Nats-Msg-Id", "").startswith(
            "%d-%s-" % (d["scn"], p)), m
        assert m["subject"] == "herald.%s.%s" % (d["source"]["db"],
                                                 d["source"]["table"]), m
        k = ta.identity(m["data"])
        assert (k, p) not in seen, "twice in the stream: %s" % m["data"]
        seen.add((k, p))
        where.setdefault(k, set()).add(p)
        for key in (d.get("old_key"), d.get("key")):
            if key is None:
                continue
            kk = (p, d["source"]["table"], json.dumps(key, sort_keys=True))
            assert d["scn"] >= last.get(kk, 0), \
                "key %s: SCN %d after %d" % (kk, d["scn"], last[kk])
            last[kk] = d["scn"]
    missing = [l for l in exp if ta.identity(l) not in where]
    assert not missing, "%d of %d changes missing, first: %s" % (
        len(missing), len(exp), missing[0])
    return len(msgs)


def at_head(ag, n):
    ag.start()
    head = master_scn()
    ta.wait_for(lambda: len(ag.checkpoints()) == n and
                min(ag.checkpoints().values()) >= head,
                "every partition at the head: " + ag.logtail())


def drained(ag):
    head = master_scn()
    ta.wait_for(lambda: ag.checkpoints() and
                min(ag.checkpoints().values()) >= head,
                "checkpoints at %d: %s %s" % (head, ag.checkpoints(),
                                              ag.logtail()), 90)
    ag.term()


def test_refused(tmp):
    """nats keys with another sink, a nats sink without url: refused."""
    need_nats()
    ag = ta.Agent(tmp, "bad", partitions=2, sink=nats_sink())
    with open(ag.conf) as f:
        conf = f.read().replace("  checkpoint_file:",
                                "  relays: 127.0.0.1:1\n  checkpoint_file:")
    cases = [(conf.replace("  url: %s\n" % URL, ""),
              "sink: type nats needs 'url'"),
             (conf.replace("type: nats", "type: stdout").replace(
                 "  url: %s\n" % URL, "  subject: 'x.{db}'\n"),
              "sink.subject: only used with type nats"),
             (conf.replace("type: nats", "type: stdout").replace(
                 "  url: %s\n" % URL, "  token_file: /nonexistent\n"),
              "sink.token_file: only used with type nats")]
    ta.refused(ag.conf, cases)


def test_standalone(tmp):
    """One agent, four partitions, a mixed load and a kill -9 mid-stream
    and a restart: every change once in the stream (the replay dropped
    by the duplicate window), per-key order."""
    need_nats()
    fresh_stream()
    start = setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9311, start=setup_pos()).start()
    relay.wait_scn(master_scn())
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=4, sink=nats_sink())
    try:
        at_head(ag, 4)
        ta.restart_under_load(ag)
        drained(ag)
        n = check_stream(ta.expected(start))
        print("standalone: %d messages, each change once" % n)
    finally:
        ag.stop()
        relay.stop()


def test_outage(tmp):
    """nats-server stopped under load: partitions fail, no checkpoint
    moves while it is down; nats-start, then everything arrives once."""
    need_nats()
    fresh_stream()
    start = setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9312, start=setup_pos()).start()
    relay.wait_scn(master_scn())
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=4, sink=nats_sink())
    w = None
    down = False
    try:
        at_head(ag, 4)
        w = ta.Writer()
        time.sleep(1)
        sandbox("nats-stop")
        down = True
        ta.wait_for(lambda: log_lines(ag, "partition stops, retries"),
                    "a failing partition: " + ag.logtail(), 60)
        time.sleep(2)
        before = ag.checkpoints()
        time.sleep(3)
        assert ag.checkpoints() == before, "checkpoint moved while down"
        sandbox("nats-start")
        down = False
        time.sleep(1)
        w.stop()
        w = None
        drained(ag)
        check_stream(ta.expected(start))
    finally:
        if w:
            w.stop_ev.set()
        if down:
            sandbox("nats-start")
        ag.stop()
        relay.stop()


def test_no_stream(tmp):
    """A subject no stream takes: the partition fails with the subject and
    the error in the log, and retries; with the stream created, it all
    arrives."""
    need_nats()
    nd("delete", STREAM)
    nd("create", STREAM, "nostream.>")
    setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9313, start=setup_pos()).start()
    relay.wait_scn(master_scn())
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=2,
                  sink=nats_sink("nostream.{db}.{table}"))
    try:
        at_head(ag, 2)
        nd("delete", STREAM)
        start = master_scn()
        ta.workload(3)
        ta.wait_for(lambda: len([l for l in log_lines(ag, "nostream.")
                                 if "No responders" in l or
                                 "no responders" in l.lower()]) >= 2,
                    "the failure named twice (retried): " + ag.logtail(), 60)
        nd("create", STREAM, "nostream.>")
        head = master_scn()
        ta.wait_for(lambda: min(ag.checkpoints().values()) >= head,
                    "checkpoints at the head: " + ag.logtail(), 60)
        exp = ta.expected(start)
        msgs = [json.loads(m["data"]) for m in stream()]
        got = set(ta.identity(json.dumps(d)) for d in msgs)
        missing = [l for l in exp if ta.identity(l) not in got]
        assert not missing, "missing: %s" % missing[:1]
    finally:
        ag.stop()
        relay.stop()


def test_group(tmp):
    """Three agents of a group (ZooKeeper, two relays, two coordinators),
    a mixed load throughout, a kill -9 of one agent mid-stream: its
    partitions move and replay into the duplicate window; the stream
    holds every change once per partition, in per-key order."""
    need_nats()
    fresh_stream()
    start = setup_db(ta.DB, ta.DDL)
    g = ta.Group(tmp, 6)
    try:
        for name in ("a1", "a2", "a3"):
            g.agent(name, sink=nats_sink())
        g.wait_settled()
        g.wait_head()
        g.kill_under_load()
        n = check_stream(ta.expected(start))
        print("group: %d messages, each change once per partition" % n)
    finally:
        g.close()


TESTS = [test_refused, test_standalone, test_outage, test_no_stream,
         test_group]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-nats-"))

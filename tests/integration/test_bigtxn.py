#!/usr/bin/env python3
"""Transactions of any size, against the sandbox MariaDB.

A transaction larger than relay.chunk_bytes is captured, stored and sent in
chunks: the relay's memory stays bounded, a consumer with a small
max_frame_bytes gets it whole as consecutive chunks, and a relay killed
while it captures the transaction, or while it stores its chunks, delivers
it whole and once after a restart.

Default (every build, ASan included): a 20,000-row transaction of about
5 MB with 64 KiB chunks. With --big (the normal build's ctest runs it as
relay_big_transaction): 4,000,000 rows of 256 bytes (over 1 GiB of row
images) with relay.buffer_bytes 64MiB; the relay's peak RSS must stay
within buffer_bytes + 96 MiB and heraldctl tail's within its max frame
plus a margin; it prints the figures.

Run by ctest like test_relay.py (same environment).
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import BIN, Relay, decode, run, setup_db, sql, tail  # noqa: E402
from test_resume import FaultRelay  # noqa: E402

SKIP = 77
MIB = 1 << 20


def master_pos():
    f, p = sql("SHOW MASTER STATUS").split("\t")[:2]
    return f, int(p)


def tail_all(relay, args, n):
    return tail(relay, args, n, idle_s=30, timeout=120)[0]


def strip_txn(lines):
    out = []
    for l in lines:
        c = json.loads(l)
        c.pop("txn", None)
        out.append(json.dumps(c, sort_keys=True))
    return out


def big_txn(db, n, width):
    """One transaction of n rows of about width bytes, between two small
    ones; returns the SCN before them."""
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, v VARCHAR(%d));"
                     % (db, width + 20))
    sql("INSERT INTO %s.t VALUES (0, 'before');" % db)
    sql("INSERT INTO %s.t SELECT seq, REPEAT(CHAR(65 + seq %% 26), %d) "
        "FROM %s.seq_1_to_%d;" % (db, width, db, n), db=db)
    sql("INSERT INTO %s.t VALUES (%d, 'after');" % (db, n + 1))
    return start


def test_chunked_delivery(tmp):
    """Chunks to consumers with a small frame, filtered or not."""
    db = "it_bigtxn"
    start = big_txn(db, 20000, 240)
    expected = decode(db + ".*", start)
    assert len(expected) == 20002, len(expected)
    r = Relay(tmp, "big", 501, tables=db + ".*",
              extra="  chunk_bytes: 64KiB\n  buffer_bytes: 1MiB\n").start()
    try:
        # The whole stream, through frames of 64 KiB: identical lines,
        # txn.index and txn.last included.
        lines = tail_all(r, ["--from", str(start), "--max-frame", "64KiB"],
                         len(expected))
        assert lines == expected, "unfiltered tail differs from decode"
        log = open(r.log).read()
        assert "large transaction stored" in log, r.logtail()
        m = re.search(r'large transaction stored" scn=\d+ chunks=(\d+)', log)
        assert m and int(m.group(1)) >= 20, log[-2000:]
        # A partition of it, with a projection.
        part = tail_all(r, ["--from", str(start), "--max-frame", "64KiB",
                            "--partitions", "4:1", "--partition-fn", "mod",
                            "--columns", db + ".t:id"], 5001)
        want = [l for l in expected if json.loads(l)["key"]["id"] % 4 == 1]
        assert len(want) == 5001, len(want)
        got = [json.loads(l) for l in part]
        assert [c["key"]["id"] for c in got] == [json.loads(l)["key"]["id"] for l in want]
        assert all(set(c["after"]) == {"id"} for c in got), got[0]
        last = [c for c in got if c["txn"]["last"]]
        # the big window's last delivered row, and the small one's
        assert len(last) == 2, last
        # The default frame: fewer, larger chunks; same lines.
        lines = tail_all(r, ["--from", str(start)], len(expected))
        assert lines == expected
    finally:
        r.stop()


def killed_case(tmp, spec, name):
    db = "it_bigtxn_" + name
    f, p = master_pos()
    start = big_txn(db, 20000, 240)
    expected = decode(db + ".*", start)
    r = FaultRelay(tmp, name, 502, start="%s:%d" % (f, p), tables=db + ".*",
                   extra="  chunk_bytes: 64KiB\n")
    r.start_with_fault(spec)
    r.wait_killed()
    r.start()
    lines = tail_all(r, ["--from", str(start), "--max-frame", "64KiB"], len(expected))
    try:
        assert lines == expected, "%s: tail differs from decode" % name
        # once: nothing after the last line but the window of the insert
        # that follows (none here) and no duplicate SCN of the big window
        status = r.status()
        assert status["newest_scn"] == json.loads(expected[-1])["scn"], status
    finally:
        r.stop()


def test_killed_while_capturing(tmp):
    """kill -9 in the middle of the big transaction's events."""
    killed_case(tmp, "events=120,exit", "capture")


def test_killed_while_storing(tmp):
    """kill -9 after some of the window's chunks reached the store."""
    killed_case(tmp, "chunks=7,exit", "store")


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_big(tmp):
    """Over 1 GiB of row images in one transaction, buffer_bytes 64MiB."""
    db = "it_bigtxn_huge"
    rows, width = 4000000, 256
    t0 = time.time()
    start = big_txn(db, rows, width)
    t_write = time.time() - t0
    r = Relay(tmp, "huge", 503, tables=db + ".*",
              extra="  buffer_bytes: 64MiB\n").start()
    try:
        t1 = time.time()
        deadline = t1 + 900
        while time.time() < deadline:
            if "large transaction stored" in open(r.log).read():
                break
            if r.proc.poll() is not None:
                raise AssertionError("relay exited: " + r.logtail())
            time.sleep(0.5)
        else:
            raise AssertionError("not stored in time: " + r.logtail())
        t_store = time.time() - t1
        # The consumer: heraldctl tail with a 4 MiB frame, its lines
        # checked as they stream (ids in order, one last flag).
        t2 = time.time()
        cmd = ["/usr/bin/time", "-f", "%M", os.path.join(BIN, "heraldctl"),
               "tail", "--relay", r.addr, "--from", str(start), "--timeout", "60",
               "--max-frame", "4MiB", "--max", str(rows + 2)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        n = lasts = 0
        want_id = 0
        pat = re.compile(rb'"key":\{"id":(\d+)\}.*"last":(true|false)')
        for line in p.stdout:
            m = pat.search(line)
            assert m, line[:200]
            assert int(m.group(1)) == want_id, (m.group(1), want_id)
            want_id += 1
            n += 1
            lasts += m.group(2) == b"true"
        err = p.stderr.read().decode()
        rc = p.wait()
        t_deliver = time.time() - t2
        assert rc == 0, err
        assert n == rows + 2 and lasts == 3, (n, lasts)
        tail_kib = int(err.strip().splitlines()[-1])
        relay_kib = vm_hwm_kib(r.proc.pid)
        store = sum(os.path.getsize(os.path.join(dp, f))
                    for dp, _, fs in os.walk(os.path.join(r.dir, "data")) for f in fs)
        print("big transaction: %d rows of %d bytes; write %.1f s, relay "
              "capture+store %.1f s, tail delivery %.1f s (%.0f rows/s); relay "
              "peak RSS %.1f MiB (bound %d MiB), tail peak RSS %.1f MiB, "
              "store %.1f MiB" % (rows, width, t_write, t_store, t_deliver,
                                  rows / t_deliver, relay_kib / 1024.0, 64 + 96,
                                  tail_kib / 1024.0, store / MIB), flush=True)
        assert relay_kib <= (64 + 96) * 1024, relay_kib
        assert tail_kib <= 4 * 4 * 1024 + 64 * 1024, tail_kib
    finally:
        r.stop()
        sql("DROP DATABASE IF EXISTS %s;" % db)
        # The tests after this one decode the sandbox's binlogs from their
        # start: without the gigabyte this one wrote.
        sql("FLUSH BINARY LOGS;")
        cur = sql("SHOW MASTER STATUS").split("\t")[0]
        sql("PURGE BINARY LOGS TO '%s';" % cur)


TESTS = [test_chunked_delivery, test_killed_while_capturing,
         test_killed_while_storing]


if __name__ == "__main__":
    big = "--big" in sys.argv[1:]
    sys.exit(run([test_big] if big else TESTS,
                 [a for a in sys.argv[1:] if not a.startswith("--")],
                 "herald-big-"))

#!/usr/bin/env python3
"""libherald's failover against real relays on the sandbox MariaDB.

Two relays capture the same source; `heraldctl tail` (built on libherald)
streams from one of them while rows are written, and that relay dies:

- kill -9 in the middle of a stream of single-row transactions (a fixed
  --relay list): every row once, in SCN order, no gap;
- kill -9 in the middle of a large transaction sent in chunks (relays
  found in ZooKeeper, the two with different chunk sizes): the other
  relay sends the window again from its start, cut elsewhere, and tail
  prints each of its rows once, txn.index and txn.last as if it had come
  whole;
- SIGSTOP: the relay in use goes silent, tail's stall timeout moves it to
  the other one; the stopped relay is continued and stopped afterwards.

Run by ctest like test_relay.py (same environment).
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (BIN, ENV, Relay, decode, master_scn, run,  # noqa: E402
                        setup_db, sql, wait_for)


def start_tail(args):
    """heraldctl tail with args; its stdout is a pipe the test reads (a
    test that does not read it holds tail, and so the relay, mid-stream)."""
    return subprocess.Popen([os.path.join(BIN, "heraldctl"), "tail",
                             "--timeout", "30"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc, lines):
    """The rest of tail's lines after lines; its stderr. (Read through the
    same buffered file as readline(): communicate() would miss what that
    buffer holds; stderr is a few lines, so it cannot hold tail up.)"""
    lines += proc.stdout.read().splitlines()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    if proc.returncode != 0:
        raise AssertionError("tail exited %d: %s" % (proc.returncode, err))
    return lines, err


class Reader:
    """Reads tail's lines as they come, in a thread of its own."""

    def __init__(self, proc):
        self.proc, self.lines = proc, []
        self.t = threading.Thread(target=self._run)
        self.t.start()

    def _run(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, n, what, timeout=60):
        wait_for(lambda: len(self.lines) >= n or self.proc.poll() is not None,
                 timeout, what)
        assert len(self.lines) >= n, "tail ended before %s: %s" % (
            what, self.proc.stderr.read())

    def finish(self):
        self.t.join(timeout=120)
        return finish(self.proc, self.lines)


def read_until(proc, lines, pred, what, timeout=60):
    """Read tail's lines into lines until pred(lines)."""
    deadline = time.time() + timeout
    while not pred(lines):
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("tail ended before %s: %s" % (
                what, proc.stderr.read()))
        lines.append(line.rstrip("\n"))


def paced_writer(db, n, groups, pause, gate=None):
    """Insert rows 0..n-1 of db.t, one transaction each, in groups with a
    pause between them; returns the feeder thread (join it). With gate (a
    threading.Event), the second half waits until it is set."""
    p = subprocess.Popen(["mariadb", "--no-defaults", "-uroot", "-S",
                          ENV["HERALD_MDB_SOCKET"]], stdin=subprocess.PIPE,
                         text=True)

    def feed():
        per = n // groups
        for g in range(groups):
            if gate is not None and g == groups // 2:
                gate.wait(timeout=60)
            p.stdin.write("".join("INSERT INTO %s.t VALUES (%d, REPEAT('p', 100));\n"
                                  % (db, i) for i in range(g * per, (g + 1) * per)))
            p.stdin.flush()
            time.sleep(pause)
        p.stdin.close()
        assert p.wait(timeout=120) == 0

    t = threading.Thread(target=feed)
    t.start()
    return t


def check_once_in_order(lines, n):
    rows = [json.loads(l) for l in lines]
    ids = [r["after"]["id"] for r in rows]
    assert len(ids) == n and len(set(ids)) == n, \
        "%d lines, %d distinct rows, %d wanted" % (len(ids), len(set(ids)), n)
    assert ids == list(range(n)), "rows out of order or missing: %s" % [
        (a, b) for a, b in zip(ids, range(n)) if a != b][:5]
    scns = [r["scn"] for r in rows]
    assert all(a < b for a, b in zip(scns, scns[1:])), "SCNs not increasing"


def consumers(relay):
    return relay.status()["consumers"]


def two_relays(tmp, db, one, two):
    """A fresh db.t for paced_writer and two relays (name, server_id) of
    it; returns the SCN before the table's rows and the relays."""
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, pad VARCHAR(200));"
                     % db)
    return (start, Relay(tmp, one[0], one[1], tables=db + ".*").start(),
            Relay(tmp, two[0], two[1], tables=db + ".*").start())


def test_kill9_mid_stream(tmp):
    """kill -9 of the relay in use while rows are written: no gap, no
    duplicate."""
    db = "it_fo_kill"
    start, a, b = two_relays(tmp, db, ("foa", 601), ("fob", 602))
    n = 3000
    writer = None
    try:
        tail = start_tail(["--relay", "%s,%s" % (a.addr, b.addr), "--from",
                           str(start), "--tables", db + ".t", "--max", str(n)])
        # Half of the rows are written only after the kill: they can only
        # come through the other relay.
        gate = threading.Event()
        writer = paced_writer(db, n, 30, 0.05, gate)
        rd = Reader(tail)
        rd.wait(500, "500 rows")
        assert consumers(a) == 1 and consumers(b) == 0
        a.kill9()
        gate.set()
        lines, err = rd.finish()
        writer.join(timeout=120)
        check_once_in_order(lines, n)
        assert a.addr in err and "resuming after SCN" in err, err
        with open(b.log) as f:
            assert "consumer subscribed" in f.read()
    finally:
        if writer:
            writer.join(timeout=120)
        b.stop()


def big_windows(db, k, rows, width):
    """k transactions of rows rows each (ids numbered on), a small one
    before each; returns the SCN before them and the row count."""
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, v VARCHAR(%d));"
                     % (db, width + 20))
    n = 0
    for _ in range(k):
        sql("INSERT INTO %s.t VALUES (%d, 'small');" % (db, n))
        sql("INSERT INTO %s.t SELECT %d + seq, REPEAT('w', %d) FROM %s.seq_1_to_%d;"
            % (db, n, width, db, rows), db=db)
        n += rows + 1
    return start, n


def test_kill9_mid_window(tmp):
    """kill -9 in the middle of a window in chunks: the other relay (found
    in ZooKeeper) sends it again from chunk 0, cut at other places; every
    row once, the lines as decode prints them."""
    db = "it_fo_chunks"
    k, rows = 6, 20000
    start, n = big_windows(db, k, rows, 200)
    expected = decode(db + ".*", start)
    assert len(expected) == n, len(expected)
    scns = [json.loads(l)["scn"] for l in expected]
    small = {scns[i * (rows + 1)] for i in range(k)}
    a = Relay(tmp, "foca", 603, zk=True, tables=db + ".*",
              extra="  chunk_bytes: 64KiB\n")
    b = Relay(tmp, "focb", 604, zk=True, tables=db + ".*",
              extra="  chunk_bytes: 96KiB\n")
    a.start()
    b.start()
    end = master_scn()
    try:
        a.wait_scn(end, timeout=120)
        b.wait_scn(end, timeout=120)
        time.sleep(1.5)  # a registration refresh (every second): both at the end
        tail = start_tail(["--zk", ENV["HERALD_ZK_HOSTS"], "--cluster", "itest",
                           "--source", "sandbox", "--from", str(start),
                           "--tables", db + ".t", "--max-frame", "64KiB",
                           "--max", str(n)])
        # Read a window and a half, then stop reading: tail blocks on its
        # full stdout, the relay on its full socket, in the middle of the
        # stream (24 MB of windows: more than the socket buffers hold).
        lines = []
        read_until(tail, lines, lambda l: len(l) >= rows * 3 // 2, "rows")
        used = [r for r in (a, b) if consumers(r) == 1]
        assert len(used) == 1, [consumers(r) for r in (a, b)]
        used, other = used[0], (b if used[0] is a else a)
        used.kill9()
        lines, err = finish(tail, lines)
        assert lines == expected, "tail differs from decode after the failover"
        assert used.addr in err and "resuming after SCN" in err, err
        # The other relay was asked for what follows the last whole window
        # tail had: a small one, so the big one after it was cut off (the
        # kill stops the stream at a byte of whatever frame was on its way;
        # the other relay captures chunks of 96 KiB, not 64).
        with open(other.log) as f:
            log = f.read()
        after = [int(x.split()[0]) for x in log.split("after_scn=")[1:]]
        assert len(after) == 1 and after[0] in small, (after, sorted(small))
        assert "resuming after SCN %d" % after[0] in err, err
        assert scns.index(after[0]) > rows, "cut in the first window"
        last = [l for l in lines if json.loads(l)["txn"]["last"]]
        assert len(last) == 2 * k, len(last)
    finally:
        a.stop()
        b.stop()


def test_sigstop_stall(tmp):
    """The relay in use stops (SIGSTOP): nothing comes, not even a
    heartbeat; tail's stall timeout moves it to the other relay."""
    db = "it_fo_stop"
    start, a, b = two_relays(tmp, db, ("fosa", 605), ("fosb", 606))
    n = 2000
    writer = None
    stopped = False
    # The second half of the rows is written only once tail is seen on the
    # other relay: until then tail cannot reach --max and leave (under load
    # it once had every row before the test looked, and b had no consumer
    # left to count).
    gate = threading.Event()
    try:
        tail = start_tail(["--relay", "%s,%s" % (a.addr, b.addr), "--from",
                           str(start), "--tables", db + ".t", "--max", str(n),
                           "--stall-timeout", "2"])
        writer = paced_writer(db, n, 40, 0.1, gate)
        rd = Reader(tail)
        rd.wait(300, "300 rows")
        assert consumers(a) == 1
        a.proc.send_signal(signal.SIGSTOP)
        stopped = True
        t0 = time.time()
        try:
            wait_for(lambda: consumers(b) == 1 or tail.poll() is not None,
                     30, "tail on the other relay")
        except AssertionError:
            tail.kill()
            raise AssertionError("tail not on the other relay 30 s after the "
                                 "SIGSTOP; its stderr: %s" % tail.stderr.read())
        took = time.time() - t0
        assert tail.poll() is None, "tail ended: %s" % tail.stderr.read()
        gate.set()
        lines, err = rd.finish()
        writer.join(timeout=120)
        check_once_in_order(lines, n)
        assert "sent nothing, not even a heartbeat, for 2 s" in err, err
        assert a.addr in err, err
        assert 1.5 <= took < 20, took
    finally:
        gate.set()
        if stopped:
            a.proc.send_signal(signal.SIGCONT)
        if writer:
            writer.join(timeout=120)
        a.stop()
        b.stop()


TESTS = [test_kill9_mid_stream, test_kill9_mid_window, test_sigstop_stall]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], "herald-failover-"))

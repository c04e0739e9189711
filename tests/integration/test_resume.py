#!/usr/bin/env python3
"""Nothing lost on resume: faults at the exact points where a relay used to
skip changes, against the sandbox MariaDB.

The relay's test hook (HERALD_TEST_FAULT, compiled in with HD_TEST_HOOKS)
kills the relay or drops its source connection right after a chosen event:

- a statement inside a transaction (MariaDB's CREATE TABLE ... SELECT in
  ROW format: the CREATE is logged inside the transaction that holds the
  rows): a restart or reconnect between it and the commit must deliver the
  transaction's rows, once;
- `source.start: latest` is resolved once, on the first connect: a restart
  or reconnect before the first window is stored must not resolve it again
  and skip what committed in between.

Run by ctest like test_relay.py (same environment). Exits 77 (skipped) when
the relay was built without HD_TEST_HOOKS.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import Relay, Skip, decode, run, setup_db, sql, tail  # noqa: E402

SKIP = 77


class FaultRelay(Relay):
    """A relay started with HERALD_TEST_FAULT set (for its first start)."""

    def __init__(self, tmp, name, server_id, start="earliest", **kw):
        super().__init__(tmp, name, server_id, start=start, **kw)

    def start_with_fault(self, spec, wait_path=None):
        os.environ["HERALD_TEST_FAULT"] = spec
        if wait_path:
            os.environ["HERALD_TEST_FAULT_WAIT"] = wait_path
        try:
            self.start()
        except AssertionError:
            # An early fault may kill the relay before it answers.
            if not (self.proc.poll() == -9 and "test fault fired" in open(self.log).read()):
                raise
        finally:
            os.environ.pop("HERALD_TEST_FAULT", None)
            os.environ.pop("HERALD_TEST_FAULT_WAIT", None)
        if "test fault armed" not in open(self.log).read():
            self.stop()
            if "built without HD_TEST_HOOKS" in open(self.log).read():
                raise Skip("herald-relay was built without HD_TEST_HOOKS")
            raise AssertionError("fault not armed: " + self.logtail())
        return self

    def wait_killed(self, timeout=30):
        try:
            rc = self.proc.wait(timeout=timeout)
        except Exception:
            raise AssertionError("the fault did not fire: " + self.logtail())
        assert rc == -9, "relay exited %d, not by the fault: %s" % (rc, self.logtail())
        assert "test fault fired" in open(self.log).read(), self.logtail()


def wait_file(path, relay, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            return
        time.sleep(0.02)
    raise AssertionError("the fault did not fire: " + relay.logtail())


def rows_of(lines, table):
    return [l for l in lines if json.loads(l).get("source", {}).get("table") == table]


def ctas_case(tmp, action):
    """CREATE TABLE ... SELECT, with the fault right after its CREATE."""
    db = "it_ctas_" + action
    start = setup_db(db, "CREATE TABLE %s.src (id INT PRIMARY KEY, v VARCHAR(20)); "
                     "INSERT INTO %s.src SELECT seq, CONCAT('v', seq) FROM %s.seq_1_to_50;"
                     % (db, db, db))
    # A name of this run's own: the relay reads the binlog from its start,
    # where earlier runs' statements may be.
    dst = "dst_%d" % (int(time.time() * 1000) % 10**9)
    logged = "CREATE TABLE `%s`.`%s`" % (db, dst)
    r = FaultRelay(tmp, "ctas", 301, tables=db + ".*")
    r.start_with_fault("query=%s,%s" % (logged, action))
    try:
        sql("CREATE TABLE %s.%s (id INT PRIMARY KEY, v VARCHAR(20)) "
            "SELECT id, v FROM %s.src; INSERT INTO %s.src VALUES (51, 'after');"
            % (db, dst, db, db))
        if action == "exit":
            r.wait_killed()
            r.start()
        expected = decode(db + ".*", start)
        rows = rows_of(expected, dst)
        assert len(rows) == 50, "decode sees %d rows of %s" % (len(rows), dst)
        # 50 rows of dst, then the insert that followed: everything once.
        lines, _ = tail(r, ["--from", str(start)], len(expected))
        assert lines == expected, "tail differs from decode:\n%s\n--\n%s" % (
            "\n".join(lines[:3]), "\n".join(expected[:3]))
        # The statement travels in its transaction's window: same SCN.
        with_ddl, _ = tail(r, ["--from", str(start), "--ddl"], len(expected) + 1)
        ddl = [json.loads(l) for l in with_ddl if json.loads(l)["op"] == "ddl"]
        assert len(ddl) == 1 and logged in ddl[0]["statement"], ddl
        assert ddl[0]["scn"] == json.loads(rows[0])["scn"], (ddl[0], rows[0])
        assert "test fault fired" in open(r.log).read()
    finally:
        r.stop()


def test_ctas_relay_killed(tmp):
    """Relay killed right after the CREATE of a CREATE ... SELECT."""
    ctas_case(tmp, "exit")


def test_ctas_source_dropped(tmp):
    """Source connection lost right after the CREATE of a CREATE ... SELECT."""
    ctas_case(tmp, "drop")


def latest_case(tmp, action):
    """start: latest, the fault after the first event of the first session,
    and rows committed before the relay is back."""
    db = "it_latest_" + action
    setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, v INT);" % db)
    r = FaultRelay(tmp, "latest", 302, start="latest", tables=db + ".*")
    wait = os.path.join(tmp, "fault-wait")
    r.start_with_fault("events=1,%s" % action, wait if action == "drop" else None)
    try:
        if action == "exit":
            r.wait_killed()
        else:
            wait_file(wait, r)
        kept = open(os.path.join(r.dir, "data", "start-position")).read().split()
        sql("INSERT INTO %s.t SELECT seq, seq FROM %s.seq_1_to_20;" % (db, db))
        for i in range(21, 26):
            sql("INSERT INTO %s.t VALUES (%d, %d);" % (db, i, i))
        if action == "exit":
            r.start()
        else:
            os.unlink(wait)
        lines, _ = tail(r, ["--from", "earliest"], 25)
        ids = [json.loads(l)["after"]["id"] for l in lines]
        assert ids == list(range(1, 26)), ids
        log = open(r.log).read()
        if action == "exit":
            assert "start position kept from the first connect" in log, r.logtail()
        assert log.count("start position resolved") == 1, log
        # The first stored window ends the kept position's life.
        assert not os.path.exists(os.path.join(r.dir, "data", "start-position"))
        assert len(kept) == 2 and int(kept[1]) >= 4, kept
    finally:
        r.stop()


def test_latest_relay_killed(tmp):
    """start: latest, relay killed before its first window."""
    latest_case(tmp, "exit")


def test_latest_source_dropped(tmp):
    """start: latest, source lost before the first window."""
    latest_case(tmp, "drop")


TESTS = [test_ctas_relay_killed, test_ctas_source_dropped,
         test_latest_relay_killed, test_latest_source_dropped]


if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], "herald-resume-"))
